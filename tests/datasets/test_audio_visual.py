"""The audio-visual toy set, checked from the written files: decoded pixels, WAV spectra, CSVs."""

from __future__ import annotations

import csv
import itertools
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from alex.datasets.audio_visual import TONES, make_audio_visual

CHANNEL = {"red": 0, "green": 1, "blue": 2}


@pytest.fixture(scope="module")
def av_set(tmp_path_factory):
    return make_audio_visual(tmp_path_factory.mktemp("av"), num_videos=9, seed=3)


def read_labels(path: Path) -> dict[str, str]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and list(rows[0]) == ["video_id", "label"]
    return {row["video_id"]: row["label"] for row in rows}


def decoded_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def dominant_masks(image: np.ndarray, margin: int = 50) -> np.ndarray:
    """(3, H, W): where red, green or blue exceeds both other channels by ``margin``."""
    rgb = image.astype(int)
    return np.stack([(rgb[..., c] - np.delete(rgb, c, axis=2).max(axis=2)) > margin for c in range(3)])


def peak_hz(signal: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return float(np.fft.rfftfreq(len(signal), 1 / rate)[np.argmax(spectrum)])


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as f:
        assert (f.getnchannels(), f.getsampwidth()) == (1, 2)
        return np.frombuffer(f.readframes(f.getnframes()), dtype="<i2") / 32768.0, f.getframerate()


def test_layout_and_labels_balanced_and_independent(av_set):
    tones, colours = read_labels(av_set.labels_tone), read_labels(av_set.labels_colour)
    files = sorted(p.name for p in av_set.videos.iterdir())
    assert sorted(tones) == sorted(colours) == files == [f"av_{n:03d}.flv" for n in range(9)]
    assert sorted(p.name for p in av_set.audio_dir.iterdir()) == [f.replace(".flv", ".wav") for f in files]
    assert {(i.video_id, i.tone, i.colour) for i in av_set.items} == {(v, tones[v], colours[v]) for v in files}
    # Nine videos: each of the nine (tone, colour) pairs exactly once, so each label three times.
    assert sorted((tones[v], colours[v]) for v in files) == sorted(itertools.product(["low", "mid", "high"], CHANNEL))


def test_frames_show_the_labelled_colour(av_set):
    colours = read_labels(av_set.labels_colour)
    for video_id, colour in colours.items():
        frames = decoded_frames(av_set.videos / video_id)
        assert len(frames) == 30 and frames[0].shape == (64, 64, 3)
        for image in (frames[0], frames[len(frames) // 2], frames[-1]):
            counts = dominant_masks(image).sum(axis=(1, 2))
            assert int(np.argmax(counts)) == CHANNEL[colour], (video_id, counts)
            assert counts[CHANNEL[colour]] > 0.15 * 64 * 64  # a large square, not a few pixels
            assert counts.sum() - counts[CHANNEL[colour]] < 0.01 * 64 * 64


def test_square_moves(av_set):
    shifts = []
    for video_id, colour in read_labels(av_set.labels_colour).items():
        frames = decoded_frames(av_set.videos / video_id)
        centres = [np.argwhere(dominant_masks(f)[CHANNEL[colour]]).mean(axis=0) for f in (frames[0], frames[-1])]
        shifts.append(float(np.abs(centres[1] - centres[0]).max()))
    assert max(shifts) >= 2 and max(shifts) < 32


def test_wav_carries_the_labelled_pitch(av_set):
    tones = read_labels(av_set.labels_tone)
    peaks: dict[str, list[float]] = {}
    for video_id, label in tones.items():
        samples, rate = read_wav(av_set.audio_dir / video_id.replace(".flv", ".wav"))
        assert rate == 16000 and len(samples) == round(1.2 * 16000)
        assert 0.1 < np.abs(samples).max() < 1.0
        hz = peak_hz(samples, rate)
        assert abs(hz - TONES[label]) <= 0.03 * TONES[label], (video_id, label, hz)
        peaks.setdefault(label, []).append(hz)
    assert max(peaks["low"]) < min(peaks["mid"]) and max(peaks["mid"]) < min(peaks["high"])


def test_container_audio_same_carries_the_pitch(av_set):
    tones = read_labels(av_set.labels_tone)
    for video_id, label in list(tones.items())[:3]:
        with av.open(str(av_set.videos / video_id)) as container:
            assert container.format.name == "flv"
            assert container.streams.video[0].codec_context.name == "h264"
            assert container.streams.audio[0].codec_context.name == "aac"
            rate = container.streams.audio[0].rate
            # FFmpeg's AAC decoder may upmix mono to two channels: average them.
            samples = np.concatenate([f.to_ndarray().mean(axis=0) for f in container.decode(audio=0)])
        assert abs(peak_hz(samples, rate) - TONES[label]) <= 0.03 * TONES[label]


@pytest.mark.parametrize("mode", ["none", "silent"])
def test_container_audio_none_and_silent(tmp_path, mode):
    made = make_audio_visual(tmp_path, num_videos=3, seed=1, separate_audio=False, container_audio=mode)
    assert made.audio_dir is None and not (tmp_path / "audio").exists()
    for item in made.items:
        with av.open(str(made.videos / item.video_id)) as container:
            assert len(container.streams.video) == 1
            if mode == "none":
                assert len(container.streams.audio) == 0
            else:
                samples = np.concatenate([f.to_ndarray().ravel() for f in container.decode(audio=0)])
                assert len(samples) > 0 and np.abs(samples).max() < 1e-3


def test_bad_container_audio(tmp_path):
    with pytest.raises(ValueError, match="container_audio"):
        make_audio_visual(tmp_path, num_videos=3, container_audio="loud")


def test_deterministic_per_seed(tmp_path):
    a, b, c = (make_audio_visual(tmp_path / name, num_videos=3, seed=s) for name, s in (("a", 7), ("b", 7), ("c", 8)))
    assert a.labels_tone.read_text() == b.labels_tone.read_text()
    assert a.labels_colour.read_text() == b.labels_colour.read_text()
    for folder in ("videos", "audio"):
        files = [{p.name: p.read_bytes() for p in (made.labels_tone.parent / folder).iterdir()} for made in (a, b, c)]
        assert files[0] == files[1]  # byte-identical, the encoded videos included
        assert all(files[0][name] != files[2][name] for name in files[0])


def test_buzz_carries_the_class_in_its_duty_cycle(tmp_path):
    import wave

    data = make_audio_visual(tmp_path, num_videos=3, sound="buzz", separate_audio=True)
    for item in data.items:
        with wave.open(str(data.audio_dir / item.video_id.replace(".flv", ".wav"))) as handle:
            samples = np.frombuffer(handle.readframes(handle.getnframes()), dtype=np.int16) / 32768.0
        on = (samples > 0.3).mean()  # the buzzer sounds at 0.6, else noise around 0
        assert on == pytest.approx({"low": 0.05, "mid": 0.5, "high": 0.95}[item.tone], abs=0.03)
