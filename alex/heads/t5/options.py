from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from alex.heads.options import GenerativeOptions


@dataclass(kw_only=True)
class T5Options(GenerativeOptions):
    """``alex train --head t5 --model ID_OR_PATH``: VL-T5 on cached features. ``model`` is a T5
    checkpoint (hub id or folder) or an earlier alex t5 run (e.g. after ``--task span``)."""

    head: ClassVar[str] = "t5"
    tasks: ClassVar[tuple[str, ...]] = ("caption", "vqa", "classify", "span")


OPTIONS = T5Options
