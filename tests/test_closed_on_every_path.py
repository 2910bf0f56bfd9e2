"""HDF5 files, TensorBoard writers, store locks and DuckDB connections are closed when a run fails
half-way, not only when it succeeds (issue 15). Checked from outside: the process's open file
descriptors (/proc/self/fd) after the failure."""

import os
from pathlib import Path

import pytest

from alex.datasets.moving_digits import make_moving_digits
from alex.pipeline.extract import ExtractOptions, extract
from alex.store.writer import StoreWriter


def open_files_under(folder: Path) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(folder.resolve())):
            found.append(target)
    return found


def test_a_failed_extraction_leaves_no_file_open_and_the_store_unlocked(tmp_path, monkeypatch):
    from alex.pipeline.encoders.tubelet import TubeletEncoder

    data = make_moving_digits(tmp_path, num_videos=6, frames=12)
    real, calls = TubeletEncoder.encode, []

    def failing(self, batch):
        calls.append(len(batch))
        if len(calls) == 3:
            raise RuntimeError("planted encoder failure")
        return real(self, batch)

    monkeypatch.setattr(TubeletEncoder, "encode", failing)
    with pytest.raises(RuntimeError, match="planted"):
        extract(ExtractOptions(videos=data.videos, store=tmp_path / "s", encoders=["tubelet:tiny@random"], workers=0,
                               batch_size=1, shard_videos=2, clip_frames=4, fps=4))
    assert open_files_under(tmp_path / "s") == []
    StoreWriter(tmp_path / "s").close()  # the lock was released


def test_a_training_run_that_fails_closes_its_files_and_writers(tmp_path, monkeypatch):
    from torch.utils.tensorboard import SummaryWriter

    from alex.heads.classifier import ClassifierFamily
    from alex.heads.probe import ProbeOptions
    from alex.heads.progress import TrainProgress
    from alex.heads.training import train

    data = make_moving_digits(tmp_path, num_videos=24, frames=6)
    # Augmented views live in HDF5: a dataset holds arrays.h5 open (it reads some arrays when built).
    assert extract(ExtractOptions(videos=data.videos, store=tmp_path / "s", encoders=["pixels:8"], views=2, workers=0)).exit_code == 0
    options = dict(store=tmp_path / "s", labels=data.labels, inputs=["pixels"], epochs=2, batch_size=4, device="cpu", quiet=True)

    # 1. Building the second split's dataset fails: the first split's dataset is closed all the same.
    real_dataset, built = ClassifierFamily.dataset, []

    def failing_dataset(self, *args, **kwargs):
        dataset = real_dataset(self, *args, **kwargs)
        built.append(dataset)
        dataset.read(0)  # it has a file open now
        if len(built) == 2:
            raise RuntimeError("planted failure building a dataset")
        return dataset

    monkeypatch.setattr(ClassifierFamily, "dataset", failing_dataset)
    with pytest.raises(RuntimeError, match="planted"):
        train(ProbeOptions(output=tmp_path / "run1", **options))
    assert open_files_under(tmp_path / "s") == []
    monkeypatch.undo()

    # 2. Training fails mid-epoch: the TensorBoard writer is closed (its buffered events written).
    writers = []
    real_init = SummaryWriter.__init__

    def recording_init(self, *args, **kwargs):
        writers.append(self)
        real_init(self, *args, **kwargs)

    def failing_step_end(self, args, state, control, **kwargs):
        if state.global_step == 2:
            raise RuntimeError("planted failure mid-epoch")

    monkeypatch.setattr(SummaryWriter, "__init__", recording_init)
    monkeypatch.setattr(TrainProgress, "on_step_end", failing_step_end)
    with pytest.raises(RuntimeError, match="planted"):
        train(ProbeOptions(output=tmp_path / "run2", **options))
    assert len(writers) == 1 and writers[0].file_writer is None and writers[0].all_writers is None  # closed
    assert open_files_under(tmp_path / "run2") == [] and open_files_under(tmp_path / "s") == []
