"""What the classification heads share: the feature tokenizer, the loss and weight initialisation.
A head implements ``classify(tokens, mask) -> logits``.

``FeatureTokenizer``: cached features -> one token sequence: per input a LayerNorm and a projection
to the head's width (none when the input already has it: V-JEPA's probe reads the encoder's tokens
as they are), plus a modality embedding and a time encoding; inputs are concatenated along tokens
(the video+audio setup of Perceiver fine-tuning, seeds/002).

With ``clips_per_video`` K > 1, each video's time span is cut into K clips; the head classifies
each clip's tokens alone, trains on the mean of the clips' losses, and predicts the mean of their
probabilities (V-JEPA's multi-clip evaluation, Bardes et al. 2024; its ``logits`` are the log of
that mean)."""

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
        self.projections = nn.ModuleDict(
            {name: nn.Identity() if dim == width else nn.Linear(dim, width) for name, dim in zip(inputs, input_dims)}
        )
        self.modality = nn.Embedding(len(inputs), width)
        self.time = build_time_encoding(time_encoding, width)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        features: dict[str, torch.Tensor],  # name -> (B, T_i, D_i)
        timestamps: dict[str, torch.Tensor],  # name -> (B, T_i) seconds
        masks: dict[str, torch.Tensor],  # name -> (B, T_i) bool, True where a real step
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> tokens (B, N, W), mask (B, N), their times (B, N), inputs concatenated along tokens."""
        tokens, keep, times = [], [], []
        for i, name in enumerate(self.inputs):
            x = self.projections[name](self.norms[name](features[name].float()))  # (B, T_i, W)
            x = x + self.modality.weight[i]
            if self.time is not None:
                x = x + self.time(timestamps[name])
            tokens.append(x)
            keep.append(masks[name].bool())
            times.append(timestamps[name].float())
        return self.dropout(torch.cat(tokens, dim=1)), torch.cat(keep, dim=1), torch.cat(times, dim=1)


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
        tokens, mask, times = self.tokenizer(features, timestamps, masks)  # (B, N, W), (B, N), (B, N)
        clips = self.config.clips_per_video
        if clips == 1:
            logits = self.classify(tokens, mask)  # (B, C)
            loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
            return SequenceClassifierOutput(loss=loss, logits=logits)
        in_clip = clip_masks(times, mask, clips)  # (K, B, N)
        present = in_clip.any(-1)  # (K, B): a short video may leave a clip empty
        probabilities, losses = 0.0, []
        for k in range(clips):
            keep = in_clip[k] | ~present[k][:, None]  # an empty clip attends anywhere, and then counts for nothing
            clip_logits = self.classify(tokens, keep & mask)  # (B, C)
            probabilities = probabilities + clip_logits.softmax(-1) * present[k][:, None]
            if labels is not None:
                losses.append(nn.functional.cross_entropy(clip_logits, labels, reduction="none") * present[k])
        counts = present.sum(0).clamp(min=1)  # (B,)
        logits = (probabilities / counts[:, None]).clamp(min=1e-12).log()  # (B, C): log of the mean probability
        loss = (torch.stack(losses).sum(0) / counts).mean() if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def estimate_tokens(self, inputs: dict[str, Any]) -> int:
        """Real (unpadded) tokens in a batch, for the Trainer's FLOP count."""
        return int(sum(mask.sum() for mask in inputs["masks"].values()))

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, Time2Vec):
            module.reset_time_parameters()


def clip_masks(times: torch.Tensor, mask: torch.Tensor, clips: int) -> torch.Tensor:
    """(K, B, N): which real tokens fall in each of K equal spans of their video's time, from its
    first to its last token (the last span includes its end)."""
    real = mask.any(-1)  # (B,)
    start = torch.where(real, times.masked_fill(~mask, float("inf")).amin(-1), 0.0)  # (B,) first token's time
    end = torch.where(real, times.masked_fill(~mask, float("-inf")).amax(-1), 0.0)  # (B,) last token's time
    width = ((end - start) / clips).clamp(min=1e-9)[:, None]  # (B, 1)
    index = ((times - start[:, None]) / width).floor().clamp(0, clips - 1).long()  # (B, N)
    return torch.stack([(index == k) & mask for k in range(clips)])  # (K, B, N)
