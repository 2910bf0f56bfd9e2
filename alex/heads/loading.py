"""A trained head from its run folder, by the name its ``config.json`` gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alex.errors import UsageError


def head_name_of(run_dir: str | Path) -> str:
    """The head family a run folder holds (``training_config.json``, else ``config.json``'s model_type)."""
    from alex.heads.registry import all_families

    run_dir = Path(run_dir)
    training = run_dir / "training_config.json"
    if training.is_file():
        return json.loads(training.read_text())["head"]
    path = run_dir / "config.json"
    if not path.is_file():
        raise UsageError(f"{run_dir} is not a trained run: {path.name} is missing (train one with `alex train`)")
    model_type = json.loads(path.read_text()).get("model_type")
    for family in all_families():
        if model_type in family.model_types:
            return family.name
    raise UsageError(f"{path} holds model_type {model_type!r}, which is not an alex head")


def load_head(run_dir: str | Path) -> Any:
    """The trained head of a run folder with its exact parameters (``AutoModel.from_pretrained``)."""
    from alex.heads.auto import register_auto_classes

    head_name_of(run_dir)  # a clear error for a folder that holds no alex head
    register_auto_classes()
    from transformers import AutoModel

    return AutoModel.from_pretrained(str(run_dir))
