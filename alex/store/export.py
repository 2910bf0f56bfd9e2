"""Write query results as CSV, JSON or Parquet (pyarrow writers; DuckDB stays read-only)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq


def write_result(table: pa.Table, fmt: str, output: Path | None) -> None:
    """``fmt`` is csv, json (an array of objects) or parquet; ``output`` None means standard output."""
    if fmt == "csv":
        # CSV has no list type: embeddings become JSON arrays in one cell.
        for i, field in enumerate(table.schema):
            if pa.types.is_list(field.type) or pa.types.is_fixed_size_list(field.type) or pa.types.is_large_list(field.type):
                cells = [None if v is None else json.dumps(v) for v in table.column(i).to_pylist()]
                table = table.set_column(i, field.name, pa.array(cells, pa.string()))
        sink = pa.BufferOutputStream()
        pacsv.write_csv(table, sink)
        _emit(sink.getvalue().to_pybytes(), output)
    elif fmt == "json":
        text = json.dumps(table.to_pylist(), default=str, indent=1) + "\n"
        _emit(text.encode(), output)
    elif fmt == "parquet":
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        _emit(sink.getvalue().to_pybytes(), output)
    else:
        raise ValueError(f"unknown format {fmt!r}")


def _emit(data: bytes, output: Path | None) -> None:
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        Path(output).write_bytes(data)
