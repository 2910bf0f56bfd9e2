"""Read-only access to a store: DuckDB relations for SQL and per-video arrays from HDF5."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import duckdb
import h5py
import numpy as np

from alex.errors import StoreFormatError, UsageError
from alex.store.attach import attach_views
from alex.store.config import check_store_config, read_store_config
from alex.store.location import RemoteStore, is_url, local_copy, remote, store_location
from alex.store.readers import ReaderLock
from alex.store.layout import ARRAYS_FILE, EMBEDDING, FRAMES_DIR, SEGMENTS_DIR, T_END, T_START, array_group
from alex.store.views import create_views, remote_store_files

READ_ONLY_STATEMENTS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


@dataclass
class VideoArrays:
    """One video's arrays for one encoder: ``arrays['embedding']`` is (T, D), times are (T,) seconds."""

    video_id: str
    encoder: str
    t_start: np.ndarray
    t_end: np.ndarray
    arrays: dict[str, np.ndarray]

    @property
    def embedding(self) -> np.ndarray:
        return self.arrays["embedding"]


class Store:
    """A store opened read-only. ``sql`` accepts only queries: stored data cannot change through it."""

    def __init__(self, root: str | Path, attach: dict[str, str | Path] | None = None):
        """``attach``: view name -> a user's Parquet / CSV / JSON Lines file, queryable beside the store."""
        location = store_location(root)
        self.remote = remote(location) if is_url(location) else None  # an fsspec URL (s3://...)
        if self.remote is None:
            self.root = Path(location)
            if not self.root.is_dir():
                raise StoreFormatError(f"no store at {self.root}: the folder does not exist")
            self.config = read_store_config(self.root)
        else:
            self.root = location
            self.config = read_remote_config(self.remote)
        # Before listing segments: none is removed while open (object stores are never compacted in place).
        self._reader_lock = ReaderLock(self.root if self.remote is None else None)
        self.con = duckdb.connect(":memory:")
        try:
            if self.remote is None:
                files = create_views(self.con, self.root, self.config)
            else:  # DuckDB reads the Parquet tables through the fsspec filesystem (no extension to download)
                self.con.register_filesystem(self.remote.fs)
                files = create_views(self.con, None, self.config, remote_store_files(self.remote))
            files += attach_views(self.con, {name: Path(path) for name, path in (attach or {}).items()})
            # Lock the connection down: it may read exactly the store's files and nothing else.
            allowed = ", ".join("'" + str(p).replace("'", "''") + "'" for p in files)
            self.con.execute(f"SET allowed_paths = [{allowed}]")
            self.con.execute("SET enable_external_access = false")
            self.con.execute("SET lock_configuration = true")
        except BaseException:
            self.close()
            raise
        self._live_items: dict[tuple[str, str], str] | None = None
        self._search_tables: set[str] = set()

    # ---- SQL ------------------------------------------------------------------------------

    @property
    def encoders(self) -> dict[str, dict[str, Any]]:
        return self.config["encoders"]

    def sql(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None) -> duckdb.DuckDBPyRelation:
        """Run a read-only query (SELECT, WITH, DESCRIBE, SHOW, EXPLAIN) over the store's views."""
        statements = duckdb.extract_statements(query)
        refused = [s for s in statements if s.type not in READ_ONLY_STATEMENTS]
        if refused:
            kind = refused[0].type.name
            raise UsageError(f"the store is opened read-only; {kind} statements are not allowed (query: {query!r})")
        return self.con.sql(query, params=params)

    def videos(self) -> duckdb.DuckDBPyRelation:
        return self.con.sql("SELECT * FROM videos ORDER BY video_id")

    def frames(self, encoder: str | None = None) -> duckdb.DuckDBPyRelation:
        if encoder is None:
            return self.con.sql("SELECT * FROM frames")
        self._check_encoder(encoder)
        return self.con.sql("SELECT * FROM frames WHERE encoder = $encoder", params={"encoder": encoder})

    def search(self, vector: Sequence[float] | np.ndarray, encoder: str, k: int = 10,
               cache: bool = True) -> duckdb.DuckDBPyRelation:
        """The ``k`` stored steps of ``encoder`` nearest to ``vector`` by cosine similarity, scored in DuckDB.

        With ``cache`` the first search of an encoder copies its live pooled vectors into an
        in-memory DuckDB table of fixed-size ``FLOAT[D]`` arrays, and later searches on this Store
        scan that (native arrays, no Parquet decoding, no list casts). ``cache=False`` scans the
        Parquet files directly, which is faster for a single query.
        """
        self._check_encoder(encoder)
        dim = int(self.encoders[encoder]["dim"])
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if query.shape[0] != dim:
            raise UsageError(f"search vector has {query.shape[0]} values; encoder '{encoder}' stores {dim}")
        norm = float(np.linalg.norm(query))
        if cache:
            # Unit vectors: the cosine is one inner product per row. Zero vectors (a black frame)
            # have no direction and were left out of the table.
            return self.con.sql(
                f"""
                SELECT video_id, index, t_start, t_end, array_inner_product(unit, $query::FLOAT[{dim}]) AS score
                FROM {self._search_table(encoder, dim)}
                ORDER BY score DESC, video_id, index LIMIT {int(k)}
                """,
                params={"query": (query / (norm or 1.0)).tolist()},
            )
        # A zero vector has no direction: its cosine is NaN, which DuckDB would sort above every
        # number, so such rows are left out.
        return self.con.sql(
            f"""
            SELECT * FROM (
                SELECT video_id, index, t_start, t_end,
                       array_cosine_similarity(embedding::FLOAT[{dim}], $query::FLOAT[{dim}]) AS score
                FROM frames WHERE encoder = $encoder
            ) WHERE NOT isnan(score)
            ORDER BY score DESC, video_id, index LIMIT {int(k)}
            """,
            params={"query": query.tolist(), "encoder": encoder},
        )

    def _search_table(self, encoder: str, dim: int) -> str:
        """An in-memory table of the encoder's live vectors, normalised to unit length."""
        name = f'"_search_{encoder}"'  # quoted, as named: `a-b` and `a_b` are two encoders, two tables
        if name not in self._search_tables:
            self.con.execute(
                f"""
                CREATE TEMP TABLE {name} AS
                SELECT video_id, index, t_start, t_end,
                       list_transform(embedding, lambda x: x / norm)::FLOAT[{dim}] AS unit
                FROM (SELECT *, sqrt(list_dot_product(embedding, embedding)) AS norm FROM frames WHERE encoder = $encoder)
                WHERE norm > 0
                """,
                {"encoder": encoder},
            )
            self._search_tables.add(name)
        return name

    # ---- arrays ---------------------------------------------------------------------------

    def live_items(self) -> dict[tuple[str, str], str]:
        """(video_id, encoder) -> segment holding its live arrays; a ``no_audio`` item (an audio
        encoder on a video without an audio track) is there too, and reads as zero steps."""
        if self._live_items is None:
            rows = self.con.execute(
                "SELECT video_id, encoder, segment FROM _items_live UNION ALL "
                "SELECT video_id, encoder, segment FROM _items_no_audio"
            ).fetchall()
            self._live_items = {(v, e): s for v, e, s in rows}
        return self._live_items

    def array_location(self, video_id: str, encoder: str) -> tuple[Path, str]:
        """The HDF5 file and group of one video's arrays for one encoder."""
        self._check_encoder(encoder)
        segment = self.live_items().get((video_id, encoder))
        if segment is None:
            raise KeyError(f"store {self.root} has no '{encoder}' features for video {video_id!r}")
        return self._local(segment, ARRAYS_FILE), array_group(encoder, video_id)

    def frames_file(self, video_id: str, encoder: str) -> Path:
        """The Parquet file holding one video's live rows for one encoder."""
        self._check_encoder(encoder)
        segment = self.live_items().get((video_id, encoder))
        if segment is None:
            raise KeyError(f"store {self.root} has no '{encoder}' features for video {video_id!r}")
        return self._local(segment, FRAMES_DIR, f"{encoder}.parquet")

    def _local(self, segment: str, *parts: str) -> Path:
        """A file of a segment on this machine: in the folder, or, for a store under a URL, a copy in
        fsspec's file cache (downloaded once; a file the segment lacks is a path that does not exist)."""
        if self.remote is None:
            return self.root.joinpath(SEGMENTS_DIR, segment, *parts)
        path = self.remote.join(SEGMENTS_DIR, segment, *parts)
        if not self.remote.fs.exists(path):
            return Path("/nonexistent-remote-file") / segment / "/".join(parts)
        return Path(local_copy(self.remote, path))

    def arrays(self, video_id: str, encoder: str) -> VideoArrays:
        """One video's arrays for one encoder, as stored (float16 unless extracted with float32):
        ``embedding`` (T, D), the pooled vectors from the frames table, plus the encoder's HDF5
        arrays (``tokens``, ``logmel``, ``views``...), with the steps' start and end times."""
        frames = self.frames_file(video_id, encoder)
        dtype = np.dtype(self.encoders[encoder].get("dtype", "float16"))
        pooled = read_pooled(frames, [video_id]) if frames.exists() else {}
        rows = pooled.get(video_id)
        if rows is None:  # zero steps (e.g. audio of a video without an audio track)
            dim = int(self.encoders[encoder]["dim"])
            rows = (np.zeros(0), np.zeros(0), np.zeros((0, dim), dtype))
        t_start, t_end, embedding = rows
        arrays = {EMBEDDING: embedding.astype(dtype, copy=False)}
        path, group_name = self.array_location(video_id, encoder)
        if path.exists():
            with h5py.File(path, "r") as f:
                if group_name in f:
                    group = f[group_name]
                    arrays.update({name: group[name][()] for name in group if name not in (T_START, T_END)})
        main = self.encoders[encoder].get("array", EMBEDDING)
        if main not in arrays:  # zero steps: an empty array of the encoder's kind
            arrays[main] = np.zeros((0, int(self.encoders[encoder]["dim"])), dtype)
        return VideoArrays(video_id, encoder, t_start, t_end, arrays)

    def _check_encoder(self, encoder: str) -> None:
        if encoder not in self.encoders:
            known = ", ".join(sorted(self.encoders)) or "none yet"
            raise UsageError(f"store {self.root} has no encoder '{encoder}' (it has: {known})")

    def close(self) -> None:
        self.con.close()
        self._reader_lock.release()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_remote_config(rs: RemoteStore) -> dict[str, Any]:
    """``store.json`` of a store under a URL, validated as a local one is."""
    from alex.store.layout import STORE_JSON

    path = rs.join(STORE_JSON)
    if not rs.fs.exists(path):
        raise StoreFormatError(f"{rs.url} is not an alex store: {STORE_JSON} is missing. "
                               "Create one with `alex extract --videos DIR --store URL`.")
    return check_store_config(rs.fs.cat_file(path).decode(), rs.url_of(path), rs.url)


def read_pooled(path: Path, video_ids: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """video_id -> (t_start (T,), t_end (T,), embedding (T, D) as stored) from one frames Parquet file,
    in step order, for the given videos."""
    import pyarrow.parquet as pq

    wanted = list(dict.fromkeys(video_ids))
    table = pq.read_table(path, columns=["video_id", "index", "t_start", "t_end", "embedding"],
                          filters=[("video_id", "in", wanted)])
    table = table.sort_by([("video_id", "ascending"), ("index", "ascending")])
    if table.num_rows == 0:
        return {}
    embedding = table.column("embedding").combine_chunks()
    dim = embedding.type.list_size
    values = embedding.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)  # (N, D)
    if not values.flags.writeable:  # Arrow buffers are read-only; torch wants writable memory
        values = values.copy()
    ids = table.column("video_id").to_numpy(zero_copy_only=False)
    t_start, t_end = table.column("t_start").to_numpy(), table.column("t_end").to_numpy()
    out = {}
    bounds = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    for start, stop in zip(np.r_[0, bounds], np.r_[bounds, len(ids)]):
        out[str(ids[start])] = (t_start[start:stop], t_end[start:stop], values[start:stop])
    return out


def open_store(path: str | Path, attach: dict[str, str | Path] | None = None) -> Store:
    return Store(path, attach=attach)
