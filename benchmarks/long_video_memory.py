"""Long videos: peak memory of ``alex extract`` on a 20-minute video against a 10-second one,
measured side by side in one run (each in its own process, sampling the whole process tree).

    python benchmarks/long_video_memory.py [--minutes 20 --encoder pixels --fps 1]
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
import psutil

from alex.datasets.write import write_video


def video(path: Path, seconds: float, fps: int = 10, width: int = 160, height: int = 120) -> Path:
    if path.exists():
        return path
    y, x = np.mgrid[0:height, 0:width]
    frames = (np.stack([(x + t) % 256, (y + 2 * t) % 256, (x * y // 64 + t) % 256], axis=-1).astype(np.uint8)
              for t in range(int(seconds * fps)))
    return write_video(path, frames, fps=fps, options={"preset": "ultrafast"})


def peak_rss(command: list[str]) -> tuple[int, float]:
    """Largest sum of RSS over a process and its children while it runs; and its wall time."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    root = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.02)
    if process.returncode != 0:
        raise RuntimeError(process.stderr.read().decode())
    return peak, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--encoder", default="pixels")
    parser.add_argument("--fps", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/alex-bench-long"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    short = video(args.out / "short" / "ten_seconds.mp4", 10)
    long = video(args.out / f"long{args.minutes:g}" / "long.mp4", args.minutes * 60)
    results = {}
    for name, path in (("10 s", short), (f"{args.minutes:g} min", long)):
        store = args.out / f"store-{path.stem}"
        shutil.rmtree(store, ignore_errors=True)
        command = [sys.executable, "-m", "alex", "extract", "--videos", str(path.parent), "--store", str(store),
                   "-e", args.encoder, "--fps", str(args.fps), "--quiet"]
        results[name] = peak_rss(command)
    (short_rss, short_s), (long_rss, long_s) = results.values()
    print(f"machine: {platform.machine()}, Python {platform.python_version()}; {args.encoder} at {args.fps:g} fps, "
          f"160x120 @ 10 fps videos")
    print(f"peak RSS (process tree): 10 s video {short_rss / 2**20:.0f} MiB in {short_s:.1f} s; {args.minutes:g} min video "
          f"{long_rss / 2**20:.0f} MiB in {long_s:.1f} s -> ratio {long_rss / short_rss:.3f} (target <= 1.2)")


if __name__ == "__main__":
    main()
