"""Write videos with PyAV: constant or variable frame rate, optional rotation and audio."""

from __future__ import annotations

import filecmp
import os
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import av
import numpy as np

VFR_TIME_BASE = Fraction(1, 1000)
# x264 gives other bytes for the same frames from one call to the next: its macroblock-tree rate
# control reads state that depends on earlier allocations (measured: 3 to 5 distinct outputs in 8
# encodes of one clip in one process; none with mbtree=0). Its frame threads and the options
# string it stamps into the stream follow the core count. One thread, no mbtree: same bytes.
DETERMINISTIC_X264 = {"threads": "1", "x264-params": "mbtree=0"}


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    *,
    fps: int = 10,
    times: Sequence[float] | None = None,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    container_format: str | None = None,
    rotation: int | None = None,
    audio: np.ndarray | None = None,
    audio_rate: int = 16000,
    options: dict[str, str] | None = None,
) -> Path:
    """Encode (H, W, 3) uint8 frames. ``times`` (seconds, millisecond precision) gives a variable
    frame rate; ``rotation`` is a display-matrix angle (counter-clockwise degrees); ``audio`` is a
    mono float32 signal in [-1, 1] at ``audio_rate``.

    The same frames give the same bytes (``DETERMINISTIC_X264``), and a file that already
    holds those bytes is left untouched, modification time included: rewriting a dataset changes
    nothing that an extraction would have to look at again."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if codec == "libx264":
        options = {**DETERMINISTIC_X264, **(options or {})}
    frames = iter(frames)
    first = next(frames)
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        _encode(partial, first, frames, fps=fps, times=times, codec=codec, pix_fmt=pix_fmt,
                container_format=container_format, rotation=rotation, audio=audio, audio_rate=audio_rate, options=options)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if path.is_file() and filecmp.cmp(partial, path, shallow=False):
        partial.unlink()
    else:
        os.replace(partial, path)
    return path


def _encode(path: Path, first: np.ndarray, frames: Iterable[np.ndarray], *, fps: int, times: Sequence[float] | None,
            codec: str, pix_fmt: str, container_format: str | None, rotation: int | None, audio: np.ndarray | None,
            audio_rate: int, options: dict[str, str] | None) -> None:
    container = av.open(str(path), mode="w", format=container_format)
    try:
        stream = container.add_stream(codec, rate=fps, options=options or {})
        stream.height, stream.width = first.shape[:2]
        stream.pix_fmt = pix_fmt
        if times is not None:
            stream.codec_context.time_base = VFR_TIME_BASE
            stream.time_base = VFR_TIME_BASE
        if rotation is not None:
            stream.set_display_rotation(rotation)
        audio_stream = container.add_stream("aac", rate=audio_rate) if audio is not None else None
        index = 0
        for image in _chain(first, frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            if times is not None:
                frame.pts, frame.time_base = round(times[index] * 1000), VFR_TIME_BASE
            else:
                frame.pts, frame.time_base = index, Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
            index += 1
        for packet in stream.encode():
            container.mux(packet)
        if audio_stream is not None:
            write_audio(container, audio_stream, audio)
    finally:
        container.close()


def _chain(first: np.ndarray, rest: Iterable[np.ndarray]) -> Iterable[np.ndarray]:
    yield first
    yield from rest


def write_audio(container: av.container.OutputContainer, stream: av.audio.stream.AudioStream, samples: np.ndarray) -> None:
    """Encode a mono float32 signal into ``stream``."""
    samples = np.asarray(samples, dtype=np.float32)
    frame_size = stream.codec_context.frame_size or 1024
    for start in range(0, len(samples), frame_size):
        frame = av.AudioFrame.from_ndarray(samples[start : start + frame_size][None, :], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = stream.rate, start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def tone(seconds: float, hz: float = 440.0, rate: int = 16000, amplitude: float = 0.2) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def write_audio_only(path: str | Path, seconds: float = 1.0, rate: int = 16000) -> Path:
    container = av.open(str(path), mode="w", format="mp4")
    try:
        write_audio(container, container.add_stream("aac", rate=rate), tone(seconds, rate=rate))
    finally:
        container.close()
    return Path(path)
