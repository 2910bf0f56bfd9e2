"""Spatial preprocessing that runs in the decode workers: PIL and numpy only, no torch.

Workers hand the encoder uint8 images already resized and cropped; scaling to [0, 1] and
mean/std normalisation happen on the encoder's device (``normalize_uint8``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

INTERPOLATIONS = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "lanczos": Image.Resampling.LANCZOS,
}


@dataclass(frozen=True)
class ResizeCrop:
    """Resize then crop to ``size`` x ``size``, as torchvision's Resize + CenterCrop do on PIL images.

    ``mode='shortest'``: the shorter side becomes ``resize`` (default ``size``), then a centre
    crop of ``size`` (CLIP's default);
    ``mode='squash'``: both sides become ``size``, aspect ratio not kept.
    """

    size: int
    interpolation: str = "bicubic"
    mode: str = "shortest"
    resize: int | None = None  # shorter side before the crop (default: size), e.g. 292 for a 256 crop

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> (size, size, 3) uint8."""
        image = Image.fromarray(rgb)
        resample = INTERPOLATIONS[self.interpolation]
        if self.mode == "squash":
            return np.array(image.resize((self.size, self.size), resample))
        width, height = image.size
        short, long = (width, height) if width <= height else (height, width)
        target = self.resize or self.size
        new_short, new_long = target, int(target * long / short)
        new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
        if (new_w, new_h) != (width, height):
            image = image.resize((new_w, new_h), resample)
        top = int(round((new_h - self.size) / 2.0))
        left = int(round((new_w - self.size) / 2.0))
        return np.array(image.crop((left, top, left + self.size, top + self.size)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
