"""LanguageBind's video preprocessing (spec §4.1) in numpy, for the decode workers, without the
reference's random horizontal flip: /255, normalise with the OpenAI CLIP mean and std,
short-side scale to 224 with bilinear interpolation *without antialiasing* (torch's
``interpolate(mode="bilinear", align_corners=False)``), centre crop 224."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def _axis_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of torch's bilinear, align_corners=False, no antialias."""
    scale = np.float32(n_in / n_out)  # in float32, as torch computes it
    src = np.maximum((np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5), np.float32(0))
    low = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    high = np.minimum(low + 1, n_in - 1)
    return low, high, (src - low).astype(np.float32)


def bilinear_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W, C) float32 -> (height, width, C) float32."""
    y0, y1, wy = _axis_weights(image.shape[0], height)
    x0, x1, wx = _axis_weights(image.shape[1], width)
    rows = image[y0] * (1 - wy)[:, None, None] + image[y1] * wy[:, None, None]  # (height, W, C)
    return rows[:, x0] * (1 - wx)[None, :, None] + rows[:, x1] * wx[None, :, None]


@dataclass(frozen=True)
class LanguageBindFrames:
    """(H, W, 3) uint8 -> (size, size, 3) float32, normalised as LanguageBind expects."""

    size: int = 224
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        x = (rgb.astype(np.float32) / 255.0 - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        h, w = x.shape[:2]
        if h <= w:  # pytorchvideo ShortSideScale: the long side is floor(long / short * size)
            new_h, new_w = self.size, int(math.floor(w / h * self.size))
        else:
            new_h, new_w = int(math.floor(h / w * self.size)), self.size
        x = bilinear_resize(x, new_h, new_w)
        top, left = int(round((new_h - self.size) / 2.0)), int(round((new_w - self.size) / 2.0))
        return np.ascontiguousarray(x[top : top + self.size, left : left + self.size])
