"""Choose frames by presentation time, streaming.

Targets are times; each target takes the latest decoded frame whose presentation time is at
or before it. ``--fps F`` gives targets ``t_first + k / F`` for k = 0, 1, ... while the target is
not past the last frame; ``--num-frames N`` gives N targets spread evenly from the first to the
last frame's time. Frames arrive one by one and only the previous frame is held, so memory does
not grow with the video's length. The stored time of a sample is its frame's own presentation
time (never ``index / fps``), so variable frame rate stays exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterable, Iterator, TypeVar

from alex.errors import UsageError

Payload = TypeVar("Payload")

# Targets are computed in floating point (t_first + k / F) while frame times come from exact
# rationals (pts x time base); a frame within a microsecond after a target counts as at it, so a
# rounding error of one ulp never picks the previous frame. No real video has frames 1 us apart.
TOLERANCE = 1e-6


@dataclass(frozen=True)
class Sampling:
    """How steps are chosen from a video: a rate in frames per second or a fixed frame count."""

    fps: float | None = 1.0
    num_frames: int | None = None

    def __post_init__(self) -> None:
        if (self.fps is None) == (self.num_frames is None):
            raise UsageError("choose exactly one of --fps and --num-frames")
        if self.fps is not None and not (self.fps > 0 and math.isfinite(self.fps)):
            raise UsageError(f"--fps must be a positive number, got {self.fps}")
        if self.num_frames is not None and self.num_frames < 1:
            raise UsageError(f"--num-frames must be at least 1, got {self.num_frames}")

    def to_dict(self) -> dict[str, Any]:
        return {"fps": self.fps, "num_frames": self.num_frames}

    def describe(self) -> str:
        return f"{self.fps:g} frames/s" if self.fps is not None else f"{self.num_frames} frames per video"


@dataclass
class Sample(Generic[Payload]):
    """A target resolved to a frame: ``t_start`` is the frame's time, ``t_end`` the next frame's."""

    index: int
    target: float
    t_start: float
    t_end: float
    payload: Payload


def fps_targets(t_first: float, fps: float) -> Iterator[float]:
    k = 0
    while True:
        yield t_first + k / fps
        k += 1


def even_targets(t_first: float, t_last: float, n: int) -> list[float]:
    if n == 1:
        return [t_first]
    step = (t_last - t_first) / (n - 1)
    return [t_first + i * step for i in range(n - 1)] + [t_last]


class StreamSampler(Generic[Payload]):
    """Resolves targets against frames pushed one by one in presentation order, so several
    samplings (encoders with their own frame rate) can share one decoded stream.

    ``make_targets(t_first)`` is called with the first frame's time. Targets before the first
    frame have no frame at or before them and are skipped. ``count``: the targets are a fixed
    number (``--num-frames``): at the end of the stream every one left takes the last frame (the
    latest at or before it, even when the container's time span promised frames later than the
    last one that decoded), so exactly ``count`` samples come out.
    """

    def __init__(self, make_targets: Callable[[float], Iterable[float]], count: int | None = None):
        self._make_targets = make_targets
        self.count = count
        self._targets: Iterator[float] | None = None
        self._target: float | None = None
        self._prev: tuple[float, float, Payload] | None = None
        self._index = 0

    def push(self, time: float, duration: float, payload: Payload) -> list[Sample[Payload]]:
        """The samples the frame at ``time`` resolves: targets before it take the previous frame."""
        if self._targets is None:
            self._targets = iter(self._make_targets(time))
            self._target = next(self._targets, None)
            while self._target is not None and self._target < time - TOLERANCE:  # nothing at or before it
                self._target = next(self._targets, None)
        out = []
        prev = self._prev
        while prev is not None and self._target is not None and self._target < time - TOLERANCE:
            out.append(Sample(self._index, self._target, prev[0], time, prev[2]))
            self._index += 1
            self._target = next(self._targets, None)
        if prev is None or time > prev[0]:  # a repeated or out-of-order time cannot be the latest frame later
            self._prev = (time, duration, payload)
        return out

    @property
    def emitted(self) -> int:
        return self._index

    @property
    def done(self) -> bool:
        """No target is left: later frames cannot give samples."""
        return self._targets is not None and self._target is None

    def finish(self) -> list[Sample[Payload]]:
        """The targets at or before the last frame's time, once the stream has ended."""
        if self._prev is None or self._targets is None:
            return []
        last_time, last_duration, payload = self._prev
        out = []
        while self._target is not None and (self.count is not None or self._target <= last_time + TOLERANCE):
            out.append(Sample(self._index, self._target, last_time, last_time + last_duration, payload))
            self._index += 1
            self._target = next(self._targets, None)
        return out


def sample_stream(
    frames: Iterable[tuple[float, float, Payload]],
    make_targets: Callable[[float], Iterable[float]],
    count: int | None = None,
) -> Iterator[Sample[Payload]]:
    """Resolve targets against a stream of ``(time, duration, payload)`` in presentation order."""
    sampler: StreamSampler[Payload] = StreamSampler(make_targets, count)
    for time, duration, payload in frames:
        yield from sampler.push(time, duration, payload)
    yield from sampler.finish()
