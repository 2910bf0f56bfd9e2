"""A torch Dataset over a store: per video, the arrays of the requested inputs with their times.

HDF5 files are opened lazily, once per process (so several DataLoader workers each get their
own handles), and kept open. Arrays are read as stored (float16 by default) and returned as
float32; ``collate_features`` pads variable lengths and says which steps are real with masks.
Token arrays (T, ..., D) are flattened to (T * tokens, D) with each token carrying its step's
time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from alex.store.layout import EMBEDDING, T_START, VIEWS
from alex.store.reader import Store


@dataclass
class DatasetIndex:
    """Which videos a Dataset serves and where their arrays are."""

    video_ids: list[str]
    locations: list[dict[str, tuple[str, str]]]  # per video: input -> (hdf5 file, group)


def input_arrays(store: Store, inputs: Sequence[str]) -> tuple[dict[str, str], dict[str, int]]:
    """Which HDF5 array each input's encoder trains on, and its feature size."""
    arrays = {name: store.encoders[name].get("array", EMBEDDING) for name in inputs}
    return arrays, {name: int(store.encoders[name]["dim"]) for name in inputs}


def locate(store: Store, video_ids: Sequence[str], inputs: Sequence[str]) -> DatasetIndex:
    locations = []
    for video_id in video_ids:
        locations.append({name: tuple(map(str, store.array_location(video_id, name))) for name in inputs})
    return DatasetIndex(list(video_ids), locations)


class FeatureDataset(Dataset):
    """Items: ``{"video_id", "features": {input: (T, D)}, "timestamps": {input: (T,)}, "labels"?}``.

    Timestamps are seconds from the video's first stored step (over all inputs), so a head sees
    when within the video each step is.
    """

    def __init__(self, index: DatasetIndex, inputs: Sequence[str], labels: Sequence[int] | None = None,
                 arrays: dict[str, str] | None = None, dims: dict[str, int] | None = None, augment: bool = False):
        self.index = index
        self.inputs = list(inputs)
        self.labels = list(labels) if labels is not None else None
        self.arrays = arrays or {}  # input -> HDF5 array to read (default "embedding"; "tokens", "logmel"...)
        self.dims = dims or {}  # input -> feature size, for videos with zero steps
        self.augment = augment  # training: read one of the stored augmented views (--views) at random
        self._files: dict[str, h5py.File] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.index.video_ids)

    def _file(self, path: str) -> h5py.File:
        if self._pid != os.getpid():  # a forked DataLoader worker: never share the parent's handles
            self._files, self._pid = {}, os.getpid()
        handle = self._files.get(path)
        if handle is None:
            handle = self._files[path] = h5py.File(path, "r")
        return handle

    def read(self, i: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """input -> (features (T, ...) as stored, start times (T,)); zero steps read as empty."""
        out = {}
        for name, (path, group_name) in self.index.locations[i].items():
            array = self.arrays.get(name, EMBEDDING)
            handle = self._file(path) if os.path.exists(path) else None
            if handle is None or group_name not in handle:
                out[name] = (np.zeros((0, self.dims[name]), np.float32), np.zeros(0))
                continue
            group = handle[group_name]
            if self.augment and VIEWS in group:  # (T, K, D): each item draws one view per read
                views = group[VIEWS]
                view = int(torch.randint(views.shape[1], ()).item())
                out[name] = (views[:, view], group[T_START][()])
            else:
                out[name] = (group[array][()], group[T_START][()])
        return out

    def __getitem__(self, i: int) -> dict[str, Any]:
        raw = self.read(i)
        t0 = min((float(t[0]) for _, t in raw.values() if len(t)), default=0.0)
        features, timestamps = {}, {}
        for name, (values, times) in raw.items():
            steps = values.shape[0]
            tokens = values.reshape(steps, -1, values.shape[-1])  # (T, tokens per step, D)
            features[name] = torch.from_numpy(tokens.reshape(-1, values.shape[-1]).astype(np.float32))
            timestamps[name] = torch.from_numpy(np.repeat(times - t0, tokens.shape[1]).astype(np.float32))
        item: dict[str, Any] = {"video_id": self.index.video_ids[i], "features": features, "timestamps": timestamps}
        if self.labels is not None:
            item["labels"] = self.labels[i]
        return item

    def __getstate__(self) -> dict[str, Any]:  # open files do not travel to worker processes
        state = dict(self.__dict__)
        state["_files"] = {}
        return state

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files = {}


def collate_features(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Pad each input to the longest in the batch: features (B, T, D), timestamps (B, T), masks (B, T) bool."""
    batch: dict[str, Any] = {"features": {}, "timestamps": {}, "masks": {}}
    for name in items[0]["features"]:
        lengths = [item["features"][name].shape[0] for item in items]
        longest, dim = max(lengths), items[0]["features"][name].shape[1]
        features = torch.zeros(len(items), longest, dim)
        timestamps = torch.zeros(len(items), longest)
        masks = torch.zeros(len(items), longest, dtype=torch.bool)
        for b, (item, n) in enumerate(zip(items, lengths)):
            features[b, :n] = item["features"][name]
            timestamps[b, :n] = item["timestamps"][name]
            masks[b, :n] = True
        batch["features"][name], batch["timestamps"][name], batch["masks"][name] = features, timestamps, masks
    if "labels" in items[0]:
        batch["labels"] = torch.tensor([item["labels"] for item in items], dtype=torch.long)
    return batch
