"""Metrics, ``alex evaluate`` (a split of a labels file) and ``alex predict`` (every usable video),
from a run folder alone: it knows its head, inputs, labels and split."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from alex.errors import UsageError


def classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy, macro F1 and (with more than 5 classes) top-5 accuracy."""
    from sklearn.metrics import f1_score

    predicted = logits.argmax(-1)
    metrics = {
        "accuracy": float((predicted == labels).mean()) if len(labels) else 0.0,
        "macro_f1": float(f1_score(labels, predicted, average="macro", zero_division=0)) if len(labels) else 0.0,
    }
    if logits.shape[-1] > 5:
        top5 = np.argsort(-logits, axis=-1)[:, :5]
        metrics["top5_accuracy"] = float((top5 == labels[:, None]).any(-1).mean()) if len(labels) else 0.0
    return metrics


@dataclass
class Evaluation:
    video_ids: list[str]
    logits: np.ndarray  # (N, C)
    labels: np.ndarray | None  # (N,)
    metrics: dict[str, float]
    confusion: np.ndarray | None


def run_head(model, dataset, device, batch_size: int = 64) -> np.ndarray:
    """Logits (N, C) of a head over a dataset, in order; fp16/bf16 autocast on GPU."""
    import torch
    from torch.utils.data import DataLoader

    from alex.store.dataset import collate_features

    device = torch.device(device)
    model = model.to(device).eval()
    outputs = []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_features)
    with torch.no_grad(), torch.autocast(device.type, enabled=device.type == "cuda"):
        for batch in loader:
            batch.pop("labels", None)
            batch = {k: {n: t.to(device) for n, t in v.items()} for k, v in batch.items()}
            outputs.append(model(**batch).logits.float().cpu().numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0, model.config.num_labels), dtype=np.float32)


def evaluate_dataset(model, dataset, device, batch_size: int = 64) -> Evaluation:
    from sklearn.metrics import confusion_matrix

    logits = run_head(model, dataset, device, batch_size)
    labels = np.asarray(dataset.labels)
    confusion = confusion_matrix(labels, logits.argmax(-1), labels=list(range(model.config.num_labels)))
    return Evaluation(dataset.index.video_ids, logits, labels, classification_metrics(logits, labels), confusion)


def _load_run(run_dir: str | Path) -> tuple[Any, dict[str, Any]]:
    from alex.heads import load_head
    from alex.heads.training import TRAINING_CONFIG

    run_dir = Path(run_dir)
    path = run_dir / TRAINING_CONFIG
    if not path.is_file():
        raise UsageError(f"{run_dir} is not a finished run: {TRAINING_CONFIG} is missing")
    return load_head(run_dir), json.loads(path.read_text())



def evaluate_run(run_dir: str | Path, features: str | Path, labels: str | Path, split: str = "test",
                 device: str = "auto") -> dict[str, Any]:
    """Metrics of a trained head on one split of a labels file (the run's own split rule)."""
    from alex.heads.data import check_signature, make_dataset, select_labelled
    from alex.heads.labels import read_labels
    from alex.heads.training import head_device
    from alex.store.reader import open_store

    model, training = _load_run(run_dir)
    inputs = model.config.inputs
    with open_store(features) as store:
        check_signature(store, training["inputs_signature"])
        table = read_labels(labels, tuple(training["split"]))
        selection = select_labelled(store, table, inputs, require=[split])
        unknown = sorted({selection.labels[v] for v in selection.splits[split]} - set(model.config.label2id))
        if unknown:
            raise UsageError(f"labels file {labels}: label(s) {', '.join(unknown[:5])} were not seen in training")
        dataset = make_dataset(store, selection.splits[split], inputs, model.config.label2id, selection.labels)
        result = evaluate_dataset(model, dataset, head_device(device))
        dataset.close()
    return {"split": split, "videos": len(dataset), "skipped": selection.skipped, **result.metrics}


def predict_run(run_dir: str | Path, features: str | Path, output: str | Path, device: str = "auto") -> dict[str, Any]:
    """Predictions for every usable video of a store, as Parquet joinable with ``videos`` on video_id."""
    from alex.heads.data import check_signature, make_dataset, usable_videos
    from alex.heads.training import head_device
    from alex.store.reader import open_store

    model, training = _load_run(run_dir)
    inputs = model.config.inputs
    with open_store(features) as store:
        check_signature(store, training["inputs_signature"])
        video_ids, skipped = usable_videos(store, inputs)
        dataset = make_dataset(store, video_ids, inputs)
        logits = run_head(model, dataset, head_device(device))
        dataset.close()
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities = shifted / shifted.sum(-1, keepdims=True)  # (N, C)
    predicted = probabilities.argmax(-1)
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    table = pa.table(
        {
            "video_id": pa.array(video_ids, pa.string()),
            "label": pa.array([id2label[int(i)] for i in predicted], pa.string()),
            "label_id": pa.array(predicted.astype(np.int32)),
            "score": pa.array(probabilities.max(-1).astype(np.float32)),
            "probabilities": pa.array(list(probabilities.astype(np.float32)), pa.list_(pa.float32())),
        }
    )
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, output)
    return {"videos": len(video_ids), "skipped": skipped, "output": str(output)}
