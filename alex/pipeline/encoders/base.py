"""The small protocol every encoder family implements (one family per file, chosen by name)."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Protocol

if TYPE_CHECKING:  # the orchestrator imports this module before it knows a model must load
    import torch


@dataclass
class EncoderOutput:
    """What a token-producing encoder returns: one pooled vector per step (the ``frames`` table)
    and the dense arrays a head trains on (HDF5), e.g. ``{"tokens": (B, t, h, w, D)}``."""

    pooled: torch.Tensor  # (B, D)
    arrays: dict[str, torch.Tensor]


class FrameEncoder(Protocol):
    """A frozen model that maps the steps of a video to vectors.

    ``steps`` (a picklable ``StepSpec``) says how the decode workers build its input from the
    sampled frames: one frame, a clip of frames, or an audio window, preprocessed with numpy/PIL
    only. ``encode`` runs on ``device`` under ``torch.no_grad`` and returns (B, dim) pooled vectors
    (stored as the ``embedding`` array too) or an ``EncoderOutput`` with token arrays.
    """

    dim: int
    steps: Any  # alex.pipeline.steps.StepSpec
    device: torch.device

    @staticmethod
    def identity(spec: Any) -> dict[str, Any]:
        """Model and weights with defaults filled in; checks the weights can be had; loads nothing."""
        ...

    def encode(self, batch: torch.Tensor) -> "torch.Tensor | EncoderOutput":
        ...

    def config(self) -> dict[str, Any]:
        """Plain data describing model, weights and preprocessing, saved in ``store.json``."""
        ...


class TextEncoder(Protocol):
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """Texts -> (N, dim) float in the same space as ``encode``."""
        ...


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Build random weights reproducibly without disturbing the caller's global RNG."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


RANDOM_SEED = 0


def stored_geometry(stored: dict[str, Any] | None, model: str, weights: str | None) -> dict[str, Any] | None:
    """The model geometry (frames per clip, sizes...) an existing store recorded for the same model
    and weights, or None. Planning a rerun uses it instead of reading the model's config, so a
    rerun of a model encoder imports no torch, reads no config and asks no hub."""
    if stored is None or stored.get("model") != model or stored.get("weights") != weights:
        return None
    return stored.get("model_geometry")
