"""How long the light commands take to answer, and whether they import torch (issue 13).

Each command runs in a fresh interpreter (alex.cli.main behind a probe that reports torch), N times;
the table gives the median wall time, whether torch was imported, and the time against a bare
`python -c "import torch"` measured in the same run (the floor of any command that loads a model).
Target: `--help`, `info`, `query` and usage errors under 1 s on a 2-core machine. Usage:

    python benchmarks/cli_startup.py [--repeat 5] [--out /tmp/alex-cli-startup]
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

PROBE = """
import sys
from alex.cli import main
sys.argv = ["alex", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
sys.stderr.write("TORCH=%s\\n" % ("torch" in sys.modules))
"""


def timed(command: list[str], repeat: int) -> tuple[float, bool | None]:
    """Median seconds over ``repeat`` runs, and whether torch was imported (None: not probed)."""
    times, torch = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        for line in done.stderr.splitlines():
            if line.startswith("TORCH="):
                torch = line == "TORCH=True"
    return statistics.median(times), torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("/tmp/alex-cli-startup"))
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    data = make_moving_digits(args.out, num_videos=20)
    store = args.out / "store"
    extract(ExtractOptions(videos=data.videos, store=store, encoders=["pixels:8"], workers=0))
    s, labels, run = str(store), str(data.labels), str(args.out / "run")
    commands = {
        "alex --help": ["--help"],
        "alex train --help": ["train", "--help"],
        "alex info --store S": ["info", "--store", s],
        "alex query SQL --store S": ["query", "SELECT video_id, count(*) FROM frames GROUP BY 1", "--store", s],
        "alex query (bad SQL)": ["query", "SELEC 1", "--store", s],
        "alex train --epochs 0 (bad value)": ["train", "--store", s, "--labels", labels, "-o", run, "--epochs", "0"],
        "alex train --store MISSING": ["train", "--store", s + "-nope", "--labels", labels, "-o", run],
        "alex train --inputs UNKNOWN": ["train", "--store", s, "--labels", labels, "-o", run, "--inputs", "clip"],
        "alex evaluate NOT_A_RUN": ["evaluate", run, "--store", s, "--labels", labels],
        "alex extract --videos MISSING": ["extract", "--videos", s + "-nope"],
        "alex extract -e UNKNOWN": ["extract", "--videos", str(data.videos), "-e", "nosuch", "--store", s + "-2"],
        "alex extract (all done, no-op)": ["extract", "--videos", str(data.videos), "-e", "pixels:8", "--store", s],
    }
    floor, _ = timed([sys.executable, "-c", "import torch"], args.repeat)
    print(f"machine: {platform.machine()}, {platform.python_version()}, {args.repeat} runs each, median wall time")
    print(f"| command | seconds | imports torch | vs `import torch` ({floor:.2f} s) |")
    print("|---|---|---|---|")
    for name, argv in commands.items():
        seconds, torch = timed([sys.executable, "-c", PROBE, *argv], args.repeat)
        print(f"| `{name}` | {seconds:.2f} | {'yes' if torch else 'no'} | {seconds / floor:.2f}x |")


if __name__ == "__main__":
    main()
