"""A rich progress bar for extraction (videos, frames/s, ETA) that stays quiet when it should."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text


class _FramesPerSecond(ProgressColumn):
    def __init__(self, progress: "ExtractProgress"):
        super().__init__()
        self._progress = progress

    def render(self, task) -> Text:  # noqa: ANN001 (rich's Task)
        elapsed = max(time.monotonic() - self._progress.started, 1e-9)
        return Text(f"{self._progress.frames / elapsed:,.1f} frames/s", style="cyan")


class ExtractProgress:
    """Shown only on a terminal and without ``--quiet``; otherwise every call is a no-op."""

    def __init__(self, total_videos: int, quiet: bool = False, console: Console | None = None):
        self.console = console or Console(file=sys.stderr)
        self.enabled = not quiet and self.console.is_terminal and total_videos > 0
        self.frames = 0
        self.started = time.monotonic()
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

    def add_frames(self, n: int) -> None:
        self.frames += n
        if self._progress is not None:
            self._progress.refresh()

    def video_done(self) -> None:
        if self._progress is not None:
            self._progress.advance(self._task)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
