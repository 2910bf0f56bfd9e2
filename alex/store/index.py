"""Where a Dataset's videos and their arrays are in a store, and the clock they share: the part of
``alex.store.dataset`` that needs no torch, so that training can check its inputs and report usage
errors before torch is imported."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from alex.store.layout import EMBEDDING
from alex.store.reader import Store


@dataclass
class DatasetIndex:
    """Which videos a Dataset serves and where their arrays are."""

    video_ids: list[str]
    locations: list[dict[str, tuple[str, str]]]  # per video: input -> (hdf5 file, group)
    frames: list[dict[str, str]] | None = None  # per video: input -> frames Parquet file
    t0: list[float] | None = None  # per video: container time of its first stored frame (the clock's zero)


def input_arrays(store: Store, inputs: Sequence[str]) -> tuple[dict[str, str], dict[str, int]]:
    """Which array each input's encoder trains on, and its feature size."""
    arrays = {name: store.encoders[name].get("array", EMBEDDING) for name in inputs}
    return arrays, {name: int(store.encoders[name]["dim"]) for name in inputs}


def locate(store: Store, video_ids: Sequence[str], inputs: Sequence[str]) -> DatasetIndex:
    locations, frames = [], []
    for video_id in video_ids:
        locations.append({name: tuple(map(str, store.array_location(video_id, name))) for name in inputs})
        frames.append({name: str(store.frames_file(video_id, name)) for name in inputs})
    first = first_frame_times(store, video_ids)
    return DatasetIndex(list(video_ids), locations, frames, [first.get(v, 0.0) for v in video_ids])


def first_frame_times(store: Store, video_ids: Sequence[str]) -> dict[str, float]:
    """Each video's first stored frame (the earliest ``t_start`` of any of its encoders): the zero of
    the clock heads see."""
    rows = store.con.execute(
        "SELECT video_id, min(t_start) FROM frames WHERE video_id IN (SELECT unnest($ids)) GROUP BY video_id",
        {"ids": list(video_ids)},
    ).fetchall()
    return {video_id: float(t) for video_id, t in rows}
