from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from alex.heads.options import ClassifierOptions


@dataclass(kw_only=True)
class PerceiverOptions(ClassifierOptions):
    """``alex train --head perceiver``: a Perceiver classifier (head settings: ``--set num_latents=64``...)."""

    head: ClassVar[str] = "perceiver"


OPTIONS = PerceiverOptions
