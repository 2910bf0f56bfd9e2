"""Scores of a head's outputs against its references: classification, generated text, actions."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy, macro F1 and (with more than 5 classes) top-5 accuracy of (N, C) logits."""
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


def normalise(text: str) -> str:
    return " ".join(text.strip().lower().split())


def exact_match(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Share of generations equal to their reference (case and spacing aside)."""
    if not references:
        return 0.0
    return float(np.mean([normalise(p) == normalise(r) for p, r in zip(predictions, references)]))


def action_metrics(predicted: list[np.ndarray], targets: list[np.ndarray]) -> dict[str, float]:
    """MSE of per-step actions, after each video's first step (a first frame shows no motion yet),
    and of always predicting the mean action (a baseline)."""
    prediction, target = np.concatenate(predicted), np.concatenate(targets)
    later = np.concatenate([np.arange(len(t)) > 0 for t in targets])
    return {"action_mse": float(((prediction - target) ** 2).mean()),
            "action_mse_after_first_frame": float(((prediction[later] - target[later]) ** 2).mean()) if later.any() else 0.0,
            "action_mse_of_mean": float(((target - target.mean(axis=0)) ** 2).mean())}
