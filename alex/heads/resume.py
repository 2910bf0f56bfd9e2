"""``alex train --resume``: continue a run only with the options it was started with.

A run folder remembers the options it was started with (``checkpoints/options.json``, written
before the first step; a finished run also has them in ``training_config.json``). Resuming with
other ones (other ``--inputs``, another head, another learning rate) would mix two trainings in
one folder and overwrite a good head with a wrong one, so it is refused with the differences
listed, unless ``--allow-config-change`` says it is meant. Options that only say how to run
(device, workers, progress) or how long (epochs, patience) may change freely.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from alex.errors import UsageError
from alex.heads.options import flag_name, option_flags

STARTED_OPTIONS = "options.json"  # inside the run's checkpoints folder
LEGACY_KEYS = {"store": "features", "split_fractions": "split"}  # their names in runs written before 0.2
FREE_TO_CHANGE = {"resume", "allow_config_change", "quiet", "device", "num_workers", "epochs", "patience", "output"}


def started_options(run_dir: Path, checkpoints: str, finished_config: str) -> dict[str, Any] | None:
    """The options the run in ``run_dir`` was started with, or None for a folder from before they were kept."""
    for path in (run_dir / checkpoints / STARTED_OPTIONS, run_dir / finished_config):
        if path.is_file():
            return json.loads(path.read_text())
    return None


def remember_options(run_dir: Path, checkpoints: str, options: dict[str, Any]) -> None:
    folder = run_dir / checkpoints
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STARTED_OPTIONS).write_text(json.dumps(options, indent=2) + "\n")


def differences(before: dict[str, Any], now: dict[str, Any], flags: dict[str, str] | None = None) -> list[str]:
    """``--inputs pixels (now clip)`` for every option that differs, in the order of ``now``;
    ``flags`` names an option's flag where it is not ``--field-name`` (``--lr``)."""
    changed = []
    for key, value in now.items():
        if key in FREE_TO_CHANGE:
            continue
        old = before.get(key, before.get(LEGACY_KEYS.get(key, key), "(not set)"))
        if _normal(old) != _normal(value):
            name = "--head" if key == "head" else (flags or {}).get(key, flag_name(key))
            changed.append(f"{name} {_show(old)} (now {_show(value)})")
    return changed


def check_resume(run_dir: Path, before: dict[str, Any] | None, options: Any) -> list[str]:
    """Refuses (UsageError) a resume whose ``options`` differ from the run's, unless they allow
    the change; returns the differences that were allowed."""
    flags = {f.name: option_flags(f)[0] for f in fields(options)}
    changed = differences(before, options.to_json(), flags) if before is not None else []
    allow_change = options.allow_config_change
    if changed and not allow_change:
        raise UsageError(f"--resume: {run_dir} was started with other options: {'; '.join(changed)}. Resume with the "
                         "same options, choose another --output for a new run, or add --allow-config-change to continue "
                         "this run with the new ones")
    return changed


def _normal(value: Any) -> Any:
    """Compare as saved: tuples as lists, paths as text."""
    return json.loads(json.dumps(value, default=str))


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "{}"
    return str(value)
