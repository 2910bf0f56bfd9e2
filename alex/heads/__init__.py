"""Cached features -> models. One folder per head family (``options.py``, ``configuration_*.py``,
``modeling_*.py``, optionally ``processing_*.py``, and ``head.py``), one registry
(``alex.heads.registry``), one train / evaluate / predict path (``alex.heads.training``). Every
head is a transformers ``PreTrainedModel`` registered with the Auto classes. Heads read only the
store, never ``alex.pipeline``.

    from alex.heads import train, evaluate, predict, load_head
    from alex.heads.probe import ProbeOptions
    metrics = train(ProbeOptions(store="s/", labels="labels.csv", output="runs/probe", inputs=["pixels"]))
"""

from alex.lazy import lazy_exports

_EXPORTS = {
    "train": ".training", "evaluate": ".training", "predict": ".training", "load_run": ".training",
    "load_head": ".loading", "head_name_of": ".loading",
    "TrainOptions": ".options", "EvaluateOptions": ".options", "PredictOptions": ".options",
    "known_heads": ".registry", "options_class": ".registry", "head_family": ".registry", "HEADS": ".registry",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
