"""Which files are videos to extract, their ids, and content fingerprints for resuming."""

from __future__ import annotations

import hashlib
import os
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
    video_id: str  # path relative to the videos root, posix
    path: Path


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
    if root.is_file():
        return Listing([VideoFile(root.name, root)])
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
        rel = path.relative_to(root).as_posix()
        if path.is_symlink() and not path.exists():
            listing.skipped.append((rel, "broken link"))
        elif path.is_dir():
            listing.skipped.append((rel, "a directory"))
        elif path.is_file():
            listing.videos.append(VideoFile(rel, path))
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
