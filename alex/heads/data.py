"""From a store and a labels file to the videos a head trains on, split, with counts of what was
skipped and why (never silently)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from alex.errors import UsageError
from alex.heads.labels import LabelTable
from alex.heads.options import SPLITS
from alex.store.dataset import FeatureDataset, first_frame_times, input_arrays, locate
from alex.store.reader import Store


def usable_videos(store: Store, inputs: Sequence[str]) -> tuple[list[str], dict[str, int]]:
    """Videos with status ok and live features for every input; counts of the others."""
    rows = store.con.execute(
        """
        SELECT v.video_id, v.status,
               count(DISTINCT i.encoder) FILTER (WHERE i.encoder IN (SELECT unnest($inputs))),
               coalesce(sum(i.num_steps) FILTER (WHERE i.encoder IN (SELECT unnest($inputs))), 0)
        FROM videos v LEFT JOIN _items_live i USING (video_id)
        GROUP BY v.video_id, v.status ORDER BY v.video_id
        """,
        {"inputs": list(inputs)},
    ).fetchall()
    # Every input extracted, and at least one step among them (a silent video has no audio steps).
    usable = [v for v, status, n, steps in rows if status == "ok" and n == len(inputs) and steps > 0]
    skipped = {
        "status error": sum(1 for _, status, _, _ in rows if status != "ok"),
        "missing features": sum(1 for _, status, n, steps in rows if status == "ok" and (n < len(inputs) or steps == 0)),
    }
    return usable, skipped


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
    usable, skipped = usable_videos(store, inputs)
    skipped["no label"] = sum(1 for v in usable if v not in table.labels)
    splits = {split: [v for v in usable if v in table.labels and table.splits[v] == split] for split in SPLITS}
    for split in require:
        if not splits[split]:
            counts = ", ".join(f"{s} {len(ids)}" for s, ids in splits.items())
            raise UsageError(
                f"labels file {table.path}: the {split} split is empty ({counts} usable labelled videos); "
                "add a 'split' column or change --split fractions"
            )
    return Selection(splits, {v: table.labels[v] for ids in splits.values() for v in ids}, skipped)


def make_dataset(store: Store, video_ids: list[str], inputs: Sequence[str], augment: bool = False,
                 extras: Sequence[dict[str, Any]] | None = None) -> FeatureDataset:
    """``augment``: draw among stored augmented views (training split only); ``extras``: per video,
    the fields its item carries besides features (a label id, a prompt and target text, actions)."""
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
