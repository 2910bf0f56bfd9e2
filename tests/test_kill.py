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


def wait_for_store(process, store) -> float:
    """When the run created its store (or ended): the interpreter's start-up is behind it."""
    while process.poll() is None and not (store / "store.json").exists():
        time.sleep(0.01)
    return time.monotonic()


def consistent(root) -> tuple[int, int]:
    """(videos visible, items whose frames rows disagree with their step count) as a reader sees them."""
    with alex.open_store(root) as s:
        videos = s.sql("SELECT count(*) FROM videos").fetchall()[0][0]
        torn = s.sql(
            "SELECT count(*) FROM items i LEFT JOIN (SELECT video_id, encoder, count(*) AS n FROM frames GROUP BY ALL) f "
            "USING (video_id, encoder) WHERE i.status = 'ok' AND coalesce(f.n, 0) != i.steps"
        ).fetchall()[0][0]
    return videos, torn


@pytest.mark.slow
def test_twenty_kills_at_random_points_each_leave_a_sound_store_and_the_rerun_ends_as_a_clean_run(tmp_path):
    from alex.pipeline.extract import ExtractOptions, extract
    from alex.store.verify import verify

    videos = tmp_path / "v"
    for i in range(8):
        make_video(videos / f"v{i:02d}.mp4", num_frames=40, fps=20, seed=i, noise=True, width=64, height=48)
    reference = alex_cli("extract", "--videos", str(videos), "--store", str(tmp_path / "ref"), *ARGS)
    store_seen = wait_for_store(reference, tmp_path / "ref")
    assert reference.wait(timeout=300) == 0, reference.stderr.read().decode()
    extraction = time.monotonic() - store_seen  # from the store's creation to the end (start-up excluded)
    want = snapshot(tmp_path / "ref")
    rng = np.random.default_rng(15)
    outcomes = []
    for trial in range(20):
        store = tmp_path / f"s{trial}"
        victim = alex_cli("extract", "--videos", str(videos), "--store", str(store), *ARGS)
        wait_for_store(victim, store)  # then a random point of the extraction itself (or just past it)
        time.sleep(float(rng.uniform(0.0, 1.1 * extraction)))
        finished = victim.poll() is not None
        if not finished:
            os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        time.sleep(0.2)  # an orphaned decode worker notices its parent is gone
        if not (store / "store.json").exists():
            outcomes.append("before the store existed")
        else:
            report = verify(store)
            assert report.sound, (trial, [str(p) for p in report.problems])
            videos_seen, torn = consistent(store)
            assert torn == 0, trial
            outcomes.append(f"{videos_seen} videos" + (" (finished)" if finished else ""))
        rerun = extract(ExtractOptions(videos=videos, store=store, encoders=["pixels", "clip:tiny@random"], fps=10,
                                       batch_size=4, workers=0, shard_videos=1))
        assert rerun.exit_code == 0, (trial, rerun.failed)
        after = verify(store)
        assert after.sound and not after.leftovers, (trial, after.problems, after.leftovers)
        got = snapshot(store)
        assert got[0] == want[0] and got[1] == want[1], trial
        for key in want[2]:
            assert np.array_equal(got[2][key].embedding, want[2][key].embedding), (trial, key)
    # The kills landed at different points of the run, not all before it started or after it ended.
    assert len(set(outcomes)) >= 4, outcomes


@pytest.mark.slow
def test_a_query_loop_during_extraction_only_ever_sees_complete_videos(tmp_path):
    videos = tmp_path / "v"
    for i in range(12):
        make_video(videos / f"v{i:02d}.mp4", num_frames=40, fps=20, seed=i, noise=True, width=64, height=48)
    store = tmp_path / "s"
    writer = alex_cli("extract", "--videos", str(videos), "--store", str(store), *ARGS)
    seen = []
    while writer.poll() is None:
        if (store / "store.json").exists():
            count, torn = consistent(store)
            assert torn == 0, f"a reader saw a torn video after {count} videos"
            seen.append(count)
    assert writer.returncode == 0, writer.stderr.read().decode()
    assert seen == sorted(seen), "a reader saw videos disappear"
    assert len(set(seen)) >= 4, seen  # it really read while the store grew
    code = subprocess.run([sys.executable, "-m", "alex", "query", "SELECT count(*) AS n FROM videos", "--store", str(store),
                           "-f", "csv"], capture_output=True, text=True)
    assert code.returncode == 0 and code.stdout.split()[-1] == "12"
