"""Encoder registry: one family per file, chosen by name (as open_clip's factory and lerobot's
policy factory do). Modules are imported only when their family is used, and this package
itself does not import torch: decode workers unpickle transforms from it."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from alex.errors import EncoderSpecError
from alex.pipeline.encoders.spec import EncoderSpec

if TYPE_CHECKING:  # pragma: no cover
    import torch

FAMILIES: dict[str, str] = {
    "clip": "alex.pipeline.encoders.clip:ClipEncoder",
    "pixels": "alex.pipeline.encoders.pixels:PixelsEncoder",
    "tubelet": "alex.pipeline.encoders.tubelet:TubeletEncoder",
    "audio": "alex.pipeline.encoders.audio:AudioEncoder",
    "languagebind": "alex.pipeline.encoders.languagebind.encoder:LanguageBindEncoder",
    "perceiver-mm": "alex.pipeline.encoders.perceiver_mm:PerceiverMMEncoder",
}

DEFAULT_ENCODER = "clip"


def known_families() -> list[str]:
    return sorted(FAMILIES)


def encoder_class(family: str) -> type:
    if family not in FAMILIES:
        raise EncoderSpecError(
            f"unknown encoder family {family!r}; known: {', '.join(known_families())} "
            "(spec syntax: [NAME=]FAMILY[:MODEL][@WEIGHTS])"
        )
    module, _, cls = FAMILIES[family].partition(":")
    return getattr(importlib.import_module(module), cls)


def build_encoder(spec: EncoderSpec | str, device: "torch.device | str" = "cpu", **options: Any) -> Any:
    """Build an encoder from its spec; weights that cannot be had fail here, before any video is read.
    ``options`` (clip_frames, clip_stride, keep_tokens) reach the families that use them."""
    import torch

    if isinstance(spec, str):
        spec = EncoderSpec.parse(spec)
    return encoder_class(spec.family)(spec, torch.device(device), **options)


def resolve_device(device: str) -> "torch.device":
    """``auto`` -> cuda when available, else cpu."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EncoderSpecError(f"--device {device}: CUDA is not available on this machine (use --device cpu)")
    return torch.device(device)
