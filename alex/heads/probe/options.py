from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from alex.heads.options import ClassifierOptions


@dataclass(kw_only=True)
class ProbeOptions(ClassifierOptions):
    """``alex train --head probe``: V-JEPA's attentive probe (head settings: ``--set num_queries=4``...)."""

    head: ClassVar[str] = "probe"


OPTIONS = ProbeOptions
