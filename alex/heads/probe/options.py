from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from alex.heads.options import ClassifierOptions, option


@dataclass(kw_only=True)
class ProbeOptions(ClassifierOptions):
    """``alex train --head probe``: V-JEPA's attentive probe, by default as V-JEPA evaluates: at the
    encoder's own width (no down-projection) with width / 64 heads. The small probe of earlier
    releases: ``--hidden-size 128 --set num_heads=4``."""

    head: ClassVar[str] = "probe"

    hidden_size: int | None = option(None, help="Width of the head (default: the input's own width, as V-JEPA's "
                                                "probe; with inputs of several sizes, the largest).")


OPTIONS = ProbeOptions
