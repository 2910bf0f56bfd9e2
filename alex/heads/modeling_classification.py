"""What the classification heads share: the feature tokenizer, the loss and weight initialisation.
A head implements ``classify(tokens, mask) -> logits``.

``FeatureTokenizer``: cached features -> one token sequence: per input a LayerNorm and a projection
to the head's width, plus a modality embedding and a time encoding; inputs are concatenated along
tokens (the video+audio setup of Perceiver fine-tuning, seeds/002)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from alex.heads.configuration_classification import ClassificationHeadConfig
from alex.heads.time_encoding import Time2Vec, build_time_encoding


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


class ClassificationHead(PreTrainedModel):
    config_class = ClassificationHeadConfig
    base_model_prefix = "head"
    main_input_name = "features"

    def __init__(self, config: ClassificationHeadConfig):
        super().__init__(config)
        self.tokenizer = FeatureTokenizer(
            config.inputs, config.input_dims, config.hidden_size, config.timestamp_encoding, config.dropout
        )

    def classify(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, N, W) tokens, (B, N) bool mask -> (B, num_labels) logits."""
        raise NotImplementedError

    def forward(
        self,
        features: dict[str, torch.Tensor],
        timestamps: dict[str, torch.Tensor],
        masks: dict[str, torch.Tensor],
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        tokens, mask = self.tokenizer(features, timestamps, masks)  # (B, N, W), (B, N)
        logits = self.classify(tokens, mask)  # (B, C)
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def estimate_tokens(self, inputs: dict[str, Any]) -> int:
        """Real (unpadded) tokens in a batch, for the Trainer's FLOP count."""
        return int(sum(mask.sum() for mask in inputs["masks"].values()))

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, Time2Vec):
            module.reset_time_parameters()
