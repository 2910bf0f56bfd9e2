"""Cached features -> one token sequence: per input a LayerNorm and a projection to the head's
width, plus a modality embedding and a time encoding; inputs are concatenated along tokens
(the video+audio setup of Perceiver fine-tuning, seeds/002)."""

from __future__ import annotations

import torch
from torch import nn

from alex.heads.time_encoding import build_time_encoding


class FeatureTokenizer(nn.Module):
    def __init__(self, inputs: list[str], input_dims: list[int], width: int, time_encoding: str, dropout: float = 0.0):
        super().__init__()
        self.inputs = list(inputs)
        self.norms = nn.ModuleDict({name: nn.LayerNorm(dim) for name, dim in zip(inputs, input_dims)})
        self.projections = nn.ModuleDict({name: nn.Linear(dim, width) for name, dim in zip(inputs, input_dims)})
        self.modality = nn.Embedding(len(inputs), width)
        self.time = build_time_encoding(time_encoding, width)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        features: dict[str, torch.Tensor],  # name -> (B, T_i, D_i)
        timestamps: dict[str, torch.Tensor],  # name -> (B, T_i) seconds
        masks: dict[str, torch.Tensor],  # name -> (B, T_i) bool, True where a real step
    ) -> tuple[torch.Tensor, torch.Tensor]:
        tokens, keep = [], []
        for i, name in enumerate(self.inputs):
            x = self.projections[name](self.norms[name](features[name].float()))  # (B, T_i, W)
            x = x + self.modality.weight[i]
            if self.time is not None:
                x = x + self.time(timestamps[name])
            tokens.append(x)
            keep.append(masks[name].bool())
        return self.dropout(torch.cat(tokens, dim=1)), torch.cat(keep, dim=1)  # (B, N, W), (B, N)
