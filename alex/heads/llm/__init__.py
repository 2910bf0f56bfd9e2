"""``llm``: the Time2Vec-fused causal LLM head with an action head (seeds/000): ``AlexProcessor``,
``AlexTextModel`` and ``AlexForAction``."""

from alex.lazy import lazy_exports

_EXPORTS = {"AlexTextConfig": ".configuration_alex", "AlexActionConfig": ".configuration_alex",
            "AlexTextModel": ".modeling_alex", "AlexForAction": ".modeling_alex",
            "AlexCausalLMOutput": ".modeling_alex", "AlexProcessor": ".processing_alex", "LLMOptions": ".options"}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
