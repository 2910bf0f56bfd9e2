"""From a store and a labels file to the videos a head trains on, split, with counts of what was
skipped and why (never silently)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from alex.errors import UsageError
from alex.heads.labels import LabelTable
from alex.heads.options import SPLITS
from alex.store.index import first_frame_times, input_arrays, locate
from alex.store.layout import STATUS_NO_AUDIO, STATUS_OK
from alex.store.reader import Store

if TYPE_CHECKING:  # pragma: no cover
    from alex.store.dataset import FeatureDataset


# Why a video cannot be used with some inputs (the keys of the ``skipped`` counts), and what to do.
SKIP_ERROR = "status error"
SKIP_NO_AUDIO = "no audio"
SKIP_MISSING = "missing features"
SKIP_NO_LABEL = "no label"
REMEDIES = {
    SKIP_ERROR: "extraction failed on them (`alex info` says why)",
    SKIP_NO_AUDIO: "they have no audio track, so an audio input has nothing for them (train without that input, "
                   "or pair the videos with audio files: alex extract --audio-dir DIR)",
    SKIP_MISSING: "an input has no features for them (extract it: alex extract -e ENCODER)",
}


def video_states(store: Store, inputs: Sequence[str]) -> dict[str, str | None]:
    """Every video of the store (sorted) -> why it cannot be used with ``inputs``, or None when it can:
    status ok and, for every input, a live item with at least one step."""
    rows = store.con.execute(
        """
        SELECT v.video_id, v.status,
               count(DISTINCT i.encoder) FILTER (WHERE i.status = $ok AND i.num_steps > 0),
               count(DISTINCT i.encoder) FILTER (WHERE i.status = $no_audio)
        FROM videos v LEFT JOIN _items_latest i ON i.video_id = v.video_id AND i.encoder IN (SELECT unnest($inputs))
        GROUP BY v.video_id, v.status ORDER BY v.video_id
        """,
        {"inputs": list(inputs), "ok": STATUS_OK, "no_audio": STATUS_NO_AUDIO},
    ).fetchall()
    wanted = len(set(inputs))
    states: dict[str, str | None] = {}
    for video_id, status, with_steps, no_audio in rows:
        if status != STATUS_OK:
            states[video_id] = SKIP_ERROR
        elif no_audio:  # an audio input on a video without an audio track
            states[video_id] = SKIP_NO_AUDIO
        elif with_steps < wanted:  # not extracted, failed, or zero steps (a silent video in an older store)
            states[video_id] = SKIP_MISSING
        else:
            states[video_id] = None
    return states


def count_reasons(reasons: Sequence[str | None]) -> dict[str, int]:
    """Skip counts: ``status error`` and ``missing features`` always, ``no audio`` when there are any."""
    counts = {SKIP_ERROR: 0, SKIP_MISSING: 0}
    for reason in reasons:
        if reason is not None:
            counts[reason] = counts.get(reason, 0) + 1
    return counts


def usable_videos(store: Store, inputs: Sequence[str]) -> tuple[list[str], dict[str, int]]:
    """Videos with status ok and live features (at least one step) for every input; counts of the
    others by reason."""
    states = video_states(store, inputs)
    return [v for v, reason in states.items() if reason is None], count_reasons(list(states.values()))


def sort_labels(labels: set[str]) -> list[str]:
    """Numeric labels in numeric order, others alphabetically."""
    try:
        return sorted(labels, key=lambda x: float(x))
    except ValueError:
        return sorted(labels)


@dataclass
class Selection:
    splits: dict[str, list[str]]
    labels: dict[str, str]
    skipped: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {split: len(ids) for split, ids in self.splits.items()}


def select_labelled(store: Store, table: LabelTable, inputs: Sequence[str], require: Sequence[str] = SPLITS) -> Selection:
    """Labelled, usable videos per split. Unknown ids and empty required splits are errors."""
    known = {v for (v,) in store.con.execute("SELECT video_id FROM videos").fetchall()}
    unknown = sorted(set(table.labels) - known)
    if unknown:
        raise UsageError(
            f"labels file {table.path} names {len(unknown)} video(s) that are not in store {store.root}, "
            f"e.g. {', '.join(unknown[:3])}; video_id must be the path relative to the videos folder, as in "
            "`alex query \"SELECT video_id FROM videos\"`"
        )
    states = video_states(store, inputs)
    usable = [v for v, reason in states.items() if reason is None]
    skipped = count_reasons(list(states.values()))
    skipped[SKIP_NO_LABEL] = sum(1 for v in usable if v not in table.labels)
    splits = {split: [v for v in usable if v in table.labels and table.splits[v] == split] for split in SPLITS}
    for split in require:
        if not splits[split]:
            raise UsageError(empty_split_message(table, split, splits, states, inputs))
    return Selection(splits, {v: table.labels[v] for ids in splits.values() for v in ids}, skipped)


def empty_split_message(table: LabelTable, split: str, splits: dict[str, list[str]], states: dict[str, str | None],
                        inputs: Sequence[str]) -> str:
    """Why a required split has no usable video: its labelled videos cannot be used with these inputs
    (each reason counted, with what to do), or it has no labelled video at all (the split rule)."""
    counts = ", ".join(f"{s} {len(ids)}" for s, ids in splits.items())
    head = f"labels file {table.path}: the {split} split is empty ({counts} usable labelled videos)"
    labelled = [v for v, s in table.splits.items() if s == split and v in states]
    reasons = count_reasons([states[v] for v in labelled])
    reasons = {reason: n for reason, n in reasons.items() if n}
    if not reasons:
        return f"{head}; add a 'split' column to the labels file, or train with other --split-fractions"
    why = "; ".join(f"{n} {reason}: {REMEDIES[reason]}" for reason, n in reasons.items())
    return f"{head}: its {len(labelled)} labelled video(s) cannot be used with inputs {','.join(inputs)}: {why}"


def make_dataset(store: Store, video_ids: list[str], inputs: Sequence[str], augment: bool = False,
                 extras: Sequence[dict[str, Any]] | None = None) -> "FeatureDataset":
    """``augment``: draw among stored augmented views (training split only); ``extras``: per video,
    the fields its item carries besides features (a label id, a prompt and target text, actions)."""
    from alex.store.dataset import FeatureDataset  # torch: only once a model is about to train

    arrays, dims = input_arrays(store, inputs)
    return FeatureDataset(locate(store, video_ids, inputs), inputs, None, arrays, dims, augment=augment, extras=extras)


def step_times(store: Store, encoder: str, video_ids: Sequence[str]) -> dict[str, np.ndarray]:
    """Each video's step start times for ``encoder``, in seconds from its first stored frame (the
    clock of actions files and predictions)."""
    first = first_frame_times(store, video_ids)
    rows = store.con.execute(
        "SELECT video_id, list(t_start ORDER BY index) FROM frames WHERE encoder = $encoder "
        "AND video_id IN (SELECT unnest($ids)) GROUP BY video_id",
        {"encoder": encoder, "ids": list(video_ids)},
    ).fetchall()
    times = {video_id: np.asarray(values, dtype=np.float64) - first[video_id] for video_id, values in rows}
    return {v: times.get(v, np.zeros(0)) for v in video_ids}
