from __future__ import annotations

from typing import Any

from alex.heads.auto import register_config
from alex.heads.configuration_classification import ClassificationHeadConfig


class ProbeConfig(ClassificationHeadConfig):
    """Attentive probe: ``num_queries`` learnable queries, one cross-attention block
    (``num_heads`` heads, MLP ``mlp_ratio`` x width), then ``depth - 1`` self-attention blocks over
    the queries, as V-JEPA's AttentivePooler."""

    model_type = "alex_probe"

    def __init__(self, num_queries: int = 1, num_heads: int = 4, mlp_ratio: float = 4.0, depth: int = 1, **kwargs: Any):
        self.num_queries = num_queries
        self.num_heads = num_heads
        self.mlp_ratio = mlp_ratio
        self.depth = depth
        super().__init__(**kwargs)


register_config(ProbeConfig)
