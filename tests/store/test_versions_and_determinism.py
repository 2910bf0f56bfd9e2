"""Determinism and provenance (issue 15): two clean runs on CPU write bitwise-identical arrays, and
every item records the software that wrote it."""

import importlib.metadata
import json
import subprocess
import sys

import av
import numpy as np
import pytest

import alex
from alex.store.compact import compact
from tests.fixtures.videos import make_video

ENCODERS = ["clip:tiny@random", "tubelet:tiny@random", "pixels:8"]


def extract_cli(videos, store, *extra):
    args = [a for e in ENCODERS for a in ("-e", e)]
    done = subprocess.run([sys.executable, "-m", "alex", "extract", "--videos", str(videos), "--store", str(store), *args,
                           "--fps", "4", "--store-dtype", "float32", "--workers", "1", "--quiet", *extra],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def arrays(store):
    with alex.open_store(store) as s:
        keys = s.sql("SELECT video_id, encoder FROM items WHERE status = 'ok' ORDER BY ALL").fetchall()
        return {key: s.arrays(*key).arrays for key in keys}


@pytest.mark.slow
def test_two_clean_runs_write_bitwise_identical_arrays_and_record_their_software(tmp_path):
    videos = tmp_path / "v"
    for i in range(6):
        make_video(videos / f"v{i}.mp4", num_frames=15 + 6 * i, fps=10, seed=i, noise=True)
    extract_cli(videos, tmp_path / "a")
    extract_cli(videos, tmp_path / "b", "--batch-size", "3")  # other batches, other mixes of videos in them
    first, second = arrays(tmp_path / "a"), arrays(tmp_path / "b")
    assert first.keys() == second.keys() and len(first) == 18
    for key, named in first.items():
        for name, values in named.items():
            assert values.dtype in (np.float32, np.float64) and np.array_equal(values, second[key][name]), (key, name)

    libavcodec = "libavcodec " + ".".join(map(str, av.library_versions["libavcodec"]))
    with alex.open_store(tmp_path / "a") as s:
        recorded = {json.dumps(json.loads(v), sort_keys=True) for (v,) in s.sql("SELECT DISTINCT versions FROM items").fetchall()}
        config = s.encoders
    assert len(recorded) == 1
    versions = json.loads(recorded.pop())
    assert versions["alex"] == alex.__version__
    assert versions["torch"] == importlib.metadata.version("torch")
    assert versions["open_clip"] == importlib.metadata.version("open_clip_torch")
    assert versions["transformers"] == importlib.metadata.version("transformers")
    assert libavcodec in versions["ffmpeg"]
    assert all(config[name]["versions"] == versions for name in ("clip", "tubelet", "pixels"))
    compact(tmp_path / "a")  # provenance survives compaction
    with alex.open_store(tmp_path / "a") as s:
        assert {json.loads(v)["torch"] for (v,) in s.sql("SELECT versions FROM items").fetchall()} == {versions["torch"]}
