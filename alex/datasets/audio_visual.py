"""Audio-visual toy set: a tone you can only hear and a colour you can only see.

Each video carries two independent class variables. ``tone`` (low / mid / high) lives only in
the audio: a sine of equal amplitude at 220, 1100 or 5500 Hz with a little noise. ``colour``
(red / green / blue) lives only in the picture: a large filled square of that colour drifting a
little over a noisy grey background. The picture is drawn from its own random stream (seed,
video index) and never sees the tone; the audio likewise never sees the colour, so one modality
says nothing about the other task.

Laid out like CREMA-D (``VideoFlash/*.flv`` next to ``AudioWAV/*.wav``)::

    root/videos/av_000.flv     h264 video + AAC audio in an FLV container (PyAV writes FLV here)
    root/audio/av_000.wav      16-bit PCM mono WAV at ``audio_rate`` (with ``separate_audio``)
    root/labels_tone.csv       video_id,label
    root/labels_colour.csv     video_id,label

``container_audio`` picks the container's audio stream: ``"same"`` (the tone), ``"silent"``
(a track of zeros) or ``"none"`` (no audio stream at all). The AAC track is encoded mono, but
FFmpeg's decoder reports the FLV track as stereo (two near-identical channels): downmix it.
A seed gives byte-identical files (x264 runs on one thread without macroblock-tree rate control).
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alex.datasets.write import write_video

TONES = {"low": 220.0, "mid": 1100.0, "high": 5500.0}  # Hz
COLOURS = {"red": (200, 40, 40), "green": (40, 180, 40), "blue": (40, 40, 200)}  # RGB
CONTAINER_AUDIO = ("same", "none", "silent")
AMPLITUDE = 0.3
SOUNDS = ("tone", "buzz")
BUZZ_HZ = 100.0  # a buzzer switched on and off 100 times a second
BUZZ_DUTY = {"low": 0.05, "mid": 0.5, "high": 0.95}  # the fraction of each cycle it is on
BUZZ_LEVEL = 0.6
AUDIO_NOISE = 0.01  # standard deviation, against the tone's amplitude of 0.3
GREY, PICTURE_NOISE = 120, 12.0


@dataclass
class AudioVisualItem:
    video_id: str
    tone: str
    colour: str


@dataclass
class AudioVisualSet:
    videos: Path
    audio_dir: Path | None
    labels_tone: Path
    labels_colour: Path
    items: list[AudioVisualItem]


def _labels(num_videos: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    """Balanced, independent (tone, colour) pairs: a Latin-square order of the 9 combinations,
    so every run of 3 holds each tone and each colour once and every run of 9 each pair once."""
    tones, colours = list(TONES), list(COLOURS)
    tone_order, colour_order = rng.permutation(3), rng.permutation(3)
    pairs = [(tones[tone_order[k % 3]], colours[colour_order[(k % 3 + k // 3) % 3]]) for k in range(9)]
    labels = [pairs[n % 9] for n in range(num_videos)]
    return [labels[i] for i in rng.permutation(num_videos)]


def _picture(colour: str, rng: np.random.Generator, frames: int, size: int) -> list[np.ndarray]:
    """A filled square of ``colour`` (half the canvas wide) drifting in a straight line."""
    side = size // 2
    room = size - side
    velocity = rng.uniform(-0.5, 0.5, size=2)
    velocity *= min(1.0, room / (np.abs(velocity).max() * max(frames - 1, 1) + 1e-9))
    travel = velocity * (frames - 1)
    low, high = np.maximum(0, -travel), np.minimum(room, room - travel)
    start = rng.uniform(low, high)
    rgb = np.array(COLOURS[colour], dtype=np.float32)
    out = []
    for t in range(frames):
        canvas = np.full((size, size, 3), GREY, dtype=np.float32)
        x, y = np.clip(np.round(start + velocity * t).astype(int), 0, room)
        canvas[y : y + side, x : x + side] = rgb
        canvas += rng.normal(0.0, PICTURE_NOISE, size=(size, size, 1))  # grey noise, all channels
        out.append(canvas.clip(0, 255).astype(np.uint8))
    return out


def _sound(tone: str, rng: np.random.Generator, samples: int, rate: int, kind: str = "tone") -> np.ndarray:
    t = np.arange(samples) / rate
    if kind == "buzz":  # a unipolar pulse train: its duty cycle sets how much of the time it sounds
        on = ((t + rng.uniform(0, 1 / BUZZ_HZ)) * BUZZ_HZ) % 1.0 < BUZZ_DUTY[tone]
        signal = BUZZ_LEVEL * on + rng.normal(0.0, AUDIO_NOISE, size=samples)
        return signal.clip(-1, 1).astype(np.float32)
    signal = AMPLITUDE * np.sin(2 * np.pi * TONES[tone] * t + rng.uniform(0, 2 * np.pi))
    signal += rng.normal(0.0, AUDIO_NOISE, size=samples)
    return signal.clip(-1, 1).astype(np.float32)


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> Path:
    """A mono float signal in [-1, 1] as 16-bit PCM WAV."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (np.clip(samples, -1, 1) * 32767).round().astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return path


def make_audio_visual(
    root: str | Path,
    num_videos: int = 48,
    seed: int = 0,
    seconds: float = 1.2,
    fps: int = 25,
    size: int = 64,
    audio_rate: int = 16000,
    separate_audio: bool = True,
    container_audio: str = "same",
    sound: str = "tone",
) -> AudioVisualSet:
    """Write ``num_videos`` FLV videos (plus WAVs with ``separate_audio``) and both label files.

    Each tone and each colour occurs equally often when ``num_videos`` is a multiple of 3, and
    every (tone, colour) pair equally often when it is a multiple of 9. Deterministic per seed.

    ``sound="buzz"`` carries the audio class in a buzzer's duty cycle instead of a tone's pitch
    (on 5, 50 or 95 % of each 10 ms cycle): a cue in the waveform's level over time, which a small
    randomly initialised model can pick up from raw samples, where pitch (a zero-mean waveform)
    needs second-order features it does not learn in a few epochs (see BENCHMARKS.md)."""
    if sound not in SOUNDS:
        raise ValueError(f"sound must be one of {SOUNDS}, not {sound!r}")
    if container_audio not in CONTAINER_AUDIO:
        raise ValueError(f"container_audio must be one of {CONTAINER_AUDIO}, not {container_audio!r}")
    if audio_rate <= 2 * max(TONES.values()):
        raise ValueError(f"audio_rate {audio_rate} Hz cannot carry a {max(TONES.values())} Hz tone")
    root = Path(root)
    video_dir = root / "videos"
    audio_dir = root / "audio" if separate_audio else None
    frames, samples = max(1, round(seconds * fps)), round(seconds * audio_rate)
    width = max(3, len(str(num_videos - 1)))
    items: list[AudioVisualItem] = []
    for n, (tone, colour) in enumerate(_labels(num_videos, np.random.default_rng(seed))):
        stem = f"av_{n:0{width}d}"
        picture = _picture(colour, np.random.default_rng([seed, n, 0]), frames, size)
        audio = _sound(tone, np.random.default_rng([seed, n, 1]), samples, audio_rate, sound)
        in_container = {"same": audio, "silent": np.zeros_like(audio), "none": None}[container_audio]
        write_video(
            video_dir / f"{stem}.flv", picture, fps=fps, audio=in_container, audio_rate=audio_rate,
            container_format="flv",
        )
        if audio_dir is not None:
            write_wav(audio_dir / f"{stem}.wav", audio, audio_rate)
        items.append(AudioVisualItem(f"{stem}.flv", tone, colour))
    labels_tone, labels_colour = root / "labels_tone.csv", root / "labels_colour.csv"
    labels_tone.write_text("video_id,label\n" + "".join(f"{i.video_id},{i.tone}\n" for i in items))
    labels_colour.write_text("video_id,label\n" + "".join(f"{i.video_id},{i.colour}\n" for i in items))
    return AudioVisualSet(video_dir, audio_dir, labels_tone, labels_colour, items)


def main() -> None:
    """``python -m alex.datasets.audio_visual OUT [--num-videos N] [--sound tone|buzz]``."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--num-videos", "--videos", dest="videos", type=int, default=48,
                        help="how many videos (--videos is the old spelling)")
    parser.add_argument("--sound", choices=SOUNDS, default="tone", help="what the audio track carries")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same bytes")
    args = parser.parse_args()
    data = make_audio_visual(args.out, num_videos=args.videos, seed=args.seed, sound=args.sound)
    print(f"{len(data.items)} videos in {data.videos}, audio in {data.audio_dir}, labels {data.labels_tone} and {data.labels_colour}")


if __name__ == "__main__":
    main()
