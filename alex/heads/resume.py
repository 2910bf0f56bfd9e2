"""``alex train --resume``: continue a run only with the options it was started with.

A run folder remembers the options it was started with (``checkpoints/options.json``, written
before the first step of a new run and after a resumed run that was allowed to change them; a
finished run also has them in ``training_config.json``). Resuming with other ones would mix two
trainings in one folder and can overwrite a good head with a wrong one, so differences are
refused, listed, in three kinds:

- options that only say how to run or for how long (device, workers, progress, epochs,
  patience) change freely;
- options that define the model the checkpoints hold (head, inputs, pretrained model, task) or
  that the checkpoint restores as saved (the optimizer's learning rate and weight decay) cannot
  change: a run with them needs its own ``--output``. ``model_differences`` catches the rest of
  what defines the model (a width, ``--set``) by comparing the checkpoint's config with the
  model the new options build;
- anything else (labels, store, batch size, seed, ...) changes with ``--allow-config-change``.

Paths are compared resolved, so the same store reached from another folder is the same store.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from alex.errors import UsageError
from alex.heads.options import flag_name, option_flags

STARTED_OPTIONS = "options.json"  # inside the run's checkpoints folder
LEGACY_KEYS = {"store": "features", "split_fractions": "split"}  # their names in run folders written before the renames
FREE_TO_CHANGE = {"resume", "allow_config_change", "quiet", "device", "num_workers", "epochs", "patience", "output"}
NEVER_CHANGE = {"head": "defines the model", "inputs": "defines the model", "model": "defines the model",
                "task": "defines the model", "learning_rate": "the checkpoint's optimizer restores it",
                "weight_decay": "the checkpoint's optimizer restores it"}
PATH_KEYS = ("store", "labels")
CONFIG_KEYS_FREE = {"_name_or_path", "transformers_version", "architectures", "dtype", "torch_dtype"}


def started_options(run_dir: Path, checkpoints: str, finished_config: str) -> dict[str, Any] | None:
    """The options the run in ``run_dir`` was started with, or None for a folder from before they were kept."""
    for path in (run_dir / checkpoints / STARTED_OPTIONS, run_dir / finished_config):
        if path.is_file():
            return json.loads(path.read_text())
    return None


def remember_options(run_dir: Path, checkpoints: str, options: Any) -> None:
    """Write the options a run holds (paths resolved) beside its checkpoints."""
    folder = run_dir / checkpoints
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STARTED_OPTIONS).write_text(json.dumps(_comparable(options.to_json()), indent=2) + "\n")


def check_resume(run_dir: Path, before: dict[str, Any] | None, options: Any) -> list[str]:
    """Refuses (UsageError) a resume whose ``options`` differ from the run's where they may not, or
    anywhere without ``--allow-config-change``; returns the differences that were allowed."""
    if before is None:
        return []
    flags = {f.name: option_flags(f)[0] for f in fields(options)}
    now = _comparable(options.to_json())
    changed = {key: _difference(before, now, key, flags) for key in now
               if key not in FREE_TO_CHANGE and _normal(_old(before, key)) != _normal(now[key])}
    fixed = [f"{text} ({NEVER_CHANGE[key]})" for key, text in changed.items() if key in NEVER_CHANGE]
    if fixed:
        raise UsageError(f"--resume: {run_dir} was started with other options that a resumed run cannot change: "
                         f"{'; '.join(fixed)}. Train them in a new run (another --output)")
    if changed and not options.allow_config_change:
        raise UsageError(f"--resume: {run_dir} was started with other options: {'; '.join(changed.values())}. Resume "
                         "with the same options, choose another --output for a new run, or add --allow-config-change "
                         "to continue this run with the new ones")
    return list(changed.values())


def model_differences(run_dir: Path, checkpoint_config: dict[str, Any], model_config: dict[str, Any]) -> None:
    """Refuses a resume whose options build another model than the checkpoint holds (a width, a
    ``--set`` key): its weights could not be loaded into it."""
    keys = sorted((set(checkpoint_config) | set(model_config)) - CONFIG_KEYS_FREE)
    changed = [f"{key} {checkpoint_config.get(key)} (now {model_config.get(key)})" for key in keys
               if _normal(checkpoint_config.get(key)) != _normal(model_config.get(key))]
    if changed:
        raise UsageError(f"--resume: the checkpoints in {run_dir} hold another model than these options build: "
                         f"{'; '.join(changed[:6])}. Train it in a new run (another --output)")


def _comparable(options: dict[str, Any]) -> dict[str, Any]:
    return {key: str(Path(value).resolve()) if key in PATH_KEYS else value for key, value in options.items()}


def _old(before: dict[str, Any], key: str) -> Any:
    value = before.get(key, before.get(LEGACY_KEYS.get(key, key), "(not set)"))
    return str(Path(value).resolve()) if key in PATH_KEYS and value != "(not set)" else value


def _difference(before: dict[str, Any], now: dict[str, Any], key: str, flags: dict[str, str]) -> str:
    """``--inputs pixels (now clip)``."""
    name = "--head" if key == "head" else flags.get(key, flag_name(key))
    return f"{name} {_show(_old(before, key))} (now {_show(now[key])})"


def _normal(value: Any) -> Any:
    """Compare as saved: tuples as lists, paths as text."""
    return json.loads(json.dumps(value, default=str))


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "{}"
    return str(value)
