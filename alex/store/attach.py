"""A user's own files beside a store's views: ``alex query --attach preds=preds.parquet`` makes
``preds`` a view that joins with ``videos`` and ``frames``. The store stays read-only: an attached
file is read through DuckDB's readers and becomes one more allowed path, nothing more."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from alex.errors import UsageError

READERS = {".parquet": "read_parquet", ".csv": "read_csv", ".tsv": "read_csv", ".jsonl": "read_json",
           ".ndjson": "read_json", ".json": "read_json"}
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_attachments(items: list[str] | None) -> dict[str, Path]:
    """``["preds=p.parquet"]`` -> ``{"preds": Path("p.parquet")}``, checking names, files and formats."""
    files: dict[str, Path] = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or not IDENTIFIER.fullmatch(name) or not path:
            raise UsageError(f"--attach {item!r}: expected NAME=FILE with NAME a SQL identifier (e.g. --attach preds=preds.parquet)")
        if name.lower() in {n.lower() for n in files}:
            raise UsageError(f"--attach: the name {name} is given twice")
        file = Path(path)
        if file.suffix.lower() not in READERS:
            raise UsageError(f"--attach {name}={path}: cannot read {file.suffix or 'a file without a suffix'}; "
                             f"give Parquet, CSV or JSON Lines ({', '.join(READERS)})")
        if not file.is_file():
            raise UsageError(f"--attach {name}={path}: no such file")
        files[name] = file
    return files


def attach_views(con: duckdb.DuckDBPyConnection, files: dict[str, Path]) -> list[Path]:
    """One view per attached file; returns the files (to allow them on a locked connection).
    A name that is already a view of the store is refused: the store's own views win."""
    taken = {name.lower() for (name,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    resolved = []
    for name, file in files.items():
        if name.startswith("_"):
            raise UsageError(f"--attach {name}=...: names starting with _ are kept for the store's own views; choose another")
        if name.lower() in taken:
            raise UsageError(f"--attach {name}=...: {name} is a view of the store already; choose another name")
        path = file.resolve()
        reader = READERS[path.suffix.lower()]
        quoted = "'" + str(path).replace("'", "''") + "'"
        try:
            con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM {reader}({quoted})')
        except duckdb.Error as exc:
            raise UsageError(f"--attach {name}={file}: {str(exc).strip().splitlines()[0]}") from None
        resolved.append(path)
    return resolved
