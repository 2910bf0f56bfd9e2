"""VL-T5 and VL-BART on cached video features (Cho et al. 2021, "Unifying Vision-and-Language Tasks
via Text Generation"; seeds/004). The visual features are encoded outside the model (here: once, by
``alex extract``); ``VisualEmbedding`` projects them into T5's width, and the joint encoder
reads the text token embeddings followed by the visual embeddings under one attention mask.
T5's decoder generates the answer: a caption, an answer, or a class's label word.

As in VL-T5's ``JointEncoder``, T5's relative position bias applies between text tokens only, and
BART's absolute positions to text tokens only (VL-BART): the visual tokens get none (their order
and time come from their own embeddings), so a video's outputs do not depend on how far its
prompt is padded in a batch."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import AutoModelForSeq2SeqLM, GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput

from alex.errors import UsageError
from alex.heads.auto import register_model
from alex.heads.t5.configuration_t5 import AlexT5Config
from alex.heads.time_encoding import Time2Vec, build_time_encoding


class VisualEmbedding(nn.Module):
    """Per input: Linear + LayerNorm of the cached features (VL-T5's feature embedding), plus a
    time embedding of each token's timestamp (the Time2Vec module of the LLM head) and a
    frame-order embedding (VL-T5's image order embedding) of its step's index: the tokens of one
    stored step (a clip's token grid) share their order. Inputs are concatenated."""

    def __init__(self, inputs: list[str], input_dims: list[int], width: int, timestamp_encoding: str, max_steps: int):
        super().__init__()
        self.inputs = list(inputs)
        self.feat_embedding = nn.ModuleDict(
            {name: nn.Sequential(nn.Linear(dim, width), nn.LayerNorm(width)) for name, dim in zip(inputs, input_dims)}
        )
        self.time_embedding = build_time_encoding(timestamp_encoding, width)
        self.order_embedding = nn.Embedding(max_steps, width)
        self.max_steps = max_steps

    def forward(self, features: dict[str, torch.Tensor], timestamps: dict[str, torch.Tensor],
                masks: dict[str, torch.Tensor], steps: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``steps``: per input, each token's step index (B, N) (default: one step per token).
        -> (B, N, width) embeddings and (B, N) attention mask (1 for a real token)."""
        embeddings, keep = [], []
        for name in self.inputs:
            x = self.feat_embedding[name](features[name].to(self.order_embedding.weight.dtype))  # (B, N, W)
            real = masks[name].bool()  # (B, N)
            order = steps[name] if steps is not None and name in steps else torch.arange(x.shape[1], device=x.device).expand_as(real)
            order = order.masked_fill(~real, 0)  # (B, N)
            if int(order.max()) >= self.max_steps:
                raise UsageError(f"input '{name}' has a video of {int(order.max()) + 1} steps, more than this head's "
                                 f"frame-order embedding holds (max_steps {self.max_steps}); train with --set "
                                 f"max_steps={int(order.max()) + 1} or sample fewer steps")
            x = x + self.order_embedding(order)  # (B, N, W)
            if self.time_embedding is not None:
                x = x + self.time_embedding(timestamps[name]).to(x.dtype)
            embeddings.append(x)
            keep.append(masks[name].long())
        return torch.cat(embeddings, dim=1), torch.cat(keep, dim=1)


class AlexT5ForConditionalGeneration(PreTrainedModel, GenerationMixin):
    config_class = AlexT5Config
    base_model_prefix = "alex_t5"
    main_input_name = "input_ids"

    def __init__(self, config: AlexT5Config, language_model: PreTrainedModel | None = None):
        """``language_model``: a loaded T5 or BART to wrap (built from ``config.seq2seq_config`` when None,
        as in ``from_pretrained``)."""
        super().__init__(config)
        text = config.text_model_config()
        self.language_model = language_model if language_model is not None else AutoModelForSeq2SeqLM.from_config(text)
        self.visual = VisualEmbedding(config.inputs, config.input_dims, text.d_model, config.timestamp_encoding,
                                      config.max_steps)
        self._text_length: int | None = None  # text tokens ahead of the visual ones in the encoder call under way
        encoder = self.language_model.get_encoder()
        if config.backbone == "t5":
            _bias_between_text_only(encoder.block[0].layer[0].SelfAttention, self)
        else:
            _positions_for_text_only(encoder.embed_positions, self)
        self.post_init()

    def joint_inputs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                     features: dict[str, torch.Tensor] | None, timestamps: dict[str, torch.Tensor] | None,
                     masks: dict[str, torch.Tensor] | None,
                     steps: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Text token embeddings followed by visual embeddings, one joint mask: (B, L + N, d), (B, L + N)."""
        text = self.language_model.get_input_embeddings()(input_ids)  # (B, L, d); BART's embedding scales itself
        mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
        if not features:
            return text, mask
        visual, visual_mask = self.visual(features, timestamps, masks, steps)
        return torch.cat([text, visual.to(text.dtype)], dim=1), torch.cat([mask, visual_mask.to(mask.dtype)], dim=1)

    def encode(self, input_ids, attention_mask=None, features=None, timestamps=None, masks=None, steps=None):
        embeds, mask = self.joint_inputs(input_ids, attention_mask, features, timestamps, masks, steps)
        self._text_length = input_ids.shape[1]
        try:
            return self.language_model.get_encoder()(inputs_embeds=embeds, attention_mask=mask), mask
        finally:
            self._text_length = None

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        features: dict[str, torch.Tensor] | None = None,
        timestamps: dict[str, torch.Tensor] | None = None,
        masks: dict[str, torch.Tensor] | None = None,
        labels: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        encoder_outputs: BaseModelOutput | None = None,
        steps: dict[str, torch.Tensor] | None = None,
        **kwargs: Any,
    ):
        if encoder_outputs is None:
            encoder_outputs, attention_mask = self.encode(input_ids, attention_mask, features, timestamps, masks, steps)
        return self.language_model(encoder_outputs=encoder_outputs, attention_mask=attention_mask, labels=labels,
                       decoder_input_ids=decoder_input_ids, **kwargs)

    @torch.no_grad()
    def generate(self, input_ids=None, attention_mask=None, features=None, timestamps=None, masks=None, steps=None,
                 **kwargs):
        """Encode text + video once, then let T5's decoder generate with this head's
        ``generation_config`` (greedy, ``max_new_tokens``; keyword arguments override it)."""
        encoder_outputs, mask = self.encode(input_ids, attention_mask, features, timestamps, masks, steps)
        kwargs.setdefault("generation_config", self.generation_config)
        return self.language_model.generate(encoder_outputs=encoder_outputs, attention_mask=mask, **kwargs)

    def estimate_tokens(self, inputs: dict[str, Any]) -> int:
        visual = sum(int(m.sum()) for m in inputs.get("masks", {}).values())
        return int(inputs["attention_mask"].sum()) + visual if "attention_mask" in inputs else visual

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if module is self.language_model or any(module is m for m in self.language_model.modules()):
            return  # T5 / BART initialises (or loads) its own weights
        super()._init_weights(module)
        if isinstance(module, Time2Vec):
            module.reset_time_parameters()



def _bias_between_text_only(attention: nn.Module, head: AlexT5ForConditionalGeneration) -> None:
    """Make the encoder's relative position bias (computed once, by its first attention layer, and
    shared by the others) cover text-text pairs only: (1, H, L, L) for the ``head._text_length``
    text tokens, zeros wherever a visual token is involved (VL-T5, Cho et al. 2021)."""
    compute = attention.compute_bias

    def compute_bias(query_length: int, key_length: int, device: Any = None, **kwargs: Any) -> torch.Tensor:
        text = head._text_length
        if text is None or (query_length, key_length) == (text, text):
            return compute(query_length, key_length, device=device, **kwargs)
        kwargs = {k: v[:text] if torch.is_tensor(v) else v for k, v in kwargs.items()}  # positions, as they are named
        bias = compute(text, text, device=device, **kwargs)  # (1, H, L, L)
        return nn.functional.pad(bias, (0, key_length - text, 0, query_length - text))  # (1, H, L + N, L + N)

    attention.compute_bias = compute_bias


def _positions_for_text_only(positions: nn.Module, head: AlexT5ForConditionalGeneration) -> None:
    """BART's learned absolute positions for the ``head._text_length`` text tokens only: the visual
    tokens after them get none (VL-BART, Cho et al. 2021: their order and time come from their own
    embeddings), so they do not move with the prompt's padding."""
    compute = positions.forward

    def forward(*args: Any, **kwargs: Any) -> torch.Tensor:
        out = compute(*args, **kwargs)  # (..., L + N, d)
        text = head._text_length
        if text is None or text >= out.shape[-2]:
            return out
        keep = (torch.arange(out.shape[-2], device=out.device) < text).to(out.dtype)[:, None]  # (L + N, 1)
        return out * keep

    positions.forward = forward


register_model(AlexT5ForConditionalGeneration, "AutoModelForSeq2SeqLM")
