"""What the classification heads (probe, perceiver) share on the training path: labels from a
``label`` column, label ids in the config, logits, accuracy and F1, a confusion matrix, and
prediction rows with the label, its probability and every class's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from alex.heads.options import check_settings
from alex.errors import UsageError
from alex.heads.data import sort_labels
from alex.heads.family import HeadFamily
from alex.heads.labels import read_labels


class ClassifierFamily(HeadFamily):
    metric = "accuracy"
    greater_is_better = True

    def classes(self) -> tuple[type, type]:
        """(config class, model class) of this head."""
        raise NotImplementedError

    def read_targets(self, path, fractions, task=None):
        return read_labels(path, fractions, label_column="label")

    def build(self, options, store, targets, selection, signature):
        config_class, model_class = self.classes()
        names = sort_labels(set(selection.labels.values()))
        dims = [int(signature[name]["dim"]) for name in options.inputs]
        check_settings(config_class, options.head_config, options.head)
        config = config_class(
            inputs=options.inputs, input_dims=dims, hidden_size=options.hidden_size or max(dims),
            timestamp_encoding=options.timestamp_encoding, clips_per_video=options.clips_per_video,
            id2label=dict(enumerate(names)), label2id={name: i for i, name in enumerate(names)}, **options.head_config,
        )
        return model_class(config), None

    def items(self, store, video_ids, targets, model, prompt=None, train=False):
        if targets is None:
            return list(video_ids), None
        return list(video_ids), [{"labels": model.config.label2id[targets.labels[v]]} for v in video_ids]

    def check_targets(self, model, targets, video_ids):
        unknown = sorted({targets.labels[v] for v in video_ids} - set(model.config.label2id))
        if unknown:
            raise UsageError(f"labels file {targets.path}: label(s) {', '.join(unknown[:5])} were not seen in training")

    def collator(self, processor, model, options):
        from alex.store.dataset import collate_features

        return collate_features

    def trainer_metrics(self):
        from alex.heads.metrics import classification_metrics

        return lambda p: classification_metrics(np.asarray(p.predictions), np.asarray(p.label_ids))

    def infer(self, model, processor, dataset, device, batch_size) -> np.ndarray:
        """Logits (N, C) over the dataset, in order; fp16/bf16 autocast on GPU."""
        import torch
        from torch.utils.data import DataLoader

        from alex.store.dataset import collate_features

        model = model.to(device).eval()
        outputs = []
        with torch.no_grad(), torch.autocast(device.type, enabled=device.type == "cuda"):
            for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_features):
                batch.pop("labels", None)
                batch = {k: {n: t.to(device) for n, t in v.items()} for k, v in batch.items()}
                outputs.append(model(**batch).logits.float().cpu().numpy())
        return np.concatenate(outputs) if outputs else np.zeros((0, model.config.num_labels), dtype=np.float32)

    def metrics(self, outputs, dataset, model) -> dict[str, Any]:
        from alex.heads.metrics import classification_metrics

        return classification_metrics(outputs, _label_ids(dataset))

    def plots(self, run_dir: Path, outputs, dataset, model, title: str) -> list[str]:
        from sklearn.metrics import confusion_matrix

        from alex.heads.plots import plot_confusion_matrix

        matrix = confusion_matrix(_label_ids(dataset), outputs.argmax(-1), labels=list(range(model.config.num_labels)))
        names = [model.config.id2label[i] for i in range(model.config.num_labels)]
        plot_confusion_matrix(matrix, names, run_dir / "confusion_matrix.png", title)
        return ["confusion_matrix.png"]

    def prediction_table(self, outputs, dataset, model):
        import pyarrow as pa

        shifted = np.exp(outputs - outputs.max(-1, keepdims=True))
        probabilities = shifted / shifted.sum(-1, keepdims=True)  # (N, C)
        predicted = probabilities.argmax(-1)
        return pa.table({
            "video_id": pa.array(dataset.index.video_ids, pa.string()),
            "label": pa.array([model.config.id2label[int(i)] for i in predicted], pa.string()),
            "label_id": pa.array(predicted.astype(np.int32)),
            "score": pa.array(probabilities.max(-1).astype(np.float32)),
            "probabilities": pa.array(list(probabilities.astype(np.float32)), pa.list_(pa.float32())),
        })


def _label_ids(dataset) -> np.ndarray:
    return np.array([extra["labels"] for extra in dataset.extras], dtype=np.int64)
