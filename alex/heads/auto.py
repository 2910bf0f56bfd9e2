"""transformers' Auto classes know alex's heads: after ``import alex``,
``AutoModel.from_pretrained(run)``, ``AutoConfig`` and ``AutoProcessor`` load any run folder.

Each head module registers its own classes with transformers' public ``register`` API when it is
imported (the last lines of ``configuration_*.py``, ``modeling_*.py`` and ``processing_*.py``).
``import alex`` must stay light (no torch, no transformers), and importing alex's heads while
transformers is still importing itself would be circular; so ``install()`` registers on first
use instead: once transformers' Auto mappings are loaded, a lookup of a key that is alex's (a
``model_type`` starting with ``alex_``, a config class from ``alex``) that is not registered yet
imports every head's modules first. Nothing is imported at import time.
"""

from __future__ import annotations

import functools
import importlib
import importlib.abc
import importlib.machinery
import sys
from typing import Any, Callable

# head modules that register themselves with transformers, by file name prefix
HEAD_MODULE_PREFIXES = (".configuration_", ".modeling_", ".processing_")
# transformers module -> (mapping class, test of whether a key is alex's)
MAPPINGS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "transformers.models.auto.configuration_auto": (
        "_LazyConfigMapping", lambda key: isinstance(key, str) and key.startswith("alex_")),
    "transformers.models.auto.auto_factory": (
        "_LazyAutoMapping", lambda key: getattr(key, "__module__", "").startswith("alex.")),
}
_registered = False


def register_config(config_class: type) -> None:
    from transformers import AutoConfig

    AutoConfig.register(config_class.model_type, config_class, exist_ok=True)


def register_model(model_class: type, *auto_classes: str) -> None:
    """``AutoModel`` and the task Auto classes named (e.g. ``AutoModelForCausalLM``) map the model's
    config class to it."""
    import transformers

    for name in ("AutoModel", *auto_classes):
        getattr(transformers, name).register(model_class.config_class, model_class, exist_ok=True)


def register_processor(config_class: type, processor_class: type) -> None:
    from transformers import AutoProcessor

    AutoProcessor.register(config_class, processor_class, exist_ok=True)


def head_modules(prefix: str) -> list[str]:
    """Modules of every registered head whose name starts with ``prefix`` (e.g. ``.modeling_``)."""
    from alex.heads.registry import HEADS

    names = []
    for package in HEADS.values():
        exports = getattr(importlib.import_module(package), "_EXPORTS", {})
        names.extend(package + module for module in dict.fromkeys(exports.values()) if module.startswith(prefix))
    return names


def register_auto_classes() -> None:
    """Register every head's config, model and processor now (importing their modules)."""
    global _registered
    _registered = True  # before the imports: a lookup made while they run must not start over
    try:
        for prefix in HEAD_MODULE_PREFIXES:
            for name in head_modules(prefix):
                importlib.import_module(name)
    except BaseException:
        _registered = False
        raise


def _registering(lookup: Callable[..., Any], is_alex: Callable[[Any], bool]) -> Callable[..., Any]:
    """A mapping's ``__getitem__`` / ``__contains__`` that registers alex's heads before the first
    lookup of one of alex's keys."""

    @functools.wraps(lookup)
    def wrapped(self: Any, key: Any, *args: Any) -> Any:
        if not _registered and is_alex(key):
            register_auto_classes()
        return lookup(self, key, *args)

    wrapped.__alex_registers__ = True  # type: ignore[attr-defined]
    return wrapped


def _patch(module: Any) -> None:
    """Make the Auto mapping class defined in ``module`` register alex's heads on demand."""
    class_name, is_alex = MAPPINGS[module.__name__]
    mapping = getattr(module, class_name, None)
    if mapping is None:  # another transformers layout: alex.heads.loading registers explicitly
        return
    for method in ("__getitem__", "__contains__"):
        lookup = mapping.__dict__.get(method)
        if lookup is not None and not getattr(lookup, "__alex_registers__", False):
            setattr(mapping, method, _registering(lookup, is_alex))


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    """Patches one of transformers' Auto mapping modules right after it has executed (no import
    happens in between: the patch only wraps two methods)."""

    def find_spec(self, fullname: str, path: Any, target: Any = None):
        if fullname not in MAPPINGS:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_patch(module: Any) -> None:
            exec_module(module)
            _patch(module)

        spec.loader.exec_module = exec_then_patch  # type: ignore[method-assign]
        return spec


def install() -> None:
    """Patch the Auto mappings already loaded, and the others when they load (once)."""
    if not any(isinstance(finder, _PatchAfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PatchAfterImport())
    for name in MAPPINGS:
        if name in sys.modules:
            _patch(sys.modules[name])
