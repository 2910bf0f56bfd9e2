"""Scores of a head's outputs against its references: classification, generated text, actions."""

from __future__ import annotations

import re
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
    """Lower case, words only: "The digit 7 moves LEFT." and "the digit 7 moves left" are the same answer."""
    return " ".join(re.findall(r"[\w']+", text.lower()))


def exact_match(predictions: Sequence[str], references: Sequence[str | Sequence[str]]) -> float:
    """Share of generations equal to their reference, or to any of their references (case and
    spacing aside)."""
    if not references:
        return 0.0
    hits = [normalise(p) in {normalise(r) for r in ([refs] if isinstance(refs, str) else refs)}
            for p, refs in zip(predictions, references)]
    return float(np.mean(hits))


def caption_metrics(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """BLEU-4 (Papineni et al. 2002) and CIDEr (Vedantam et al. 2015) of one caption per video against
    all of the video's references, with the COCO caption evaluation's own scorers (pycocoevalcap).
    Text is lower-cased and split on spaces and punctuation here: COCO's PTB tokenizer needs Java."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    if not references:
        return {"bleu4": 0.0, "cider": 0.0}
    results = {i: [normalise(p) or "."] for i, p in enumerate(predictions)}  # an empty caption scores 0
    truths = {i: [normalise(r) for r in refs] for i, refs in enumerate(references)}
    bleu, _ = Bleu(4).compute_score(truths, results, verbose=0)
    cider, _ = Cider().compute_score(truths, results)
    return {"bleu4": float(bleu[3]), "cider": float(cider)}


def action_metrics(predicted: list[np.ndarray], targets: list[np.ndarray]) -> dict[str, float]:
    """MSE of per-step actions, after each video's first step (a first frame shows no motion yet),
    and of always predicting the mean action (a baseline)."""
    prediction, target = np.concatenate(predicted), np.concatenate(targets)
    later = np.concatenate([np.arange(len(t)) > 0 for t in targets])
    return {"action_mse": float(((prediction - target) ** 2).mean()),
            "action_mse_after_first_frame": float(((prediction[later] - target[later]) ** 2).mean()) if later.any() else 0.0,
            "action_mse_of_mean": float(((target - target.mean(axis=0)) ** 2).mean())}
