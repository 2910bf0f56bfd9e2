"""DuckDB views over a store: ``videos``, ``frames``, ``encoders`` (the public ones) and the
underscore-prefixed internals that decide which rows are live.

A later segment supersedes earlier rows: the live ``videos`` row of a video is its latest; a
``(video, encoder)`` item is live when it is the latest item extracted from the file version
(fingerprint) the live ``videos`` row describes and it succeeded (``_item_errors`` holds the
latest ones that failed, ``_items_no_audio`` the latest ones of audio encoders on a video without
an audio track). ``frames`` keeps only rows of live items.

``videos`` adds to the stored columns ``no_audio``: the encoders (sorted) whose latest item of the
video is ``no_audio``, an empty list when none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from alex.store.layout import (
    COMPACTED_FILE,
    FRAMES_DIR,
    ITEMS_FILE,
    ITEMS_SCHEMA,
    SEGMENTS_DIR,
    STATUS_ERROR,
    STATUS_NO_AUDIO,
    STATUS_OK,
    VIDEOS_FILE,
    VIDEOS_SCHEMA,
)


def sealed_segments(root: Path) -> list[Path]:
    """Every sealed segment folder in commit order (names start with a zero-padded sequence number),
    obsolete ones included."""
    base = root / SEGMENTS_DIR
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if p.is_dir() and (p / VIDEOS_FILE).is_file())


def segment_dirs(root: Path) -> list[Path]:
    """The visible segments in commit order: the latest compacted segment (``compacted.json``) and
    those sealed after it; the ones before it are obsolete (their live rows are in it)."""
    sealed = sealed_segments(root)
    compacted = [i for i, p in enumerate(sealed) if (p / COMPACTED_FILE).is_file()]
    return sealed[compacted[-1]:] if compacted else sealed


def remote_store_files(rs) -> dict[str, list[str]]:
    """``store_files`` of a store under an fsspec URL (``alex.store.location.RemoteStore``), as URLs:
    a segment is there once its ``videos.parquet`` is (uploaded last: the segment's commit)."""
    rs.fs.invalidate_cache()
    def segment_of(path: str, depth: int) -> str:
        return path.rstrip("/").split("/")[-depth]
    sealed = sorted({segment_of(p, 2) for p in rs.fs.glob(rs.join(SEGMENTS_DIR, "*", VIDEOS_FILE))})
    compacted = {segment_of(p, 2) for p in rs.fs.glob(rs.join(SEGMENTS_DIR, "*", COMPACTED_FILE))}
    marks = [i for i, name in enumerate(sealed) if name in compacted]
    visible = sealed[marks[-1]:] if marks else sealed
    frames = sorted(p for p in rs.fs.glob(rs.join(SEGMENTS_DIR, "*", FRAMES_DIR, "*.parquet")) if segment_of(p, 3) in set(visible))
    return {
        "videos": [rs.url_of(rs.join(SEGMENTS_DIR, s, VIDEOS_FILE)) for s in visible],
        "items": [rs.url_of(rs.join(SEGMENTS_DIR, s, ITEMS_FILE)) for s in visible],
        "frames": [rs.url_of(p) for p in frames],
    }


def store_files(root: Path) -> dict[str, list[Path]]:
    segments = segment_dirs(root)
    return {
        "videos": [s / VIDEOS_FILE for s in segments],
        "items": [s / ITEMS_FILE for s in segments],
        "frames": sorted(f for s in segments for f in (s / FRAMES_DIR).glob("*.parquet")),
    }


def _sql_list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def _source(con: duckdb.DuckDBPyConnection, name: str, paths: list[Path], empty: pa.Schema) -> None:
    if paths:
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({_sql_list(paths)}, union_by_name = true)")
    else:
        con.register(f"{name}_empty", empty.empty_table())
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM {name}_empty")


EMPTY_FRAMES = pa.schema(
    [
        ("video_id", pa.string()),
        ("encoder", pa.string()),
        ("index", pa.int32()),
        ("t_start", pa.float64()),
        ("t_end", pa.float64()),
        ("padded", pa.int16()),
        ("embedding", pa.list_(pa.float32())),
        ("segment", pa.string()),
    ]
)


def encoders_table(config: dict[str, Any]) -> pa.Table:
    rows = []
    for name, enc in sorted(config.get("encoders", {}).items()):
        sampling = enc.get("sampling", {})
        rows.append(
            {
                "encoder": name,
                "family": enc.get("family"),
                "model": enc.get("model"),
                "weights": enc.get("weights"),
                "spec": enc.get("spec"),
                "dim": enc.get("dim"),
                "dtype": enc.get("dtype"),
                "fps": sampling.get("fps"),
                "num_frames": sampling.get("num_frames"),
            }
        )
    schema = pa.schema(
        [("encoder", pa.string()), ("family", pa.string()), ("model", pa.string()), ("weights", pa.string()),
         ("spec", pa.string()), ("dim", pa.int32()), ("dtype", pa.string()), ("fps", pa.float64()),
         ("num_frames", pa.int32())]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def _create_videos_view(con: duckdb.DuckDBPyConnection) -> None:
    """The public ``videos`` view: the live rows, plus ``no_audio`` (VARCHAR[]), the encoders that
    found no audio track in the video (from the items, not stored in ``videos.parquet``).

    ``no_audio`` lists the encoders whose latest item of the live file version is ``no_audio``, as
    ``_items_no_audio`` does, but found from the few ``no_audio`` rows rather than by ranking every
    item (several times faster on large stores); a store without any pays nothing.
    """
    if not con.execute(f"SELECT count(*) FROM _items_all WHERE status = '{STATUS_NO_AUDIO}'").fetchone()[0]:
        con.execute("CREATE VIEW videos AS SELECT * EXCLUDE (segment), []::VARCHAR[] AS no_audio FROM _videos_live")
        return
    con.execute(
        f"""
        CREATE VIEW videos AS
        SELECT v.* EXCLUDE (segment), coalesce(n.encoders, []::VARCHAR[]) AS no_audio
        FROM _videos_live v LEFT JOIN (
            SELECT c.video_id, c.fingerprint, list(c.encoder ORDER BY c.encoder) AS encoders
            FROM _items_all c
            WHERE c.status = '{STATUS_NO_AUDIO}' AND NOT EXISTS (
                SELECT 1 FROM _items_all i
                WHERE i.video_id = c.video_id AND i.encoder = c.encoder AND i.fingerprint = c.fingerprint
                  AND i.segment > c.segment
            )
            GROUP BY c.video_id, c.fingerprint
        ) n ON n.video_id = v.video_id AND n.fingerprint = v.fingerprint
        """
    )


def create_views(con: duckdb.DuckDBPyConnection, root: Path | None, config: dict[str, Any],
                 files: dict[str, list] | None = None) -> list[Path]:
    """Create the views on ``con`` over ``files`` (default: the local store at ``root``); returns the
    files they read (for a read-only allow-list)."""
    files = files if files is not None else store_files(root.resolve())
    _source(con, "_videos_all", files["videos"], VIDEOS_SCHEMA)
    _source(con, "_items_all", files["items"], ITEMS_SCHEMA)
    _source(con, "_frames_all", files["frames"], EMPTY_FRAMES)
    con.execute(
        """
        CREATE VIEW _videos_live AS
        SELECT * FROM _videos_all
        QUALIFY row_number() OVER (PARTITION BY video_id ORDER BY segment DESC) = 1
        """
    )
    con.execute(
        """
        CREATE VIEW _items_latest AS
        SELECT i.* FROM _items_all i
        JOIN _videos_live v ON i.video_id = v.video_id AND i.fingerprint = v.fingerprint
        QUALIFY row_number() OVER (PARTITION BY i.video_id, i.encoder ORDER BY i.segment DESC) = 1
        """
    )
    con.execute(f"CREATE VIEW _items_live AS SELECT * FROM _items_latest WHERE status = '{STATUS_OK}'")
    con.execute(f"CREATE VIEW _item_errors AS SELECT * FROM _items_latest WHERE status = '{STATUS_ERROR}'")
    con.execute(f"CREATE VIEW _items_no_audio AS SELECT * FROM _items_latest WHERE status = '{STATUS_NO_AUDIO}'")
    # Public: one row per (video, encoder) of the live file version, its state and step count.
    # ``versions``: what software wrote the item (JSON); null for items of stores written before it was kept.
    has_versions = "versions" in {c[0] for c in con.execute("DESCRIBE _items_all").fetchall()}
    versions = "versions" if has_versions else "NULL::VARCHAR AS versions"
    con.execute(f"CREATE VIEW items AS SELECT video_id, encoder, status, num_steps AS steps, error, {versions} FROM _items_latest")
    _create_videos_view(con)
    # Items that are neither live nor no_audio may have frames rows that are no longer live.
    superseded = con.execute(
        "SELECT (SELECT count(*) FROM _items_all)"
        f" - (SELECT count(*) FROM _items_latest WHERE status IN ('{STATUS_OK}', '{STATUS_NO_AUDIO}'))"
    ).fetchone()[0]
    columns = "f.video_id, f.encoder, f.index, f.t_start, f.t_end, f.padded, f.embedding"
    if superseded:
        con.execute(
            f"""
            CREATE VIEW frames AS SELECT {columns} FROM _frames_all f
            SEMI JOIN _items_live l ON f.video_id = l.video_id AND f.encoder = l.encoder AND f.segment = l.segment
            """
        )
    else:  # the common case: nothing superseded, no join on the hot path
        con.execute(f"CREATE VIEW frames AS SELECT {columns} FROM _frames_all f")
    con.register("_encoders_table", encoders_table(config))
    con.execute("CREATE VIEW encoders AS SELECT * FROM _encoders_table")
    return [p for paths in files.values() for p in paths]
