"""Encodings of continuous time (seconds) added to feature tokens.

``time2vec``: Time2Vec (Kazemi et al. 2019, "Time2Vec: Learning a Vector Representation of
Time"): one linear and k periodic components, t2v(t)[0] = w0 t + b0 and t2v(t)[i] =
sin(wi t + bi), projected to the model width. ``sinusoidal``: the fixed sin/cos encoding of
Vaswani et al. 2017 evaluated at real times (periods from 0.5 s to 10,000 s). ``none``: no time
information (order only through what the features carry).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from alex.heads.options import TIME_ENCODINGS


class Time2Vec(nn.Module):
    """(...,) seconds -> (..., width): Time2Vec with ``k`` periodic components, then a linear map."""

    def __init__(self, width: int, k: int = 32):
        super().__init__()
        self.w0 = nn.Parameter(torch.empty(1))  # linear term: w0 t + b0
        self.b0 = nn.Parameter(torch.empty(1))
        self.w = nn.Parameter(torch.empty(k))  # periodic terms: sin(wi t + bi)
        self.b = nn.Parameter(torch.empty(k))
        self.proj = nn.Linear(k + 1, width)
        self.reset_time_parameters()

    @torch.no_grad()
    def reset_time_parameters(self) -> None:
        """Gentle start: a slow linear trend and periods spread from 1 s to 10 min. Through
        transformers' ``initialization`` functions, which leave weights loaded by
        ``from_pretrained`` alone."""
        from transformers import initialization as init

        init.constant_(self.w0, 0.01)
        init.zeros_(self.b0)
        init.copy_(self.w, 2 * math.pi / torch.logspace(0, math.log10(600), self.w.numel()))
        init.copy_(self.b, torch.linspace(0, math.pi, self.b.numel()))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        t = t.unsqueeze(-1).float()  # (..., 1)
        features = torch.cat([self.w0 * t + self.b0, torch.sin(self.w * t + self.b)], dim=-1)  # (..., k + 1)
        return self.proj(features)


class SinusoidalTime(nn.Module):
    """(...,) seconds -> (..., width): fixed sin/cos at geometrically spaced periods.

    The frequencies are computed in ``forward`` rather than kept in a buffer, so nothing about
    them depends on how the module was created or loaded."""

    def __init__(self, width: int, min_period: float = 0.5, max_period: float = 10_000.0):
        super().__init__()
        self.width, self.min_period, self.max_period = width, min_period, max_period

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.width // 2
        steps = torch.arange(half, device=t.device, dtype=torch.float32) / max(1, half - 1)
        omega = 2 * math.pi / (self.min_period * (self.max_period / self.min_period) ** steps)  # (width // 2,)
        angles = t.unsqueeze(-1).float() * omega  # (..., width // 2)
        out = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
        if out.shape[-1] < self.width:
            out = nn.functional.pad(out, (0, self.width - out.shape[-1]))
        return out


def check_time_encoding(kind: str) -> str:
    """A config's ``timestamp_encoding``, validated."""
    if kind not in TIME_ENCODINGS:
        raise ValueError(f"timestamp_encoding {kind!r}: choose one of {', '.join(TIME_ENCODINGS)}")
    return kind


def build_time_encoding(kind: str, width: int) -> nn.Module | None:
    if kind == "time2vec":
        return Time2Vec(width)
    if kind == "sinusoidal":
        return SinusoidalTime(width)
    if kind == "none":
        return None
    raise ValueError(f"timestamp encoding {kind!r}: choose one of {', '.join(TIME_ENCODINGS)}")
