"""Readers and writers sharing a store: who may delete what, and when.

Segments are immutable once sealed, so a reader needs no lock against a running extraction (it
sees the segments sealed when it opened). Only compaction removes files: every open reader holds a
shared ``flock`` on ``.readers``, and the segments a compaction made obsolete are removed only while
that lock can be taken exclusively, that is while no reader is open. Otherwise they stay where they
are (invisible to new readers, intact for open ones) until the next compaction or extraction.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

from alex.store.layout import READERS_LOCK, TRASH_DIR
from alex.store.views import sealed_segments, segment_dirs


class ReaderLock:
    """A shared lock on ``.readers`` for as long as a reader is open (none on a read-only folder
    where the lock file cannot be created: such a store cannot be compacted under it either)."""

    def __init__(self, root: Path | None):
        self._fd: int | None = None
        if root is None:  # a store under a URL: nothing to lock
            return
        path = Path(root) / READERS_LOCK
        for flags in (os.O_RDWR | os.O_CREAT, os.O_RDONLY):
            try:
                self._fd = os.open(path, flags, 0o644)
                break
            except OSError:
                continue
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_SH)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def obsolete_segments(root: Path) -> list[Path]:
    """Sealed segments before the latest compacted one: never read, waiting to be removed."""
    visible = set(segment_dirs(root))
    return [p for p in sealed_segments(root) if p not in visible]


def remove_obsolete(root: Path) -> int:
    """Remove obsolete segments (and what a killed removal left in ``.trash``) when no reader is
    open; returns how many segments went. Each segment is first renamed into ``.trash`` (one atomic
    step, so no reader can ever list a half-deleted segment), then deleted."""
    root = Path(root)
    trash = root / TRASH_DIR
    obsolete = obsolete_segments(root)
    if not obsolete and not trash.exists():
        return 0
    try:
        fd = os.open(root / READERS_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return 0
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # a reader is open: leave them for the next compaction or extraction
        trash.mkdir(exist_ok=True)
        for segment in obsolete:
            os.rename(segment, trash / segment.name)
    finally:
        os.close(fd)  # releases the lock
    shutil.rmtree(trash, ignore_errors=True)
    return len(obsolete)
