"""Loading transformers models by hub id or local path, failing fast when they cannot be had."""

from __future__ import annotations

import os
from pathlib import Path

from alex.errors import EncoderSpecError
from alex.hub import cached_hub_file, hub_reachable, require_hub


def is_local(model: str) -> bool:
    return os.path.sep in model and Path(model).exists() or Path(model).is_dir()


def check_available(model: str, family: str, filename: str = "config.json") -> None:
    """A local folder must hold ``filename``; a hub id must be cached or the hub reachable."""
    if is_local(model):
        if not (Path(model) / filename).is_file():
            raise EncoderSpecError(f"{family}:{model}: the folder has no {filename}")
        return
    if model.startswith((".", "/", "~")):
        raise EncoderSpecError(f"{family}:{model}: no such folder")
    if cached_hub_file(model, [filename]) is None:
        require_hub(f"{family}:{model}", f"{model}/{filename}")


def offline(model: str) -> bool:
    """Load from local files only: a folder, or a hub id while the hub cannot be reached (no retries)."""
    return is_local(model) or not hub_reachable()
