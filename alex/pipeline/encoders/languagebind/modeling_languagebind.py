"""``LanguageBindVideo`` (spec §2-§3, §6-§7): a CLIP text tower and a CLIP vision tower whose
every layer adds a temporal embedding and a temporal self-attention across the frames of the
same token position, before the usual spatial attention and MLP.

Key names are the published ones (``vision_model.encoder.layers.N.temporal_attn.q_proj.weight``,
``vision_model.pre_layrnorm``, ``visual_projection.weight``, ``logit_scale``...), so
``load_state_dict(strict=True)`` takes a checkpoint as published. The spatial and temporal
attention blocks and the MLP are transformers' own ``CLIPAttention`` and ``CLIPMLP`` (the
CLIPAttention math of spec §3.5); the text tower is transformers' ``CLIPTextModel``.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import CLIPTextModel
from transformers.models.clip.modeling_clip import CLIPAttention, CLIPMLP

from alex.errors import EncoderSpecError

from alex.pipeline.encoders.languagebind.configuration_languagebind import LanguageBindVideoConfig


class VisionEmbeddings(nn.Module):
    """Per frame: conv patches, a CLS vector in front, learned positions (spec §3.2). With
    ``clip_type='vl_new'`` the conv is 3-D (tubes of ``tube_size`` frames) and each frame has
    its own CLS vector."""

    def __init__(self, config):
        super().__init__()
        self.vl_new = getattr(config, "clip_type", "vl") == "vl_new"
        self.tube = getattr(config, "tube_size", 1)
        d, patch = config.hidden_size, config.patch_size
        if self.vl_new:
            self.class_embedding = nn.Parameter(torch.randn(config.num_frames // self.tube, d))
            self.patch_embedding = nn.Conv3d(config.num_channels, d, (self.tube, patch, patch), (self.tube, patch, patch), bias=False)
        else:
            self.class_embedding = nn.Parameter(torch.randn(d))
            self.patch_embedding = nn.Conv2d(config.num_channels, d, patch, patch, bias=False)
        self.num_positions = (config.image_size // patch) ** 2 + 1
        self.position_embedding = nn.Embedding(self.num_positions, d)
        self.register_buffer("position_ids", torch.arange(self.num_positions).expand((1, -1)), persistent=True)

    def forward(self, pixels: torch.Tensor, frames: int) -> torch.Tensor:
        """(B*T, C, H, W), frame-minor -> (B*T, N, D)."""
        if self.vl_new:
            B = pixels.shape[0] // frames
            clips = pixels.view(B, frames, *pixels.shape[1:]).transpose(1, 2)  # (B, C, T, H, W)
            patches = self.patch_embedding(clips.to(self.patch_embedding.weight.dtype))  # (B, D, T/tube, h, w)
            patches = patches.flatten(3).permute(0, 2, 3, 1).reshape(B * (frames // self.tube), -1, patches.shape[1])
            cls = self.class_embedding.repeat(B, 1)[:, None, :]  # (B*T, 1, D): frame t gets its own
        else:
            patches = self.patch_embedding(pixels.to(self.patch_embedding.weight.dtype))  # (B*T, D, h, w)
            patches = patches.flatten(2).transpose(1, 2)  # (B*T, h*w, D)
            cls = self.class_embedding.expand(patches.shape[0], 1, -1)
        tokens = torch.cat([cls.to(patches.dtype), patches], dim=1)
        return tokens + self.position_embedding(self.position_ids)


class EncoderLayer(nn.Module):
    """(a) + temporal embedding, (b) + temporal attention across frames of one token position,
    (c) + spatial attention within each frame, (d) + MLP; pre-LN residuals (spec §3.5)."""

    def __init__(self, config):
        super().__init__()
        self.frames = config.num_frames
        self.self_attn = CLIPAttention(config)
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = CLIPMLP(config)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.add_time_attn = getattr(config, "add_time_attn", False)
        if self.add_time_attn:
            self.temporal_embedding = nn.Parameter(torch.randn(1, config.num_frames, config.hidden_size) * 0.02)
            self.temporal_attn = CLIPAttention(config)
            self.temporal_layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def temporal(self, x: torch.Tensor) -> torch.Tensor:
        """Steps (a) and (b): (B*T, N, D) -> (B*T, N, D); information moves across frames only
        between tokens of the same position."""
        T = self.frames
        if not self.add_time_attn or T == 1:
            return x
        BT, N, D = x.shape
        B = BT // T
        x = (x.view(B, T, N, D) + self.temporal_embedding[:, :T, None, :]).view(BT, N, D)  # all tokens, CLS included
        sequences = x.view(B, T, N, D).permute(0, 2, 1, 3).reshape(B * N, T, D)  # (B*N, T, D)
        mixed = self.temporal_attn(self.temporal_layer_norm1(sequences))[0]
        return x + mixed.view(B, N, T, D).permute(0, 2, 1, 3).reshape(BT, N, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.temporal(x)
        x = x + self.self_attn(self.layer_norm1(x))[0]
        return x + self.mlp(self.layer_norm2(x))


class Encoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_hidden_layers))


class VisionTransformer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embeddings = VisionEmbeddings(config)
        self.pre_layrnorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)  # the published spelling
        self.encoder = Encoder(config)
        self.post_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, C, T, H, W) -> pooled (B, D) and the 1 + layers hidden states, each (B*T, N, D)."""
        B, C, T, H, W = pixel_values.shape
        frames = pixel_values.permute(0, 2, 1, 3, 4).reshape(B * T, C, H, W)  # frame-minor
        x = self.pre_layrnorm(self.embeddings(frames, T))  # patch dropout is a no-op at eval (spec §3.3)
        hidden = [x]
        for layer in self.encoder.layers:
            x = layer(x)
            hidden.append(x)
        cls = self.post_layernorm(x[:, 0])  # (B*T, D), per frame
        return cls.view(B, T, -1).mean(dim=1), hidden  # plain mean over frames (spec §3.6)


class LanguageBindVideo(nn.Module):
    def __init__(self, config: LanguageBindVideoConfig):
        super().__init__()
        self.config = config
        config.vision_config._attn_implementation = "sdpa"  # the same softmax(qk^T)v as CLIPAttention's eager path
        self.text_model = CLIPTextModel(config.text_config)
        self.vision_model = VisionTransformer(config.vision_config)
        self.visual_projection = nn.Linear(config.vision_config.hidden_size, config.projection_dim, bias=False)
        self.text_projection = nn.Linear(config.text_config.hidden_size, config.projection_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(config.logit_scale_init_value))

    def video_features(self, pixel_values: torch.Tensor, hidden_layer: int | None = None):
        """(B, 3, T, H, W) normalised pixels -> joint-space video embeddings (B, P), not normalised;
        with ``hidden_layer`` (e.g. -2, Video-LLaVA's) also that layer's tokens (B, T, N, D)."""
        pooled, hidden = self.vision_model(pixel_values)
        embedding = self.visual_projection(pooled)
        if hidden_layer is None:
            return embedding, None
        B, T = pixel_values.shape[0], pixel_values.shape[2]
        tokens = hidden[hidden_layer]
        return embedding, tokens.view(B, T, *tokens.shape[1:])

    def text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        pooled = self.text_model(input_ids=input_ids, attention_mask=attention_mask).pooler_output
        return self.text_projection(pooled)


def convert_state_dict(state: dict[str, torch.Tensor], model: LanguageBindVideo) -> dict[str, torch.Tensor]:
    """A published state dict in the names ``model`` loads strictly (spec §2.3):

    - LoRA-wrapped vision encoders (``vision_model.encoder.base_model.model.layers...`` with
      ``lora_A``/``lora_B``) are collapsed: W + (lora_alpha / r) B A, as ``_Video_merge`` was made;
    - deterministic position-id buffers the saving code did not persist are filled in, and those an
      older transformers did persist (``text_model.embeddings.position_ids``, 4.30) are accepted when
      they are the ``arange`` this model computes, refused otherwise.
    Anything else (a missing weight, an unknown key) is left for ``strict=True`` to refuse.
    """
    vision = model.config.vision_config
    out: dict[str, torch.Tensor] = {}
    lora: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        key = key.replace("vision_model.encoder.base_model.model.", "vision_model.encoder.")
        key = key.replace(".base_layer.", ".")
        if ".lora_A." in key or ".lora_B." in key:
            target = key.split(".lora_")[0]
            lora.setdefault(target, {})["A" if ".lora_A." in key else "B"] = value
            continue
        out[key] = value
    for target, pair in lora.items():
        rank = pair["A"].shape[0]
        scale = getattr(vision, "lora_alpha", 16) / rank
        weight = out[target + ".weight"]
        out[target + ".weight"] = weight + scale * (pair["B"].float() @ pair["A"].float()).to(weight.dtype)
    own = model.state_dict()
    for key in ("vision_model.embeddings.position_ids", "text_model.embeddings.position_ids"):
        if key in own and key not in out:
            out[key] = own[key]
        elif key in out and key not in own:  # persisted by transformers <= 4.30, a non-persistent buffer here
            saved = out.pop(key)
            if not torch.equal(saved.reshape(-1).long(), torch.arange(saved.numel())):
                raise EncoderSpecError(f"checkpoint key {key} holds {saved.reshape(-1)[:8].tolist()}..., not 0, 1, 2, ...: "
                                 "this model computes positions in order and cannot load other position ids")
    return out
