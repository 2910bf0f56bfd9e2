"""Lazy package attributes (PEP 562), as transformers exposes its classes: a package lists what
it exports and from which submodule, and nothing heavy is imported until a name is used. This is
how ``alex --help`` can list every head's options without importing torch."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``exports``: name -> submodule (relative, e.g. ``.modeling_probe``). Returns the package's
    ``__getattr__`` and ``__dir__``."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name], package), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
