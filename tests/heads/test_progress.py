"""Training progress: the epoch table on a terminal, status lines in a log, the early-stop line, the
best epoch on the training curve. Checked against hand-written histories whose best epoch is known,
and against what the Trainer itself recorded (metrics.json, its checkpoints)."""

import io
import json
import os
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
from rich.console import Console
from transformers import EarlyStoppingCallback, TrainerControl, TrainerState

from alex.heads.plots import training_curve_figure
from alex.heads.progress import TrainProgress

# Four epochs of two steps: accuracy peaks at epoch 2, validation loss is lowest at epoch 3.
HISTORY = [
    {"epoch": 0.5, "step": 1, "loss": 2.0}, {"epoch": 1.0, "step": 2, "loss": 1.0},
    {"epoch": 1.0, "step": 2, "eval_loss": 1.5, "eval_accuracy": 0.25},
    {"epoch": 1.5, "step": 3, "loss": 0.8}, {"epoch": 2.0, "step": 4, "loss": 0.6},
    {"epoch": 2.0, "step": 4, "eval_loss": 1.2, "eval_accuracy": 0.75},
    {"epoch": 2.5, "step": 5, "loss": 0.5}, {"epoch": 3.0, "step": 6, "loss": 0.3},
    {"epoch": 3.0, "step": 6, "eval_loss": 1.1, "eval_accuracy": 0.75},  # equal is not better
    {"epoch": 3.5, "step": 7, "loss": 0.2}, {"epoch": 4.0, "step": 8, "loss": 0.2},
    {"epoch": 4.0, "step": 8, "eval_loss": 1.3, "eval_accuracy": 0.5},
]


def replay(progress: TrainProgress, history, max_steps: int, epochs: int, early: EarlyStoppingCallback | None = None,
           greater_is_better: bool = True):
    """Feed a callback the events a Trainer sends for ``history``; ``early`` (transformers' own
    callback) judges each evaluation first, and ``best_metric`` moves on after it, as in the Trainer."""
    state = TrainerState(max_steps=max_steps, num_train_epochs=epochs)
    args = SimpleNamespace(metric_for_best_model="accuracy", greater_is_better=greater_is_better)
    control = TrainerControl()
    progress.on_train_begin(args, state, control)
    for entry in history:
        state.log_history.append(entry)
        state.epoch, state.global_step = entry["epoch"], entry["step"]
        if "loss" in entry:
            progress.on_step_end(args, state, control)
            continue
        if early is not None:
            early.on_evaluate(args, state, control, metrics=entry)
        progress.on_evaluate(args, state, control, metrics=entry)
        if state.best_metric is None or entry["eval_accuracy"] > state.best_metric:
            state.best_metric = entry["eval_accuracy"]
    progress.on_train_end(args, state, control)
    return state


def test_a_terminal_gets_one_table_row_per_epoch_and_the_best_so_far():
    console = Console(file=io.StringIO(), force_terminal=True, width=120, color_system=None)
    said = []
    replay(TrainProgress("accuracy", True, console=console, say=said.append), HISTORY[:9], max_steps=6, epochs=3)
    screen = re.split(r"[\r\n]", re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", console.file.getvalue()))  # no cursor moves
    rows = [re.sub(r"\s+", " ", line).strip() for line in screen if line.strip().startswith(("epoch", "1 ", "2 ", "3 "))]
    assert rows == [
        "epoch train loss val loss val accuracy best so far",
        "1 1.5000 1.5000 0.2500 0.2500 (epoch 1) *",   # train loss: mean of 2.0 and 1.0
        "2 0.7000 1.2000 0.7500 0.7500 (epoch 2) *",
        "3 0.4000 1.1000 0.7500 0.7500 (epoch 2)",     # 0.75 again is no improvement
    ]
    assert said == ["trained 3 epochs; best validation accuracy 0.7500 at epoch 2"]
    assert "{'loss'" not in console.file.getvalue()  # no raw dict logs


def test_an_early_stop_is_announced_with_its_reason():
    early = EarlyStoppingCallback(early_stopping_patience=2)
    said = []
    replay(TrainProgress("accuracy", True, early, quiet=True, say=said.append), HISTORY, max_steps=60, epochs=30, early=early)
    assert early.early_stopping_patience_counter == 2  # transformers' own count: epochs 3 and 4 did not improve
    assert said == ["stopped early after epoch 4 of 30: validation accuracy has not improved for 2 epochs "
                    "(best 0.7500 at epoch 2; --patience 2)"]
    said.clear()  # the last planned epoch is no early stop, whatever the counter says
    early = EarlyStoppingCallback(early_stopping_patience=2)
    replay(TrainProgress("accuracy", True, early, quiet=True, say=said.append), HISTORY, max_steps=8, epochs=4, early=early)
    assert said == ["trained 4 epochs; best validation accuracy 0.7500 at epoch 2"]


def test_a_log_gets_status_lines_and_one_line_per_epoch():
    console = Console(file=io.StringIO(), force_terminal=False)
    replay(TrainProgress("accuracy", True, console=console, interval=0), HISTORY[:6], max_steps=8, epochs=4)
    lines = console.file.getvalue().splitlines()
    assert lines[0] == "train: 8 steps over 4 epochs; validation accuracy picks the best epoch"
    assert lines[1].startswith("train: epoch 0.50/4, step 1/8, loss 2.0000, ETA ")
    assert "train: epoch 1/4: train loss 1.5000, validation loss 1.5000, validation accuracy 0.2500 (new best)" in lines
    assert any(line.startswith("train: epoch 1.50/4, step 3/8, loss 0.8000, validation accuracy 0.2500 "
                               "(best 0.2500 at epoch 1), ETA ") for line in lines), lines
    assert lines[-1] == "stopped after epoch 2 of 4; best validation accuracy 0.7500 at epoch 2"  # not by early stopping
    assert "\x1b[" not in console.file.getvalue()


def test_a_loss_metric_is_best_when_lowest():
    console = Console(file=io.StringIO(), force_terminal=False)
    said = []
    replay(TrainProgress("loss", False, console=console, interval=3600, say=said.append), HISTORY, max_steps=8, epochs=4)
    assert "train: epoch 3/4: train loss 0.4000, validation loss 1.1000 (new best)" in console.file.getvalue()
    assert said == ["trained 4 epochs; best validation loss 1.1000 at epoch 3"]


@pytest.mark.parametrize("metric, greater_is_better, best_epoch, best_value", [
    ("accuracy", True, 2.0, 0.75),  # the first of two equal peaks, as the Trainer keeps it
    ("loss", False, 3.0, 1.1),
])
def test_the_training_curve_marks_the_best_epoch(metric, greater_is_better, best_epoch, best_value):
    import matplotlib.pyplot as plt

    fig = training_curve_figure(HISTORY, metric, greater_is_better)
    try:
        ax_loss, ax_metric = fig.axes
        for ax in (ax_loss, ax_metric):
            vertical = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
            assert len(vertical) == 1 and list(vertical[0].get_xdata()) == [best_epoch, best_epoch]
        stars = [line for line in ax_metric.get_lines() if line.get_marker() == "*"]
        assert len(stars) == 1 and list(stars[0].get_xdata()) == [best_epoch] and list(stars[0].get_ydata()) == [best_value]
        labels = [t.get_text() for t in ax_metric.get_legend().get_texts()] + [t.get_text() for t in ax_loss.get_legend().get_texts()]
        assert any(label.startswith(f"best epoch {int(best_epoch)}") for label in labels), labels
    finally:
        plt.close(fig)


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    """16 small videos, pixels only, labels 0/1 with a fixed split (8 train, 4 validation, 4 test)."""
    from alex.pipeline.extract import ExtractOptions, extract
    from tests.fixtures.videos import make_video

    root = tmp_path_factory.mktemp("tiny")
    rows = ["video_id,label,split"]
    for i in range(16):
        make_video(root / "videos" / f"v{i:02d}.mp4", num_frames=6, fps=2, width=32, height=32, seed=i, noise=i % 2 == 0)
        rows.append(f"v{i:02d}.mp4,{i % 2},{['train', 'train', 'validation', 'test'][i % 4]}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    report = extract(ExtractOptions(videos=root / "videos", store=root / "store", encoders=["pixels"], fps=2.0,
                                    workers=0, quiet=True))
    assert report.exit_code == 0
    return root


@pytest.mark.slow
def test_alex_train_into_a_log_file_shows_liveness_and_says_why_it_stopped(tiny_store, tmp_path):
    run = tmp_path / "run"
    log = tmp_path / "train.log"
    # learning rate 0: the validation metric can never improve on epoch 1, so patience 2 stops after epoch 3
    command = [sys.executable, "-m", "alex", "train", "--store", str(tiny_store / "store"), "--labels",
               str(tiny_store / "labels.csv"), "--inputs", "pixels", "--output", str(run), "--epochs", "6",
               "--batch-size", "4", "--hidden-size", "16", "--lr", "0", "--patience", "2", "--device", "cpu"]
    with open(log, "w") as stderr:  # a file, as under nohup or Slurm: not a terminal
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=300,
                              env={**os.environ, "ALEX_PROGRESS_INTERVAL": "0"})
    text = log.read_text()
    assert done.returncode == 0, done.stdout + text
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and metrics["best_checkpoint"].endswith("checkpoint-2")  # 2 steps per epoch
    assert "train: 12 steps over 6 epochs" in text
    for step in range(1, 7):  # 8 training videos in batches of 4: 2 steps per epoch, 3 epochs run
        assert re.search(rf"^train: epoch {step / 2:.2f}/6, step {step}/12, loss [\d.-]+, .*ETA ", text, re.M), text
    for epoch in (1, 2, 3):
        assert re.search(rf"^train: epoch {epoch}/6: train loss [\d.]+, validation loss [\d.]+, validation accuracy [\d.]+", text, re.M)
    assert "\x1b[" not in text and "{'loss'" not in text
    validation = metrics["validation"]["accuracy"]
    assert (f"stopped early after epoch 3 of 6: validation accuracy has not improved for 2 epochs "
            f"(best {validation:.4f} at epoch 1; --patience 2)") in done.stdout
