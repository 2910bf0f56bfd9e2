"""The head families alex can train, by name (as open_clip's factory and LeRobot's
``policies/factory.py`` choose a model by name).

A head is one folder under ``alex/heads/`` and one entry here. Its package provides
``options.py`` with ``OPTIONS`` (the options dataclass, light: the command line is built from it)
and ``head.py`` with ``HEAD`` (a ``HeadFamily``: what the one training path asks of the head).
Nothing else (not the CLI, not ``alex.heads.training``) names a head.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from alex.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from alex.heads.family import HeadFamily
    from alex.heads.options import TrainOptions

HEADS: dict[str, str] = {
    "probe": "alex.heads.probe",
    "perceiver": "alex.heads.perceiver",
    "t5": "alex.heads.t5",
    "llm": "alex.heads.llm",
    "perceiver-mm": "alex.heads.perceiver_mm",
}
DEFAULT_HEAD = "probe"


def known_heads() -> list[str]:
    return list(HEADS)


def _package(name: str) -> str:
    if name not in HEADS:
        raise UsageError(f"unknown head {name!r}; known: {', '.join(known_heads())}")
    return HEADS[name]


def options_class(name: str) -> type[TrainOptions]:
    """The options dataclass of a head (imports no torch)."""
    return importlib.import_module(_package(name) + ".options").OPTIONS


def head_family(name: str) -> HeadFamily:
    """The ``HeadFamily`` of a head by name."""
    return importlib.import_module(_package(name) + ".head").HEAD


def all_families() -> list[HeadFamily]:
    return [head_family(name) for name in HEADS]
