"""``perceiver``: transformers' Perceiver as a classifier over cached features."""

from alex.lazy import lazy_exports

_EXPORTS = {"PerceiverHeadConfig": ".configuration_perceiver", "PerceiverHead": ".modeling_perceiver",
            "PerceiverOptions": ".options"}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
