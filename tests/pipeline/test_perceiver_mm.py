"""perceiver-mm extraction: the multimodal Perceiver's inputs cached per clip, at the model's frame
rate, on the store's one timeline; audio from the container or from --audio-dir files."""

import dataclasses
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from alex.cli import app
from alex.datasets.audio_visual import write_wav
from alex.datasets.write import tone, write_video
from alex.multimodal_perceiver import ClipGeometry
from alex.pipeline.extract import ExtractOptions, extract
from alex.store.reader import open_store

RATE = 48000  # the tiny model's audio rate: 25 frames/s x 1920 samples per frame
TONE_HZ, AMPLITUDE = 440.0, 0.3


def grey_video(path, frames=30, audio=None, audio_rate=16000):
    """Frame i is uniformly grey at level 8 * i: a clip's content says which frames it holds."""
    images = [np.full((48, 64, 3), 8 * i, np.uint8) for i in range(frames)]
    return write_video(path, images, fps=25, audio=audio, audio_rate=audio_rate)


def arrays(store, encoder, video_id):
    with open_store(store) as s:
        path, group = s.array_location(video_id, encoder)
    with h5py.File(path) as h5:
        g = h5[group]
        return {name: (g[name][()], g[name].chunks) for name in g}


def test_published_config_gives_the_seed_clip():
    from transformers import PerceiverConfig

    published = PerceiverConfig(d_model=704, num_latents=784, d_latents=512, num_labels=700, num_frames=16,
                                audio_samples_per_frame=1920, samples_per_patch=16, image_size=224,
                                output_shape=[1, 16, 224, 224], output_num_channels=512)
    geometry = ClipGeometry.of(published)
    assert (geometry.num_frames, geometry.image_size, geometry.audio_samples, geometry.audio_rate) == (16, 224, 30720, 48000)
    assert geometry.audio_samples / geometry.audio_rate == pytest.approx(16 / 25)  # 0.64 s: 16 frames at 25 fps


def test_clips_hold_the_models_frames_and_audio_on_the_stores_clock(tmp_path):
    videos, audio = tmp_path / "videos", tmp_path / "audio"
    grey_video(videos / "grey.mp4")  # no audio track in the container
    t = np.arange(int(1.2 * 16000)) / 16000
    write_wav(audio / "grey.wav", (AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32), 16000)
    report = extract(ExtractOptions(videos=videos, store=tmp_path / "s", encoders=["perceiver-mm:tiny@random", "pixels"],
                                    fps=1.0, workers=0, audio_dir=audio))
    assert report.exit_code == 0, report.failed
    got = arrays(tmp_path / "s", "perceiver-mm", "grey.mp4")
    image, image_chunks = got["image"]
    samples, _ = got["audio"]
    # 30 frames at 25 fps -> clips of 4 frames back to back: 7 full clips and a last one padded by 2
    assert image.shape == (8, 4, 32, 32, 3) and image.dtype == np.uint8 and image_chunks == (1, 4, 32, 32, 3)
    assert samples.shape == (8, 7680) and samples.dtype == np.float32
    levels = image.reshape(8, 4, -1).mean(-1)  # (clips, frames)
    expected = 8 * np.minimum(np.arange(32).reshape(8, 4), 29)  # frame 4k+j, the last frame repeated
    assert np.abs(levels - expected).max() < 4  # h264 is lossy by a level or two
    t_start = got["t_start"][0]
    np.testing.assert_allclose(t_start, np.arange(8) * 4 / 25)
    np.testing.assert_allclose(got["frame_t_start"][0][1], [0.16, 0.2, 0.24, 0.28])
    # Each clip's audio starts at its first frame's time: the 440 Hz tone, resampled to 48 kHz.
    for k, start in enumerate(t_start):
        n = np.arange(7680)
        inside = start + n / RATE < 1.2 - 0.01  # the WAV lasts 1.2 s; after it, silence
        reference = AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * (start + n / RATE))
        assert np.abs(samples[k][inside] - reference[inside]).max() < 0.02
        assert np.abs(samples[k][start + n / RATE > 1.2 + 0.01]).max(initial=0) < 1e-3
    with open_store(tmp_path / "s") as s:
        config = s.encoders["perceiver-mm"]
        assert config["sampling"]["fps"] == 25.0 and config["sampling"]["clip_frames"] == 4
        assert config["preprocessing"]["audio_rate"] == RATE and config["array_dtypes"] == {"image": "uint8", "audio": "float32"}
        pixels = s.con.execute("SELECT t_start FROM frames WHERE encoder = 'pixels' ORDER BY index").fetchall()
        assert [round(t, 6) for (t,) in pixels] == [0.0, 1.0]  # the run's --fps 1 still holds for pixels
        summary = s.con.execute("SELECT embedding FROM frames WHERE encoder = 'perceiver-mm' AND index = 1").fetchall()[0][0]
        assert summary[3] == pytest.approx(20 * np.log10(AMPLITUDE / np.sqrt(2)), abs=0.2)  # the tone's RMS in dBFS
        row = s.con.execute("SELECT has_audio, audio_source, audio_path FROM videos").fetchall()[0]
        assert row == (False, "file", str((audio / "grey.wav").resolve()))
    from alex.store.summary import summarize

    sampling = {e["name"]: e["sampling"] for e in summarize(tmp_path / "s")["encoders"]}
    assert sampling == {"perceiver-mm": "25 fps, clips of 4 every 4", "pixels": "1 fps"}  # what `alex info` shows


def test_audio_dir_failures_fail_only_the_audio_encoders(tmp_path):
    videos, audio = tmp_path / "videos", tmp_path / "audio"
    for name in ("paired", "unpaired", "garbled"):
        grey_video(videos / f"{name}.mp4", frames=25)
    write_wav(audio / "paired.wav", tone(1.0, 440, 16000), 16000)
    (audio / "garbled.wav").write_bytes(b"RIFF this is not audio at all" * 10)
    store = tmp_path / "s"
    result = CliRunner().invoke(app, ["extract", "--videos", str(videos), "--store", str(store), "--audio-dir", str(audio),
                                      "-e", "pixels", "-e", "audio:tiny", "-e", "perceiver-mm:tiny@random", "--workers", "0", "-q"])
    assert result.exit_code == 1, result.output
    with open_store(store) as s:
        status = dict(s.con.execute("SELECT video_id, status FROM videos").fetchall())
        assert status == {"paired.mp4": "ok", "unpaired.mp4": "ok", "garbled.mp4": "ok"}
        items = {(v, e): err for v, e, err in s.con.execute("SELECT video_id, encoder, error FROM _item_errors").fetchall()}
        assert set(items) == {(v, e) for v in ("unpaired.mp4", "garbled.mp4") for e in ("audio", "perceiver-mm")}
        unpaired = items[("unpaired.mp4", "audio")]
        assert str(videos / "unpaired.mp4") in unpaired and str(audio / "unpaired") in unpaired
        garbled = items[("garbled.mp4", "perceiver-mm")]
        assert str(audio / "garbled.wav") in garbled and str(videos / "garbled.mp4") in garbled and "not a readable audio" in garbled
        counts = dict(s.con.execute("SELECT encoder, count(DISTINCT video_id) FROM frames GROUP BY encoder").fetchall())
        assert counts == {"pixels": 3, "audio": 1, "perceiver-mm": 1}
    # Not retried by default; with the file in place, --retry-errors extracts just what failed.
    write_wav(audio / "unpaired.wav", tone(1.0, 440, 16000), 16000)
    again = CliRunner().invoke(app, ["extract", "--videos", str(videos), "--store", str(store), "--audio-dir", str(audio),
                                     "-e", "pixels", "-e", "audio:tiny", "-e", "perceiver-mm:tiny@random", "--workers", "0",
                                     "-q", "--retry-errors"])
    assert again.exit_code == 1  # garbled.wav still fails
    with open_store(store) as s:
        counts = dict(s.con.execute("SELECT encoder, count(DISTINCT video_id) FROM frames GROUP BY encoder").fetchall())
        assert counts == {"pixels": 3, "audio": 2, "perceiver-mm": 2}


def test_container_audio_stays_the_default_and_a_silent_video_is_no_audio_until_paired(tmp_path):
    videos, audio = tmp_path / "videos", tmp_path / "audio"
    grey_video(videos / "loud.mp4", audio=tone(1.2, 440, 16000))
    grey_video(videos / "mute.mp4")
    options = ExtractOptions(videos=videos, store=tmp_path / "s", encoders=["perceiver-mm:tiny@random"], workers=0)
    report = extract(options)
    assert report.exit_code == 0 and report.failed == []  # no audio track: not a failure
    assert sorted(report.ok) == ["loud.mp4", "mute.mp4"] and report.no_audio == [("mute.mp4", "perceiver-mm")]
    with open_store(tmp_path / "s") as s:
        rows = {v: rest for v, *rest in s.con.execute("SELECT video_id, audio_source, status, no_audio FROM videos").fetchall()}
        assert rows == {"loud.mp4": ["container", "ok", []], "mute.mp4": [None, "ok", ["perceiver-mm"]]}
        assert s.con.execute("SELECT count(*) FROM frames WHERE video_id = 'mute.mp4'").fetchall() == [(0,)]
    # Done: not extracted again, even with --retry-errors ...
    for retry in (False, True):
        again = extract(dataclasses.replace(options, retry_errors=retry))
        assert (again.frames, again.up_to_date, again.exit_code) == (0, 2, 0)
    # ... until a run pairs the videos with audio files: then the silent video gets its clips.
    write_wav(audio / "mute.wav", tone(1.2, 440, 16000), 16000)
    paired = extract(dataclasses.replace(options, audio_dir=audio))
    assert paired.ok == ["mute.mp4"] and paired.no_audio == [] and paired.exit_code == 0
    with open_store(tmp_path / "s") as s:
        assert s.con.execute("SELECT no_audio, audio_source FROM videos WHERE video_id = 'mute.mp4'").fetchall() == [([], "file")]
        assert s.con.execute("SELECT count(*) FROM frames WHERE video_id = 'mute.mp4'").fetchall() == [(8,)]


def test_clip_frames_other_than_the_models_are_refused(tmp_path):
    grey_video(tmp_path / "v" / "a.mp4", frames=10)
    result = CliRunner().invoke(app, ["extract", "--videos", str(tmp_path / "v"), "--store", str(tmp_path / "s"),
                                      "-e", "perceiver-mm:tiny@random", "--clip-frames", "8"])
    assert result.exit_code == 2 and "exactly 4 frames" in result.output
    assert not (tmp_path / "s").exists()


def test_a_hub_model_offline_fails_fast_and_says_what_it_looked_for(tmp_path):
    grey_video(tmp_path / "v" / "a.mp4", frames=10)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    result = subprocess.run([sys.executable, "-m", "alex", "extract", "--videos", str(tmp_path / "v"), "--store",
                             str(tmp_path / "s"), "-e", "perceiver-mm"], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2
    assert "deepmind/multimodal-perceiver/config.json" in result.stdout + result.stderr
    assert not (tmp_path / "s" / "store.json").exists() or not json.loads((tmp_path / "s" / "store.json").read_text())["encoders"]


def tone_at(times):
    return AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * times)


def test_overlapping_clips_of_a_30_fps_video_keep_all_their_audio(tmp_path):
    """Clips every 2 frames (overlapping) of a 30 fps video: each clip's audio is the tone from its
    first frame's time, with no samples dropped at its start."""
    videos, audio = tmp_path / "videos", tmp_path / "audio"
    write_video(videos / "v.mp4", [np.full((32, 32, 3), 100, np.uint8)] * 45, fps=30)
    write_wav(audio / "v.wav", tone_at(np.arange(int(1.5 * 16000)) / 16000).astype(np.float32), 16000)
    report = extract(ExtractOptions(videos=videos, store=tmp_path / "s", encoders=["perceiver-mm:tiny@random"],
                                    workers=0, audio_dir=audio, clip_stride=2))
    assert report.exit_code == 0, report.failed
    got = arrays(tmp_path / "s", "perceiver-mm", "v.mp4")
    samples, t_start = got["audio"][0], got["t_start"][0]
    assert len(t_start) >= 8 and np.all(np.diff(t_start) > 0)
    n = np.arange(7680)
    for k, start in enumerate(t_start):
        inside = start + n / RATE < 1.5 - 0.01
        assert np.abs(samples[k][inside] - tone_at(start + n / RATE)[inside]).max() < 0.02, k


def test_external_audio_starts_at_the_videos_first_frame(tmp_path):
    """A video whose first frame is shown at 0.5 s: the WAV's sample 0 is that moment."""
    videos, audio = tmp_path / "videos", tmp_path / "audio"
    times = [0.5 + i / 25 for i in range(25)]
    write_video(videos / "late.mp4", [np.full((32, 32, 3), 100, np.uint8)] * 25, fps=25, times=times)
    write_wav(audio / "late.wav", tone_at(np.arange(16000) / 16000).astype(np.float32), 16000)
    extract(ExtractOptions(videos=videos, store=tmp_path / "s", encoders=["perceiver-mm:tiny@random"], workers=0,
                           audio_dir=audio))
    got = arrays(tmp_path / "s", "perceiver-mm", "late.mp4")
    assert got["t_start"][0][0] == pytest.approx(0.5)
    first = got["audio"][0][0]
    np.testing.assert_allclose(first[:3000], tone_at(np.arange(3000) / RATE), atol=0.02)


def test_audio_that_ends_early_gives_silence_without_holding_clips():
    from alex.pipeline.encoders.transforms import ResizeCrop
    from alex.pipeline.steps import StepSpec

    spec = StepSpec("avclip", transform=ResizeCrop(8, "box", "squash"), clip_frames=4, stride=4, rate=RATE, audio_samples=7680)
    builder = spec.build(1 / 25)
    frame = np.zeros((16, 16, 3), np.uint8)
    steps = builder.feed_audio(np.full(RATE, 0.5, np.float32), 0.0)  # one second of audio, then nothing
    held = 0
    for i in range(25 * 60):  # a minute of video
        steps += builder.feed(i, i / 25, (i + 1) / 25, frame)
        held = max(held, len(builder._waiting))
    steps += builder.finish()
    assert held <= 6 * 25 / 4 + 2  # clips wait at most the lag (5 s) for audio, not the whole video
    assert len(steps) == 25 * 60 // 4 and [s.index for s in steps] == list(range(len(steps)))
    assert steps[0].data["audio"].min() == 0.5 and np.abs(steps[-1].data["audio"]).max() == 0.0


def test_a_rerun_that_reads_no_audio_keeps_the_audio_source(tmp_path):
    videos, audio = tmp_path / "videos", tmp_path / "audio"
    grey_video(videos / "v.mp4", frames=25)
    write_wav(audio / "v.wav", tone(1.0, 440, 16000), 16000)
    extract(ExtractOptions(videos=videos, store=tmp_path / "s", encoders=["audio:tiny"], workers=0, audio_dir=audio))
    extract(ExtractOptions(videos=videos, store=tmp_path / "s", encoders=["audio:tiny", "pixels"], workers=0))
    with open_store(tmp_path / "s") as s:
        assert s.con.execute("SELECT audio_source, audio_path FROM videos").fetchall() == [("file", str((audio / "v.wav").resolve()))]
        assert s.con.execute("SELECT count(DISTINCT encoder) FROM frames").fetchall() == [(2,)]


def test_a_local_model_folder_serves_extraction_and_training(tmp_path):
    import torch
    from transformers import PerceiverForMultimodalAutoencoding

    from alex.multimodal_perceiver import tiny_config

    torch.manual_seed(0)
    PerceiverForMultimodalAutoencoding(tiny_config()).save_pretrained(tmp_path / "pretrained")
    videos = tmp_path / "videos"
    for i in range(6):
        write_video(videos / f"v{i}.mp4", [np.full((32, 32, 3), 40 * i, np.uint8)] * 10, fps=25, audio=tone(0.4, 440, 16000))
    runner = CliRunner()
    result = runner.invoke(app, ["extract", "--videos", str(videos), "--store", str(tmp_path / "s"), "-e",
                                 f"perceiver-mm:{tmp_path / 'pretrained'}", "--workers", "0", "-q"])
    assert result.exit_code == 0, result.output
    labels = tmp_path / "labels.csv"
    labels.write_text("video_id,label,split\n" + "".join(
        f"v{i}.mp4,{'ab'[i % 2]},{['train', 'train', 'validation', 'validation', 'test', 'test'][i]}\n" for i in range(6)))
    result = runner.invoke(app, ["train", "--head", "perceiver-mm", "--model", str(tmp_path / "pretrained"), "--store",
                                 str(tmp_path / "s"), "--labels", str(labels), "-o", str(tmp_path / "run"), "--epochs", "1", "-q"])
    assert result.exit_code == 0, result.output
    again = runner.invoke(app, ["train", "--head", "perceiver-mm", "--model", str(tmp_path / "run"), "--store",
                                str(tmp_path / "s"), "--labels", str(labels), "-o", str(tmp_path / "run2"), "-q"])
    assert again.exit_code == 2 and "PerceiverForMultimodalAutoencoding" in again.output


def test_an_audio_file_that_breaks_mid_way_fails_only_the_audio_encoders(tmp_path):
    import av

    videos, audio = tmp_path / "videos", tmp_path / "audio"
    grey_video(videos / "v.mp4", frames=30)
    audio.mkdir()
    container = av.open(str(audio / "v.flac"), "w")
    stream = container.add_stream("flac", rate=16000)
    samples = tone(2.0, 440, 16000)
    for start in range(0, len(samples), 1024):
        frame = av.AudioFrame.from_ndarray(samples[None, start : start + 1024], format="flt", layout="mono")
        frame.sample_rate, frame.pts = 16000, start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    data = (audio / "v.flac").read_bytes()
    (audio / "v.flac").write_bytes(data[: len(data) // 2])  # cut mid-stream: FFmpeg fails about 1 s in
    report = extract(ExtractOptions(videos=videos, store=tmp_path / "s", encoders=["pixels", "perceiver-mm:tiny@random"],
                                    workers=0, audio_dir=audio))
    assert report.ok == ["v.mp4"] and len(report.failed) == 1
    reason = report.failed[0][1]
    assert reason.startswith("perceiver-mm: audio file") and "decoding failed" in reason and str(videos / "v.mp4") in reason
    with open_store(tmp_path / "s") as s:
        assert s.con.execute("SELECT encoder, count(*) FROM frames GROUP BY encoder").fetchall() == [("pixels", 2)]
