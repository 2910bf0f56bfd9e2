"""The Time2Vec-fused causal LLM head with an action head (seeds/000): ``AlexProcessor``,
``AlexTextModel`` and ``AlexForAction``."""

from alex.heads.llm.configuration_alex import AlexTextConfig
from alex.heads.llm.modeling_alex import AlexForAction, AlexTextModel
from alex.heads.llm.processing_alex import AlexProcessor

__all__ = ["AlexTextConfig", "AlexTextModel", "AlexForAction", "AlexProcessor"]
