"""The small protocol every encoder family implements (one family per file, chosen by name)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Protocol

import numpy as np
import torch


class FrameEncoder(Protocol):
    """A frozen model that maps preprocessed frames to one pooled vector each.

    ``transform`` runs in the decode workers (numpy/PIL only, picklable): (H, W, 3) uint8 RGB ->
    the uint8 array ``encode`` expects. ``encode`` runs on ``device`` under ``torch.no_grad``.
    """

    dim: int
    transform: Callable[[np.ndarray], np.ndarray]
    device: torch.device

    def encode(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, h, w, 3) uint8 on the encoder's device -> (B, dim) float."""
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
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


RANDOM_SEED = 0
