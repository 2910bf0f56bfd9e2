"""``t5``: VL-T5 (Cho et al. 2021) on cached features."""

from alex.lazy import lazy_exports

_EXPORTS = {"AlexT5Config": ".configuration_t5", "AlexT5ForConditionalGeneration": ".modeling_t5",
            "VisualEmbedding": ".modeling_t5", "AlexT5Processor": ".processing_t5", "T5Collator": ".processing_t5",
            "T5Options": ".options"}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
