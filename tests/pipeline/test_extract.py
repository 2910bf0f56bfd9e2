import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import alex
from alex.errors import EncoderConflictError, UsageError
from alex.pipeline.extract import ExtractOptions, extract
from alex.store.layout import SEGMENTS_DIR, STORE_JSON
from tests.conftest import VFR_TIMES, make_bad_videos
from tests.fixtures.videos import level, make_video

ENCODERS = ["pixels", "clip:tiny@random"]


def run(videos, store, **kwargs):
    options = dict(videos=Path(videos), store=Path(store), encoders=ENCODERS, workers=0, batch_size=8)
    options.update(kwargs)
    return extract(ExtractOptions(**options))


def frame_levels(store, video_id):
    """Which test frame each pixels row holds, from its grey level."""
    arrays = alex.open_store(store).arrays(video_id, "pixels")
    return [int(round(float(row.mean()) * 255)) for row in arrays.embedding.astype(np.float32)]


def snapshot(store):
    """Everything a head would read: rows of both tables and every array."""
    with alex.open_store(store) as s:
        frames = s.sql("SELECT video_id, encoder, index, t_start, t_end, embedding FROM frames ORDER BY ALL").fetchall()
        videos = s.sql(
            "SELECT video_id, fingerprint, status, error, width, height, duration FROM videos ORDER BY video_id"
        ).fetchall()
        arrays = {
            (v, e): s.arrays(v, e) for v, e in s.sql("SELECT video_id, encoder FROM _items_live").fetchall()
        }
    return frames, videos, arrays


def test_extract_end_to_end_with_exact_variable_frame_rate_times(clips, tmp_path):
    report = run(clips, tmp_path / "s", workers=1)
    assert report.exit_code == 0 and not report.failed
    assert sorted(report.ok) == ["a.mp4", "b.mp4", "sub/c.mp4", "vfr.mp4"]
    with alex.open_store(tmp_path / "s") as s:
        times = [r[0] for r in s.sql(
            "SELECT t_start FROM frames WHERE video_id = 'vfr.mp4' AND encoder = 'clip' ORDER BY index").fetchall()]
        # fps 1: targets 0, 1, 2 -> latest frames at or before them, their own container times.
        assert times == [0.0, 1.0, 1.37]
        counts = dict(s.sql("SELECT video_id, count(*) FROM frames WHERE encoder = 'pixels' GROUP BY 1").fetchall())
        assert counts == {"a.mp4": 3, "b.mp4": 3, "sub/c.mp4": 2, "vfr.mp4": 3}
        assert s.sql("SELECT count(DISTINCT encoder) FROM frames").fetchall()[0][0] == 2
        row = s.sql("SELECT width, height, duration, fps, codec, has_audio, status FROM videos WHERE video_id='b.mp4'").fetchall()[0]
        assert row == (48, 32, pytest.approx(2.5), pytest.approx(10.0), "h264", False, "ok")
        config = json.loads((tmp_path / "s" / STORE_JSON).read_text())
        assert config["encoders"]["clip"]["spec"] == "clip:tiny@random"
        assert config["encoders"]["clip"]["sampling"] == {"fps": 1.0, "num_frames": None}
        assert config["encoders"]["clip"]["preprocessing"]["size"] == 32
        arrays = s.arrays("vfr.mp4", "clip")
        assert arrays.embedding.shape == (3, 32) and arrays.embedding.dtype == np.float16
        assert list(arrays.t_start) == [0.0, 1.0, 1.37]
        assert list(arrays.t_end) == [0.1, 1.37, 2.5]
    # The pixels show it is really those frames: indices 0, 4 and 5 of the written video.
    # (grey levels are 12 apart, lossy coding moves them by 1 or 2)
    assert np.allclose(frame_levels(tmp_path / "s", "vfr.mp4"), [level(0), level(4), level(5)], atol=3)
    assert VFR_TIMES[4] == 1.0 and VFR_TIMES[5] == 1.37


def test_num_frames_and_float32(clips, tmp_path):
    report = run(clips, tmp_path / "s", encoders=["pixels"], fps=None, num_frames=4, store_dtype="float32")
    assert report.exit_code == 0
    with alex.open_store(tmp_path / "s") as s:
        times = [r[0] for r in s.sql("SELECT t_start FROM frames WHERE video_id='a.mp4' ORDER BY index").fetchall()]
        assert times == pytest.approx([0.0, 0.9, 1.9, 2.9])  # even targets 0, .967, 1.933, 2.9 -> frames at or before
        assert s.arrays("a.mp4", "pixels").embedding.dtype == np.float32


def test_rotated_video_is_stored_upright(tmp_path):
    make_video(tmp_path / "v" / "rot.mp4", num_frames=10, width=64, height=48, rotation=-90, marker=True)
    run(tmp_path / "v", tmp_path / "s", encoders=["pixels:8"])
    with alex.open_store(tmp_path / "s") as s:
        assert s.sql("SELECT width, height, rotation FROM videos").fetchall()[0] == (48, 64, 270)
        thumb = s.arrays("rot.mp4", "pixels").embedding[0].astype(np.float32).reshape(8, 8, 3)
    assert thumb[0, -1, 0] > 0.9 and thumb[0, -1, 1] < 0.3  # red marker turned to the top right
    assert thumb[-1, 0, 0] < 0.5


def test_bad_inputs_become_error_rows_and_the_run_continues(clips, tmp_path):
    videos = tmp_path / "v"
    shutil.copytree(clips, videos)
    expected = make_bad_videos(videos)
    (videos / "folder.mp4").mkdir()
    (videos / "dangling.mp4").symlink_to(tmp_path / "missing.mp4")
    (videos / "notes.txt").write_text("not a candidate")
    report = run(videos, tmp_path / "s", workers=1)
    assert report.exit_code == 1
    assert sorted(report.ok) == ["a.mp4", "b.mp4", "sub/c.mp4", "vfr.mp4"]
    assert {v for v, _ in report.failed} == set(expected)
    assert sorted(report.skipped_files) == [("dangling.mp4", "broken link"), ("folder.mp4", "a directory")]
    with alex.open_store(tmp_path / "s") as s:
        rows = dict(s.sql("SELECT video_id, error FROM videos WHERE status = 'error'").fetchall())
        assert set(rows) == set(expected)
        for video_id, words in expected.items():
            assert words in rows[video_id]
        assert s.sql("SELECT count(*) FROM frames WHERE video_id IN (SELECT video_id FROM videos WHERE status='error')").fetchall()[0][0] == 0
    # A rerun skips them (still exit 1: they are still failed) and says how to retry.
    again = run(videos, tmp_path / "s")
    assert again.frames == 0 and again.exit_code == 1
    assert {v for v, _ in again.failed_before} == set(expected)
    # Fix one of them and retry errors: only the failed ones are tried.
    make_video(videos / "empty.mp4", num_frames=10)
    retried = run(videos, tmp_path / "s", retry_errors=True)
    assert "empty.mp4" in retried.ok and not set(retried.ok) & {"a.mp4", "b.mp4"}
    with alex.open_store(tmp_path / "s") as s:
        assert s.sql("SELECT status FROM videos WHERE video_id='empty.mp4'").fetchall()[0][0] == "ok"


def test_resume_encodes_nothing_and_leaves_the_store_untouched(clips, tmp_path):
    run(clips, tmp_path / "s")
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "s").rglob("*"))
    mtime = (tmp_path / "s" / STORE_JSON).stat().st_mtime_ns
    again = run(clips, tmp_path / "s")
    assert again.frames == 0 and again.up_to_date == 4 and not again.ok and again.exit_code == 0
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "s").rglob("*")) == before
    assert (tmp_path / "s" / STORE_JSON).stat().st_mtime_ns == mtime


def test_changed_file_is_reextracted_and_old_rows_disappear(clips, tmp_path):
    videos = tmp_path / "v"
    shutil.copytree(clips, videos)
    run(videos, tmp_path / "s")
    make_video(videos / "a.mp4", num_frames=50, fps=10)  # now 5 s long
    report = run(videos, tmp_path / "s")
    assert report.ok == ["a.mp4"] and report.up_to_date == 3
    with alex.open_store(tmp_path / "s") as s:
        assert s.sql("SELECT count(*) FROM frames WHERE video_id='a.mp4' AND encoder='pixels'").fetchall()[0][0] == 5
        assert s.sql("SELECT count(*) FROM videos").fetchall()[0][0] == 4
        assert s.arrays("a.mp4", "clip").embedding.shape[0] == 5


def test_new_encoder_extracts_only_that_encoder(clips, tmp_path):
    run(clips, tmp_path / "s", encoders=["pixels"])
    pixels_before = snapshot(tmp_path / "s")[2]
    report = run(clips, tmp_path / "s", encoders=["pixels", "clip:tiny@random"])
    assert sorted(report.ok) == ["a.mp4", "b.mp4", "sub/c.mp4", "vfr.mp4"]
    assert report.frames == 11  # clip frames only: pixels was not run again
    _, _, arrays = snapshot(tmp_path / "s")
    assert {e for _, e in arrays} == {"pixels", "clip"}
    for key, value in pixels_before.items():
        assert np.array_equal(arrays[key].embedding, value.embedding)


def test_reusing_a_name_with_other_weights_or_sampling_is_refused(clips, tmp_path):
    run(clips, tmp_path / "s", encoders=["clip:tiny@random"])
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "s").rglob("*")}
    with pytest.raises(EncoderConflictError) as info:
        run(clips, tmp_path / "s", encoders=["clip:tiny@random"], fps=2.0)
    assert "fps=1.0" in str(info.value) and "fps=2.0" in str(info.value) and "nothing was written" in str(info.value)
    weights = tmp_path / "tiny.pt"
    weights.write_bytes(b"checked before loading")
    with pytest.raises(EncoderConflictError, match="different weights"):
        run(clips, tmp_path / "s", encoders=[f"clip:tiny@{weights}"])
    with pytest.raises(EncoderConflictError, match="different model"):
        run(clips, tmp_path / "s", encoders=["clip:ViT-B-32@random"])
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "s").rglob("*")} == before
    # Under another name it is welcome.
    assert run(clips, tmp_path / "s", encoders=["clip2=clip:tiny@random"], fps=2.0).exit_code == 0


def test_duplicate_names_and_bad_options_are_usage_errors(clips, tmp_path):
    with pytest.raises(UsageError, match="twice"):
        run(clips, tmp_path / "s", encoders=["clip:tiny@random", "clip:tiny@random"])
    with pytest.raises(UsageError):
        run(clips, tmp_path / "s", dtype="int8")
    with pytest.raises(UsageError):
        run(tmp_path / "nope", tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_worker_processes_and_inline_decoding_give_the_same_store(clips, tmp_path):
    run(clips, tmp_path / "inline", workers=0)
    run(clips, tmp_path / "procs", workers=2, batch_size=3)
    a, b = snapshot(tmp_path / "inline"), snapshot(tmp_path / "procs")
    assert a[0] == b[0]
    assert [r[:4] for r in a[1]] == [r[:4] for r in b[1]]
    for key in a[2]:
        assert np.array_equal(a[2][key].embedding, b[2][key].embedding)


def test_a_batch_mixes_frames_of_several_videos(clips, tmp_path, monkeypatch):
    from alex.pipeline.encoders.pixels import PixelsEncoder

    sizes = []
    original = PixelsEncoder.encode

    def spy(self, batch):
        sizes.append(batch.shape[0])
        return original(self, batch)

    monkeypatch.setattr(PixelsEncoder, "encode", spy)
    run(clips, tmp_path / "s", encoders=["pixels"], batch_size=8, fps=2.0)
    # No video has more than 6 samples at 2 fps, yet full batches of 8 were encoded.
    assert max(sizes) == 8 and sum(sizes) == 6 + 5 + 4 + 6


def test_shards_commit_as_they_fill(clips, tmp_path):
    run(clips, tmp_path / "s", shard_videos=1)
    segments = list((tmp_path / "s" / SEGMENTS_DIR).iterdir())
    assert len(segments) == 4
    with alex.open_store(tmp_path / "s") as s:
        assert s.sql("SELECT count(*) FROM videos").fetchall()[0][0] == 4


def test_non_finite_features_are_refused(clips, tmp_path, monkeypatch):
    import torch

    from alex.pipeline.encoders.pixels import PixelsEncoder

    original = PixelsEncoder.encode

    def poisoned(self, batch):
        out = original(self, batch)
        return torch.full_like(out, float("nan")) if batch.shape[0] == 2 else out

    monkeypatch.setattr(PixelsEncoder, "encode", poisoned)
    report = run(clips / "sub", tmp_path / "s", encoders=["pixels"], batch_size=2)
    assert report.exit_code == 1 and "non-finite" in report.failed[0][1]
    with alex.open_store(tmp_path / "s") as s:
        assert s.sql("SELECT count(*) FROM frames").fetchall()[0][0] == 0


def test_several_encoders_share_one_decode_pass(clips, tmp_path, monkeypatch):
    import alex.pipeline.workers as workers

    opened = []
    original = workers.VideoReader

    class CountingReader(original):
        def __init__(self, path, *args, **kwargs):
            opened.append(path)
            super().__init__(path, *args, **kwargs)

    monkeypatch.setattr(workers, "VideoReader", CountingReader)
    report = run(clips, tmp_path / "s", encoders=["pixels", "clip:tiny@random", "p8=pixels:8"])
    assert report.exit_code == 0 and len(opened) == 4  # one decode per video, three encoders
