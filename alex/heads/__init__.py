"""Cached features -> models. One folder per head (configuration_*.py + modeling_*.py), each a
transformers ``PreTrainedModel``; training and evaluation read only the store (never
``alex.pipeline``)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from alex.errors import UsageError

# head name -> (module, model class, config class, config model_type)
HEADS: dict[str, tuple[str, str, str, str]] = {
    "probe": ("alex.heads.probe", "AttentiveProbe", "ProbeConfig", "alex_probe"),
    "perceiver": ("alex.heads.perceiver", "PerceiverHead", "PerceiverHeadConfig", "alex_perceiver"),
    "t5": ("alex.heads.t5", "AlexT5ForConditionalGeneration", "AlexT5Config", "alex_t5"),
    "llm": ("alex.heads.llm", "AlexTextModel", "AlexTextConfig", "alex_llm"),
}
GENERATIVE_HEADS = {"t5", "llm"}


def known_heads() -> list[str]:
    return sorted(HEADS)


def head_classes(name: str) -> tuple[type, type]:
    """(model class, config class) of a head by name."""
    if name not in HEADS:
        raise UsageError(f"unknown head {name!r}; known: {', '.join(known_heads())}")
    module, model, config, _ = HEADS[name]
    loaded = importlib.import_module(module)
    return getattr(loaded, model), getattr(loaded, config)


def head_name_of(run_dir: str | Path) -> str:
    """The head a run folder holds, from its ``config.json``."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise UsageError(f"{run_dir} is not a trained run: {path.name} is missing (train one with `alex train`)")
    model_type = json.loads(path.read_text()).get("model_type")
    for name, (_, _, _, mtype) in HEADS.items():
        if mtype == model_type:
            return name
    raise UsageError(f"{path} holds model_type {model_type!r}, which is not an alex head ({', '.join(known_heads())})")


def load_head(run_dir: str | Path):
    """The trained head of a run folder, with its exact parameters."""
    model_class, _ = head_classes(head_name_of(run_dir))
    if model_class.__name__ == "AlexTextModel":  # an LLM head with an action head is AlexForAction
        config = json.loads((Path(run_dir) / "config.json").read_text())
        if config.get("action_dim"):
            from alex.heads.llm import AlexForAction

            model_class = AlexForAction
    return model_class.from_pretrained(str(run_dir))
