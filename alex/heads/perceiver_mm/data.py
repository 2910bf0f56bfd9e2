"""Cached clips of a ``perceiver-mm`` store encoder as model inputs: no video or audio is decoded.

An item is a video: for training one clip drawn at random each time it is read (a random temporal
crop per epoch), otherwise up to ``eval_clips`` clips evenly spaced over the video, whose
predictions the head averages. Clips are read from HDF5 per item (one chunk per clip), so memory
does not grow with the store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from alex.store.reader import Store


@dataclass
class ClipIndex:
    video_ids: list[str]
    locations: list[tuple[str, str]]  # per item: (hdf5 file, group)


def clip_indices(count: int, wanted: int) -> np.ndarray:
    """``wanted`` clip indices spread evenly over ``count`` clips (all of them when fewer)."""
    if count <= wanted:
        return np.arange(count)
    return np.unique(np.round(np.linspace(0, count - 1, wanted)).astype(np.int64))


class ClipDataset(Dataset):
    """Items ``{"video_id", "image": (K, F, S, S, 3) uint8, "audio": (K, samples) float32, **extras}``."""

    def __init__(self, store: Store, video_ids: Sequence[str], encoder: str, train: bool, eval_clips: int,
                 extras: Sequence[dict[str, Any]] | None = None):
        self.index = ClipIndex(list(video_ids), [tuple(map(str, store.array_location(v, encoder))) for v in video_ids])
        self.train, self.eval_clips = train, eval_clips
        self.extras = list(extras) if extras is not None else None
        self._files: dict[str, h5py.File] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.index.video_ids)

    def _group(self, i: int) -> h5py.Group:
        if self._pid != os.getpid():  # a forked DataLoader worker opens its own handles
            self._files, self._pid = {}, os.getpid()
        path, group = self.index.locations[i]
        if path not in self._files:
            self._files[path] = h5py.File(path, "r")
        return self._files[path][group]

    def __getitem__(self, i: int) -> dict[str, Any]:
        group = self._group(i)
        count = group["image"].shape[0]
        if self.train:
            chosen = np.array([int(torch.randint(count, ()).item())])  # seeded by the Trainer's data seed
        else:
            chosen = clip_indices(count, self.eval_clips)
        item = {"video_id": self.index.video_ids[i], "image": group["image"][chosen], "audio": group["audio"][chosen]}
        if self.extras is not None:
            item.update(self.extras[i])
        return item

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_files": {}}

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files = {}


def collate_clips(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Pad clip counts to the batch's largest: image (B, K, F, S, S, 3) uint8, audio (B, K, samples),
    clip_mask (B, K) bool, labels (B,) when items carry them."""
    longest = max(len(item["image"]) for item in items)
    first = items[0]
    image = torch.zeros(len(items), longest, *first["image"].shape[1:], dtype=torch.uint8)
    audio = torch.zeros(len(items), longest, *first["audio"].shape[1:], dtype=torch.float32)
    clip_mask = torch.zeros(len(items), longest, dtype=torch.bool)
    for b, item in enumerate(items):
        n = len(item["image"])
        image[b, :n] = torch.from_numpy(item["image"])
        audio[b, :n] = torch.from_numpy(item["audio"].astype(np.float32, copy=False))
        clip_mask[b, :n] = True
    batch = {"image": image, "audio": audio, "clip_mask": clip_mask}
    if "labels" in first:
        batch["labels"] = torch.tensor([item["labels"] for item in items], dtype=torch.long)
    return batch
