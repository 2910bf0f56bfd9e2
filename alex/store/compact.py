"""``alex compact``: the live rows and arrays of a store rewritten into one segment.

Every extraction adds segments, and superseded rows (re-extracted files, retried errors) and the
HDF5 space of dropped arrays (``del h5[path]`` never gives space back) stay on disk. Compaction
copies what the views show — the live ``videos`` rows, the latest item of every (video, encoder),
the frames rows and HDF5 arrays of live items, byte for byte (h5py copies datasets with their
chunking and dtype; Parquet columns keep their types) — into one new segment marked
``compacted.json``. Its rename into ``segments/`` is the commit point: readers see the old
segments or the new one, never a mix (``views.segment_dirs`` skips every segment before a
compacted one). The old segments are removed when no reader is open (``readers.remove_obsolete``).

``exclude`` (used by ``alex verify --repair``) leaves chosen videos out and writes in their place an
``error`` row that matches no file on disk, so the next ``alex extract`` extracts them again.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import h5py
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from alex import __version__
from alex.errors import UsageError
from alex.store.location import is_url, store_location
from alex.store.layout import (
    ARRAYS_FILE,
    COMPACTED_FILE,
    FRAMES_DIR,
    ITEMS_FILE,
    ITEMS_SCHEMA,
    SEGMENTS_DIR,
    STAGING_DIR,
    STATUS_ERROR,
    STATUS_OK,
    VIDEOS_FILE,
    VIDEOS_SCHEMA,
    array_group,
    video_key,
)
from alex.store.readers import remove_obsolete
from alex.store.reader import Store
from alex.store.views import segment_dirs
from alex.store.writer import PARQUET_ROW_GROUP_BYTES, StoreWriter, commit_segment


@dataclass
class CompactReport:
    root: Path
    segments_before: int = 0
    segment: str | None = None  # the new segment; None when there was nothing to compact
    videos: int = 0
    items: int = 0
    rows: int = 0
    arrays: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    removed: int = 0  # obsolete segments removed now
    kept_for_readers: int = 0  # obsolete segments left in place because a reader was open
    excluded: list[str] = field(default_factory=list)


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def compact(root: str | Path, exclude: dict[str, str] | None = None) -> CompactReport:
    """Rewrite the store's live data into one segment. ``exclude``: video id -> why it must be
    extracted again (its rows are left out and replaced by an ``error`` row)."""
    if is_url(store_location(root)):
        raise UsageError(f"alex compact works on a store folder; {root} is a URL: copy the store here "
                         "(e.g. `aws s3 sync`), compact it, and copy it back")
    root = Path(root)
    exclude = dict(exclude or {})
    report = CompactReport(root)
    with StoreWriter(root) as writer:  # the writer lock: no extraction runs meanwhile
        visible = segment_dirs(root)
        report.segments_before = len(visible)
        report.bytes_before = sum(folder_bytes(p) for p in visible)
        if not visible or (len(visible) == 1 and (visible[0] / COMPACTED_FILE).is_file() and not exclude):
            report.bytes_after = report.bytes_before
            return report
        name = writer.reserve_segment_name()
        staging = root / STAGING_DIR / name
        try:
            _write(root, staging, name, visible, exclude, writer.config["encoders"], report)
            commit_segment(staging, root / SEGMENTS_DIR / name)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        report.segment = name
        report.bytes_after = folder_bytes(root / SEGMENTS_DIR / name)
        report.removed = remove_obsolete(root)
        report.kept_for_readers = len(visible) - report.removed
    return report


def _write(root: Path, staging: Path, name: str, visible: list[Path], exclude: dict[str, str],
           encoders: dict, report: CompactReport) -> None:
    (staging / FRAMES_DIR).mkdir(parents=True)
    with Store(root) as store:
        videos = store.con.sql("SELECT * FROM _videos_live ORDER BY video_id").to_arrow_table()
        items = store.con.sql("SELECT * FROM _items_latest ORDER BY video_id, encoder").to_arrow_table()
    videos = _conform(videos, VIDEOS_SCHEMA)
    items = _conform(items, ITEMS_SCHEMA)
    if exclude:
        excluded = pa.array(sorted(exclude), pa.string())
        marked = videos.filter(pc.is_in(videos["video_id"], excluded))
        videos = videos.filter(pc.invert(pc.is_in(videos["video_id"], excluded)))
        items = items.filter(pc.invert(pc.is_in(items["video_id"], excluded)))
        videos = pa.concat_tables([videos, _marker_rows(marked, exclude)])
        report.excluded = sorted(exclude)
    # Which rows and arrays are live: (encoder, segment) -> video ids of ok items there.
    live: dict[tuple[str, str], set[str]] = {}
    for video_id, encoder, status, segment in zip(*(items[c].to_pylist() for c in ("video_id", "encoder", "status", "segment"))):
        if status == STATUS_OK:
            live.setdefault((encoder, segment), set()).add(video_id)
    report.rows = _copy_frames(visible, staging, name, live)
    report.arrays = _copy_arrays(visible, staging, live)
    pq.write_table(_renamed(videos, name), staging / VIDEOS_FILE)
    pq.write_table(_renamed(items, name), staging / ITEMS_FILE)
    report.videos, report.items = videos.num_rows, items.num_rows
    (staging / COMPACTED_FILE).write_text(json.dumps({
        "replaces": [p.name for p in visible], "excluded": sorted(exclude), "alex_version": __version__,
        "compacted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }, indent=2) + "\n")


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A DuckDB result in the format's schema (columns an older store lacks are null)."""
    columns = [table[f.name].cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
               for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def _renamed(table: pa.Table, segment: str) -> pa.Table:
    index = table.schema.get_field_index("segment")
    return table.set_column(index, "segment", pa.array([segment] * table.num_rows, pa.string()))


def _marker_rows(rows: pa.Table, why: dict[str, str]) -> pa.Table:
    """Error rows for videos to extract again: no fingerprint, and a size and time no file has, so
    the next ``alex extract`` hashes the file, finds it differs, and extracts every encoder."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    n = rows.num_rows
    replaced = {
        "fingerprint": pa.nulls(n, pa.string()), "size_bytes": pa.array([-1] * n, pa.int64()),
        "mtime_ns": pa.array([-1] * n, pa.int64()), "status": pa.array([STATUS_ERROR] * n, pa.string()),
        "error": pa.array([f"damaged in the store ({why[v]}); the next `alex extract` extracts it again"
                           for v in rows["video_id"].to_pylist()], pa.string()),
        "extracted_at": pa.array([now] * n, pa.timestamp("ms")),
    }
    for column, values in replaced.items():
        rows = rows.set_column(rows.schema.get_field_index(column), column, values)
    return rows


def _copy_frames(visible: list[Path], staging: Path, name: str, live: dict[tuple[str, str], set[str]]) -> int:
    """The frames rows of live items, segment after segment, per encoder file (types unchanged)."""
    writers: dict[str, pq.ParquetWriter] = {}
    rows = 0
    try:
        for segment in visible:
            for path in sorted((segment / FRAMES_DIR).glob("*.parquet")):
                encoder = path.stem
                wanted = live.get((encoder, segment.name))
                if not wanted:
                    continue
                table = pq.read_table(path)
                table = _renamed(table.filter(pc.is_in(table["video_id"], pa.array(sorted(wanted), pa.string()))), name)
                if table.num_rows == 0:
                    continue
                if encoder not in writers:
                    writers[encoder] = pq.ParquetWriter(staging / FRAMES_DIR / path.name, table.schema, compression="zstd")
                row_bytes = max(1, table.nbytes // table.num_rows)
                writers[encoder].write_table(table, row_group_size=max(1, PARQUET_ROW_GROUP_BYTES // row_bytes))
                rows += table.num_rows
    finally:
        for writer in writers.values():
            writer.close()
    return rows


def _copy_arrays(visible: list[Path], staging: Path, live: dict[tuple[str, str], set[str]]) -> int:
    """The HDF5 groups of live items, copied as they are (datasets, chunking, attributes)."""
    copied = 0
    out: h5py.File | None = None
    try:
        for segment in visible:
            path = segment / ARRAYS_FILE
            if not path.is_file():
                continue
            with h5py.File(path, "r") as source:
                for encoder in source:
                    for video_id in sorted(live.get((encoder, segment.name), ())):
                        group = array_group(encoder, video_id)
                        if group not in source:
                            continue
                        if out is None:
                            out = h5py.File(staging / ARRAYS_FILE, "w", libver="latest")
                        source.copy(source[group], out.require_group(encoder), name=video_key(video_id))
                        copied += 1
    finally:
        if out is not None:
            out.close()
    return copied
