from __future__ import annotations

from typing import Any

from alex.heads.auto import register_config
from alex.heads.configuration_classification import ClassificationHeadConfig


class ProbeConfig(ClassificationHeadConfig):
    """Attentive probe: ``num_queries`` learnable queries, one cross-attention block
    (``num_heads`` heads, MLP ``mlp_ratio`` x width), then ``depth - 1`` self-attention blocks over
    the queries, as V-JEPA's AttentivePooler. ``num_heads`` defaults to width / 64 (V-JEPA: 16 heads
    at ViT-L's 1024), the nearest count that divides the width."""

    model_type = "alex_probe"

    def __init__(self, num_queries: int = 1, num_heads: int | None = None, mlp_ratio: float = 4.0, depth: int = 1,
                 **kwargs: Any):
        self.num_queries = num_queries
        self.mlp_ratio = mlp_ratio
        self.depth = depth
        super().__init__(**kwargs)
        self.num_heads = int(num_heads) if num_heads else heads_for(self.hidden_size)


def heads_for(width: int) -> int:
    """V-JEPA's 64 channels per head: the largest head count at most width / 64 that divides the width."""
    heads = max(1, width // 64)
    while width % heads:
        heads -= 1
    return heads


register_config(ProbeConfig)
