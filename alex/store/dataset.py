"""A torch Dataset over a store: per video, the arrays of the requested inputs with their times.

Pooled vectors (what per-frame encoders store, in the ``frames`` Parquet) are read once, for the
dataset's videos, into one in-memory array per input: a DataLoader worker forks with them and
reads by slicing. Larger arrays (token grids, audio windows, augmented views) come from HDF5:
read once at the start when they fit ``memory_budget`` (4 GiB), else per item, with files
opened lazily once per process (several DataLoader workers each get their own handles). Items hold values as stored (float16 by default); ``collate_features``
pads variable lengths, converting to float32 as it copies, and says which steps are real with masks. Token arrays (T, ..., D) are flattened to
(T * tokens, D); each token carries its own time (a clip's token grid (T, F', ..., D) gives the
tokens of temporal slice j the time of the clip frame they start at, from ``frame_t_start``;
other tokens their step's time) and its step's index.

One clock: times are seconds from the video's first stored frame (``DatasetIndex.t0``, the
earliest ``t_start`` of any encoder of the video), the clock of actions files, raw frames and
predictions too; stored ``t_start`` values stay container times.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any, Sequence

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from alex.store.index import DatasetIndex, first_frame_times, input_arrays, locate  # noqa: F401 (re-exported)
from alex.store.layout import EMBEDDING, FRAME_T_START, T_START, VIEWS
from alex.store.reader import read_pooled


class PooledTable:
    """One input's pooled vectors for a set of videos, in memory: video -> rows of one array."""

    def __init__(self, files: dict[str, list[str]], dim: int):
        self.rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # video -> (t_start (T,), values (T, D))
        self.dim = dim
        for path, ids in files.items():
            if os.path.exists(path):
                for video_id, (t_start, _, values) in read_pooled(path, ids).items():
                    self.rows[video_id] = (t_start, values)

    def get(self, video_id: str) -> tuple[np.ndarray, np.ndarray]:
        return self.rows.get(video_id, (np.zeros(0), np.zeros((0, self.dim), np.float32)))


class FeatureDataset(Dataset):
    """Items: ``{"video_id", "features": {input: (T, D)}, "timestamps": {input: (T,)}, "labels"?}``.

    Timestamps are seconds from the video's first stored step (over all inputs), so a head sees
    when within the video each step is. With ``augment``, inputs extracted with ``--views`` give
    one of their augmented views at random (the training split); otherwise the plain features.
    """

    def __init__(self, index: DatasetIndex, inputs: Sequence[str], labels: Sequence[int] | None = None,
                 arrays: dict[str, str] | None = None, dims: dict[str, int] | None = None, augment: bool = False,
                 memory_budget: int = 4 << 30, extras: Sequence[dict[str, Any]] | None = None):
        self.index = index
        self.inputs = list(inputs)
        self.labels = list(labels) if labels is not None else None
        self.arrays = {name: (arrays or {}).get(name, EMBEDDING) for name in self.inputs}
        self.dims = dims or {}
        self.augment = augment
        self.extras = list(extras) if extras is not None else None  # per item: prompt, target text...
        self.pooled: dict[str, PooledTable] = {}
        for name in self.inputs:
            if self.arrays[name] == EMBEDDING and index.frames is not None:
                files: dict[str, list[str]] = defaultdict(list)
                for video_id, frames in zip(index.video_ids, index.frames):
                    files[frames[name]].append(video_id)
                self.pooled[name] = PooledTable(files, self.dims.get(name, 0))
        self._files: dict[str, h5py.File] = {}
        self._pid = os.getpid()
        # HDF5 arrays that fit the budget are read once here; the rest are read per item.
        self.resident: dict[tuple[int, str], tuple[np.ndarray, np.ndarray, np.ndarray | None]] = {}  # -> (array, times, frame times)
        self._views: set[tuple[int, str]] = set()  # (item, input) that draw one of K augmented views per read
        self._make_resident(memory_budget)
        self._items: dict[int, dict[str, Any]] = {}

    def _make_resident(self, budget: int) -> None:
        """Note which items draw a random view, and read HDF5 arrays into memory if they fit."""
        sizes: dict[tuple[int, str], tuple[str, int]] = {}
        for i in range(len(self)):
            for name in self.inputs:
                if name in self.pooled and not self.augment:
                    continue
                group = self._group(i, name)
                if group is None:
                    continue
                if self.augment and VIEWS in group:
                    self._views.add((i, name))
                    sizes[(i, name)] = (VIEWS, group[VIEWS].size * group[VIEWS].dtype.itemsize)
                elif name not in self.pooled:
                    array = group[self.arrays[name]]
                    sizes[(i, name)] = (self.arrays[name], array.size * array.dtype.itemsize)
        if sum(size for _, size in sizes.values()) > budget:
            return
        for (i, name), (array, _) in sizes.items():
            group = self._group(i, name)
            frame_times = group[FRAME_T_START][()] if FRAME_T_START in group else None
            self.resident[(i, name)] = (group[array][()], group[T_START][()], frame_times)

    def __len__(self) -> int:
        return len(self.index.video_ids)

    def _file(self, path: str) -> h5py.File | None:
        if self._pid != os.getpid():  # a forked DataLoader worker: never share the parent's handles
            self._files, self._pid = {}, os.getpid()
        handle = self._files.get(path)
        if handle is None and os.path.exists(path):
            handle = self._files[path] = h5py.File(path, "r")
        return handle

    def _group(self, i: int, name: str) -> h5py.Group | None:
        path, group_name = self.index.locations[i][name]
        handle = self._file(path)
        return handle[group_name] if handle is not None and group_name in handle else None

    def read(self, i: int) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """input -> (features (T, ...) as stored, container start times (T,), a clip's frame start
        times (T, F) or None); zero steps read as empty."""
        video_id = self.index.video_ids[i]
        out = {}
        for name in self.inputs:
            key = (i, name)
            if key in self.resident or key in self._views:
                values, t_start, frame_times = self.resident.get(key) or self._read_hdf5(i, name, VIEWS if key in self._views else None)
                if key in self._views:  # (T, K, D): one view at random
                    values = values[:, int(torch.randint(values.shape[1], ()).item())]
                out[name] = (values, t_start, frame_times)
            elif name in self.pooled:
                t_start, values = self.pooled[name].get(video_id)
                out[name] = (values, t_start, None)
            else:
                out[name] = self._read_hdf5(i, name)
        return out

    def _read_hdf5(self, i: int, name: str, array: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        group = self._group(i, name)
        if group is None:
            return np.zeros((0, self.dims.get(name, 0)), np.float32), np.zeros(0), None
        frame_times = group[FRAME_T_START][()] if FRAME_T_START in group else None
        return group[array or self.arrays[name]][()], group[T_START][()], frame_times

    def __getitem__(self, i: int) -> dict[str, Any]:
        cached = self._items.get(i)
        if cached is not None:
            return cached
        item = self._build(i)
        if self._in_memory(i):  # tensors are views of resident arrays: keeping them costs nothing
            self._items[i] = item
        return item

    def _in_memory(self, i: int) -> bool:
        """Item i comes from memory alone and draws nothing at random, so it can be kept built."""
        return all(
            (i, name) not in self._views and ((i, name) in self.resident or name in self.pooled) for name in self.inputs
        )

    def _build(self, i: int) -> dict[str, Any]:
        raw = self.read(i)
        if self.index.t0 is not None:
            t0 = self.index.t0[i]
        else:  # an index without the store's clock: the first step of these inputs
            t0 = min((float(t[0]) for _, t, _ in raw.values() if len(t)), default=0.0)
        features, timestamps, steps = {}, {}, {}
        for name, (values, times, frame_times) in raw.items():
            count = values.shape[0]
            tokens = values.reshape(count, -1, values.shape[-1])  # (T, tokens per step, D)
            # As stored (float16 by default, a view where it can be): collate_features converts to
            # float32 while it pads, one copy per batch instead of one per item.
            features[name] = torch.from_numpy(np.ascontiguousarray(tokens.reshape(-1, values.shape[-1])))
            per_token = token_times(values, times, frame_times) - t0  # (T * tokens,)
            timestamps[name] = torch.from_numpy(per_token.astype(np.float32))
            steps[name] = torch.from_numpy(np.repeat(np.arange(count, dtype=np.int64), tokens.shape[1]))
        item: dict[str, Any] = {"video_id": self.index.video_ids[i], "features": features, "timestamps": timestamps,
                                "steps": steps}
        if self.labels is not None:
            item["labels"] = self.labels[i]
        if self.extras is not None:
            item.update(self.extras[i])
        return item

    def __getstate__(self) -> dict[str, Any]:  # open files and built items do not travel to workers
        state = dict(self.__dict__)
        state["_files"], state["_items"] = {}, {}
        return state

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files = {}


def token_times(values: np.ndarray, times: np.ndarray, frame_times: np.ndarray | None) -> np.ndarray:
    """Container time of each token of ``values`` (T, ..., D) flattened to (T * tokens,): a clip's
    token grid (T, F', ..., D) with its frames' times (T, F) gives temporal slice j the time of
    frame j * F / F'; any other token gets its step's start time."""
    count = values.shape[0]
    per_step = int(np.prod(values.shape[1:-1], dtype=np.int64)) if values.ndim > 2 else 1
    if frame_times is not None and values.ndim > 3 and frame_times.shape[1] % values.shape[1] == 0:
        slices = values.shape[1]
        per_slice = frame_times[:, :: frame_times.shape[1] // slices][:, :slices]  # (T, F')
        return np.repeat(per_slice.reshape(-1), per_step // slices)
    return np.repeat(np.asarray(times, dtype=np.float64), per_step) if count else np.zeros(0)


def collate_features(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Pad each input to the longest in the batch: features (B, T, D), timestamps (B, T), masks (B, T)
    bool, and (when items carry them) each token's step index, steps (B, T)."""
    batch: dict[str, Any] = {"features": {}, "timestamps": {}, "masks": {}}
    if "steps" in items[0]:
        batch["steps"] = {}
    for name in items[0]["features"]:
        lengths = [item["features"][name].shape[0] for item in items]
        longest, dim = max(lengths), items[0]["features"][name].shape[1]
        features = torch.zeros(len(items), longest, dim)
        timestamps = torch.zeros(len(items), longest)
        masks = torch.zeros(len(items), longest, dtype=torch.bool)
        steps = torch.zeros(len(items), longest, dtype=torch.long) if "steps" in batch else None
        for b, (item, n) in enumerate(zip(items, lengths)):
            features[b, :n] = item["features"][name]
            timestamps[b, :n] = item["timestamps"][name]
            masks[b, :n] = True
            if steps is not None:
                steps[b, :n] = item["steps"][name]
        batch["features"][name], batch["timestamps"][name], batch["masks"][name] = features, timestamps, masks
        if steps is not None:
            batch["steps"][name] = steps
    if "labels" in items[0]:
        batch["labels"] = torch.tensor([item["labels"] for item in items], dtype=torch.long)
    return batch
