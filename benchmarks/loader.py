"""Training loader: probe training samples/s reading the store against the same training on the
same features preloaded in memory, side by side in one run.

Extracts moving-digit videos with ``pixels:32`` (pooled vectors: the Parquet path) and the tiny
V-JEPA 2 (``tubelet`` token grids: the HDF5 path), then trains the attentive probe with
transformers' Trainer for a few epochs on (a) the store Dataset and (b) a list of the very same
items built beforehand, and prints train samples/s of each and their ratio (target >= 0.95).

    python benchmarks/loader.py [--num-videos 600 --epochs 3 --workers 0]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import time
from pathlib import Path

import transformers
from torch.utils.data import Dataset
from transformers import Trainer, TrainingArguments

import alex
from alex.datasets.moving_digits import make_moving_digits
from alex.heads.data import make_dataset
from alex.heads.labels import read_labels
from alex.heads.probe import AttentiveProbe, ProbeConfig
from alex.pipeline.extract import ExtractOptions, extract
from alex.store.dataset import collate_features


class Preloaded(Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


class FeatureTrainer(Trainer):
    def floating_point_ops(self, inputs):
        return 0


def samples_per_second(dataset, config, out: Path, epochs: int, workers: int) -> float:
    transformers.set_seed(0)
    args = TrainingArguments(output_dir=str(out), num_train_epochs=epochs, per_device_train_batch_size=32,
                             learning_rate=1e-3, save_strategy="no", eval_strategy="no", report_to="none",
                             logging_strategy="no", disable_tqdm=True, use_cpu=True, seed=0,
                             remove_unused_columns=False, dataloader_num_workers=workers)
    trainer = FeatureTrainer(model=AttentiveProbe(config), args=args, train_dataset=dataset, data_collator=collate_features)
    return trainer.train().metrics["train_samples_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-videos", "--videos", dest="videos", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--out", type=Path, default=Path("/tmp/alex-bench-loader"))
    args = parser.parse_args()
    transformers.utils.logging.set_verbosity_error()
    shutil.rmtree(args.out, ignore_errors=True)
    data = make_moving_digits(args.out, num_videos=args.videos)
    store_path = args.out / "store"
    extract(ExtractOptions(videos=data.videos, store=store_path, encoders=["p32=pixels:32", "tubelet:tiny@random"],
                           fps=10.0, clip_frames=4))
    labels = read_labels(data.labels)
    label2id = {str(i): i for i in range(10)}
    print(f"machine: {platform.machine()}, Python {platform.python_version()}; {args.videos} videos, "
          f"{args.epochs} epochs, batch 32, DataLoader workers {args.workers}")
    with alex.open_store(store_path) as store:
        ids = sorted(labels.labels)
        for name in ("p32", "tubelet"):
            dataset = make_dataset(store, ids, [name], extras=[{"labels": label2id[labels.labels[v]]} for v in ids])
            started = time.perf_counter()
            items = [dataset[i] for i in range(len(dataset))]
            load_s = time.perf_counter() - started
            config = ProbeConfig(inputs=[name], input_dims=[int(store.encoders[name]["dim"])], hidden_size=64,
                                 id2label={i: str(i) for i in range(10)})
            # Alternate the two and keep each one's best, so warm-up favours neither.
            runs = {"store": [], "preloaded": []}
            for _ in range(3):
                runs["preloaded"].append(samples_per_second(Preloaded(items), config, args.out / "run", args.epochs, args.workers))
                runs["store"].append(samples_per_second(dataset, config, args.out / "run", args.epochs, args.workers))
            from_store, preloaded = max(runs["store"]), max(runs["preloaded"])
            tokens = items[0]["features"][name].shape
            print(f"{name} ({tokens[0]} tokens x {tokens[1]} per video): store {from_store:.1f} samples/s, preloaded "
                  f"{preloaded:.1f} samples/s -> ratio {from_store / preloaded:.3f} (target >= 0.95); "
                  f"reading all items once took {load_s:.2f} s")
            dataset.close()


if __name__ == "__main__":
    main()
