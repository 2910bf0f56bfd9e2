"""Command-line parameters derived from alex's options dataclasses (``alex.heads.options``), so that
every default lives in one place, the dataclass, as LeRobot derives its command line from
``configs/train.py``.

Each field becomes one typer parameter whose default is None, meaning "not given": the values the
user gave are passed to the dataclass and every other field keeps the dataclass default. Several
dataclasses (one per head) can share one command: their fields are united, and the help says
which heads a field belongs to and each head's default.
"""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import MISSING, Field, fields
from pathlib import Path
from typing import Any, List, Optional, Sequence

import typer

from alex.errors import UsageError
from alex.heads.options import flag_name, option_flags

SIMPLE_TYPES = (int, float, str, bool, Path)


def _base_type(annotation: Any) -> Any:
    """``int | None`` -> int; ``list[str]`` -> ``list``."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _base_type(args[0])
    return typing.get_origin(annotation) or annotation


def _cli_type(annotation: Any) -> Any:
    """How the value is written on the command line: simple types as they are, a dict as repeated
    ``KEY=VALUE`` strings, lists and tuples as one comma-separated string (the dataclass parses both)."""
    base = _base_type(annotation)
    if base in SIMPLE_TYPES:
        return base
    if base is dict:
        return List[str]
    return str


def _default(f: Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return MISSING


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _help(f: Field, owners: dict[str, Field], everyone: Sequence[str]) -> str:
    """The field's help, which heads it belongs to (when not all), and each one's default."""
    text = f.metadata.get("help", "")
    if set(owners) != set(everyone):
        text += f" (--head {', '.join(owners)})"
    defaults: dict[str, list[str]] = {}
    for owner, owner_field in owners.items():
        value = _default(owner_field)
        if value is not MISSING and value is not None and value != {} and "(default:" not in text:
            defaults.setdefault(_show(value), []).append(owner)
    if len(defaults) == 1:
        text += f" (default: {next(iter(defaults))})"
    elif defaults:
        text += " (default: " + "; ".join(f"{', '.join(heads)}: {value}" for value, heads in defaults.items()) + ")"
    return text


def parameters(classes: dict[str, type]) -> list[inspect.Parameter]:
    """One keyword parameter per field of the dataclasses ``classes`` (by owner name: a head, or the
    command), in declaration order, each defaulting to None (not given)."""
    owners: dict[str, dict[str, Field]] = {}
    hints: dict[str, Any] = {}
    for owner, cls in classes.items():
        cls_hints = typing.get_type_hints(cls)
        for f in fields(cls):
            owners.setdefault(f.name, {})[owner] = f
            hints.setdefault(f.name, cls_hints[f.name])
    out = []
    for name, by_owner in owners.items():
        f = next(iter(by_owner.values()))
        kind = _cli_type(hints[name])
        required = all(_default(g) is MISSING for g in by_owner.values()) and set(by_owner) == set(classes)
        text = _help(f, by_owner, list(classes))
        metavar = f.metadata.get("metavar")
        if f.metadata.get("argument"):
            info = typer.Argument(... if required else None, help=text, metavar=metavar or name.upper(), show_default=False)
        elif kind is bool:
            first, *others = option_flags(f)
            info = typer.Option(None, f"{first}/--no-{first[2:]}", *others, help=text, show_default=False, metavar="")
        else:
            info = typer.Option(... if required else None, *option_flags(f), help=text, metavar=metavar, show_default=False)
        annotation = kind if required else Optional[kind]
        out.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=annotation))
    return out


def given(values: dict[str, Any]) -> dict[str, Any]:
    """The parameters the user gave (None, or an empty repeated option, means not given)."""
    return {k: v for k, v in values.items() if v is not None and not (isinstance(v, (list, tuple)) and not v)}


def build(cls: type, values: dict[str, Any], context: str, owners: dict[str, list[str]] | None = None) -> Any:
    """``cls(**values)``, refusing options that ``cls`` does not have with a word on who has them."""
    known = {f.name: f for f in fields(cls)}
    for name in values:
        if name not in known:
            who = f" (an option of --head {', '.join(owners[name])})" if owners and owners.get(name) else ""
            raise UsageError(f"{flag_name(name)} does not apply to {context}{who}")
    return cls(**values)


def command(function_name: str, params: list[inspect.Parameter], handler: Any, doc: str) -> Any:
    """A function typer can register: its signature is ``params``; it calls ``handler(**values)``."""

    def run(**values: Any) -> Any:
        return handler(**values)

    run.__name__ = function_name
    run.__doc__ = doc
    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return run
