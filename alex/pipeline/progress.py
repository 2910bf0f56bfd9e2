"""Extraction progress (videos, frames/s, ETA): a rich bar on a terminal, elsewhere a plain status
line every N seconds (``alex.status``) so a log file shows the run is alive; ``--quiet`` silences both."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

from alex.status import StatusTicker, eta, format_duration, write_line


class _FramesPerSecond(ProgressColumn):
    def __init__(self, progress: "ExtractProgress"):
        super().__init__()
        self._progress = progress

    def render(self, task) -> Text:  # noqa: ANN001 (rich's Task)
        return Text(f"{self._progress.frames_per_second():,.1f} frames/s", style="cyan")


class ExtractProgress:
    """A rich bar on a terminal; otherwise (a log file, a pipe) one status line on stderr every
    ``interval`` seconds (default ``$ALEX_PROGRESS_INTERVAL`` or 30) and a last one on ``close``.
    Lines are written from the calls extraction already makes, so a long encoder batch delays one.
    With ``quiet`` (or no videos) every call is a no-op."""

    def __init__(self, total_videos: int, quiet: bool = False, console: Console | None = None,
                 interval: float | None = None):
        self.console = console or Console(file=sys.stderr)
        self.total = total_videos
        self.frames = 0
        self.videos = 0
        self.started = time.monotonic()
        active = not quiet and total_videos > 0
        self.enabled = active and self.console.is_terminal
        self.lines = active and not self.console.is_terminal
        self._ticker = StatusTicker(interval)
        self._progress: Progress | None = None
        if self.enabled:
            self._progress = Progress(
                TextColumn("[bold]extract"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("videos"),
                _FramesPerSecond(self),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._task = self._progress.add_task("extract", total=total_videos)
            self._progress.start()

    def elapsed(self) -> float:
        return max(time.monotonic() - self.started, 1e-9)

    def frames_per_second(self) -> float:
        return self.frames / self.elapsed()

    def status_line(self) -> str:
        """``extract: 12/300 videos, 1,234 frames, 45.6 frames/s, ETA 3m10s``."""
        return (f"extract: {self.videos}/{self.total} videos, {self.frames:,} frames, "
                f"{self.frames_per_second():,.1f} frames/s, ETA {eta(self.videos, self.total, self.elapsed())}")

    def final_line(self) -> str:
        """What the run did in all, written on ``close`` (also after an interruption)."""
        head = "extract: finished" if self.videos >= self.total else "extract: stopped at"
        return (f"{head} {self.videos}/{self.total} videos, {self.frames:,} frames in "
                f"{format_duration(self.elapsed())} ({self.frames_per_second():,.1f} frames/s)")

    def _maybe_line(self) -> None:
        if self.lines and self._ticker.due():
            write_line(self.console.file, self.status_line())

    def add_frames(self, n: int) -> None:
        self.frames += n
        if self._progress is not None:
            self._progress.refresh()
        self._maybe_line()

    def video_done(self) -> None:
        self.videos += 1
        if self._progress is not None:
            self._progress.advance(self._task)
        self._maybe_line()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self.lines:
            write_line(self.console.file, self.final_line())
            self.lines = False
