"""``pixels``: frames resized to S x S and flattened to S*S*3 values in [0, 1]. No weights.

A baseline that shows what the learned encoders add, and a fast encoder for tests.
``pixels`` is 16 x 16 (768 values); ``pixels:32`` is 32 x 32.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a usage error about a pixels encoder is reported without loading torch
    import torch

from alex.errors import EncoderSpecError
from alex.pipeline.encoders.spec import EncoderSpec
from alex.pipeline.encoders.transforms import ResizeCrop
from alex.pipeline.steps import StepSpec

DEFAULT_SIZE = 16


class PixelsEncoder:
    family = "pixels"

    @staticmethod
    def identity(spec: EncoderSpec, **_: Any) -> dict[str, Any]:
        if spec.weights not in (None, "random", "none"):
            raise EncoderSpecError(f"pixels has no weights; got @{spec.weights}")
        try:
            size = int(spec.model) if spec.model else DEFAULT_SIZE
        except ValueError:
            raise EncoderSpecError(f"pixels:{spec.model}: the model part is the side length in pixels, e.g. pixels:32") from None
        if not 1 <= size <= 512:
            raise EncoderSpecError(f"pixels:{size}: side length must be between 1 and 512")
        return {"family": "pixels", "model": str(size), "weights": None, "spec": f"pixels:{size}"}

    def __init__(self, spec: EncoderSpec, device: torch.device, **_: Any):
        self._identity = self.identity(spec)
        self.size = int(self._identity["model"])
        self.device = device
        self.dim = self.size * self.size * 3
        # A box filter averages every source pixel: an honest thumbnail, no aliasing.
        self.transform = ResizeCrop(self.size, interpolation="box", mode="squash")
        self.steps = StepSpec("frame", transform=self.transform)

    def encode(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, S, S, 3) uint8 -> (B, S*S*3) float in [0, 1], row-major (y, x, channel); no autograd graph."""
        return batch.detach().reshape(batch.shape[0], -1).float().div_(255.0)

    def config(self) -> dict[str, Any]:
        return {
            **self._identity,
            "dim": self.dim,
            "preprocessing": self.transform.to_dict(),
        }
