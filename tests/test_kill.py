"""A run killed with SIGKILL mid-way leaves a store that opens; the rerun ends exactly where an
uninterrupted run ends."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import alex
from alex.store.layout import SEGMENTS_DIR
from tests.fixtures.videos import make_video

ARGS = ["--encoder", "pixels", "--encoder", "clip:tiny@random", "--fps", "10", "--shard-size", "1",
        "--batch-size", "4", "--workers", "1", "--quiet"]


def alex_cli(*args):
    return subprocess.Popen([sys.executable, "-m", "alex", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def snapshot(root):
    with alex.open_store(root) as s:
        frames = s.sql("SELECT video_id, encoder, index, t_start, t_end, embedding FROM frames ORDER BY ALL").fetchall()
        videos = s.sql("SELECT video_id, fingerprint, status, width, height, duration FROM videos ORDER BY ALL").fetchall()
        items = s.sql("SELECT video_id, encoder FROM _items_live ORDER BY ALL").fetchall()
        arrays = {key: s.arrays(*key) for key in items}
    return frames, videos, arrays


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_matches_an_uninterrupted_run(tmp_path):
    videos = tmp_path / "v"
    for i in range(24):
        make_video(videos / f"v{i:02d}.mp4", num_frames=80, fps=20, seed=i, noise=True, width=64, height=48)
    reference = alex_cli("extract", "--videos", str(videos), "--store", str(tmp_path / "ref"), *ARGS)
    assert reference.wait(timeout=300) == 0, reference.stderr.read().decode()

    victim = alex_cli("extract", "--videos", str(videos), "--store", str(tmp_path / "s"), *ARGS)
    segments = tmp_path / "s" / SEGMENTS_DIR
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and victim.poll() is None:
        if segments.is_dir() and len(list(segments.iterdir())) >= 3:
            break
        time.sleep(0.01)
    assert victim.poll() is None, "the run finished before it could be killed; give it more work"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    # Let an orphaned decode worker notice its parent is gone.
    time.sleep(0.5)

    with alex.open_store(tmp_path / "s") as s:
        done = s.sql("SELECT count(*) FROM videos").fetchall()[0][0]
        assert 3 <= done < 24
        # Every visible video is complete: its frames rows and arrays agree.
        counts = s.sql("SELECT count(*) FROM frames GROUP BY video_id, encoder").fetchall()
        assert {c for (c,) in counts} == {40}

    rerun = alex_cli("extract", "--videos", str(videos), "--store", str(tmp_path / "s"), *ARGS)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err.decode()
    assert f"{24 - done} video(s)" in out.decode() and f"{done} already up to date" in out.decode()

    got, want = snapshot(tmp_path / "s"), snapshot(tmp_path / "ref")
    assert got[0] == want[0]
    assert got[1] == want[1]
    assert got[2].keys() == want[2].keys()
    for key in want[2]:
        assert np.array_equal(got[2][key].embedding, want[2][key].embedding), key
        assert np.array_equal(got[2][key].t_start, want[2][key].t_start), key
