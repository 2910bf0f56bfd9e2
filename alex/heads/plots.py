"""The training-curve and confusion-matrix PNGs of a run folder (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from alex.heads.history import Evaluation, best_evaluation, epoch_label, evaluations


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def training_curve_figure(log_history: list[dict[str, Any]], metric: str = "accuracy", greater_is_better: bool = True):
    """Train and validation loss (left) and the validation metric (right) per epoch, the best epoch
    (the one the run keeps, as the Trainer picks it) marked on both with a dashed line and a star."""
    plt = _pyplot()
    train = [(e["epoch"], e["loss"]) for e in log_history if "loss" in e and "epoch" in e]
    evals = evaluations(log_history, metric)
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 4))
    if train:
        ax_loss.plot(*zip(*train), label="train loss")
    with_loss = [e for e in evals if e.loss is not None]
    if with_loss:
        ax_loss.plot([e.epoch for e in with_loss], [e.loss for e in with_loss], marker="o", label="validation loss")
    scored = [e for e in evals if e.metric is not None]
    if scored:
        ax_metric.plot([e.epoch for e in scored], [e.metric for e in scored], marker="o", color="tab:green")
    best = best_evaluation(evals, greater_is_better)
    if best is not None:
        _mark_best(ax_loss, ax_metric, best)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_loss.legend()
    ax_metric.set(xlabel="epoch", ylabel=metric, title=f"validation {metric}")
    if scored and all(0 <= e.metric <= 1 for e in scored) and greater_is_better:
        ax_metric.set_ylim(0, 1.02)  # a rate (accuracy): the whole scale
    if best is not None:
        ax_metric.legend(loc="best")
    fig.tight_layout()
    return fig


def _mark_best(ax_loss, ax_metric, best: Evaluation) -> None:
    label = f"best epoch {epoch_label(best.epoch)}"
    for ax in (ax_loss, ax_metric):
        ax.axvline(best.epoch, color="tab:red", linestyle="--", linewidth=1, label=label if ax is ax_loss else None)
    ax_metric.plot([best.epoch], [best.metric], marker="*", markersize=15, color="tab:red", linestyle="none",
                   label=f"{label}: {best.metric:.4g}")


def plot_training_curve(log_history: list[dict[str, Any]], path: Path, metric: str = "accuracy",
                        greater_is_better: bool = True) -> Path:
    """``training_curve.png``: see ``training_curve_figure``."""
    plt = _pyplot()
    fig = training_curve_figure(log_history, metric, greater_is_better)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_confusion_matrix(matrix: np.ndarray, labels: Sequence[str], path: Path, title: str) -> Path:
    plt = _pyplot()
    size = max(4.0, 0.45 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=90 if len(labels) > 12 else 0)
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    if len(labels) <= 30:
        peak = matrix.max() if matrix.size else 0
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value > peak / 2 else "black", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
