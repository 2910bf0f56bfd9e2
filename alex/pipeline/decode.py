"""Decoding with PyAV: the one place that opens videos.

Frames come out in presentation order with their container presentation times in seconds;
only frames that are sampled are converted to RGB, and rotation metadata (the display matrix)
is applied so arrays show what a player shows. Anything FFmpeg refuses becomes a
``VideoDecodeError`` with a one-line reason; nothing is replaced by a made-up frame.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator

import av
import numpy as np

from alex.errors import AudioSourceError, VideoDecodeError

AUDIO_LEAD_S = 1.0  # external audio is read this far ahead of the video frames, no further


@dataclass
class VideoInfo:
    """What the ``videos`` table records about a decodable video (width and height as displayed)."""

    duration: float | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    rotation: int = 0
    codec: str | None = None
    pix_fmt: str | None = None
    has_audio: bool = False  # the container has an audio stream
    audio_source: str | None = None  # where the audio encoders' samples came from: container, file or None
    audio_path: str | None = None  # the file those samples were read from

    def to_row(self) -> dict[str, Any]:
        return asdict(self)


def _reason(exc: BaseException) -> str:
    """One line for the ``error`` column: the exception's type and FFmpeg's words without the path
    (which the row has), e.g. ``InvalidDataError: Invalid data found when processing input``."""
    text = getattr(exc, "strerror", None) if isinstance(exc, av.error.FFmpegError) else None
    text = (text or str(exc).strip()).splitlines()[0] if (text or str(exc).strip()) else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


MAX_SIDE = 16384  # pixels: above 16K a side, a header is forged or the video is not one alex can sample


def open_video(path: str | Path) -> av.container.InputContainer:
    """Open a container for decoding; an empty or unreadable file is a VideoDecodeError."""
    path = str(path)
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise VideoDecodeError(path, f"cannot read file: {exc.strerror or exc}") from exc
    if size == 0:
        raise VideoDecodeError(path, "empty file (0 bytes)")
    try:
        return av.open(path, mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise VideoDecodeError(path, f"not a readable video container ({_reason(exc)})") from exc


def pick_video_stream(container: av.container.InputContainer, path: str) -> av.video.stream.VideoStream:
    """The default video stream (the first one if none is marked default); cover art is not video."""
    streams = [
        s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)
    ]
    if not streams:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        raise VideoDecodeError(path, f"no video stream (the file has: {', '.join(kinds)})")
    defaults = [s for s in streams if s.disposition & av.stream.Disposition.default]
    stream = (defaults or streams)[0]
    width, height = stream.codec_context.width or 0, stream.codec_context.height or 0
    if width > MAX_SIDE or height > MAX_SIDE:  # before a packet is read: a forged header must not allocate
        raise VideoDecodeError(path, f"frame size {width}x{height} is beyond alex's limit of {MAX_SIDE} pixels a side "
                                     "(refused before decoding)")
    return stream


def _rate(stream: av.video.stream.VideoStream) -> float | None:
    rate = stream.average_rate or stream.guessed_rate
    return float(rate) if rate else None


class VideoReader:
    """Streams one video's frames: ``for time, duration, frame in reader.frames()``."""

    def __init__(self, path: str | Path, threads: int = 0, audio_path: str | Path | None = None):
        self.path = str(path)
        self.audio_path = str(audio_path) if audio_path is not None else None  # audio from this file, not the container
        self.audio_source: str | None = None
        self.audio_path_used: str | None = None
        self.audio_failure: str | None = None  # the external audio file broke mid-way: its encoders fail
        self.container = open_video(self.path)
        try:
            self.stream = pick_video_stream(self.container, self.path)
        except VideoDecodeError:
            self.container.close()
            raise
        self.stream.thread_type = "AUTO"
        self.stream.thread_count = threads
        self.rotation = 0
        self.first_time: float | None = None
        self.last_time: float | None = None
        self.last_duration = 0.0
        self.frames_decoded = 0

    def _decoded(self, on_audio: AudioCallback | None, audio_rates: tuple[int, ...]) -> Iterator[av.VideoFrame]:
        """Video frames; with ``on_audio``, audio is decoded in the same pass, resampled to mono
        float32 at each of ``audio_rates`` and handed over as ``(samples, start s, rate)``: the
        container's default audio track, or the file ``audio_path`` (its time 0 is the video's
        first frame), read a little ahead of the frames so memory stays bounded."""
        if on_audio is not None and self.audio_path is not None:
            yield from self._with_external_audio(on_audio, audio_rates)
            return
        audio = self.container.streams.audio[0] if on_audio and self.container.streams.audio else None
        if audio is None:
            yield from self.container.decode(self.stream)
            return
        self.audio_source, self.audio_path_used = "container", self.path
        track = _AudioTrack(on_audio, audio_rates)
        for packet in self.container.demux(self.stream, audio):
            if packet.stream is audio:
                for frame in packet.decode():
                    track.add(frame)
            else:
                yield from packet.decode()
        track.flush()

    def _with_external_audio(self, on_audio: AudioCallback, audio_rates: tuple[int, ...]) -> Iterator[av.VideoFrame]:
        source = open_audio(self.path, self.audio_path)
        self.audio_source, self.audio_path_used = "file", self.audio_path
        track = _AudioTrack(on_audio, audio_rates)
        frames = source.decode(audio=0)
        try:
            for frame in self.container.decode(self.stream):
                if frame.pts is not None:
                    time = float(frame.pts * frame.time_base)
                    if track.offset is None:  # the file's time 0 is the first frame's time
                        track.offset = time
                    while not track.ended and track.end < time + AUDIO_LEAD_S:
                        track.pull(frames)
                yield frame
            while not track.ended:
                track.pull(frames)
            track.flush()
        finally:
            source.close()
        if track.failure is not None:
            self.audio_failure = f"audio file {self.audio_path}: decoding failed ({track.failure}) (video {self.path})"

    def frames(self, on_audio: AudioCallback | None = None,
               audio_rates: tuple[int, ...] = (16000,)) -> Iterator[tuple[float, float, av.VideoFrame]]:
        """Decoded frames in presentation order as ``(time s, duration s, frame)``."""
        fallback_duration = 1.0 / r if (r := _rate(self.stream)) else 0.0
        try:
            for frame in self._decoded(on_audio, audio_rates):
                if frame.pts is None:
                    raise VideoDecodeError(self.path, "frames carry no presentation timestamps")
                time = float(frame.pts * frame.time_base)
                duration = float(frame.duration * frame.time_base) if frame.duration else fallback_duration
                if self.frames_decoded == 0:
                    self.first_time = time
                    self.rotation = int(round(frame.rotation or 0)) % 360
                self.frames_decoded += 1
                if self.last_time is None or time >= self.last_time:
                    self.last_time, self.last_duration = time, duration
                yield time, duration, frame
        except av.error.FFmpegError as exc:
            raise VideoDecodeError(self.path, f"decoding failed after {self.frames_decoded} frames ({_reason(exc)})") from exc
        if self.frames_decoded == 0:
            raise VideoDecodeError(self.path, "the video stream has no decodable frames")
        self._check_complete()

    def declared_end(self) -> float | None:
        """Where the container says the video stream ends (seconds), when it says so reliably."""
        stream, base = self.stream, self.stream.time_base
        start = float(stream.start_time * base) if stream.start_time is not None else 0.0
        if stream.duration:
            return start + float(stream.duration * base)
        tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")  # Matroska/WebM track tag
        if tag:
            try:
                hours, minutes, seconds = tag.split(":")
                return start + int(hours) * 3600 + int(minutes) * 60 + float(seconds)
            except ValueError:
                pass
        if len(self.container.streams) == 1 and self.container.duration:
            return (self.container.start_time or 0) / 1e6 + self.container.duration / 1e6
        return None

    def _check_complete(self) -> None:
        """A file cut short still opens in some containers (MKV, TS) and decodes its first part;
        that is a truncated video, not a shorter one."""
        declared = self.declared_end()
        if declared is None or self.first_time is None or self.last_time is None:
            return
        decoded = self.last_time + self.last_duration
        span = declared - self.first_time
        if declared - decoded > max(1.0, 0.1 * span):
            raise VideoDecodeError(
                self.path, f"truncated: frames end at {decoded:.2f} s but the container declares {declared:.2f} s"
            )

    def time_bounds(self) -> tuple[float, float]:
        """First and last presentation time from a demux pass (no decoding), for ``--num-frames``."""
        times = []
        try:
            for packet in self.container.demux(self.stream):
                if packet.pts is not None and not packet.is_discard:  # edit lists mark hidden packets
                    times.append(packet.pts)
        except av.error.FFmpegError as exc:
            raise VideoDecodeError(self.path, f"reading packets failed ({_reason(exc)})") from exc
        if not times:
            raise VideoDecodeError(self.path, "the video stream has no timestamped packets")
        base: Fraction = self.stream.time_base
        self._reopen()  # back to the start; seeking is not reliable in every container
        return float(min(times) * base), float(max(times) * base)

    def _reopen(self) -> None:
        index, threads = self.stream.index, self.stream.thread_count
        self.container.close()
        self.container = open_video(self.path)
        self.stream = self.container.streams[index]
        self.stream.thread_type = "AUTO"
        self.stream.thread_count = threads

    def info(self) -> VideoInfo:
        """Metadata of the video; after decoding, duration and rotation come from the frames themselves."""
        stream, ctx = self.stream, self.stream.codec_context
        if self.first_time is not None and self.last_time is not None:
            duration = self.last_time + self.last_duration - self.first_time
        elif stream.duration is not None:
            duration = float(stream.duration * stream.time_base)
        elif self.container.duration is not None:
            duration = self.container.duration / 1e6
        else:
            duration = None
        width, height = ctx.width, ctx.height
        if self.rotation in (90, 270):
            width, height = height, width
        return VideoInfo(
            duration=duration,
            fps=_rate(stream),
            width=width,
            height=height,
            rotation=self.rotation,
            codec=ctx.name,
            pix_fmt=ctx.pix_fmt,
            has_audio=len(self.container.streams.audio) > 0,
            audio_source=self.audio_source,
            audio_path=self.audio_path_used,
        )

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


AudioCallback = Callable[[np.ndarray, float, int], None]


class _AudioTrack:
    """Decoded audio frames -> mono float32 at each requested rate, with their start times on the
    first frame's clock (samples are counted, so resampler delays do not shift them)."""

    def __init__(self, on_audio: AudioCallback, rates: tuple[int, ...]):
        self.on_audio = on_audio
        self.resamplers = {rate: av.AudioResampler(format="flt", layout="mono", rate=rate) for rate in rates}
        self.delivered = dict.fromkeys(rates, 0)
        self.start: float | None = None
        self.end = float("-inf")  # seconds reached by the decoded audio
        self.ended = False
        self.offset: float | None = None  # added to the track's own times (an external file: the first frame's time)
        self.failure: str | None = None

    def add(self, frame: av.AudioFrame) -> None:
        shift = self.offset or 0.0
        if self.start is None and frame.pts is not None:
            self.start = float(frame.pts * frame.time_base) + shift
        if frame.pts is not None and frame.sample_rate:
            self.end = float(frame.pts * frame.time_base) + shift + frame.samples / frame.sample_rate
        for rate, resampler in self.resamplers.items():
            self._deliver(rate, resampler.resample(frame))

    def pull(self, frames: Iterator[av.AudioFrame]) -> None:
        """Decode the next frame of an external file; one that breaks mid-way ends the audio and
        says why (its encoders fail; the video's others go on)."""
        try:
            frame = next(frames, None)
        except av.error.FFmpegError as exc:
            self.failure, self.ended = _reason(exc), True
            return
        if frame is None:
            self.ended = True
        else:
            self.add(frame)

    def flush(self) -> None:
        for rate, resampler in self.resamplers.items():
            self._deliver(rate, resampler.resample(None))

    def _deliver(self, rate: int, frames: list[av.AudioFrame]) -> None:
        for out in frames:
            samples = out.to_ndarray().reshape(-1)
            self.on_audio(samples, (self.start or 0.0) + self.delivered[rate] / rate, rate)
            self.delivered[rate] += len(samples)


def open_audio(video: str, audio: str) -> av.container.InputContainer:
    """Open an external audio file (WAV, FLAC, anything FFmpeg reads) that must hold an audio
    stream; anything else is an ``AudioSourceError`` naming both files."""
    try:
        if os.path.getsize(audio) == 0:
            raise AudioSourceError(video, audio, "empty file (0 bytes)")
        container = av.open(audio, mode="r")
    except OSError as exc:
        raise AudioSourceError(video, audio, f"cannot read file: {exc.strerror or exc}") from exc
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise AudioSourceError(video, audio, f"not a readable audio file ({_reason(exc)})") from exc
    if not container.streams.audio:
        container.close()
        raise AudioSourceError(video, audio, "the file has no audio stream")
    return container


def frame_to_rgb(frame: av.VideoFrame, rotation: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB as displayed: ``rotation`` is the display matrix angle (counter-clockwise)."""
    rgb = frame.to_ndarray(format="rgb24")
    turns = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k=turns)) if turns else rgb
