"""What the first review found: crashes of decode workers, failures inside interleaved batches,
floating-point targets, edit lists, truncated files, NaN scores, encoders failing on good videos."""

import os
import signal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

import alex
from alex.errors import UsageError
from alex.pipeline.extract import ExtractOptions, extract
from alex.pipeline.listing import list_videos
from alex.pipeline.sampling import Sampling, fps_targets, sample_stream
from alex.pipeline.workers import DecodeTask, ProcessDecoder
from alex.pipeline.encoders.transforms import ResizeCrop
from alex.pipeline.steps import StepSpec
from tests.fixtures.videos import make_video


def run(videos, store, **kwargs):
    options = dict(videos=Path(videos), store=Path(store), encoders=["pixels"], workers=0, batch_size=8)
    options.update(kwargs)
    return extract(ExtractOptions(**options))


def test_a_killed_decode_worker_fails_only_its_video(tmp_path):
    paths = [make_video(tmp_path / f"v{i}.mp4", num_frames=300, fps=30, seed=i, noise=True) for i in range(3)]
    tasks = [DecodeTask(i, str(p), {"pixels": StepSpec("frame", transform=ResizeCrop(8, "box", "squash"))}, Sampling(fps=30.0))
             for i, p in enumerate(paths)]
    decoder = ProcessDecoder(tasks, workers=2)
    signal.alarm(120)  # a hang fails the test instead of blocking the suite
    try:
        outcome, victim = {}, None
        for message in decoder.messages():
            if message is None:
                continue
            kind, task_id = message[0], message[1]
            if kind == "start" and victim is None:
                victim = (task_id, message[2])
            elif kind == "steps" and victim and task_id == victim[0] and victim[1]:
                os.kill(victim[1], signal.SIGKILL)
                victim = (victim[0], None)
            elif kind in ("done", "error"):
                outcome[task_id] = message
    finally:
        signal.alarm(0)
        decoder.close()
    assert outcome[victim[0]][0] == "error" and "died" in outcome[victim[0]][2]
    assert sorted(t for t, m in outcome.items() if m[0] == "done") == sorted(set(range(3)) - {victim[0]})


def test_each_worker_gets_a_video_before_any_gets_two(tmp_path):
    paths = [make_video(tmp_path / f"v{i}.mp4", num_frames=10, fps=10) for i in range(4)]
    tasks = [DecodeTask(i, str(p), {}, Sampling()) for i, p in enumerate(paths)]
    decoder = ProcessDecoder(tasks, workers=4)
    try:
        starts = {m[1]: m[2] for m in decoder.messages() if m is not None and m[0] == "start"}
    finally:
        decoder.close()
    assert len(set(starts.values())) == 4


def test_nan_in_an_interleaved_batch_fails_only_that_video(tmp_path, monkeypatch):
    from alex.pipeline.encoders.pixels import PixelsEncoder

    for i in range(3):
        make_video(tmp_path / "v" / f"grey{i}.mp4", num_frames=60, fps=10, seed=i, noise=True)
    from alex.datasets.write import write_video

    write_video(tmp_path / "v" / "white.mp4", [np.full((48, 64, 3), 255, np.uint8)] * 60, fps=10)
    original = PixelsEncoder.encode

    def poisoned(self, batch):  # NaN for white frames only, wherever they sit in the batch
        out = original(self, batch)
        out[out.mean(dim=1) > 0.95] = float("nan")
        return out

    monkeypatch.setattr(PixelsEncoder, "encode", poisoned)
    report = run(tmp_path / "v", tmp_path / "s", workers=2, batch_size=64, fps=10.0)
    assert [v for v, _ in report.failed] == ["white.mp4"] and sorted(report.ok) == ["grey0.mp4", "grey1.mp4", "grey2.mp4"]
    with alex.open_store(tmp_path / "s") as s:
        assert s.sql("SELECT count(*) FROM frames").fetchall() == [(180,)]


def test_float_targets_never_pick_the_previous_frame():
    times = [float(Fraction(35 + i, 25)) for i in range(200)]  # 25 fps starting at 1.4 s
    samples = list(sample_stream([(t, 0.04, i) for i, t in enumerate(times)], lambda first: fps_targets(first, 25.0)))
    assert [s.payload for s in samples] == list(range(200))
    samples = list(sample_stream([(t, 0.04, i) for i, t in enumerate(times)], lambda first: fps_targets(first, 5.0)))
    assert [s.payload for s in samples] == list(range(0, 200, 5))


def test_transport_stream_with_a_late_first_frame(tmp_path):
    make_video(tmp_path / "v" / "clip.ts", num_frames=100, fps=25, container_format="mpegts")
    run(tmp_path / "v", tmp_path / "s", fps=5.0)
    with alex.open_store(tmp_path / "s") as s:
        times = [t for (t,) in s.sql("SELECT t_start FROM frames ORDER BY index").fetchall()]
    assert times[0] > 0  # MPEG-TS starts its clock late
    assert np.allclose(np.diff(times), 0.2)  # every fifth frame: never the one before


def test_num_frames_skips_packets_an_edit_list_hides(tmp_path):
    make_video(tmp_path / "v" / "edit.mp4", times=[i / 10 - 0.3 for i in range(30)])
    run(tmp_path / "v", tmp_path / "s", fps=None, num_frames=5)
    with alex.open_store(tmp_path / "s") as s:
        times = [t for (t,) in s.sql("SELECT t_start FROM frames ORDER BY index").fetchall()]
    assert len(times) == 5 and times[0] == 0.0 and times[-1] == pytest.approx(2.6)


def test_a_truncated_matroska_file_is_an_error(tmp_path):
    whole = make_video(tmp_path / "whole.mkv", num_frames=60, fps=10, noise=True).read_bytes()
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "cut.mkv").write_bytes(whole[: len(whole) // 2])
    report = run(tmp_path / "v", tmp_path / "s")
    assert report.failed and "truncated" in report.failed[0][1]


def test_zero_vectors_do_not_top_a_search(tmp_path):
    from alex.datasets.write import write_video

    write_video(tmp_path / "v" / "black.mp4", [np.zeros((32, 32, 3), np.uint8)] * 10, fps=10)
    make_video(tmp_path / "v" / "grey.mp4", num_frames=10, fps=10)
    run(tmp_path / "v", tmp_path / "s")
    with alex.open_store(tmp_path / "s") as s:
        grey = s.arrays("grey.mp4", "pixels").embedding[0]
        hits = s.search(grey, "pixels", k=5).fetchall()
        assert hits and all(h[0] == "grey.mp4" for h in hits) and not any(np.isnan(h[4]) for h in hits)


def test_an_encoder_failing_on_a_good_video_keeps_its_other_features(tmp_path, monkeypatch):
    from alex.pipeline.encoders.clip import ClipEncoder

    make_video(tmp_path / "v" / "a.mp4", num_frames=30)
    make_video(tmp_path / "v" / "b.mp4", num_frames=30, seed=1, noise=True)
    run(tmp_path / "v", tmp_path / "s")
    original = ClipEncoder.encode

    def nan(self, batch):
        return torch.full_like(original(self, batch), float("nan"))

    monkeypatch.setattr(ClipEncoder, "encode", nan)
    report = run(tmp_path / "v", tmp_path / "s", encoders=["pixels", "clip:tiny@random"])
    assert report.exit_code == 1 and len(report.failed) == 2
    with alex.open_store(tmp_path / "s") as s:
        assert s.sql("SELECT count(*) FROM videos WHERE status = 'ok'").fetchall() == [(2,)]
        assert s.sql("SELECT encoder, count(*) FROM frames GROUP BY 1").fetchall() == [("pixels", 6)]
    again = run(tmp_path / "v", tmp_path / "s", encoders=["pixels", "clip:tiny@random"])
    assert again.frames == 0 and again.exit_code == 1 and all(r.startswith("clip: ") for _, r in again.failed_before)
    monkeypatch.setattr(ClipEncoder, "encode", original)
    retried = run(tmp_path / "v", tmp_path / "s", encoders=["pixels", "clip:tiny@random"], retry_errors=True)
    assert retried.exit_code == 0 and retried.frames == 6  # clip only
    with alex.open_store(tmp_path / "s") as s:
        assert s.sql("SELECT encoder, count(*) FROM frames GROUP BY 1 ORDER BY 1").fetchall() == [("clip", 6), ("pixels", 6)]


def test_option_edges_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="--fps"):
        Sampling(fps=float("inf"))
    with pytest.raises(UsageError, match="--num-frames"):
        run(tmp_path, tmp_path / "s", num_frames=0)
    with pytest.raises(UsageError, match="relative to --videos"):
        list_videos(tmp_path, globs=["/abs/*.mp4"])
