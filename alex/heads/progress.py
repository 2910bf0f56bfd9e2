"""Training progress for transformers' ``Trainer``: what ``alex train`` shows while it trains.

On a terminal: a rich bar of the steps and, after each evaluation, one row of a per-epoch table
(train loss, validation loss, validation metric, best so far). Elsewhere (a log file, nohup,
Slurm): one status line every N seconds (``alex.status``; epoch, step, loss, last validation
metric, ETA) and one line per epoch with its evaluation, so a log shows the run is alive. Either
way the end says whether ``EarlyStoppingCallback`` stopped training, why, and which epoch was best.
"""

from __future__ import annotations

import sys
import time
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.text import Text
from transformers import EarlyStoppingCallback, TrainerCallback

from alex.heads.history import Evaluation, best_evaluation, epoch_label, epoch_train_loss, evaluations
from alex.status import StatusTicker, eta, write_line


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


class EpochTable:
    """Fixed-width rows, a header once: robust beside a live progress bar and in any scrollback."""

    def __init__(self, metric: str):
        self.columns = ["epoch", "train loss", "val loss"] + ([] if metric == "loss" else [f"val {metric}"])
        self.widths = [max(7, len(c)) for c in self.columns]
        self.header_shown = False

    def header(self) -> Text:
        self.header_shown = True
        cells = [c.rjust(w) for c, w in zip(self.columns, self.widths)]
        return Text("  ".join(cells + ["best so far"]), style="bold")

    def row(self, epoch: float, train_loss: float | None, evaluation: Evaluation, best: Evaluation | None) -> Text:
        values = [epoch_label(epoch), _number(train_loss), _number(evaluation.loss)]
        if len(self.columns) == 4:
            values.append(_number(evaluation.metric))
        cells = [v.rjust(w) for v, w in zip(values, self.widths)]
        is_new_best = best is not None and best.epoch == evaluation.epoch
        marker = "" if best is None else f"{best.metric:.4f} (epoch {epoch_label(best.epoch)})" + (" *" if is_new_best else "")
        return Text("  ".join(cells + [marker]), style="green" if is_new_best else "")


class TrainProgress(TrainerCallback):
    """A ``TrainerCallback`` that reports training (see the module docstring). ``metric`` and
    ``greater_is_better`` are the head family's (``eval_<metric>`` in the logs); ``early_stopping`` is
    the run's ``EarlyStoppingCallback``, read at the end to tell an early stop from the last epoch.
    Progress goes to ``console`` (stderr); the closing line goes to ``say`` when given. With
    ``quiet`` only ``say`` hears anything."""

    def __init__(self, metric: str, greater_is_better: bool, early_stopping: EarlyStoppingCallback | None = None,
                 quiet: bool = False, console: Console | None = None, interval: float | None = None,
                 say: Callable[[str], None] | None = None):
        self.metric, self.greater_is_better, self.early_stopping = metric, greater_is_better, early_stopping
        self.console = console or Console(file=sys.stderr)
        self.mode = "off" if quiet else ("table" if self.console.is_terminal else "lines")
        self.interval = interval
        self._say = say
        self.table = EpochTable(metric)
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._eval_task: TaskID | None = None
        self._training = False

    # ---- the Trainer's events --------------------------------------------------------------
    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self._training = True
        self._started, self._first_step = time.monotonic(), state.global_step
        self._ticker = StatusTicker(self.interval)
        if self.mode == "table":
            self._start_bar(state)
            for epoch, train_loss, evaluation, best in self._rows(state.log_history):  # resumed: the epochs so far
                self._print_row(epoch, train_loss, evaluation, best)
        elif self.mode == "lines":
            self._line(f"train: {state.max_steps} steps over {epoch_label(state.num_train_epochs)} epochs"
                       + (f", resuming at step {state.global_step}" if state.global_step else "")
                       + f"; validation {self.metric} picks the best epoch")

    def on_step_end(self, args, state, control, **kwargs):
        if not self._training:
            return
        if self._progress is not None:
            self._progress.update(self._task, completed=state.global_step, epoch=self._epoch_text(state))
        elif self.mode == "lines" and self._ticker.due():
            self._line(self.status_line(state))

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        if self._progress is None or not self._training or eval_dataloader is None:
            return
        if self._eval_task is None:
            try:
                total = len(eval_dataloader)
            except TypeError:  # an iterable dataset: no length
                total = None
            self._eval_task = self._progress.add_task("evaluate", total=total, unit="batches", epoch="validation")
        self._progress.advance(self._eval_task)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not self._training:  # the evaluations train() runs after training are not epochs
            return
        if self._eval_task is not None:
            self._progress.remove_task(self._eval_task)
            self._eval_task = None
        rows = self._rows(state.log_history)
        if not rows:
            return
        epoch, train_loss, evaluation, best = rows[-1]
        if self.mode == "table":
            self._print_row(epoch, train_loss, evaluation, best)
        elif self.mode == "lines":
            self._line(self.epoch_line(state, train_loss, evaluation, best))

    def on_train_end(self, args, state, control, **kwargs):
        if not self._training:
            return
        self._training = False
        self.close()
        self._say_outcome(self.outcome(state))

    def close(self) -> None:
        """Stop the bar (also when training raised: the Trainer then sends no ``on_train_end``)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    # ---- what is said ------------------------------------------------------------------------
    def status_line(self, state) -> str:
        """``train: epoch 2.50/30, step 25/300, loss 2.1012, validation accuracy 0.3000 (best 0.3000 at epoch 2), ETA 1m20s``."""
        parts = [f"train: epoch {state.epoch or 0:.2f}/{epoch_label(state.num_train_epochs)}",
                 f"step {state.global_step}/{state.max_steps}", f"loss {_number(self._last_loss(state.log_history))}"]
        evals = evaluations(state.log_history, self.metric)
        if evals and evals[-1].metric is not None:
            best = best_evaluation(evals, self.greater_is_better)
            parts.append(f"validation {self.metric} {evals[-1].metric:.4f} (best {best.metric:.4f} at epoch {epoch_label(best.epoch)})")
        done = state.global_step - self._first_step
        parts.append(f"ETA {eta(done, state.max_steps - self._first_step, time.monotonic() - self._started)}")
        return ", ".join(parts)

    def epoch_line(self, state, train_loss: float | None, evaluation: Evaluation, best: Evaluation | None) -> str:
        """``train: epoch 3/30: train loss 2.0000, validation loss 2.0600, validation accuracy 0.2500 (best 0.3000 at epoch 2)``."""
        text = (f"train: epoch {epoch_label(evaluation.epoch)}/{epoch_label(state.num_train_epochs)}: "
                f"train loss {_number(train_loss)}, validation loss {_number(evaluation.loss)}")
        if self.metric != "loss":
            text += f", validation {self.metric} {_number(evaluation.metric)}"
        if best is not None:
            text += " (new best)" if best.epoch == evaluation.epoch else f" (best {best.metric:.4f} at epoch {epoch_label(best.epoch)})"
        return text

    def outcome(self, state) -> str:
        """Why training ended, and its best epoch (the one the run keeps)."""
        evals = evaluations(state.log_history, self.metric)
        best = best_evaluation(evals, self.greater_is_better)
        last = epoch_label(evals[-1].epoch if evals else state.epoch or 0)
        best_at = f"{best.metric:.4f} at epoch {epoch_label(best.epoch)}" if best else None
        best_text = f"best validation {self.metric} {best_at}" if best else f"no validation {self.metric}"
        of_epochs = f"epoch {last} of {epoch_label(state.num_train_epochs)}"
        early = self.early_stopping
        if state.global_step >= state.max_steps:
            return f"trained {last} epochs; {best_text}"
        if early is None or early.early_stopping_patience_counter < early.early_stopping_patience:
            return f"stopped after {of_epochs}; {best_text}"
        waited = early.early_stopping_patience_counter
        return (f"stopped early after {of_epochs}: validation {self.metric} has not improved for {waited} "
                f"epoch{'s' if waited != 1 else ''} (best {best_at or '-'}; --patience {early.early_stopping_patience})")

    # ---- helpers -------------------------------------------------------------------------------
    def _rows(self, log_history) -> list[tuple[float, float | None, Evaluation, Evaluation | None]]:
        """(epoch, its mean train loss, its evaluation, the best evaluation so far) for each evaluation."""
        evals = evaluations(log_history, self.metric)
        rows, previous = [], 0.0
        for i, evaluation in enumerate(evals):
            train_loss = epoch_train_loss(log_history, previous, evaluation.epoch)
            rows.append((evaluation.epoch, train_loss, evaluation, best_evaluation(evals[: i + 1], self.greater_is_better)))
            previous = evaluation.epoch
        return rows

    def _print_row(self, epoch, train_loss, evaluation, best) -> None:
        if not self.table.header_shown:
            self.console.print(self.table.header(), highlight=False)
        self.console.print(self.table.row(epoch, train_loss, evaluation, best), highlight=False)

    def _start_bar(self, state) -> None:
        self._progress = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[unit]}"),
                                  TextColumn("{task.fields[epoch]}"), TimeRemainingColumn(),
                                  console=self.console, transient=True)
        self._task = self._progress.add_task("train", total=state.max_steps, completed=state.global_step, unit="steps",
                                             epoch=self._epoch_text(state))
        self._progress.start()

    @staticmethod
    def _epoch_text(state) -> str:
        return f"epoch {state.epoch or 0:.2f}/{epoch_label(state.num_train_epochs)}"

    @staticmethod
    def _last_loss(log_history) -> float | None:
        return next((e["loss"] for e in reversed(log_history) if "loss" in e), None)

    def _line(self, text: str) -> None:
        write_line(self.console.file, text)

    def _say_outcome(self, text: str) -> None:
        if self._say is not None:
            self._say(text)
        elif self.mode == "table":
            self.console.print(text, highlight=False, markup=False)
        elif self.mode == "lines":
            self._line(text)
