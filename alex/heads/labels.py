"""Labels for training, read through DuckDB (CSV, JSON Lines or Parquet), and the split.

A labels file is keyed by ``video_id`` with a ``label`` column for classification (or ``text``
and an optional ``prompt`` for generative heads) and an optional ``split`` column (train /
validation / test). Without one, each video goes to a split by a hash of its id, so the split
never changes between runs, seeds or machines. An actions file has one row per time instead:
``video_id``, ``timestamp``, ``actions`` (a list of floats).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np

from alex.errors import UsageError
from alex.heads.options import DEFAULT_FRACTIONS

SPLIT_ALIASES = {"train": "train", "training": "train", "val": "validation", "valid": "validation",
                 "validation": "validation", "dev": "validation", "test": "test", "eval": "test"}


@dataclass
class Sample:
    """One thing asked of a video: its prompt (a question, or None) and every acceptable answer (the
    captions of a video, the answers given to a question)."""

    prompt: str | None
    references: list[str]


@dataclass
class LabelTable:
    """video_id -> label (as text) and split, from one labels file; for files with several rows per
    video (``read_labels(..., several=True)``: captions, questions), ``samples`` groups them."""

    path: Path
    labels: dict[str, str]
    splits: dict[str, str]
    columns: list[str] = field(default_factory=list)
    prompts: dict[str, str] = field(default_factory=dict)  # the optional ``prompt`` column (questions for QA)
    actions: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # video -> (times (n,), actions (n, A))
    samples: dict[str, list[Sample]] = field(default_factory=dict)  # video -> its (prompt, references), in file order

    def samples_of(self, video_id: str) -> list[Sample]:
        """The video's samples (a one-row-per-video file: its one label and prompt)."""
        return self.samples.get(video_id) or [Sample(self.prompts.get(video_id), [self.labels[video_id]])]


def read_table(path: str | Path) -> duckdb.DuckDBPyRelation:
    """Open a CSV, JSON Lines or Parquet file as a DuckDB relation (by extension)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"labels file {path} does not exist")
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix.lower() == ".gz" else path.suffix.lower()
    con = duckdb.connect()
    quoted = "'" + str(path).replace("'", "''") + "'"
    try:
        if suffix.startswith(".csv") or suffix.startswith(".tsv"):
            return con.sql(f"SELECT * FROM read_csv({quoted}, auto_detect = true, header = true)")
        if suffix.startswith((".jsonl", ".ndjson", ".json")):
            return con.sql(f"SELECT * FROM read_json({quoted}, format = 'newline_delimited')")
        if suffix.startswith(".parquet") or suffix == ".pq":
            return con.sql(f"SELECT * FROM read_parquet({quoted})")
    except duckdb.Error as exc:
        con.close()
        raise UsageError(f"labels file {path} cannot be read: {str(exc).splitlines()[0]}") from exc
    con.close()
    raise UsageError(f"labels file {path}: use .csv, .jsonl or .parquet (got {path.suffix or 'no extension'})")


def hash_split(video_id: str, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> str:
    """Deterministic split from a hash of the id (the same on every machine and run)."""
    value = int.from_bytes(hashlib.blake2b(video_id.encode(), digest_size=8).digest(), "big") / 2**64
    train, validation, _ = fractions
    if value < train:
        return "train"
    return "validation" if value < train + validation else "test"


def read_labels(path: str | Path, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
                label_column: str = "label", several: bool = False) -> LabelTable:
    """Read and validate a labels file; every problem names the file. With ``several``, a video may
    have several rows (MSR-VTT's 20 captions, VQA's questions and their answers): rows with the same
    ``prompt`` are one sample with several references; all rows of a video share its split."""
    path = Path(path)
    relation = read_table(path)
    columns = relation.columns
    missing = [c for c in ("video_id", label_column) if c not in columns]
    if missing:
        raise UsageError(f"labels file {path} has no column {', '.join(repr(m) for m in missing)} (it has: {', '.join(columns)})")
    has_split = "split" in columns
    has_prompt = "prompt" in columns
    select = f'video_id, "{label_column}", ' + ("split" if has_split else "NULL") + (", prompt" if has_prompt else ", NULL")
    rows = relation.select(select).fetchall()
    labels: dict[str, str] = {}
    splits: dict[str, str] = {}
    prompts: dict[str, str] = {}
    samples: dict[str, dict[str | None, Sample]] = {}
    duplicates = []
    for row in rows:
        video_id, label = row[0], row[1]
        if video_id is None or label is None:
            raise UsageError(f"labels file {path} has an empty video_id or {label_column} (row {row})")
        video_id = str(video_id)
        prompt = str(row[3]) if has_prompt and row[3] is not None else None
        if video_id in labels:
            duplicates.append(video_id)
        else:
            labels[video_id] = str(label)
            if prompt is not None:
                prompts[video_id] = prompt
        samples.setdefault(video_id, {}).setdefault(prompt, Sample(prompt, [])).references.append(str(label))
        if has_split:
            split = SPLIT_ALIASES.get(str(row[2]).strip().lower()) if row[2] is not None else None
            if split is None:
                raise UsageError(f"labels file {path}: split {row[2]!r} of {video_id} is not one of train, validation, test")
            if splits.setdefault(video_id, split) != split:
                raise UsageError(f"labels file {path}: the rows of {video_id} are in more than one split "
                                 f"({splits[video_id]} and {split}); a video's rows must share one")
        else:
            splits[video_id] = hash_split(video_id, fractions)
    if duplicates and not several:
        raise UsageError(f"labels file {path} lists {len(duplicates)} video(s) more than once, e.g. {duplicates[0]}")
    if not labels:
        raise UsageError(f"labels file {path} has no rows")
    grouped = {v: list(by_prompt.values()) for v, by_prompt in samples.items()} if several else {}
    return LabelTable(path, labels, splits, list(columns), prompts, samples=grouped)


def read_actions(path: str | Path, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> LabelTable:
    """Per-time actions (rows of ``video_id``, ``timestamp``, ``actions``) as a LabelTable whose
    ``actions`` map each video to (times (n,), actions (n, A)), split like any labels file."""
    relation = read_table(path)
    missing = [c for c in ("video_id", "timestamp", "actions") if c not in relation.columns]
    if missing:
        raise UsageError(f"actions file {path} has no column {', '.join(repr(m) for m in missing)} "
                         f"(it has: {', '.join(relation.columns)})")
    rows = relation.select("video_id, timestamp, actions").order("video_id, timestamp").fetchall()
    by_video: dict[str, list] = {}
    for video_id, t, action in rows:
        by_video.setdefault(str(video_id), []).append((float(t), [float(a) for a in action]))
    sizes = {len(a) for items in by_video.values() for _, a in items}
    if len(sizes) != 1:
        raise UsageError(f"actions file {path}: every 'actions' list must have the same length (found {sorted(sizes)})")
    actions = {v: (np.array([t for t, _ in items]), np.array([a for _, a in items], np.float32)) for v, items in by_video.items()}
    return LabelTable(Path(path), {v: "action" for v in actions}, {v: hash_split(v, fractions) for v in actions},
                      ["video_id", "timestamp", "actions"], actions=actions)


def align_actions(step_times: np.ndarray, times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each step takes the latest action at or before its time (the first one before any): the
    sampling rule of ``alex extract``."""
    index = np.searchsorted(times, step_times + 1e-6, side="right") - 1
    return values[np.clip(index, 0, len(values) - 1)]


def read_questions(path: str | Path) -> LabelTable:
    """A questions file (``video_id``, ``prompt``; several rows per video) as samples with no answers."""
    path = Path(path)
    relation = read_table(path)
    missing = [c for c in ("video_id", "prompt") if c not in relation.columns]
    if missing:
        raise UsageError(f"questions file {path} has no column {', '.join(repr(m) for m in missing)} (it has: {', '.join(relation.columns)})")
    samples: dict[str, list[Sample]] = {}
    for video_id, prompt in relation.select("video_id, prompt").fetchall():
        if video_id is None or prompt is None:
            raise UsageError(f"questions file {path} has an empty video_id or prompt")
        samples.setdefault(str(video_id), []).append(Sample(str(prompt), []))
    if not samples:
        raise UsageError(f"questions file {path} has no rows")
    return LabelTable(path, {v: "" for v in samples}, {v: "test" for v in samples}, ["video_id", "prompt"], samples=samples)
