"""Perceiver classifier over cached features (Jaegle et al. 2021, "Perceiver IO"; the
video+audio emotion-recognition fine-tuning of seeds/002). The inputs are the chosen encoders'
features, each projected to the Perceiver's input width, plus modality and time embeddings,
concatenated; transformers' ``PerceiverModel`` with its ``PerceiverClassificationDecoder``
cross-attends them into a latent array and decodes one classification query."""

from __future__ import annotations

import torch
from transformers.models.perceiver.modeling_perceiver import PerceiverClassificationDecoder, PerceiverModel

from alex.heads.auto import register_model
from alex.heads.modeling_classification import ClassificationHead
from alex.heads.perceiver.configuration_perceiver import PerceiverHeadConfig


class PerceiverHead(ClassificationHead):
    config_class = PerceiverHeadConfig

    def __init__(self, config: PerceiverHeadConfig):
        super().__init__(config)
        inner = config.perceiver_config()
        self.perceiver = PerceiverModel(
            inner,
            decoder=PerceiverClassificationDecoder(
                inner,
                num_channels=inner.d_latents,
                trainable_position_encoding_kwargs={"num_channels": inner.d_latents, "index_dims": 1},
                use_query_residual=True,
            ),
        )
        self.post_init()

    def classify(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # tokens (B, N, d_model) go straight in: no input preprocessor, the tokenizer did that.
        return self.perceiver(inputs=tokens, attention_mask=mask.long()).logits  # (B, C)

    @torch.no_grad()
    def _init_weights(self, module) -> None:
        super()._init_weights(module)
        self.perceiver._init_weights(module)  # latents and position encodings


register_model(PerceiverHead, "AutoModelForVideoClassification")
