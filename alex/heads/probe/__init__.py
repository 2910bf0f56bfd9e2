"""``probe``: V-JEPA's attentive probe over cached features."""

from alex.lazy import lazy_exports

_EXPORTS = {"ProbeConfig": ".configuration_probe", "AttentiveProbe": ".modeling_probe", "ProbeOptions": ".options"}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
