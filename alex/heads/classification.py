"""What the classification heads share: config fields, the feature tokenizer, the loss, and
weight initialisation. A head implements ``classify(tokens, mask) -> logits``."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from alex.heads.time_encoding import Time2Vec, check_inputs, check_time_encoding
from alex.heads.tokens import FeatureTokenizer


class ClassificationHeadConfig(PretrainedConfig):
    """Inputs (store encoder names and their feature sizes), width, time encoding and labels."""

    def __init__(
        self,
        inputs: list[str] | None = None,
        input_dims: list[int] | None = None,
        hidden_size: int = 128,
        timestamp_encoding: str = "sinusoidal",
        dropout: float = 0.1,
        initializer_range: float = 0.02,
        **kwargs: Any,
    ):
        self.inputs, self.input_dims = check_inputs(inputs, input_dims)
        check_time_encoding(timestamp_encoding)
        self.hidden_size = hidden_size
        self.timestamp_encoding = timestamp_encoding
        self.dropout = dropout
        self.initializer_range = initializer_range
        super().__init__(**kwargs)
        if self.id2label and not getattr(self, "label2id", None):
            self.label2id = {label: int(i) for i, label in self.id2label.items()}


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
