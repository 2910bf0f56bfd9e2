"""Decoders that hang, die or hit a bug (issue 15). A `sitecustomize.py` on PYTHONPATH plants the
fault in every process of a CLI run, decode workers included (they are spawned, so a monkeypatch
in the test process would not reach them): opening a file whose name says `hang` sleeps for an
hour, `crash` kills the process, `bug` raises an exception alex does not expect."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import alex
import alex.pipeline.extract
from tests.fixtures.videos import make_video

FAULTS = '''
import os, time
import av
_open = av.open
def _planted(path, *args, **kwargs):
    name = os.path.basename(str(path))
    if "hang" in name:
        time.sleep(3600)
    if "crash" in name:
        os._exit(9)
    if "bug" in name:
        raise KeyError("planted bug")
    return _open(path, *args, **kwargs)
av.open = _planted
'''


def run_with_faults(tmp_path: Path, videos: Path, *args) -> tuple[int, str, float]:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(FAULTS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.getcwd()])}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "alex", "extract", "--videos", str(videos), "--store", str(tmp_path / "s"),
                           "-e", "pixels:8", "--quiet", *map(str, args)], capture_output=True, text=True, env=env, timeout=300)
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def statuses(store: Path) -> dict[str, tuple[str, str | None]]:
    with alex.open_store(store) as s:
        return {v: (st, e) for v, st, e in s.sql("SELECT video_id, status, error FROM videos").fetchall()}


@pytest.mark.slow
def test_a_hung_decoder_times_out_and_one_that_dies_is_blamed_on_its_own_video(tmp_path):
    videos = tmp_path / "videos"
    for name in ("a", "b-hang", "c", "d-crash", "e", "f"):
        make_video(videos / f"{name}.mp4", num_frames=6, seed=len(name))
    code, output, seconds = run_with_faults(tmp_path, videos, "--workers", "1", "--video-timeout", "3")
    assert code == 1, output
    rows = statuses(tmp_path / "s")
    assert rows["b-hang.mp4"][0] == "error" and "timed out" in rows["b-hang.mp4"][1] and "--video-timeout" in rows["b-hang.mp4"][1]
    assert rows["d-crash.mp4"] == ("error", "the decoder process died while decoding (exit code 9)")
    # Videos queued behind the hung and the dead one (one worker, several queued) were not blamed.
    assert {v for v, (st, _) in rows.items() if st == "ok"} == {"a.mp4", "c.mp4", "e.mp4", "f.mp4"}, rows
    assert seconds < 60, seconds  # the hour-long hang was cut short


def test_the_same_unexpected_error_on_several_videos_stops_the_run_with_exit_3(tmp_path):
    videos = tmp_path / "videos"
    make_video(videos / "a-ok.mp4", num_frames=6, seed=1)
    for i in range(6):
        make_video(videos / f"b{i}-bug.mp4", num_frames=6, seed=2 + i)
    code, output, _ = run_with_faults(tmp_path, videos, "--workers", "0")
    assert code == 3, output
    assert "the same unexpected error on 3 videos in a row" in output and "KeyError: 'planted bug'" in output, output
    rows = statuses(tmp_path / "s")
    assert rows["a-ok.mp4"][0] == "ok"
    failed = {v: e for v, (st, e) in rows.items() if st == "error"}
    assert len(failed) < 6 and all(e == "unexpected KeyError: 'planted bug'" for e in failed.values()), rows
    log = (tmp_path / "s" / "alex-errors.log").read_text()
    assert "Traceback" in log and "planted bug" in log and "b0-bug.mp4" in log
    # Fixed (no fault planted): a plain rerun tries them again, no --retry-errors needed.
    report = alex.pipeline.extract.extract(alex.pipeline.extract.ExtractOptions(
        videos=videos, store=tmp_path / "s", encoders=["pixels:8"], workers=0))
    assert report.exit_code == 0 and len(report.ok) == 6


def test_one_unexpected_error_is_a_row_with_its_type_and_the_run_goes_on(tmp_path):
    videos = tmp_path / "videos"
    for name in ("a", "b-bug", "c"):
        make_video(videos / f"{name}.mp4", num_frames=6, seed=len(name))
    code, output, _ = run_with_faults(tmp_path, videos, "--workers", "1")
    assert code == 1, output
    rows = statuses(tmp_path / "s")
    assert rows["b-bug.mp4"] == ("error", "unexpected KeyError: 'planted bug'")
    assert rows["a.mp4"][0] == rows["c.mp4"][0] == "ok"


def test_video_timeout_must_be_positive(tmp_path):
    done = subprocess.run([sys.executable, "-m", "alex", "extract", "--videos", str(tmp_path), "--video-timeout", "0"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "--video-timeout" in done.stderr
