"""The store inputs a head reads: config validation, and the signature that binds a trained head to
the features it was trained on (model, size, sampling, dtype)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from alex.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from alex.store.reader import Store

SIGNATURE_KEYS = ("spec", "dim", "sampling", "dtype")


def check_inputs(inputs: list[str] | None, input_dims: list[int] | None) -> tuple[list[str], list[int]]:
    """A config's store inputs and their feature sizes, validated to pair up."""
    names, dims = list(inputs or []), [int(d) for d in (input_dims or [])]
    if len(names) != len(dims):
        raise ValueError(f"inputs {names} and input_dims {dims} differ in length")
    return names, dims


def input_signature(store: Store, inputs: Sequence[str]) -> dict[str, dict[str, Any]]:
    """What each input's features are (model, size, sampling), to refuse mismatched stores later."""
    missing = [name for name in inputs if name not in store.encoders]
    if missing:
        raise UsageError(
            f"store {store.root} has no encoder {', '.join(repr(m) for m in missing)} "
            f"(it has: {', '.join(sorted(store.encoders)) or 'none'}); choose --inputs among those"
        )
    return {name: {key: store.encoders[name].get(key) for key in SIGNATURE_KEYS} for name in inputs}


def check_signature(store: Store, expected: dict[str, dict[str, Any]]) -> None:
    found = input_signature(store, list(expected))
    for name, want in expected.items():
        if found[name] != want:
            raise UsageError(
                f"input '{name}' of store {store.root} is {found[name]['spec']} "
                f"({found[name]['sampling']}, dim {found[name]['dim']}), but the head was trained on "
                f"{want['spec']} ({want['sampling']}, dim {want['dim']}): its features would mean something else"
            )
