"""Step builders: what one encoder makes of the sampled frames, inside the decode workers.

A *step* is one row of the ``frames`` table: a frame for per-frame encoders (``FrameSteps``), a
clip of consecutive sampled frames for video encoders (``ClipSteps``), a window of audio for
audio encoders (``AudioSteps``). Builders are picklable, use numpy only, hold only what their
next step needs (memory stays bounded on long videos), and put every step on the container's
clock (``t_start``/``t_end`` in seconds), so SQL can join the encoders of one moment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np


class StepsUnavailable(Exception):
    """An encoder cannot have its steps from this video (e.g. audio-visual clips of a video without
    audio): an ``error`` item for that encoder, the video's other encoders unaffected."""


@dataclass
class Step:
    index: int
    t_start: float
    t_end: float
    data: np.ndarray | dict[str, np.ndarray]  # what the encoder consumes: uint8 pixels, audio features, or several arrays
    padded: int = 0  # frames repeated to fill a clip past the end of the video
    frame_times: np.ndarray | None = None  # (clip_frames,) a clip's frames' own start times (repeats: the last's)


class FrameSteps:
    """One step per sampled frame: ``transform`` (H, W, 3) uint8 -> the encoder's input."""

    def __init__(self, transform: Callable[[np.ndarray], np.ndarray]):
        self.transform = transform

    def feed(self, index: int, t_start: float, t_end: float, rgb: np.ndarray) -> list[Step]:
        return [Step(index, t_start, t_end, self.transform(rgb))]

    def finish(self) -> list[Step]:
        return []


@dataclass
class ClipSteps:
    """Clips of ``clip_frames`` consecutive sampled frames, starting every ``stride`` frames,
    until a clip reaches the last frame. A clip that would run past the end of the video is
    completed by repeating its last frame, and ``padded`` says how many were repeated."""

    transform: Callable[[np.ndarray], np.ndarray]
    clip_frames: int
    stride: int
    _frames: list[tuple[int, float, float, np.ndarray]] = field(default_factory=list)
    _next_start: int = 0
    _count: int = 0
    _clips: int = 0
    _covered_to: int = -1

    def feed(self, index: int, t_start: float, t_end: float, rgb: np.ndarray) -> list[Step]:
        self._count = index + 1
        if index < self._next_start:
            return []  # between clips (a stride longer than a clip)
        self._frames.append((index, t_start, t_end, self.transform(rgb)))
        if index == self._next_start + self.clip_frames - 1:
            return [self._emit()]
        return []

    def _emit(self) -> Step:
        frames = self._frames[: self.clip_frames]
        padded = self.clip_frames - len(frames)
        data = np.stack([f[3] for f in frames] + [frames[-1][3]] * padded)  # (T, ...)
        times = np.array([f[1] for f in frames] + [frames[-1][1]] * padded, dtype=np.float64)  # (T,)
        step = Step(self._clips, frames[0][1], frames[-1][2], data, padded, times)
        self._clips += 1
        self._covered_to = frames[-1][0]
        self._next_start += self.stride
        self._frames = [f for f in self._frames if f[0] >= self._next_start]
        return step

    def finish(self) -> list[Step]:
        if self._count and (self._clips == 0 or self._covered_to < self._count - 1) and self._frames:
            return [self._emit()]
        return []


@dataclass
class AudioSteps:
    """One audio window per sampled step: the step's target time to the next target.

    Audio arrives through ``feed_audio`` (mono float32 at ``rate`` Hz with its start time);
    ``features`` turns a window of samples into the encoder's input (e.g. a log-mel
    spectrogram). Samples are kept only from the earliest window still open."""

    features: Callable[[np.ndarray], np.ndarray]
    rate: int
    window_s: float
    _windows: list[tuple[int, float]] = field(default_factory=list)  # (index, start) waiting for audio
    _last_start: float | None = None
    _buffer: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    _buffer_start: float = 0.0
    _audio_end: float = float("-inf")
    _seen_audio: bool = False
    silence_where_missing: bool = False  # a window the track does not reach: zeros, not no row (once audio was seen)
    keep_after: float | None = None  # no later window starts before this time (set by AVClipSteps)

    def feed(self, index: int, t_start: float, t_end: float, rgb: np.ndarray | None) -> list[Step]:
        self._windows.append((index, t_start))
        self._last_start = t_start
        return self._ready(final=False)

    def feed_audio(self, samples: np.ndarray, start: float) -> list[Step]:
        if not self._seen_audio:
            self._buffer_start, self._seen_audio = start, True
        elif abs(start - (self._buffer_start + len(self._buffer) / self.rate)) > 1.0 / self.rate:
            # a gap or an overlap in the audio timestamps: keep the clock, re-anchor the buffer
            gap = int(round((start - self._buffer_start) * self.rate)) - len(self._buffer)
            if gap > 0:
                self._buffer = np.concatenate([self._buffer, np.zeros(gap, np.float32)])
            elif gap < 0:
                samples = samples[-gap:]
        self._buffer = np.concatenate([self._buffer, samples.astype(np.float32)])
        self._audio_end = self._buffer_start + len(self._buffer) / self.rate
        return self._ready(final=False)

    def expire(self, before: float) -> list[Step]:
        """Windows that end before ``before`` without audio reaching them: the track ended early (a
        demuxer interleaves audio within about a second of the video), so they are settled now, as
        at the end of the video, instead of waiting."""
        return self._ready(final=False, settle_before=before)

    def _ready(self, final: bool, settle_before: float = float("-inf")) -> list[Step]:
        steps = []
        while self._windows:
            index, start = self._windows[0]
            end = start + self.window_s
            if not final and end > self._audio_end and end >= settle_before:
                break
            self._windows.pop(0)
            if not self._seen_audio or (start >= self._audio_end and not self.silence_where_missing):
                continue  # no audio at this moment: no row
            first = int(round((start - self._buffer_start) * self.rate))
            length = int(round(self.window_s * self.rate))
            window = self._buffer[max(0, first): max(0, first) + length]
            if first < 0:
                window = np.concatenate([np.zeros(-first, np.float32), window])[:length]
            if len(window) < length:  # the track ends inside the window: silence after it
                window = np.concatenate([window, np.zeros(length - len(window), np.float32)])
            steps.append(Step(index, start, end, self.features(window)))
        # Drop samples no window can need: before the first open window, or before the next one
        # (windows open as frames are sampled, possibly after their audio arrived).
        if self._windows:
            keep_time = self._windows[0][1]
        elif self._last_start is not None:
            keep_time = self._last_start + self.window_s  # windows follow each other (one per sampled step)
        else:
            return steps  # no window yet: keep everything until the first frame is sampled
        if self.keep_after is not None:  # overlapping windows (clips every few frames): keep what the next may need
            keep_time = min(keep_time, self.keep_after)
        keep_from = min(len(self._buffer), int((keep_time - self._buffer_start) * self.rate))
        if keep_from > 0:
            self._buffer = self._buffer[keep_from:]
            self._buffer_start += keep_from / self.rate
        return steps

    def finish(self) -> list[Step]:
        return self._ready(final=True)


def raw_samples(window: np.ndarray) -> np.ndarray:
    """An audio window as it is: mono float32 samples (for models that eat the waveform)."""
    return np.ascontiguousarray(window, dtype=np.float32)


@dataclass
class AVClipSteps:
    """Clips of consecutive sampled frames with the audio they span: ``{"image": (T, ...) frames,
    "audio": (samples,) float32}``, the audio starting at the clip's first frame's time, for models
    that eat both (the multimodal Perceiver). A clip waits for its audio; audio past the end of
    the track is silence; an audio track that gives no samples at all gives no clips
    (``StepsUnavailable``). A container without an audio track never gets here: the decode worker
    marks the encoder ``no_audio`` before decoding."""

    clips: ClipSteps
    audio: AudioSteps
    lag_s: float = 5.0  # a clip whose audio has not come this long after it ends: the track ended
    _waiting: dict[int, Step] = field(default_factory=dict)
    _last_frame: float = float("-inf")

    def feed(self, index: int, t_start: float, t_end: float, rgb: np.ndarray) -> list[Step]:
        self._last_frame = max(self._last_frame, t_start)
        steps = self._open(self.clips.feed(index, t_start, t_end, rgb))
        steps += self._pair(self.audio.expire(t_start - self.lag_s))
        if not self.audio._seen_audio and self._waiting and t_start - min(c.t_end for c in self._waiting.values()) > self.lag_s:
            raise StepsUnavailable(f"no audio: none arrived in the first {self.lag_s:g} s after a clip "
                                   "(pair videos with audio files: --audio-dir DIR)")
        return steps

    def feed_audio(self, samples: np.ndarray, start: float) -> list[Step]:
        return self._pair(self.audio.feed_audio(samples, start))

    def _open(self, clips: list[Step]) -> list[Step]:
        # The next clip starts at a frame still held, or at a later frame: audio before that can go.
        held = self.clips._frames
        self.audio.keep_after = held[0][1] if held else self._last_frame
        windows = []
        for clip in clips:
            self._waiting[clip.index] = clip
            windows.extend(self.audio.feed(clip.index, clip.t_start, clip.t_start + self.audio.window_s, None))
        held = self.clips._frames
        self.audio.keep_after = held[0][1] if held else self._last_frame
        return self._pair(windows)

    def _pair(self, windows: list[Step]) -> list[Step]:
        steps = []
        for window in windows:
            clip = self._waiting.pop(window.index)
            steps.append(Step(clip.index, clip.t_start, clip.t_end, {"image": clip.data, "audio": window.data},
                              clip.padded, clip.frame_times))
        return steps

    def finish(self) -> list[Step]:
        steps = self._open(self.clips.finish())
        steps += self._pair(self.audio.finish())
        if self._waiting:
            raise StepsUnavailable("no audio: the audio track gave no samples (pair videos with audio files: --audio-dir DIR)")
        return steps


@dataclass(frozen=True)
class StepSpec:
    """How an encoder wants its steps built: ``kind`` frame, clip or audio, and its parameters."""

    kind: str
    transform: Any = None  # frames and clips: spatial preprocessing of one frame
    clip_frames: int = 1
    stride: int = 1
    features: Any = None  # audio: samples -> features
    rate: int = 16000
    views: int = 1  # frames: augmented views per frame (view 0 plain)
    seed: int = 0
    audio_samples: int = 0  # avclip: audio samples per clip, at ``rate``

    @property
    def hears_audio(self) -> bool:
        return self.kind in ("audio", "avclip")

    def build(self, window_s: float = 1.0, video_key: int = 0) -> Any:
        if self.kind == "frame" and self.views > 1:
            return ViewSteps(AugmentedViews(self.transform, self.views, self.seed, video_key))
        if self.kind == "frame":
            return FrameSteps(self.transform)
        if self.kind == "clip":
            return ClipSteps(self.transform, self.clip_frames, self.stride)
        if self.kind == "audio":
            return AudioSteps(self.features, self.rate, window_s)
        if self.kind == "avclip":
            audio = AudioSteps(self.features or raw_samples, self.rate, self.audio_samples / self.rate,
                               silence_where_missing=True)
            return AVClipSteps(ClipSteps(self.transform, self.clip_frames, self.stride), audio)
        raise ValueError(f"unknown step kind {self.kind!r}")


@dataclass(frozen=True)
class AugmentedViews:
    """``views`` versions of a frame: view 0 is ``transform(frame)``; views 1.. first take a random
    resized crop (scale 0.3-1, aspect 3/4-4/3, as torchvision's RandomResizedCrop) and a horizontal
    flip with probability 1/2. The randomness is seeded by (seed, video, frame index, view), so the
    same seed gives the same views whatever the worker or the order. (H, W, 3) -> (views, ...)."""

    transform: Callable[[np.ndarray], np.ndarray]
    views: int
    seed: int = 0
    video_key: int = 0

    def for_video(self, video_key: int) -> "AugmentedViews":
        return AugmentedViews(self.transform, self.views, self.seed, video_key)

    def __call__(self, rgb: np.ndarray, index: int = 0) -> np.ndarray:
        out = [self.transform(rgb)]
        for view in range(1, self.views):
            rng = np.random.default_rng((self.seed, self.video_key, index, view))
            out.append(self.transform(self._augment(rgb, rng)))
        return np.stack(out)

    @staticmethod
    def _augment(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        height, width = rgb.shape[:2]
        area = height * width
        top, left, h, w = 0, 0, height, width
        for _ in range(10):
            target = area * rng.uniform(0.3, 1.0)
            aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
            w_try, h_try = int(round(np.sqrt(target * aspect))), int(round(np.sqrt(target / aspect)))
            if 0 < w_try <= width and 0 < h_try <= height:
                top, left = int(rng.integers(0, height - h_try + 1)), int(rng.integers(0, width - w_try + 1))
                h, w = h_try, w_try
                break
        crop = rgb[top : top + h, left : left + w]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        return np.ascontiguousarray(crop)


class ViewSteps(FrameSteps):
    """One step per sampled frame holding ``views`` augmented versions of it (views, ...)."""

    def __init__(self, views: AugmentedViews):
        self.views = views

    def feed(self, index: int, t_start: float, t_end: float, rgb: np.ndarray) -> list[Step]:
        return [Step(index, t_start, t_end, self.views(rgb, index))]
