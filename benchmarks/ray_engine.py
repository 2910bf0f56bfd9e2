"""The Ray engine against the local engine on the same CPU workload, on this machine (issue 16).

N short clips (default 60 clips of 2 to 4 s, 320x240 @ 15 fps, issue 14's generator) sampled at
1 fps, encoded by clip:ViT-B-32@random (the real architecture; this machine has no hub). Each engine
runs as a user runs it (`python -m alex extract`, a fresh process, start-up included) into a fresh
store; the Ray run starts its own local Ray (what `--engine ray` does without `--address`). Ray's
start-up alone (`ray.init` + shutdown in a fresh process) is measured in the same run, so the
per-task overhead shows as what remains. Usage:

    python benchmarks/ray_engine.py [--clips 60] [--out /tmp/alex-ray-bench]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extraction_issue14 import VIDEO_FPS, _frames  # noqa: E402

from alex.datasets.write import write_video  # noqa: E402

ENCODER = "clip:ViT-B-32@random"


def timed(command: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - started, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=60)
    parser.add_argument("--out", type=Path, default=Path("/tmp/alex-ray-bench"))
    args = parser.parse_args()
    clips = args.out / "clips"
    if len(list(clips.glob("*.mp4"))) != args.clips:
        shutil.rmtree(clips, ignore_errors=True)
        for i, seconds in enumerate(np.random.default_rng(0).uniform(2.0, 4.0, size=args.clips)):
            write_video(clips / f"clip_{i:03d}.mp4", _frames(seconds, i), fps=VIDEO_FPS)
    ray_start, _ = timed([sys.executable, "-c", "import ray; ray.init(include_dashboard=False, log_to_driver=False); ray.shutdown()"])
    rows = []
    for engine in ("local", "ray"):
        store = args.out / f"store-{engine}"
        shutil.rmtree(store, ignore_errors=True)
        seconds, out = timed([sys.executable, "-m", "alex", "extract", "--videos", str(clips), "--store", str(store),
                              "-e", ENCODER, "--engine", engine, "--quiet"])
        frames = int(out.split(" frames,")[0].split(", ")[-1].replace(",", ""))
        rows.append((engine, seconds, frames))
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, {args.clips} clips, {ENCODER}")
    print("| engine | wall (start-up included) | frames | frames/s | vs local |")
    print("|---|---|---|---|---|")
    local = rows[0][1]
    for engine, seconds, frames in rows:
        print(f"| {engine} | {seconds:.1f} s | {frames} | {frames / seconds:.1f} | {seconds / local:.2f}x |")
    print(f"Ray start-up alone (ray.init + shutdown, fresh process): {ray_start:.1f} s")


if __name__ == "__main__":
    main()
