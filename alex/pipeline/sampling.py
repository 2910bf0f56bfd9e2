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


def sample_stream(
    frames: Iterable[tuple[float, float, Payload]],
    make_targets: Callable[[float], Iterable[float]],
) -> Iterator[Sample[Payload]]:
    """Resolve targets against a stream of ``(time, duration, payload)`` in presentation order.

    ``make_targets(t_first)`` is called with the first frame's time. Targets before the first
    frame have no frame at or before them and are skipped.
    """
    targets: Iterator[float] | None = None
    target: float | None = None
    prev: tuple[float, float, Payload] | None = None
    index = 0
    for time, duration, payload in frames:
        if targets is None:
            targets = iter(make_targets(time))
            target = next(targets, None)
            while target is not None and target < time - TOLERANCE:  # nothing at or before it
                target = next(targets, None)
        while prev is not None and target is not None and target < time - TOLERANCE:
            yield Sample(index, target, prev[0], time, prev[2])
            index += 1
            target = next(targets, None)
        if prev is not None and time <= prev[0]:
            continue  # a repeated or out-of-order timestamp cannot be the latest frame at a later time
        prev = (time, duration, payload)
    if prev is None:
        return
    last_time, last_duration, payload = prev
    while target is not None and target <= last_time + TOLERANCE:
        yield Sample(index, target, last_time, last_time + last_duration, payload)
        index += 1
        target = next(targets, None)
