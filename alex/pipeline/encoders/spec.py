"""Encoder specs: ``[NAME=]FAMILY[:MODEL][@WEIGHTS]`` (DESIGN.md, "Public contracts").

``NAME`` is how the store calls the encoder (default: the family), so one store can hold two
CLIP models (``--encoder clip_l=clip:ViT-L-14@openai``). ``@random`` builds the architecture with
seeded random weights and no download.
"""

from __future__ import annotations

from dataclasses import dataclass

from alex.errors import EncoderSpecError

RANDOM_WEIGHTS = "random"


@dataclass(frozen=True)
class EncoderSpec:
    name: str
    family: str
    model: str | None
    weights: str | None

    @classmethod
    def parse(cls, text: str) -> "EncoderSpec":
        text = text.strip()
        name = None
        if "=" in text.split(":", 1)[0]:
            name, text = text.split("=", 1)
        family_model, _, weights = text.partition("@")
        family, _, model = family_model.partition(":")
        if not family:
            raise EncoderSpecError(f"encoder spec {text!r} names no family; expected FAMILY[:MODEL][@WEIGHTS]")
        return cls(name=name or family, family=family, model=model or None, weights=weights or None)

    @property
    def text(self) -> str:
        out = self.family
        if self.model:
            out += f":{self.model}"
        if self.weights:
            out += f"@{self.weights}"
        return out

    @property
    def is_random(self) -> bool:
        return self.weights == RANDOM_WEIGHTS
