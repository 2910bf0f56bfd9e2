"""Reading transformers' ``log_history``: the per-epoch evaluations, the best one, an epoch's train loss.

Pure functions shared by the training progress (``alex.heads.progress``) and the training curve
(``alex.heads.plots``), so both name the same best epoch. "Best" follows the Trainer and its
``EarlyStoppingCallback``: the first evaluation that is strictly better than every earlier one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence


@dataclass(frozen=True)
class Evaluation:
    """One evaluation during training: its epoch, validation loss and validation metric."""

    epoch: float
    loss: float | None
    metric: float | None


def evaluations(log_history: Iterable[dict[str, Any]], metric: str) -> list[Evaluation]:
    """The Trainer's evaluations during training (keys ``eval_*``), in order. The evaluations
    ``alex train`` runs afterwards (``validation_*``, ``test_*``) are not among them."""
    key = f"eval_{metric}"
    return [Evaluation(float(e["epoch"]), e.get("eval_loss"), e.get(key))
            for e in log_history if "epoch" in e and ("eval_loss" in e or key in e)]


def is_better(value: float, best: float | None, greater_is_better: bool) -> bool:
    """Strictly better, as the Trainer decides the best checkpoint and early stopping counts."""
    return best is None or (value > best if greater_is_better else value < best)


def best_evaluation(evals: Sequence[Evaluation], greater_is_better: bool) -> Evaluation | None:
    """The first evaluation with the best metric (None when no evaluation has one)."""
    best: Evaluation | None = None
    for e in evals:
        if e.metric is not None and is_better(e.metric, best.metric if best else None, greater_is_better):
            best = e
    return best


def epoch_train_loss(log_history: Iterable[dict[str, Any]], after: float, until: float) -> float | None:
    """Mean of the training losses logged in the epoch range ``(after, until]`` (None if none were)."""
    losses = [e["loss"] for e in log_history if "loss" in e and "epoch" in e and after < e["epoch"] <= until]
    return sum(losses) / len(losses) if losses else None


def epoch_label(epoch: float) -> str:
    """``3`` for a whole epoch, ``2.5`` otherwise."""
    return str(int(round(epoch))) if abs(epoch - round(epoch)) < 1e-6 else f"{epoch:.2f}".rstrip("0")
