"""Atomic, resumable writes into a store.

Videos are assigned to the open segment when they start; a segment stops admitting videos
after ``shard_videos`` videos, ``shard_bytes`` bytes or ``shard_seconds`` seconds and is sealed
(renamed from ``.staging/`` into ``segments/``) as soon as its last video finishes. Array data
streams into the segment's HDF5 file as batches are encoded, so memory stays bounded however
long a video is; Parquet rows of a video are buffered until it finishes, so a failed video
leaves no rows behind.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from alex.errors import StoreLockedError
from alex.store.readers import remove_obsolete
from alex.versions import versions_json
from alex.store.config import new_store_config, read_store_config, write_store_config
from alex.store.layout import (
    ARRAYS_FILE,
    FRAMES_DIR,
    ITEMS_FILE,
    ITEMS_SCHEMA,
    LOCK_FILE,
    READERS_LOCK,
    SEGMENTS_DIR,
    STAGING_DIR,
    STATUS_ERROR,
    STATUS_NO_AUDIO,
    STATUS_OK,
    STORE_JSON,
    FRAME_T_START,
    T_END,
    T_START,
    VIDEOS_FILE,
    VIDEOS_SCHEMA,
    array_group,
    frames_schema,
)

PARQUET_ROW_GROUP_BYTES = 4 << 20  # small enough that reading one video's rows reads little else
HDF5_CHUNK_BYTES = 1 << 20
# A video's arrays stay in memory up to this size and are written once, exactly sized; longer
# videos spill to a resizable dataset in ~1 MiB chunks, so memory stays bounded.
SPILL_BYTES = 16 << 20


class NonFiniteFeatureError(ValueError):
    """An encoder produced NaN or infinity (or overflowed the store dtype); it is never written."""


@dataclass
class StepBatch:
    """Consecutive sampled steps of one video for one encoder.

    ``pooled`` (N, D) goes to the ``frames`` table; ``arrays`` (name -> (N, ...)) go to HDF5.
    """

    index: np.ndarray  # (N,) int
    t_start: np.ndarray  # (N,) float64 seconds
    t_end: np.ndarray  # (N,) float64 seconds
    pooled: np.ndarray  # (N, D)
    arrays: Mapping[str, np.ndarray]
    padded: np.ndarray | None = None  # (N,) frames repeated to complete a clip
    frame_times: np.ndarray | None = None  # (N, F) float64: each clip frame's start time (clip encoders)


@dataclass
class _OpenVideo:
    segment: "_Segment"
    encoders: dict[str, list[StepBatch]] = field(default_factory=dict)  # pooled rows per encoder
    arrays: dict[str, dict[str, list[np.ndarray]]] = field(default_factory=dict)  # encoder -> name -> pending
    pending_bytes: int = 0


class _Segment:
    def __init__(self, root: Path, name: str):
        self.name = name
        self.staging = root / STAGING_DIR / name
        self.final = root / SEGMENTS_DIR / name
        (self.staging / FRAMES_DIR).mkdir(parents=True)
        self.started = time.monotonic()
        self.admitted = 0
        self.open_videos: set[str] = set()
        self.bytes = 0
        self.video_rows: list[dict[str, Any]] = []
        self.item_rows: list[dict[str, Any]] = []
        self.frame_tables: dict[str, list[pa.Table]] = {}
        self.frame_writers: dict[str, pq.ParquetWriter] = {}
        self._h5: h5py.File | None = None
        self.accepting = True

    @property
    def h5(self) -> h5py.File:
        if self._h5 is None:
            self._h5 = h5py.File(self.staging / ARRAYS_FILE, "w", libver="latest")
        return self._h5


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit_segment(staging: Path, final: Path) -> None:
    """Make a finished segment folder visible: fsync every file and folder in it, then one atomic
    rename from ``.staging/`` into ``segments/`` (the commit point), then fsync ``segments/``."""
    for path in staging.rglob("*"):
        if path.is_file():
            fsync_path(path)
    for folder in [p for p in staging.rglob("*") if p.is_dir()] + [staging]:
        fsync_path(folder)
    os.rename(staging, final)  # the commit point
    fsync_path(final.parent)


class StoreWriter:
    """The one writer of a store folder (an exclusive lock keeps others out)."""

    def __init__(
        self,
        root: str | Path,
        shard_videos: int = 256,
        shard_bytes: int = 1 << 30,
        shard_seconds: float = 300.0,
        remote: Any = None,
    ):
        """``remote``: an ``alex.store.location.RemoteStore``; ``root`` is then a local working folder
        and every sealed segment is uploaded there (and removed here)."""
        self.remote = remote
        self.root = Path(root)
        self.shard_videos = shard_videos
        self.shard_bytes = shard_bytes
        self.shard_seconds = shard_seconds
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise StoreLockedError(
                f"another alex process is writing to {self.root}; wait for it to finish "
                "(reading with `alex query` or `alex info` is fine meanwhile)"
            ) from None
        # Leftovers of a killed run are never visible; drop them, and segments a compaction made obsolete.
        shutil.rmtree(self.root / STAGING_DIR, ignore_errors=True)
        (self.root / SEGMENTS_DIR).mkdir(exist_ok=True)
        (self.root / READERS_LOCK).touch(exist_ok=True)  # readers lock it; it exists before any reader
        remove_obsolete(self.root)
        if remote is not None and remote.fs.exists(remote.join(STORE_JSON)):
            (self.root / STORE_JSON).write_bytes(remote.fs.cat_file(remote.join(STORE_JSON)))
        if (self.root / STORE_JSON).exists():
            self.config = read_store_config(self.root)
        else:
            self.config = new_store_config()
            write_store_config(self.root, self.config)
            self._upload_config()
        self._segments: list[_Segment] = []
        self._videos: dict[str, _OpenVideo] = {}
        # Segments are ordered by a sequence number (not the clock, which can go backwards).
        existing = [p.name.split("-")[0] for p in (self.root / SEGMENTS_DIR).iterdir()]
        if remote is not None:  # the sequence goes on from the segments already uploaded
            existing += [p.rstrip("/").split("/")[-1].split("-")[0] for p in remote.fs.glob(remote.join(SEGMENTS_DIR, "*"))]
        self._sequence = max((int(n) for n in existing if n.isdigit()), default=0)
        self.sealed_segments: list[str] = []

    def reserve_segment_name(self) -> str:
        """The name of a segment sealed after every existing one (for writers of whole segments:
        compaction). In a shared object store, writers on other machines may take the same number:
        a random suffix keeps their segments apart (equal numbers then order by name)."""
        self._sequence += 1
        if self.remote is not None:
            return f"{self._sequence:020d}-{uuid.uuid4().hex[:16]}"
        return f"{self._sequence:020d}-{os.getpid()}"

    def _upload_config(self) -> None:
        if self.remote is not None:
            self.remote.fs.put_file(str(self.root / STORE_JSON), self.remote.join(STORE_JSON))

    def _upload(self, segment: Path) -> None:
        """Copy a sealed segment to the object store, ``videos.parquet`` last: readers take a segment
        as there once that file is, so they never see one half uploaded. Then drop the local copy."""
        files = sorted(p for p in segment.rglob("*") if p.is_file())
        for path in sorted(files, key=lambda p: p.name == VIDEOS_FILE):
            self.remote.fs.put_file(str(path), self.remote.join(SEGMENTS_DIR, segment.name, *path.relative_to(segment).parts))
        shutil.rmtree(segment)

    # ---- encoders -------------------------------------------------------------------------

    def set_encoder_config(self, name: str, config: dict[str, Any]) -> None:
        """Record an encoder's full config in ``store.json`` (before any of its rows)."""
        self.config["encoders"][name] = config
        write_store_config(self.root, self.config)
        self._upload_config()

    def _dtype(self, encoder: str, array: str | None = None) -> np.dtype:
        """The store dtype of an encoder's floats, or an array's own (``array_dtypes``: uint8 pixels,
        float32 audio samples of a cached model input)."""
        config = self.config["encoders"][encoder]
        return np.dtype(config.get("array_dtypes", {}).get(array, config["dtype"]))

    # ---- videos ---------------------------------------------------------------------------

    def _open_segment(self) -> _Segment:
        current = self._segments[-1] if self._segments else None
        if current is not None and current.accepting:
            full = (
                current.admitted >= self.shard_videos
                or current.bytes >= self.shard_bytes
                or time.monotonic() - current.started >= self.shard_seconds
            )
            if not full:
                return current
            current.accepting = False
            self._seal_if_done(current)
        segment = _Segment(self.root, self.reserve_segment_name())
        self._segments.append(segment)
        return segment

    def begin_video(self, video_id: str) -> None:
        segment = self._open_segment()
        segment.admitted += 1
        segment.open_videos.add(video_id)
        self._videos[video_id] = _OpenVideo(segment)

    def append(self, video_id: str, encoder: str, steps: StepBatch) -> None:
        """Write a batch of steps; raises NonFiniteFeatureError (writing nothing) on NaN or inf."""
        video = self._videos[video_id]
        dtype = self._dtype(encoder)
        pooled = np.asarray(steps.pooled).astype(dtype, copy=False)
        arrays = {name: np.asarray(a).astype(self._dtype(encoder, name), copy=False) for name, a in steps.arrays.items()}
        for name, values in [("embedding", pooled), *arrays.items()]:
            if not np.isfinite(values).all():
                raise NonFiniteFeatureError(
                    f"encoder '{encoder}' produced non-finite values in '{name}' (NaN, inf, or beyond "
                    f"the range of {dtype}); the video's features were not written"
                )
        if arrays:  # token grids, audio windows, views: HDF5. The pooled vector lives in the frames table only.
            pending = video.arrays.setdefault(encoder, {})
            times = {T_START: np.asarray(steps.t_start), T_END: np.asarray(steps.t_end)}
            if steps.frame_times is not None:  # a token grid per clip: each frame's time, in full precision
                times[FRAME_T_START] = np.asarray(steps.frame_times, dtype=np.float64)
            for name, values in {**arrays, **times}.items():
                pending.setdefault(name, []).append(values)
                video.pending_bytes += values.nbytes
            if video.pending_bytes > SPILL_BYTES:
                self._write_arrays(video_id, video)
        padded = steps.padded if steps.padded is not None else np.zeros(len(steps.index), np.int16)
        video.encoders.setdefault(encoder, []).append(StepBatch(steps.index, steps.t_start, steps.t_end, pooled, {}, padded))

    def _write_arrays(self, video_id: str, video: _OpenVideo) -> None:
        """Move a video's pending arrays into the segment's HDF5 file (chunked along time)."""
        for encoder, pending in video.arrays.items():
            group = video.segment.h5.require_group(array_group(encoder, video_id))
            group.attrs["video_id"] = video_id
            for name, parts in pending.items():
                if not parts:
                    continue
                values = np.concatenate(parts)
                pending[name] = []
                if name not in group:
                    tail = values.shape[1:]
                    row_bytes = max(1, int(np.prod(tail, dtype=np.int64)) * values.dtype.itemsize)
                    chunk_rows = int(max(1, min(values.shape[0], HDF5_CHUNK_BYTES // row_bytes)))
                    if values.ndim > 2:  # a token grid per step: one chunk per clip
                        chunk_rows = 1
                    group.create_dataset(
                        name, shape=(0, *tail), maxshape=(None, *tail), chunks=(chunk_rows, *tail), dtype=values.dtype
                    )
                dataset = group[name]
                start = dataset.shape[0]
                dataset.resize(start + values.shape[0], axis=0)
                dataset[start:] = values
                video.segment.bytes += values.nbytes
        video.pending_bytes = 0

    def finish_video(self, row: dict[str, Any], encoders: list[str], failed: Mapping[str, str] | None = None,
                     no_audio: Sequence[str] = ()) -> None:
        """Commit a finished video: its ``videos`` row (with its ``fingerprint``), one item per encoder
        and the frames rows; ``failed`` (encoder -> reason): encoders that could not use this video,
        recorded as ``error`` items; ``no_audio``: audio encoders that found no audio track in it,
        recorded as ``no_audio`` items with 0 steps."""
        video_id = row["video_id"]
        video = self._videos.pop(video_id)
        segment = video.segment
        self._write_arrays(video_id, video)
        for encoder in encoders:
            batches = video.encoders.get(encoder, [])
            num_steps = sum(len(b.index) for b in batches)
            if batches:
                segment.frame_tables.setdefault(encoder, []).append(self._frames_table(video_id, encoder, batches, segment.name))
            segment.item_rows.append(
                {"video_id": video_id, "encoder": encoder, "fingerprint": row["fingerprint"],
                 "num_steps": num_steps, "status": STATUS_OK, "error": None, "segment": segment.name, "versions": versions_json()}
            )
            self._flush_frames(segment, encoder, final=False)
        segment.item_rows.extend(
            {"video_id": video_id, "encoder": encoder, "fingerprint": row["fingerprint"], "num_steps": 0,
             "status": STATUS_ERROR, "error": reason, "segment": segment.name, "versions": versions_json()}
            for encoder, reason in (failed or {}).items()
        )
        segment.item_rows.extend(
            {"video_id": video_id, "encoder": encoder, "fingerprint": row["fingerprint"], "num_steps": 0,
             "status": STATUS_NO_AUDIO, "error": None, "segment": segment.name, "versions": versions_json()}
            for encoder in no_audio
        )
        segment.video_rows.append({**row, "segment": segment.name})
        segment.open_videos.discard(video_id)
        self._seal_if_done(segment)

    def fail_video(self, row: dict[str, Any]) -> None:
        """Record a video that could not be processed: an ``error`` row and no features."""
        video_id = row["video_id"]
        video = self._videos.pop(video_id, None)
        if video is None:  # failed before it started (e.g. cannot be fingerprinted)
            self.begin_video(video_id)
            video = self._videos.pop(video_id)
        segment = video.segment
        self._drop_arrays(segment, video_id, list(video.arrays))
        segment.video_rows.append({**row, "segment": segment.name})
        segment.open_videos.discard(video_id)
        self._seal_if_done(segment)

    def fail_items(self, video_id: str, encoders: list[str], fingerprint: str | None, reason: str) -> None:
        """Record encoders that failed on a video whose live row stays ``ok`` (its other features
        remain valid): error items, no features, no new ``videos`` row."""
        video = self._videos.pop(video_id, None)
        if video is None:
            self.begin_video(video_id)
            video = self._videos.pop(video_id)
        segment = video.segment
        self._drop_arrays(segment, video_id, list(video.arrays))
        segment.item_rows.extend(
            {"video_id": video_id, "encoder": encoder, "fingerprint": fingerprint, "num_steps": 0,
             "status": STATUS_ERROR, "error": reason, "segment": segment.name, "versions": versions_json()}
            for encoder in encoders
        )
        segment.open_videos.discard(video_id)
        self._seal_if_done(segment)

    def drop_encoder(self, video_id: str, encoder: str) -> None:
        """Forget what an open video has of one encoder (it failed on this video): rows and arrays."""
        video = self._videos.get(video_id)
        if video is None:
            return
        video.encoders.pop(encoder, None)
        video.arrays.pop(encoder, None)
        self._drop_arrays(video.segment, video_id, [encoder])

    def _drop_arrays(self, segment: _Segment, video_id: str, encoders: list[str]) -> None:
        for encoder in encoders:
            path = array_group(encoder, video_id)
            if path in segment.h5:
                del segment.h5[path]

    def _frames_table(self, video_id: str, encoder: str, batches: list[StepBatch], segment: str) -> pa.Table:
        pooled = np.concatenate([b.pooled for b in batches])  # (N, D)
        n, dim = pooled.shape
        schema = frames_schema(dim, str(pooled.dtype))
        embedding = pa.FixedSizeListArray.from_arrays(pa.array(pooled.reshape(-1)), dim)
        return pa.table(
            {
                "video_id": pa.array([video_id] * n, pa.string()),
                "encoder": pa.array([encoder] * n, pa.string()),
                "index": pa.array(np.concatenate([b.index for b in batches]).astype(np.int32)),
                "t_start": pa.array(np.concatenate([b.t_start for b in batches]).astype(np.float64)),
                "t_end": pa.array(np.concatenate([b.t_end for b in batches]).astype(np.float64)),
                "padded": pa.array(np.concatenate([b.padded for b in batches]).astype(np.int16)),
                "embedding": embedding,
                "segment": pa.array([segment] * n, pa.string()),
            },
            schema=schema,
        )

    def _flush_frames(self, segment: _Segment, encoder: str, final: bool) -> None:
        tables = segment.frame_tables.get(encoder, [])
        if not tables:
            return
        if not final and sum(t.nbytes for t in tables) < PARQUET_ROW_GROUP_BYTES:
            return
        table = pa.concat_tables(tables)
        writer = segment.frame_writers.get(encoder)
        if writer is None:
            writer = pq.ParquetWriter(segment.staging / FRAMES_DIR / f"{encoder}.parquet", table.schema, compression="zstd")
            segment.frame_writers[encoder] = writer
        writer.write_table(table)
        segment.frame_tables[encoder] = []

    # ---- sealing --------------------------------------------------------------------------

    def _seal_if_done(self, segment: _Segment) -> None:
        if segment.accepting or segment.open_videos or segment not in self._segments:
            return
        self._seal(segment)

    def _seal(self, segment: _Segment) -> None:
        self._segments.remove(segment)
        if not segment.video_rows and not segment.item_rows:
            if segment._h5 is not None:
                segment._h5.close()
            shutil.rmtree(segment.staging, ignore_errors=True)
            return
        for encoder in list(segment.frame_tables):
            self._flush_frames(segment, encoder, final=True)
        for writer in segment.frame_writers.values():
            writer.close()
        if segment._h5 is not None:
            segment._h5.close()
        pq.write_table(pa.Table.from_pylist(segment.video_rows, schema=VIDEOS_SCHEMA), segment.staging / VIDEOS_FILE)
        pq.write_table(pa.Table.from_pylist(segment.item_rows, schema=ITEMS_SCHEMA), segment.staging / ITEMS_FILE)
        commit_segment(segment.staging, segment.final)
        if self.remote is not None:
            self._upload(segment.final)
        self.sealed_segments.append(segment.name)

    def close(self, abort: bool = False) -> None:
        """Seal every segment. With ``abort``, videos still in flight are dropped (no rows)."""
        if abort:
            for video_id, video in list(self._videos.items()):
                self._drop_arrays(video.segment, video_id, list(video.arrays))
                video.segment.open_videos.discard(video_id)
                del self._videos[video_id]
        try:
            if self._videos:
                raise RuntimeError(f"closing the store with videos in flight: {sorted(self._videos)[:5]}")
            for segment in list(self._segments):
                segment.accepting = False
                self._seal_if_done(segment)
        finally:  # on every path: no HDF5 handle left open, the lock released
            for segment in self._segments:
                if segment._h5 is not None:
                    segment._h5.close()
                for writer in segment.frame_writers.values():
                    writer.close()
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)

    def __enter__(self) -> "StoreWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(abort=exc_type is not None)
