from __future__ import annotations

from typing import Any

from transformers import PerceiverConfig

from alex.heads.auto import register_config
from alex.heads.configuration_classification import ClassificationHeadConfig


class PerceiverHeadConfig(ClassificationHeadConfig):
    """Perceiver classifier over cached features. ``hidden_size`` is the Perceiver's input width
    (``d_model``); the latent array is ``num_latents`` x ``d_latents``."""

    model_type = "alex_perceiver"

    def __init__(
        self,
        num_latents: int = 32,
        d_latents: int = 128,
        num_blocks: int = 1,
        num_self_attends_per_block: int = 2,
        num_self_attention_heads: int = 4,
        num_cross_attention_heads: int = 1,
        attention_probs_dropout_prob: float = 0.1,
        **kwargs: Any,
    ):
        self.num_latents = num_latents
        self.d_latents = d_latents
        self.num_blocks = num_blocks
        self.num_self_attends_per_block = num_self_attends_per_block
        self.num_self_attention_heads = num_self_attention_heads
        self.num_cross_attention_heads = num_cross_attention_heads
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        super().__init__(**kwargs)

    def perceiver_config(self) -> PerceiverConfig:
        """The transformers PerceiverConfig of the inner model (labels included)."""
        return PerceiverConfig(
            num_latents=self.num_latents,
            d_latents=self.d_latents,
            d_model=self.hidden_size,
            num_blocks=self.num_blocks,
            num_self_attends_per_block=self.num_self_attends_per_block,
            num_self_attention_heads=self.num_self_attention_heads,
            num_cross_attention_heads=self.num_cross_attention_heads,
            attention_probs_dropout_prob=self.attention_probs_dropout_prob,
            initializer_range=self.initializer_range,
            id2label=self.id2label,
            label2id=self.label2id,
        )


register_config(PerceiverHeadConfig)
