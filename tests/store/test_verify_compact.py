"""`alex verify` and `alex compact` (issue 15): damage planted by hand is found and named, repair
keeps good data and gets damaged videos extracted again, and compaction changes no row and no
array (the store before and after are compared through the public views and `Store.arrays`)."""

import json
import subprocess
import sys

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import alex
from alex.pipeline.extract import ExtractOptions, extract
from alex.store.compact import compact
from alex.store.layout import ARRAYS_FILE, COMPACTED_FILE, FRAMES_DIR, SEGMENTS_DIR, STAGING_DIR, VIDEOS_FILE
from alex.store.verify import verify
from tests.fixtures.stores import assert_same, snapshot
from tests.fixtures.videos import make_video

ENCODERS = ["pixels:8", "tubelet:tiny@random"]


def run_cli(*args):
    done = subprocess.run([sys.executable, "-m", "alex", *map(str, args)], capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout + done.stderr


@pytest.fixture
def layered_store(tmp_path):
    """A store built over four runs, in segments of 2 videos: 5 videos, then 2 more, then one file
    changed (its old rows superseded), then a second encoder added to all."""
    videos = tmp_path / "videos"
    for i in range(5):
        make_video(videos / f"v{i}.mp4", num_frames=12, fps=6, seed=i, noise=True)
    store = tmp_path / "store"
    options = dict(videos=videos, store=store, workers=0, shard_videos=2)
    assert extract(ExtractOptions(encoders=ENCODERS[:1], **options)).exit_code == 0
    for i in (5, 6):
        make_video(videos / f"v{i}.mp4", num_frames=8, fps=4, seed=i, noise=True)
    assert extract(ExtractOptions(encoders=ENCODERS[:1], **options)).exit_code == 0
    make_video(videos / "v0.mp4", num_frames=18, fps=6, seed=40, noise=True)
    assert extract(ExtractOptions(encoders=ENCODERS[:1], **options)).exit_code == 0
    assert extract(ExtractOptions(encoders=ENCODERS, **options)).exit_code == 0
    return videos, store


def test_compaction_keeps_every_row_and_array_and_gives_space_back(layered_store):
    videos, store = layered_store
    before = snapshot(store)
    segments_before = len(list((store / SEGMENTS_DIR).iterdir()))
    assert segments_before >= 6 and verify(store).sound
    code, output = run_cli("compact", "--store", store)
    assert code == 0 and f"{segments_before} segment(s) -> 1" in output, output
    assert [p.name for p in (store / SEGMENTS_DIR).iterdir()] and len(list((store / SEGMENTS_DIR).iterdir())) == 1
    (segment,) = (store / SEGMENTS_DIR).iterdir()
    assert (segment / COMPACTED_FILE).is_file()
    assert_same(snapshot(store), before)
    report = verify(store)
    assert report.sound and report.segments == 1, report.problems
    # v0's first version (superseded) is gone: fewer frames rows on disk than before.
    rows = pq.read_table(segment / FRAMES_DIR / "pixels.parquet").num_rows
    with alex.open_store(store) as s:
        assert rows == s.sql("SELECT count(*) FROM frames WHERE encoder = 'pixels'").fetchall()[0][0]
    # Compacting again changes nothing; extracting into a compacted store works as before.
    code, output = run_cli("compact", store)
    assert code == 0 and "nothing to compact" in output
    make_video(videos / "v7.mp4", num_frames=6, fps=6, seed=7, noise=True)
    report = extract(ExtractOptions(videos=videos, store=store, encoders=ENCODERS, workers=0))
    assert report.ok == ["v7.mp4"] and report.up_to_date == 7
    assert verify(store).sound


def test_compaction_reclaims_the_space_of_deleted_hdf5_arrays(tmp_path):
    """A segment whose arrays.h5 had datasets deleted (what `del h5[path]` leaves: the file keeps
    its size) shrinks to the live arrays when compacted."""
    videos = tmp_path / "videos"
    for i in range(2):
        make_video(videos / f"v{i}.mp4", num_frames=16, fps=8, seed=i, noise=True)
    store = tmp_path / "store"
    assert extract(ExtractOptions(videos=videos, store=store, encoders=ENCODERS[1:], workers=0)).exit_code == 0
    (segment,) = (store / SEGMENTS_DIR).iterdir()
    with h5py.File(segment / ARRAYS_FILE, "a") as f:  # 4 MB of arrays, an orphan written after them
        f.create_dataset("tubelet/junk/tokens", data=np.random.default_rng(0).random((1 << 19,)))
        f.create_dataset("tubelet/orphan/tokens", data=np.ones(3))
    with h5py.File(segment / ARRAYS_FILE, "a") as f:
        del f["tubelet/junk"]  # as the writer drops the arrays of a video that failed mid-way
    bloated = (segment / ARRAYS_FILE).stat().st_size
    assert bloated > 4_000_000
    assert [p.what for p in verify(store).problems] == ["arrays without an ok item of this segment (orphans)"]
    before = snapshot(store)
    report = compact(store)
    (segment,) = (store / SEGMENTS_DIR).iterdir()
    assert (segment / ARRAYS_FILE).stat().st_size < bloated / 10
    assert report.bytes_after < report.bytes_before
    assert_same(snapshot(store), before)
    assert verify(store).sound


def test_a_reader_open_during_compaction_keeps_its_view_and_the_old_segments_go_later(layered_store):
    videos, store = layered_store
    before = snapshot(store)
    reader = alex.open_store(store)
    count = reader.sql("SELECT count(*) FROM frames").fetchall()[0][0]
    report = compact(store)
    assert report.kept_for_readers > 0 and report.removed == 0  # the reader's files stay
    assert reader.sql("SELECT count(*) FROM frames").fetchall()[0][0] == count
    assert_same(snapshot(store), before)  # a new reader sees the compacted store
    reader.close()
    leftovers = verify(store).leftovers
    assert verify(store).sound and any("obsolete" in line for line in leftovers)
    assert extract(ExtractOptions(videos=videos, store=store, encoders=ENCODERS, workers=0)).up_to_date == 7  # reads, writes nothing
    assert compact(store).segment is None  # the next writer (compaction or an extraction) removes them
    assert len(list((store / SEGMENTS_DIR).iterdir())) == 1 and verify(store).leftovers == []


def _rewrite_frames_without_last_row(store, video_id, encoder):
    for path in sorted((store / SEGMENTS_DIR).glob(f"*/{FRAMES_DIR}/{encoder}.parquet")):
        table = pq.read_table(path)
        rows = [i for i, v in enumerate(table["video_id"].to_pylist()) if v == video_id]
        if rows:
            keep = [i for i in range(table.num_rows) if i != rows[-1]]
            pq.write_table(table.take(pa.array(keep)), path)
            return path
    raise AssertionError("no rows found")


def test_verify_names_planted_damage_and_repair_gets_those_videos_extracted_again(tmp_path):
    videos = tmp_path / "videos"
    for i in range(4):
        make_video(videos / f"v{i}.mp4", num_frames=12, fps=6, seed=i, noise=True)
    clean, store = tmp_path / "clean", tmp_path / "store"
    for root in (clean, store):
        assert extract(ExtractOptions(videos=videos, store=root, encoders=ENCODERS, workers=0, shard_videos=2)).exit_code == 0
    code, output = run_cli("verify", store)
    assert code == 0 and output.startswith("sound"), output

    _rewrite_frames_without_last_row(store, "v1.mp4", "pixels")  # a missing row
    with alex.open_store(store) as s:
        h5, group = s.array_location("v2.mp4", "tubelet")
    with h5py.File(h5, "a") as f:  # a NaN in a token grid
        tokens = f[group]["tokens"]
        values = tokens[()]
        values[0, 0, 0, 0, 0] = np.nan
        tokens[...] = values
        f.copy(f[group], f["tubelet"], name="0123456789abcdef0123")  # and an orphaned copy
    (store / STAGING_DIR / "00000000000000000099-1").mkdir(parents=True)  # what a killed run leaves
    (store / "store.json.tmp").write_text("{")

    code, output = run_cli("verify", "--store", store)
    assert code == 1, output
    problems = [line for line in output.splitlines() if line.startswith("problem:")]
    assert any("pixels.parquet" in p and "v1.mp4" in p and "its item says 2 steps" in p for p in problems), output
    assert any("tokens: non-finite values" in p and "v2.mp4" in p for p in problems), output
    assert any("orphans" in p for p in problems), output
    assert sum("leftover:" in line for line in output.splitlines()) == 2, output
    data = json.loads(run_cli("verify", store, "--json")[1])
    assert not data["sound"] and {p["video_id"] for p in data["problems"]} >= {"v1.mp4", "v2.mp4"}

    code, output = run_cli("verify", store, "--repair")
    assert code == 0 and "repaired" in output and "sound" in output, output
    assert not (store / STAGING_DIR).exists() or not any((store / STAGING_DIR).iterdir())
    assert not (store / "store.json.tmp").exists()
    with alex.open_store(store) as s:
        status = dict(s.sql("SELECT video_id, status FROM videos").fetchall())
        assert status == {"v0.mp4": "ok", "v1.mp4": "error", "v2.mp4": "error", "v3.mp4": "ok"}
    report = extract(ExtractOptions(videos=videos, store=store, encoders=ENCODERS, workers=0))
    assert sorted(report.ok) == ["v1.mp4", "v2.mp4"] and report.up_to_date == 2
    assert verify(store).sound
    assert_same(snapshot(store), snapshot(clean))


def test_an_unreadable_segment_is_quarantined_not_deleted(tmp_path):
    videos = tmp_path / "videos"
    for i in range(4):
        make_video(videos / f"v{i}.mp4", num_frames=6, fps=6, seed=i, noise=True)
    store = tmp_path / "store"
    assert extract(ExtractOptions(videos=videos, store=store, encoders=ENCODERS[:1], workers=0, shard_videos=2)).exit_code == 0
    first = sorted((store / SEGMENTS_DIR).iterdir())[0]
    (first / VIDEOS_FILE).write_bytes((first / VIDEOS_FILE).read_bytes()[:40])  # truncated
    report = verify(store)
    assert not report.sound and any(VIDEOS_FILE in p.where and "cannot be read" in p.what for p in report.problems)
    report = verify(store, repair=True)
    assert report.sound and report.repaired
    assert (store / ".quarantine" / first.name / FRAMES_DIR).is_dir()  # set aside whole
    again = extract(ExtractOptions(videos=videos, store=store, encoders=ENCODERS[:1], workers=0))
    assert len(again.ok) == 2 and again.up_to_date == 2


def test_verify_refuses_a_folder_that_is_not_a_store(tmp_path):
    code, output = run_cli("verify", tmp_path)
    assert code == 2 and "not an alex store" in output
