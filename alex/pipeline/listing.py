"""Which files are videos to extract, their ids, and content fingerprints for resuming."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from alex.errors import UsageError

VIDEO_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".flv", ".gif", ".wmv", ".asf",
    ".mpg", ".mpeg", ".m2v", ".ts", ".mts", ".m2ts", ".3gp", ".3g2", ".ogv", ".vob", ".mxf",
)

FINGERPRINT_BLOCK = 1 << 20


@dataclass
class VideoFile:
    video_id: str  # path relative to the videos root, posix, as valid UTF-8 (see printable)
    path: Path


def printable(text: str) -> str:
    """A file name as valid UTF-8 text: bytes that are not UTF-8 (which Python keeps as surrogate
    escapes, and Parquet cannot store) are written ``\\xe9``. Quotes, newlines and other characters
    are kept as they are. Video ids and source paths are stored this way."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


FILE_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
              (stat.S_ISSOCK, "a socket"))


def _not_a_regular_file(path: Path) -> str | None:
    """Why ``path`` (links followed) is not a file alex may open, or None. Never opens it: opening
    a FIFO would block, reading a device would not end."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return "broken link" if path.is_symlink() else f"cannot stat: {exc.strerror or exc}"
    if stat.S_ISDIR(mode):
        return "a directory"
    for test, kind in FILE_KINDS:
        if test(mode):
            return f"not a regular file ({kind})"
    return None if stat.S_ISREG(mode) else "not a regular file"


@dataclass
class Listing:
    videos: list[VideoFile]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)


def list_videos(root: str | Path, globs: list[str] | None = None) -> Listing:
    """Video files under ``root`` (recursively), by extension or by ``globs`` relative to ``root``.

    A single file may be given as ``root``. Directories whose names look like videos and broken
    links are skipped and reported, not fatal.
    """
    root = Path(root)
    if root.exists() and not root.is_dir():
        why = _not_a_regular_file(root)
        return Listing([VideoFile(printable(root.name), root)] if why is None else [], [(printable(root.name), why)] if why else [])
    if not root.is_dir():
        raise UsageError(f"--videos {root}: no such file or folder")
    if globs:
        try:
            candidates = sorted({p for pattern in globs for p in root.glob(pattern)})
        except (NotImplementedError, ValueError) as exc:
            raise UsageError(f"--glob {globs}: patterns are relative to --videos {root} ({exc})") from None
    else:
        candidates = sorted(
            Path(dirpath) / name
            for dirpath, dirnames, filenames in os.walk(root)
            for name in filenames + dirnames
            if name.lower().endswith(VIDEO_EXTENSIONS) and not name.startswith(".")
        )
    listing = Listing([])
    for path in candidates:
        rel = printable(path.relative_to(root).as_posix())
        why = _not_a_regular_file(path)
        if why is None:
            listing.videos.append(VideoFile(rel, path))
        else:
            listing.skipped.append((rel, why))
    return listing


def fingerprint(path: str | Path) -> str:
    """Content fingerprint: BLAKE2b of every byte, so any edit is seen and a ``touch`` is not.

    Reruns do not pay for it: a file whose size and modification time match its stored row keeps
    its stored fingerprint (see ``extract._plan``); new files are hashed by the decode workers.
    """
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(FINGERPRINT_BLOCK):
            digest.update(block)
    return digest.hexdigest()
