"""Plain status lines for output that is not a terminal (a log file, nohup, Slurm).

A terminal gets rich progress bars; anything else gets one line every N seconds, so a log shows
that a long run is alive and how far it got. N is 30 seconds unless the environment variable
``ALEX_PROGRESS_INTERVAL`` (seconds, 0 for a line at every update) says otherwise. Shared by
extraction (``alex.pipeline.progress``) and training (``alex.heads.progress``); imports nothing heavy.
"""

from __future__ import annotations

import os
import time
import warnings
from typing import TextIO

INTERVAL_ENV = "ALEX_PROGRESS_INTERVAL"
DEFAULT_INTERVAL_S = 30.0


def status_interval(seconds: float | None = None) -> float:
    """Seconds between two status lines: ``seconds`` when given, else ``$ALEX_PROGRESS_INTERVAL``,
    else 30. A value that is not a non-negative number falls back to the default, with a warning."""
    if seconds is not None:
        return max(0.0, float(seconds))
    text = os.environ.get(INTERVAL_ENV)
    if text is None:
        return DEFAULT_INTERVAL_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0:
        warnings.warn(f"{INTERVAL_ENV}={text!r} is not a number of seconds >= 0; using {DEFAULT_INTERVAL_S:g}", stacklevel=2)
        return DEFAULT_INTERVAL_S
    return value


class StatusTicker:
    """Says when the next status line is due: at most one every ``interval`` seconds."""

    def __init__(self, interval: float | None = None):
        self.interval = status_interval(interval)
        self._last = time.monotonic()

    def due(self) -> bool:
        """True (and the clock restarts) when ``interval`` seconds passed since the last line."""
        now = time.monotonic()
        if now - self._last < self.interval:
            return False
        self._last = now
        return True


def format_duration(seconds: float) -> str:
    """``45s``, ``3m10s``, ``2h05m``: short enough for a status line."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def eta(done: float, total: float, elapsed: float) -> str:
    """Time left at the rate so far, or ``?`` before anything is done."""
    if done <= 0 or elapsed <= 0:
        return "?"
    return format_duration(elapsed / done * max(0.0, total - done))


def write_line(stream: TextIO, line: str) -> None:
    """One status line, flushed at once (a log file must not hold it back in a buffer)."""
    stream.write(line + "\n")
    stream.flush()
