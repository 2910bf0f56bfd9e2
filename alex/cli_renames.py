"""Old option spellings, still accepted for one release with a note that names the new one.

One name means one thing in every command (DESIGN.md, "Options"): a store is ``--store``, a split
name is ``--split`` (train's fractions became ``--split-fractions``), a count of demo videos is
``--num-videos`` (``--videos`` is a folder). Old command lines keep working until the release
after this one: the command rewrites them before click parses, and says so on stderr.
"""

from __future__ import annotations

from typing import Callable

import click
from typer.core import TyperCommand

# command -> {old flag: new flag}
RENAMED_FLAGS: dict[str, dict[str, str]] = {
    "train": {"--features": "--store", "--split": "--split-fractions"},
    "evaluate": {"--features": "--store"},
    "predict": {"--features": "--store"},
    "demo": {"--videos": "--num-videos"},
}
# command -> the option its old positional argument now is
POSITIONAL_TO_OPTION: dict[str, str] = {"info": "--store", "verify": "--store", "compact": "--store"}
# commands whose bare STORE argument is a spelling of their own (no note): `alex verify STORE`
QUIET_POSITIONAL = {"verify", "compact"}


def _note(text: str) -> None:
    click.echo(f"note: {text} (the old spelling is accepted until the next release)", err=True)


def rewrite_args(command: str, args: list[str], note: Callable[[str], None] = _note) -> list[str]:
    """``args`` with the old spellings of ``command`` replaced by the new ones (``--old V``,
    ``--old=V``, and for ``info`` a bare store path), one note per old spelling used."""
    renamed = RENAMED_FLAGS.get(command, {})
    positional = POSITIONAL_TO_OPTION.get(command)
    out: list[str] = []
    noted: set[str] = set()
    for arg in args:
        flag, eq, value = arg.partition("=")
        if flag in renamed:
            new = renamed[flag]
            if flag not in noted:
                note(f"alex {command} {flag} is now {new}")
                noted.add(flag)
            out.append(new + eq + value)
            continue
        if positional and not arg.startswith("-") and not _is_option_value(out):
            if positional not in noted and command not in QUIET_POSITIONAL:
                note(f"alex {command} STORE is now alex {command} {positional} STORE")
                noted.add(positional)
            out.extend([positional, arg])
            continue
        out.append(arg)
    return out


FLAGS_WITHOUT_VALUE = {"--json", "--no-json", "--help", "-h", "--repair", "--no-repair"}


def _is_option_value(previous: list[str]) -> bool:
    """Whether the next argument is the value of the option just before it (``--store X``)."""
    last = previous[-1] if previous else ""
    return last.startswith("-") and "=" not in last and last not in FLAGS_WITHOUT_VALUE


def alex_command(command: str) -> type[TyperCommand]:
    """A typer command class that accepts ``command``'s old spellings (see ``rewrite_args``) and
    shows ``--help`` as the flag it is (typer labels every flag ``<bool>``)."""

    class Renaming(TyperCommand):
        def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
            return super().parse_args(ctx, rewrite_args(command, list(args)))

        def get_help_option(self, ctx: click.Context) -> click.Option | None:
            option = super().get_help_option(ctx)
            if option is not None:
                option.metavar = ""
            return option

    Renaming.__name__ = f"Renaming_{command}"
    return Renaming
