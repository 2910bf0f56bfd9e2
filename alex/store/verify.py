"""``alex verify``: a store checked against its own tables; ``--repair`` for what a torn write left.

Checked in every visible segment (``views.segment_dirs``):

- ``store.json`` reads, in this format version; every item's encoder is in it;
- ``videos.parquet`` and ``items.parquet`` read, hold the format's columns, and every row's
  ``segment`` names the folder it is in;
- an ok item of N steps has exactly N rows in ``frames/<encoder>.parquet`` of its segment: indexes
  0..N-1, finite start times never decreasing, end times at or after them, embeddings of the
  encoder's ``dim`` and finite; and, for an encoder that stores arrays (token grids, log-mels,
  views, cached model inputs), its HDF5 group in the segment's ``arrays.h5``: every dataset N
  long, floats finite, the same start times as the frames rows;
- nothing orphaned: no frames rows and no HDF5 group without an ok item of their segment that
  owns them, no frames file of an encoder the store does not know.

Leftovers are listed, not failures: readers never see them (``.staging/`` of an interrupted run,
``store.json.tmp``, segments a compaction made obsolete, ``.trash/``, a folder in ``segments/``
that is not a sealed segment). ``repair`` removes them (an unknown folder is moved to
``.quarantine/``, never deleted) and, when problems were found, compacts the store without the
videos they touch, each replaced by an ``error`` row that makes the next ``alex extract`` extract it
again (``compact.compact(exclude=...)``): good data is copied, never dropped. A segment whose own
tables cannot be read is moved to ``.quarantine/`` as a whole; its videos are then missing, and
extracted again by the next run.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pyarrow.parquet as pq

from alex.errors import StoreFormatError
from alex.store.config import read_store_config
from alex.errors import UsageError
from alex.store.location import is_url, store_location
from alex.store.layout import (
    ARRAYS_FILE,
    FRAMES_DIR,
    ITEMS_FILE,
    ITEMS_SCHEMA,
    QUARANTINE_DIR,
    SEGMENTS_DIR,
    STAGING_DIR,
    STATUS_OK,
    STORE_JSON,
    T_START,
    TRASH_DIR,
    VIDEOS_FILE,
    VIDEOS_SCHEMA,
    VIEWS,
    video_key,
)
from alex.store.readers import obsolete_segments
from alex.store.views import sealed_segments, segment_dirs

READ_ROWS_BYTES = 64 << 20  # HDF5 datasets are checked in slices of about this size


@dataclass
class Problem:
    where: str  # a path relative to the store
    what: str
    video_id: str | None = None  # the video it touches, when it is one video's
    orphan: bool = False  # rows or arrays nothing reads may show: compaction drops them, the video stays

    def __str__(self) -> str:
        return f"{self.where}: {self.what}" + (f" (video {self.video_id!r})" if self.video_id else "")


@dataclass
class VerifyReport:
    root: Path
    segments: int = 0
    items: int = 0
    rows: int = 0
    arrays: int = 0
    problems: list[Problem] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)  # relative paths, harmless
    repaired: list[str] = field(default_factory=list)  # what --repair did

    @property
    def sound(self) -> bool:
        return not self.problems

    @property
    def exit_code(self) -> int:
        return 0 if self.sound else 1


def verify(root: str | Path, repair: bool = False) -> VerifyReport:
    """Check a store; with ``repair``, fix what can be fixed without dropping good data, then check
    again (the report is the second check's, with ``repaired`` saying what was done)."""
    if is_url(store_location(root)):
        raise UsageError(f"alex verify works on a store folder; {root} is a URL: copy the store here "
                         "(e.g. `aws s3 sync`), verify it, and copy it back")
    root = Path(root)
    report = _check(root)
    if not repair or (report.sound and not report.leftovers):
        return report
    done = _repair(root, report)
    after = _check(root)
    after.repaired = done
    return after


def expected_arrays(config: dict[str, Any]) -> set[str]:
    """The HDF5 datasets an encoder writes for each video beside the pooled vectors."""
    names = set(config.get("arrays") or [])
    if config.get("array") not in (None, "embedding"):
        names.add(config["array"])
    if (config.get("sampling") or {}).get("views", 1) > 1:
        names.add(VIEWS)
    return names


def _check(root: Path) -> VerifyReport:
    report = VerifyReport(root)
    if not (root / STORE_JSON).is_file() and not (root / SEGMENTS_DIR).is_dir():
        raise StoreFormatError(f"{root} is not an alex store: {STORE_JSON} is missing")
    try:
        encoders = read_store_config(root)["encoders"]
    except StoreFormatError as exc:
        report.problems.append(Problem(STORE_JSON, str(exc)))
        return report
    _leftovers(root, report)
    for segment in segment_dirs(root):
        report.segments += 1
        _check_segment(root, segment, encoders, report)
    return report


def _leftovers(root: Path, report: VerifyReport) -> None:
    staging = root / STAGING_DIR
    if staging.is_dir():
        report.leftovers += [f"{STAGING_DIR}/{p.name} (an interrupted run's unfinished segment)" for p in sorted(staging.iterdir())]
    if (root / (STORE_JSON + ".tmp")).exists():
        report.leftovers.append(f"{STORE_JSON}.tmp (an interrupted write of store.json; store.json is whole)")
    if (root / TRASH_DIR).exists():
        report.leftovers.append(f"{TRASH_DIR} (segments being removed)")
    report.leftovers += [f"{SEGMENTS_DIR}/{p.name} (obsolete since a compaction)" for p in obsolete_segments(root)]
    sealed = set(sealed_segments(root))
    base = root / SEGMENTS_DIR
    if base.is_dir():
        report.leftovers += [f"{SEGMENTS_DIR}/{p.name} (not a sealed segment: no {VIDEOS_FILE})"
                             for p in sorted(base.iterdir()) if p not in sealed]


def _read(path: Path, where: str, report: VerifyReport, schema=None):
    try:
        table = pq.read_table(path)
    except Exception as exc:  # any damage pyarrow finds: truncated, not Parquet, unreadable
        report.problems.append(Problem(where, f"cannot be read: {type(exc).__name__}: {str(exc).splitlines()[0]}"))
        return None
    if schema is not None:
        missing = [name for name in ("video_id", "status", "segment", "fingerprint") if name in schema.names
                   and name not in table.column_names]
        if missing:
            report.problems.append(Problem(where, f"lacks the column(s) {', '.join(missing)}"))
            return None
    return table


def _check_segment(root: Path, segment: Path, encoders: dict[str, dict], report: VerifyReport) -> None:
    rel = f"{SEGMENTS_DIR}/{segment.name}"
    videos = _read(segment / VIDEOS_FILE, f"{rel}/{VIDEOS_FILE}", report, VIDEOS_SCHEMA)
    items = _read(segment / ITEMS_FILE, f"{rel}/{ITEMS_FILE}", report, ITEMS_SCHEMA)
    if videos is None or items is None:
        return
    for name, table in ((VIDEOS_FILE, videos), (ITEMS_FILE, items)):
        wrong = {s for s in table["segment"].to_pylist() if s != segment.name}
        if wrong:
            report.problems.append(Problem(f"{rel}/{name}", f"rows name segment(s) {sorted(wrong)[:3]}, not their folder"))
    steps: dict[str, dict[str, int]] = {}  # encoder -> video -> steps of its ok item here
    for video_id, encoder, status, num_steps in zip(*(items[c].to_pylist() for c in ("video_id", "encoder", "status", "num_steps"))):
        report.items += 1
        if encoder not in encoders:
            report.problems.append(Problem(f"{rel}/{ITEMS_FILE}", f"an item of encoder {encoder!r}, which store.json does not know", video_id))
        elif status == STATUS_OK:
            steps.setdefault(encoder, {})[video_id] = int(num_steps or 0)
    frame_files = {p.stem: p for p in (segment / FRAMES_DIR).glob("*.parquet")} if (segment / FRAMES_DIR).is_dir() else {}
    for encoder in sorted(set(frame_files) - set(encoders)):
        report.problems.append(Problem(f"{rel}/{FRAMES_DIR}/{encoder}.parquet", "frames of an encoder store.json does not know"))
    starts: dict[tuple[str, str], np.ndarray] = {}
    for encoder in sorted(set(steps) & set(encoders)):
        _check_frames(rel, frame_files.get(encoder), encoder, encoders[encoder], steps[encoder], report, starts)
    for encoder in sorted((set(frame_files) & set(encoders)) - set(steps)):
        _check_frames(rel, frame_files[encoder], encoder, encoders[encoder], {}, report, starts)
    _check_arrays(rel, segment / ARRAYS_FILE, encoders, steps, starts, report)


def _check_frames(rel: str, path: Path | None, encoder: str, config: dict, steps: dict[str, int],
                  report: VerifyReport, starts: dict[tuple[str, str], np.ndarray]) -> None:
    where = f"{rel}/{FRAMES_DIR}/{encoder}.parquet"
    if path is None:
        for video_id, n in steps.items():
            if n:
                report.problems.append(Problem(where, f"missing; its item says {n} steps", video_id))
        return
    table = _read(path, where, report)
    if table is None:
        for video_id, n in steps.items():
            report.problems.append(Problem(where, "unreadable frames of an ok item", video_id))
        return
    report.rows += table.num_rows
    ids = np.asarray(table["video_id"].to_pylist(), dtype=object)
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    index = table["index"].to_numpy()[order]
    t_start = table["t_start"].to_numpy()[order]
    t_end = table["t_end"].to_numpy()[order]
    embedding = table["embedding"].combine_chunks()
    dim = int(config.get("dim") or 0)
    size = getattr(embedding.type, "list_size", None)
    if size != dim:
        report.problems.append(Problem(where, f"embeddings of {size} values, store.json says dim {dim}"))
        return
    values = embedding.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)[order]  # (N, D)
    bounds = np.flatnonzero(ids[1:] != ids[:-1]) + 1 if len(ids) else np.zeros(0, int)
    seen = set()
    for lo, hi in zip(np.r_[0, bounds].astype(int), np.r_[bounds, len(ids)].astype(int)):
        if lo == hi:
            continue
        video_id = str(ids[lo])
        seen.add(video_id)
        if video_id not in steps:
            report.problems.append(Problem(where, f"{hi - lo} rows without an ok item of this segment (orphans)", video_id, orphan=True))
            continue
        rows = np.argsort(index[lo:hi], kind="stable") + lo
        n = steps[video_id]
        why = []
        if hi - lo != n:
            why.append(f"{hi - lo} rows, its item says {n} steps")
        elif not np.array_equal(index[rows], np.arange(n)):
            why.append("step indexes are not 0..N-1")
        ts, te = t_start[rows], t_end[rows]
        if not (np.isfinite(ts).all() and np.isfinite(te).all()):
            why.append("non-finite times")
        elif (np.diff(ts) < 0).any():  # equal when one frame serves two targets (--num-frames over a short video)
            why.append("start times decreasing")
        elif (te < ts).any():
            why.append("an end time before its start")
        if not np.isfinite(values[rows].astype(np.float32)).all():
            why.append("non-finite embedding values")
        if why:
            report.problems.append(Problem(where, "; ".join(why), video_id))
        starts[(encoder, video_id)] = ts
    for video_id, n in steps.items():
        if n and video_id not in seen:
            report.problems.append(Problem(where, f"no rows; its item says {n} steps", video_id))


def _check_arrays(rel: str, path: Path, encoders: dict[str, dict], steps: dict[str, dict[str, int]],
                  starts: dict[tuple[str, str], np.ndarray], report: VerifyReport) -> None:
    where = f"{rel}/{ARRAYS_FILE}"
    wanted = {(e, v): n for e, videos in steps.items() if e in encoders and expected_arrays(encoders[e])
              for v, n in videos.items() if n}
    if not path.is_file():
        for (encoder, video_id), n in sorted(wanted.items()):
            report.problems.append(Problem(where, f"missing; encoder {encoder!r} stores arrays for its {n} steps", video_id))
        return
    try:
        h5 = h5py.File(path, "r")
    except Exception as exc:
        report.problems.append(Problem(where, f"cannot be opened: {type(exc).__name__}: {exc}"))
        for (encoder, video_id) in sorted(wanted):
            report.problems.append(Problem(where, f"unreadable arrays of encoder {encoder!r}", video_id))
        return
    with h5:
        keys = {(e, video_key(v)): v for e, videos in steps.items() for v in videos}
        for encoder in h5:
            for key in h5[encoder]:
                group = h5[encoder][key]
                if not isinstance(group, h5py.Group):
                    report.problems.append(Problem(f"{where}/{encoder}/{key}", "a dataset where a video's group belongs"))
                    continue
                video_id = keys.get((encoder, key)) or str(group.attrs.get("video_id", key))
                if (encoder, key) not in keys:
                    report.problems.append(Problem(f"{where}/{encoder}/{key}", "arrays without an ok item of this segment (orphans)", video_id,
                                                   orphan=True))
                    continue
                n = steps[encoder][video_id]
                wanted.pop((encoder, video_id), None)
                why = []
                for name in group:
                    try:
                        why += _check_dataset(group[name], name, n)
                    except Exception as exc:
                        why.append(f"{name}: cannot be read ({type(exc).__name__}: {exc})")
                if T_START in group and (encoder, video_id) in starts and not why:
                    if not np.array_equal(group[T_START][()], starts[(encoder, video_id)]):
                        why.append("t_start differs from the frames rows")
                missing = expected_arrays(encoders.get(encoder, {})) - set(group)
                if missing and n:
                    why.append(f"lacks {', '.join(sorted(missing))}")
                report.arrays += 1
                if why:
                    report.problems.append(Problem(f"{where}/{encoder}/{key}", "; ".join(why), video_id))
    for (encoder, video_id), n in sorted(wanted.items()):
        report.problems.append(Problem(where, f"no arrays of encoder {encoder!r} for its {n} steps", video_id))


def _check_dataset(dataset: h5py.Dataset, name: str, n: int) -> list[str]:
    if dataset.shape[0] != n:
        return [f"{name}: {dataset.shape[0]} steps, the item says {n}"]
    if dataset.dtype.kind != "f" or n == 0:
        return []
    row_bytes = max(1, int(np.prod(dataset.shape[1:], dtype=np.int64)) * dataset.dtype.itemsize)
    step = max(1, READ_ROWS_BYTES // row_bytes)
    for lo in range(0, n, step):
        if not np.isfinite(dataset[lo:lo + step]).all():
            return [f"{name}: non-finite values"]
    return []


def _repair(root: Path, report: VerifyReport) -> list[str]:
    from alex.store.compact import compact
    from alex.store.readers import remove_obsolete
    from alex.store.writer import StoreWriter

    done: list[str] = []
    quarantine = root / QUARANTINE_DIR
    unreadable = {p.where.split("/")[1] for p in report.problems if p.video_id is None and p.where.startswith(SEGMENTS_DIR)
                  and (p.where.endswith(VIDEOS_FILE) or p.where.endswith(ITEMS_FILE))}
    with StoreWriter(root):  # the writer lock; opening it clears .staging and obsolete segments
        for name in sorted(unreadable):
            quarantine.mkdir(exist_ok=True)
            shutil.move(str(root / SEGMENTS_DIR / name), str(quarantine / name))
            done.append(f"moved {SEGMENTS_DIR}/{name} to {QUARANTINE_DIR}/ (its tables cannot be read; its videos will be extracted again)")
        base = root / SEGMENTS_DIR
        sealed = set(sealed_segments(root))
        for folder in sorted(p for p in base.iterdir() if p not in sealed):
            quarantine.mkdir(exist_ok=True)
            shutil.move(str(folder), str(quarantine / folder.name))
            done.append(f"moved {SEGMENTS_DIR}/{folder.name} to {QUARANTINE_DIR}/ (not a sealed segment)")
        tmp = root / (STORE_JSON + ".tmp")
        if tmp.exists():
            tmp.unlink()
    left = [p for p in report.leftovers if p.startswith((STAGING_DIR, TRASH_DIR)) or "obsolete" in p]
    if left:
        done.append(f"removed {len(left)} leftover(s) of interrupted writes" +
                    ("" if not obsolete_segments(root) else "; obsolete segments stay while a reader is open"))
    remove_obsolete(root)
    damaged = {p.video_id: p.what for p in report.problems if p.video_id is not None and not p.orphan}
    if damaged or (report.problems and not unreadable):
        result = compact(root, exclude=damaged)
        if damaged:
            done.append(f"compacted the store without {len(damaged)} damaged video(s), marked to be extracted again: "
                        + ", ".join(sorted(damaged)[:5]) + (" ..." if len(damaged) > 5 else ""))
        elif result.segment:
            done.append("compacted the store (dropping orphaned rows)")
    return done


def as_json(report: VerifyReport) -> str:
    return json.dumps({"store": str(report.root), "sound": report.sound, "segments": report.segments,
                       "items": report.items, "rows": report.rows, "arrays": report.arrays,
                       "problems": [{"where": p.where, "what": p.what, "video_id": p.video_id} for p in report.problems],
                       "leftovers": report.leftovers, "repaired": report.repaired}, indent=2)
