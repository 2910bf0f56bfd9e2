"""The attentive probe of V-JEPA (Bardes et al. 2024, "Revisiting Feature Prediction for Learning
Visual Representations from Video", app/vjepa evaluation): learnable query tokens attend to the
frozen features through one cross-attention block; a linear layer classifies the pooled query.
Here the features are cached frame embeddings or tubelet tokens, with a time encoding added so
order matters."""

from __future__ import annotations

import torch
from torch import nn

from alex.heads.auto import register_model
from alex.heads.modeling_classification import ClassificationHead
from alex.heads.probe.configuration_probe import ProbeConfig


class CrossAttention(nn.Module):
    def __init__(self, width: int, num_heads: int):
        super().__init__()
        if width % num_heads:
            raise ValueError(f"width {width} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, q: torch.Tensor, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        B, Q, W = q.shape
        N, H = x.shape[1], self.num_heads
        query = self.q(q).view(B, Q, H, W // H).transpose(1, 2)  # (B, H, Q, W/H)
        key, value = self.kv(x).view(B, N, 2, H, W // H).permute(2, 0, 3, 1, 4)  # 2 x (B, H, N, W/H)
        attn_mask = mask[:, None, None, :] if mask is not None else None  # (B, 1, 1, N), True = attend
        out = nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask)  # (B, H, Q, W/H)
        return self.proj(out.transpose(1, 2).reshape(B, Q, W))


class Mlp(nn.Sequential):
    def __init__(self, width: int, ratio: float):
        hidden = int(width * ratio)
        super().__init__(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))


class CrossAttentionBlock(nn.Module):
    """q = q + xattn(q, norm1(x)); q = q + mlp(norm2(q))  (V-JEPA's CrossAttentionBlock)."""

    def __init__(self, width: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.xattn = CrossAttention(width, num_heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = Mlp(width, mlp_ratio)

    def forward(self, q: torch.Tensor, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        q = q + self.xattn(q, self.norm1(x), mask)
        return q + self.mlp(self.norm2(q))


class SelfAttentionBlock(nn.Module):
    def __init__(self, width: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = CrossAttention(width, num_heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = Mlp(width, mlp_ratio)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        h = self.norm1(q)
        q = q + self.attn(h, h, None)
        return q + self.mlp(self.norm2(q))


class AttentiveProbe(ClassificationHead):
    config_class = ProbeConfig

    def __init__(self, config: ProbeConfig):
        super().__init__(config)
        width = config.hidden_size
        self.query_tokens = nn.Parameter(torch.zeros(1, config.num_queries, width))
        self.cross_attention_block = CrossAttentionBlock(width, config.num_heads, config.mlp_ratio)
        self.blocks = nn.ModuleList(
            SelfAttentionBlock(width, config.num_heads, config.mlp_ratio) for _ in range(config.depth - 1)
        )
        self.norm = nn.LayerNorm(width)
        self.classifier = nn.Linear(width, config.num_labels)
        self.post_init()

    def classify(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q = self.query_tokens.expand(tokens.shape[0], -1, -1)  # (B, Q, W)
        q = self.cross_attention_block(q, tokens, mask)
        for block in self.blocks:
            q = block(q)
        return self.classifier(self.norm(q).mean(dim=1))  # (B, C)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if module is self:
            from transformers import initialization as init

            init.trunc_normal_(self.query_tokens, std=self.config.initializer_range)


register_model(AttentiveProbe, "AutoModelForVideoClassification")
