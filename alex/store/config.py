"""``store.json``: format name and version, and the full config of every encoder in the store."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from alex.errors import EncoderConflictError, StoreFormatError, UsageError
from alex.store.layout import FORMAT_NAME, FORMAT_VERSION, STORE_JSON

# Fields that make two extractions under one encoder name the same features.
IDENTITY_KEYS = ("family", "model", "weights", "sampling", "dtype", "compute_dtype", "tokens")

ENCODER_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


def check_encoder_name(name: str) -> str:
    """Encoder names become file and HDF5 group names: lower-case letters, digits, ``_`` and ``-``."""
    if not ENCODER_NAME.match(name):
        raise UsageError(
            f"encoder name {name!r} is not allowed: use lower-case letters, digits, '_' or '-', "
            "starting with a letter (e.g. --encoder clip_l=clip:ViT-L-14@openai)"
        )
    return name


def new_store_config() -> dict[str, Any]:
    return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "encoders": {}}


def read_store_config(root: Path) -> dict[str, Any]:
    """Read and validate ``store.json``; a missing file or another format version is a StoreFormatError."""
    path = root / STORE_JSON
    if not path.is_file():
        raise StoreFormatError(
            f"{root} is not an alex store: {STORE_JSON} is missing. "
            "Create one with `alex extract --videos DIR --store PATH`."
        )
    return check_store_config(path.read_text(), path, root)


def check_store_config(text: str, path: Any, root: Any) -> dict[str, Any]:
    """Parse and validate the text of ``store.json`` (read from a folder or an object store)."""
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StoreFormatError(f"{path} is not valid JSON ({exc}); the store is damaged.") from exc
    if config.get("format") != FORMAT_NAME:
        raise StoreFormatError(f"{path} has format {config.get('format')!r}, expected {FORMAT_NAME!r}.")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise StoreFormatError(
            f"{root} has store format version {version}, this alex reads version {FORMAT_VERSION}. "
            "Use the alex release that wrote it, or re-extract into a new store."
        )
    return config


def write_store_config(root: Path, config: dict[str, Any]) -> None:
    """Replace ``store.json`` atomically (write a temporary file, fsync, rename)."""
    path = root / STORE_JSON
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _describe(config: dict[str, Any]) -> str:
    sampling = config.get("sampling", {})
    timing = ", ".join(f"{k}={v}" for k, v in sampling.items() if v is not None)
    precision = f", computed in {config['compute_dtype']}" if config.get("compute_dtype") else ""
    return f"{config.get('spec')} ({timing}, dtype={config.get('dtype')}{precision})"


def check_encoder_compatible(name: str, stored: dict[str, Any], requested: dict[str, Any], root: Path) -> None:
    """Refuse to reuse an encoder name with other weights, sampling or dtype."""
    differences = [key for key in IDENTITY_KEYS if stored.get(key) != requested.get(key)]
    if differences:
        raise EncoderConflictError(
            f"encoder '{name}' in store {root} was extracted as {_describe(stored)}; this run asks for "
            f"{_describe(requested)} (different {', '.join(differences)}). Features of one name must be "
            f"comparable, so nothing was written. Give the new encoder its own name "
            f"(--encoder {name}2={requested.get('spec')}) or use another store."
        )
