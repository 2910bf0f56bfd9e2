"""Typed errors that say what was received, what is allowed and how to fix it.

Every error carries the process exit code the CLI uses for it (DESIGN.md, "Exit codes"):
2 for bad usage or configuration, where nothing has been written.
"""

from __future__ import annotations


class AlexError(Exception):
    """Base class of alex's user-facing errors."""

    exit_code = 2


class UsageError(AlexError):
    """A command-line or API argument that cannot be used as given."""


class EncoderSpecError(AlexError):
    """An encoder spec (``FAMILY[:MODEL][@WEIGHTS]``) that does not name a known encoder."""


class WeightsUnavailableError(AlexError):
    """Weights that were asked for cannot be found locally nor downloaded."""


class EncoderConflictError(AlexError):
    """An encoder name already in the store with another model, weights or sampling."""


class StoreFormatError(AlexError):
    """A folder that is not an alex store, or one of another format version."""


class StoreLockedError(AlexError):
    """Another process is writing to the same store."""


class VideoDecodeError(Exception):
    """A video that cannot be decoded. Not fatal: it becomes a ``videos`` row with status ``error``."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class AudioSourceError(Exception):
    """An audio file paired with a video (``--audio-dir``) that is missing or cannot be read. Not
    fatal: the encoders that need audio get ``error`` items; the video's other encoders go on."""

    def __init__(self, video: str, audio: str | None, reason: str):
        self.video, self.audio = video, audio
        self.reason = f"audio file {audio}: {reason} (video {video})" if audio else f"{reason} (video {video})"
        super().__init__(self.reason)
