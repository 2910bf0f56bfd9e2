"""Layout constants and table schemas of an alex store: the one place that defines the format.

A store is a folder::

    store.json                       format name and version, one config per encoder
    segments/<segment>/videos.parquet      one row per video processed in this segment
    segments/<segment>/items.parquet       one row per (video, encoder) extracted (or failed) in this segment:
                                     status ok (with num_steps steps), error, or no_audio (see below)
    segments/<segment>/frames/<encoder>.parquet   one row per sampled step, pooled embedding
    segments/<segment>/arrays.h5     /<encoder>/<video key>/{tokens | logmel | views | image, audio, t_start, t_end[, frame_t_start]}

Each value is stored once: the pooled vector of a step (what search and per-frame heads use)
lives in the ``frames`` Parquet; HDF5 holds only the larger arrays some encoders add (token
grids, audio windows, augmented views), chunked along time.
    .staging/                        segments being written; never read
    .lock                            held by the one process writing
    .readers                         held (shared) by every open reader: compaction deletes nothing under one
    .trash/                          segments a compaction made obsolete, on their way out; never read
    .quarantine/                     folders `alex verify --repair` set aside (unreadable); never read, never deleted

``alex compact`` writes the live rows and arrays of every segment into one new segment holding
``compacted.json``: such a segment makes every segment before it obsolete (readers skip them), so
its rename is the one commit point of a compaction too.

A segment becomes visible by one atomic rename of its finished folder from ``.staging/``
to ``segments/``, so a crash leaves either the old store or the new rows, never a torn file.
Later segments supersede earlier rows of the same video (re-extraction of a changed file,
``--retry-errors``); the views in ``views.py`` keep only the live ones.

No audio: an encoder that hears audio (``audio``, ``perceiver-mm``) run on a video whose container
has no audio stream, without ``--audio-dir``, gets an item of status ``no_audio`` with 0 steps and
no features: the video is fine, it is done (a rerun does not extract it again; a rerun with
``--audio-dir`` does, from the paired file), and it is not a failure. The ``videos`` view shows
it as the column ``no_audio``, the list of the video's encoders in that state (empty when none):
``SELECT video_id FROM videos WHERE list_contains(no_audio, 'audio')``; the ``items`` view gives
every (video, encoder) its state and step count (``status``, ``steps``, ``error``). The state is a value of
the items' ``status`` column, so stores written before it existed open as they are (their silent
videos read as ``ok`` items with 0 steps).
"""

from __future__ import annotations

import hashlib

import pyarrow as pa

FORMAT_NAME = "alex-feature-store"
FORMAT_VERSION = 1

STORE_JSON = "store.json"
SEGMENTS_DIR = "segments"
STAGING_DIR = ".staging"
LOCK_FILE = ".lock"
READERS_LOCK = ".readers"
TRASH_DIR = ".trash"
QUARANTINE_DIR = ".quarantine"
COMPACTED_FILE = "compacted.json"  # in a segment written by `alex compact`: every earlier segment is obsolete
VIDEOS_FILE = "videos.parquet"
ITEMS_FILE = "items.parquet"
FRAMES_DIR = "frames"
ARRAYS_FILE = "arrays.h5"

STATUS_OK = "ok"
STATUS_ERROR = "error"
STATUS_NO_AUDIO = "no_audio"  # an item only: an audio encoder on a video without an audio track (0 steps, done)

# HDF5 dataset names inside /<encoder>/<video key>/
EMBEDDING = "embedding"
VIEWS = "views"  # (T, K, D): K augmented views per step, view 0 plain (extract --views K)
T_START = "t_start"
T_END = "t_end"
FRAME_T_START = "frame_t_start"  # (T, F) float64: the start time of each of a clip's F frames (clip encoders)

STORE_DTYPES = ("float16", "float32")

VIDEOS_SCHEMA = pa.schema(
    [
        ("video_id", pa.string()),
        ("source_path", pa.string()),
        ("size_bytes", pa.int64()),
        ("mtime_ns", pa.int64()),
        ("fingerprint", pa.string()),
        ("duration", pa.float64()),
        ("fps", pa.float64()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("rotation", pa.int32()),
        ("codec", pa.string()),
        ("pix_fmt", pa.string()),
        ("has_audio", pa.bool_()),  # the container has an audio stream
        ("audio_source", pa.string()),  # where the audio encoders' samples came from: container, file (--audio-dir), or null
        ("audio_path", pa.string()),  # the file they were read from
        ("status", pa.string()),
        ("error", pa.string()),
        ("extracted_at", pa.timestamp("ms")),  # UTC (naive: readable without pytz)
        ("segment", pa.string()),
    ]
)

ITEMS_SCHEMA = pa.schema(
    [
        ("video_id", pa.string()),
        ("encoder", pa.string()),
        ("fingerprint", pa.string()),
        ("num_steps", pa.int32()),
        ("status", pa.string()),  # ok; error: this encoder failed on a video that is otherwise fine; no_audio
        ("error", pa.string()),
        ("segment", pa.string()),
        ("versions", pa.string()),  # JSON: the alex, torch, open_clip, transformers, FFmpeg... that wrote it (null before)
    ]
)


def arrow_float(dtype: str) -> pa.DataType:
    """The Arrow type that stores embeddings of a store dtype."""
    return {"float16": pa.float16(), "float32": pa.float32()}[dtype]


def frames_schema(dim: int, dtype: str) -> pa.Schema:
    """Schema of ``frames/<encoder>.parquet``: the embedding is a fixed-size list of ``dim`` floats."""
    return pa.schema(
        [
            ("video_id", pa.string()),
            ("encoder", pa.string()),
            ("index", pa.int32()),
            ("t_start", pa.float64()),
            ("t_end", pa.float64()),
            ("padded", pa.int16()),  # frames repeated to complete a clip past the end of a video
            ("embedding", pa.list_(arrow_float(dtype), dim)),
            ("segment", pa.string()),
        ]
    )


def video_key(video_id: str) -> str:
    """HDF5 group name of a video: video ids are paths, so they are hashed, not nested."""
    return hashlib.blake2b(video_id.encode("utf-8"), digest_size=10).hexdigest()


def array_group(encoder: str, video_id: str) -> str:
    """HDF5 path of one video's arrays for one encoder inside a segment's ``arrays.h5``."""
    return f"/{encoder}/{video_key(video_id)}"
