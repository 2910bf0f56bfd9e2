"""How long `alex extract` takes on a folder whose every video is already in the store (issue 15).

Writes N short videos (default 1,000), extracts them once with `pixels:8` and a model encoder
(`tubelet:tiny@random`: planning its identity needs the model's geometry, which a rerun takes from
store.json), then times the no-op rerun as a user runs it (`python -m alex extract`, a fresh
interpreter, start-up included) and reports whether it imported torch. A bare `import torch` is
measured in the same run for scale. Target: under 2 s for 1,000 done videos on a 2-core machine.

    python benchmarks/noop_rerun.py [--videos 1000] [--repeat 3] [--out /tmp/alex-noop]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from alex.datasets.moving_digits import make_moving_digits
from alex.pipeline.extract import ExtractOptions, extract

ENCODERS = ["pixels:8", "tubelet:tiny@random"]
PROBE = """
import sys
from alex.cli import main
sys.argv = ["alex", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    sys.stderr.write("EXIT=%s TORCH=%s\\n" % (exit.code, "torch" in sys.modules))
"""


def timed(command: list[str], repeat: int) -> tuple[float, str]:
    """Median wall seconds over ``repeat`` runs, and the last run's stderr."""
    times, err = [], ""
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        err = done.stdout + done.stderr
    return statistics.median(times), err


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("/tmp/alex-noop"))
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    started = time.perf_counter()
    data = make_moving_digits(args.out, num_videos=args.videos, frames=4, size=32, scale=1)
    written = time.perf_counter() - started
    started = time.perf_counter()
    report = extract(ExtractOptions(videos=data.videos, store=args.out / "store", encoders=ENCODERS))
    assert report.exit_code == 0 and len(report.ok) == args.videos, report.failed[:3]
    first = time.perf_counter() - started
    command = [sys.executable, "-c", PROBE, "extract", "--videos", str(data.videos), "--store", str(args.out / "store")]
    command += [a for e in ENCODERS for a in ("-e", e)]
    seconds, err = timed(command, args.repeat)
    assert f"{args.videos} already up to date" in err, err
    floor, _ = timed([sys.executable, "-c", "import torch"], args.repeat)
    print(f"machine: {platform.machine()}, {platform.python_version()}, {args.repeat} runs, median wall time")
    print(f"{args.videos} videos written in {written:.1f} s, extracted in {first:.1f} s ({' '.join(ENCODERS)})")
    print(f"| no-op rerun of {args.videos} done videos | {seconds:.2f} s | {err.strip().splitlines()[-1]} |")
    print(f"| `python -c 'import torch'` alone | {floor:.2f} s | |")


if __name__ == "__main__":
    main()
