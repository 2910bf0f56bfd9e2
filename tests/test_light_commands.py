"""Commands that need no model answer without importing torch, and usage errors come before
anything heavy loads (issue 13). Each command runs in a fresh interpreter that reports whether
torch was imported; benchmarks/cli_startup.py records the times."""

import json
import os
import subprocess
import sys

import pytest

from alex.datasets.moving_digits import make_moving_digits
from alex.datasets.write import write_video
from alex.pipeline.extract import ExtractOptions, extract

PROBE = """
import sys
from alex.cli import main
sys.argv = ["alex", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    code = exit.code
print("PROBE " + __import__("json").dumps({"torch": "torch" in sys.modules, "code": code}), file=sys.stderr)
"""


def run_alex(*args, cwd=None) -> tuple[dict, str]:
    env = {**os.environ, "COLUMNS": "250"}
    done = subprocess.run([sys.executable, "-c", PROBE, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)
    line = next(l for l in done.stderr.splitlines() if l.startswith("PROBE "))
    return json.loads(line[len("PROBE "):]), done.stdout + done.stderr


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    """24 digit videos (no audio track) with pixels, audio and a tiny CLIP, and a probe trained for one epoch."""
    from alex.heads.probe import ProbeOptions
    from alex.heads.training import train

    root = tmp_path_factory.mktemp("light")
    data = make_moving_digits(root, num_videos=24, frames=6)
    assert extract(ExtractOptions(videos=data.videos, store=root / "store", encoders=["pixels:8", "audio:tiny", "clip:tiny@random"],
                                  workers=0)).exit_code == 0
    train(ProbeOptions(store=root / "store", labels=data.labels, output=root / "run", inputs=["pixels"], epochs=1,
                       device="cpu", quiet=True))
    return root, data


def test_help_info_query_and_usage_errors_import_no_torch(small_store):
    root, data = small_store
    store = root / "store"
    light = [
        (["--help"], 0, "Usage"),
        (["train", "--help"], 0, "--split-fractions"),
        (["info", "--store", store], 0, "24 ok"),
        (["query", "SELECT count(*) AS n FROM frames", "--store", store, "-f", "csv"], 0, "n"),
        (["query", "SELEC 1", "--store", store], 2, "SQL:"),
        (["train", "--store", store, "--labels", data.labels, "-o", root / "r", "--epochs", "0"], 2, "--epochs 0"),
        (["train", "--store", root / "nope", "--labels", data.labels, "-o", root / "r"], 2, "no store"),
        (["train", "--store", store, "--labels", root / "none.csv", "-o", root / "r", "--inputs", "pixels"], 2, "none.csv"),
        (["train", "--store", store, "--labels", data.labels, "-o", root / "r", "--inputs", "nosuch"], 2, "nosuch"),
        (["evaluate", root / "norun", "--store", store, "--labels", data.labels], 2, "not a finished run"),
        (["evaluate", root / "run", "--store", store, "--labels", root / "none.csv"], 2, "none.csv"),
        (["predict", root / "run", "--store", root / "nope", "-o", root / "p.parquet"], 2, "no store"),
        (["train", "--store", store, "--labels", data.labels, "-o", root / "run", "--inputs", "pixels", "--resume",
          "--seed", "5"], 2, "--seed 0 (now 5)"),
        (["extract", "--videos", data.videos, "-e", "audio:abc", "--store", root / "s3"], 2, "audio:abc"),
        (["extract", "--videos", data.videos, "-e", "pixels:8", "-e", "audio:tiny", "--store", store, "--workers", "0"],
         0, "24 already up to date"),
        (["extract", "--videos", data.videos, "-e", "clip:tiny@random", "--store", store], 0, "24 already up to date"),
        (["extract", "--videos", root / "nope"], 2, "no such file or folder"),
        (["extract", "--videos", data.videos, "-e", "nosuch", "--store", root / "s2"], 2, "unknown encoder family"),
        (["extract", "--videos", data.videos, "-e", "pixels:8", "--store", store, "--fps", "3"], 2, "different sampling"),
        (["extract", "--videos", data.videos, "-e", "pixels:8", "--store", store, "--workers", "0"], 0, "24 already up to date"),
    ]
    for args, code, says in light:
        probe, output = run_alex(*args)
        assert probe["code"] == code and says in output, (args, output)
        assert not probe["torch"], f"alex {' '.join(map(str, args))} imported torch"


def test_a_dataset_written_twice_is_byte_identical_and_untouched(tmp_path):
    """x264's macroblock tree gave other bytes from one encode to the next in one process."""
    first = make_moving_digits(tmp_path / "a", num_videos=6)
    stamps = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in first.videos.iterdir()}
    again = make_moving_digits(tmp_path / "a", num_videos=6)
    other = make_moving_digits(tmp_path / "b", num_videos=6)
    for path in again.videos.iterdir():
        assert (path.read_bytes(), path.stat().st_mtime_ns) == stamps[path.name], path.name
        assert (other.videos / path.name).read_bytes() == stamps[path.name][0], path.name
    assert sorted(p.name for p in again.videos.iterdir()) == sorted(stamps)  # no partial files left beside them
    frames = [__import__("numpy").full((16, 16, 3), 40 * i, "uint8") for i in range(5)]
    assert write_video(tmp_path / "x.mp4", frames).read_bytes() == write_video(tmp_path / "y.mp4", frames).read_bytes()


@pytest.mark.slow
def test_a_rerun_of_model_encoders_reads_no_config_and_imports_no_torch(tmp_path):
    """tubelet, languagebind and perceiver-mm identities need their model's config; a rerun takes
    the geometry the store recorded instead, and still refuses another clip option."""
    data = make_moving_digits(tmp_path, num_videos=3, frames=6)
    store = tmp_path / "store"
    specs = ["tubelet:tiny@random", "languagebind:tiny@random", "perceiver-mm:tiny@random"]
    args = ["extract", "--videos", data.videos, "--store", store, "--workers", "0"] + [a for s in specs for a in ("-e", s)]
    first, output = run_alex(*args)
    assert first["code"] == 0 and first["torch"], output
    encoders = json.loads((store / "store.json").read_text())["encoders"]
    assert encoders["tubelet"]["model_geometry"] == {"model_type": "vjepa2", "size": 32, "patch": 8, "tubelet": 2, "frames": 8}
    assert encoders["languagebind"]["model_geometry"] == {"num_frames": 4}  # TINY's vision_config
    assert encoders["perceiver-mm"]["model_geometry"]["num_frames"] == encoders["perceiver-mm"]["sampling"]["clip_frames"]
    again, output = run_alex(*args)
    assert again["code"] == 0 and "3 already up to date" in output, output
    assert not again["torch"], "a no-op rerun imported torch"
    refused, output = run_alex(*args, "--clip-stride", "2")
    assert refused["code"] == 2 and "tubelet" in output and not refused["torch"], output
