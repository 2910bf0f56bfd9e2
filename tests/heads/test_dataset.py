import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import alex
from alex.store.dataset import FeatureDataset, collate_features, locate


def test_items_hold_stored_values_with_times_from_the_first_step(digits):
    _, store_path = digits
    with alex.open_store(store_path) as store:
        ids = ["digit_0000.mp4", "digit_0001.mp4"]
        dataset = FeatureDataset(locate(store, ids, ["p32", "clip"]), ["p32", "clip"], labels=[3, 4])
        item = dataset[1]
        stored = store.arrays("digit_0001.mp4", "p32")
        assert item["features"]["p32"].dtype == torch.float16 and item["features"]["p32"].shape == (4, 3072)  # as stored
        assert torch.equal(item["features"]["p32"], torch.from_numpy(stored.embedding))
        batch = collate_features([item, dataset[0]])
        assert batch["features"]["p32"].dtype == torch.float32  # float32 from here on
        assert torch.equal(batch["features"]["p32"][0], torch.from_numpy(stored.embedding.astype(np.float32)))
        assert item["timestamps"]["clip"].tolist() == pytest.approx([0.0, 0.5, 1.0, 1.5])
        assert item["labels"] == 4 and item["video_id"] == "digit_0001.mp4"


def test_collate_pads_and_masks():
    items = [
        {"features": {"a": torch.ones(n, 2)}, "timestamps": {"a": torch.arange(n, dtype=torch.float32)}, "labels": n}
        for n in (3, 1, 2)
    ]
    batch = collate_features(items)
    assert batch["features"]["a"].shape == (3, 3, 2)
    assert batch["masks"]["a"].tolist() == [[True, True, True], [True, False, False], [True, True, False]]
    assert batch["features"]["a"][1, 1:].abs().sum() == 0
    assert batch["labels"].tolist() == [3, 1, 2]


def test_token_arrays_are_flattened_with_their_step_times(tmp_path):
    import h5py

    from alex.store.dataset import DatasetIndex

    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as f:
        f["g/embedding"] = np.arange(2 * 3 * 4, dtype=np.float16).reshape(2, 3, 4)  # (T=2, tokens=3, D=4)
        f["g/t_start"] = np.array([5.0, 7.0])
    dataset = FeatureDataset(DatasetIndex(["v"], [{"x": (str(path), "g")}]), ["x"])
    item = dataset[0]
    assert item["features"]["x"].shape == (6, 4)
    assert item["timestamps"]["x"].tolist() == [0, 0, 0, 2, 2, 2]


def test_several_dataloader_workers_read_the_same_data(digits):
    _, store_path = digits
    with alex.open_store(store_path) as store:
        ids = [f"digit_{i:04d}.mp4" for i in range(24)]
        dataset = FeatureDataset(locate(store, ids, ["p32"]), ["p32"], labels=list(range(24)))
    dataset[0]  # the parent opens a file first: workers must not reuse its handle
    serial = [b["features"]["p32"] for b in DataLoader(dataset, batch_size=5, collate_fn=collate_features)]
    parallel = [b["features"]["p32"] for b in DataLoader(dataset, batch_size=5, collate_fn=collate_features,
                                                         num_workers=2, multiprocessing_context="fork")]
    assert all(torch.equal(a, b) for a, b in zip(serial, parallel)) and len(serial) == len(parallel) == 5
