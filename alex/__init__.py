"""alex: decode videos once, cache frozen-encoder features in a sharded store, train light heads on them.

Heavy libraries (torch, open_clip, PyAV, transformers) are imported lazily, so ``import alex``
and ``alex --help`` answer at once. Importing alex makes transformers' Auto classes know its heads
(``AutoModel.from_pretrained(run)``) as soon as transformers loads them (``alex.heads.auto``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from alex.store.reader import Store


def open_store(path: str) -> "Store":
    """Open a feature store folder written by ``alex extract`` (read-only)."""
    from alex.store.reader import open_store as _open_store

    return _open_store(path)


__all__ = ["__version__", "open_store"]

from alex.heads import auto as _auto  # noqa: E402

_auto.install()
