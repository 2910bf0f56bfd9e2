"""``perceiver-mm``: DeepMind's pretrained multimodal Perceiver fine-tuned on cached frames and audio (seeds/002)."""

from alex.lazy import lazy_exports

_EXPORTS = {"PerceiverMMConfig": ".configuration_perceiver_mm", "PerceiverMMForVideoClassification": ".modeling_perceiver_mm",
            "PerceiverMMOptions": ".options"}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
