"""``alex train``: a head on cached features with transformers' Trainer (Accelerate underneath).

Mixed precision on GPU, a checkpoint per epoch, ``--resume``, early stopping on the validation
metric, seeded (reproducible on CPU), TensorBoard logs. The run folder holds the head
(``save_pretrained``: config.json + weights), ``training_config.json``, ``metrics.json``,
``training_curve.png`` and ``confusion_matrix.png``.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from alex import __version__
from alex.errors import UsageError
from alex.heads import head_classes
from alex.heads.data import input_signature, make_dataset, select_labelled, sort_labels
from alex.heads.evaluation import classification_metrics, evaluate_dataset
from alex.heads.labels import DEFAULT_FRACTIONS, check_fractions, read_labels
from alex.heads.plots import plot_confusion_matrix, plot_training_curve
from alex.store.dataset import collate_features
from alex.store.reader import open_store

TRAINING_CONFIG = "training_config.json"
METRICS = "metrics.json"
CHECKPOINTS = "checkpoints"

log = logging.getLogger("alex.train")


@dataclass
class RunOptions:
    """What every head's training takes: the store, the labels, the run folder, the inputs and
    the optimisation settings (AdamW with a cosine schedule, early stopping)."""

    features: Path
    labels: Path
    output: Path
    inputs: list[str] = field(default_factory=lambda: ["clip"])
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 0.05
    warmup: float = 0.1  # fraction of steps
    seed: int = 0
    split: tuple[float, float, float] = DEFAULT_FRACTIONS
    patience: int = 5
    device: str = "auto"
    num_workers: int = 0
    resume: bool = False
    timestamp_encoding: str = "sinusoidal"
    head_config: dict[str, Any] = field(default_factory=dict)
    quiet: bool = True

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("features", "labels", "output"):
            data[key] = str(data[key])
        data["split"] = list(self.split)
        return data


@dataclass(kw_only=True)
class TrainOptions(RunOptions):
    """A classification head (probe, perceiver)."""

    head: str = "probe"
    metric: str = "accuracy"
    hidden_size: int = 128


@dataclass(kw_only=True)
class GenerativeOptions(RunOptions):
    """A head that generates text (t5, llm): ``model`` is the checkpoint it starts from."""

    model: str
    task: str = "caption"
    batch_size: int = 16
    weight_decay: float = 0.0
    warmup: float = 0.05
    timestamp_encoding: str = "time2vec"
    max_new_tokens: int = 32


def head_device(device: str):
    """``auto`` -> cuda when available, else cpu (heads never import the pipeline's helper)."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _precision(device: str) -> dict[str, Any]:
    import torch

    use_cuda = device in ("auto", "cuda") and torch.cuda.is_available() or device.startswith("cuda:")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: CUDA is not available here (use --device cpu)")
    if not use_cuda:
        return {"use_cpu": True}
    return {"bf16": True} if torch.cuda.is_bf16_supported() else {"fp16": True}


def check_run_folder(run_dir: Path, resume: bool) -> str | None:
    """The checkpoint to resume from; refuses to overwrite a finished run or to resume nothing."""
    from transformers.trainer_utils import get_last_checkpoint

    checkpoints = run_dir / CHECKPOINTS
    last = get_last_checkpoint(str(checkpoints)) if resume and checkpoints.is_dir() else None
    if resume and last is None:
        raise UsageError(f"--resume: {run_dir} has no checkpoint to resume from")
    if not resume and (run_dir / TRAINING_CONFIG).exists():
        raise UsageError(f"{run_dir} already holds a run; choose another --output or pass --resume to continue it")
    return last


def fit(model, options: Any, run_dir: Path, train_set, eval_set, collator, last: str | None,
        metric: str, greater_is_better: bool, compute_metrics=None, label_names: list[str] | None = None):
    """Run transformers' Trainer the way every alex head trains: AdamW with a cosine schedule and
    warm-up, an evaluation and a checkpoint per epoch, early stopping on ``metric``, the best
    model kept, seeded data order, TensorBoard logs in ``run_dir/tensorboard``, bf16/fp16 on GPU."""
    from torch.utils.tensorboard import SummaryWriter
    from transformers import EarlyStoppingCallback, Trainer, TrainingArguments
    from transformers.integrations import TensorBoardCallback
    from transformers.trainer_callback import PrinterCallback

    steps_per_epoch = math.ceil(len(train_set) / options.batch_size)
    args = TrainingArguments(
        output_dir=str(run_dir / CHECKPOINTS),
        num_train_epochs=options.epochs,
        per_device_train_batch_size=options.batch_size,
        per_device_eval_batch_size=options.batch_size,
        learning_rate=options.learning_rate,
        weight_decay=options.weight_decay,
        lr_scheduler_type="cosine",
        warmup_steps=int(options.warmup * steps_per_epoch * options.epochs),
        eval_strategy="epoch",
        save_strategy="epoch",
        logging_strategy="steps",
        logging_steps=max(1, steps_per_epoch // 2),
        load_best_model_at_end=True,
        metric_for_best_model=metric,
        greater_is_better=greater_is_better,
        save_total_limit=2,
        seed=options.seed,
        data_seed=options.seed,
        dataloader_num_workers=options.num_workers,
        remove_unused_columns=False,
        report_to="none",
        disable_tqdm=options.quiet,
        label_names=label_names,  # the batch keys that carry targets (the Trainer computes eval loss when present)
        **_precision(options.device),
    )

    class FeatureTrainer(Trainer):
        def floating_point_ops(self, inputs: dict[str, Any]) -> int:  # inputs hold dicts of tensors per encoder
            return 6 * self.model.estimate_tokens(inputs) * self.model.num_parameters(exclude_embeddings=True)

    tensorboard = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
    trainer = FeatureTrainer(
        model=model, args=args, train_dataset=train_set, eval_dataset=eval_set, data_collator=collator,
        compute_metrics=compute_metrics,
        callbacks=[EarlyStoppingCallback(early_stopping_patience=options.patience), TensorBoardCallback(tensorboard)],
    )
    if options.quiet:
        trainer.remove_callback(PrinterCallback)
    trainer.train(resume_from_checkpoint=last)
    tensorboard.close()
    return trainer


def train(options: TrainOptions, say: Callable[[str], None] = log.info) -> dict[str, Any]:
    """Train a classification head; returns the metrics written to ``metrics.json``. Bad input
    stops before training."""
    import torch
    import transformers

    check_fractions(options.split)
    model_class, config_class = head_classes(options.head)
    run_dir = Path(options.output)
    last = check_run_folder(run_dir, options.resume)

    with open_store(options.features) as store:
        signature = input_signature(store, options.inputs)
        table = read_labels(options.labels, options.split)
        selection = select_labelled(store, table, options.inputs)
        say(
            "videos: " + ", ".join(f"{k} {v}" for k, v in selection.counts().items())
            + "; skipped: " + ", ".join(f"{v} {k}" for k, v in selection.skipped.items())
        )
        names = sort_labels(set(selection.labels.values()))
        label2id = {name: i for i, name in enumerate(names)}
        datasets = {
            split: make_dataset(store, ids, options.inputs, label2id, selection.labels, augment=split == "train")
            for split, ids in selection.splits.items()
        }

    transformers.set_seed(options.seed)  # the head's initial weights, then the data order
    transformers.utils.logging.disable_progress_bar()
    config = config_class(
        inputs=options.inputs,
        input_dims=[signature[name]["dim"] for name in options.inputs],
        hidden_size=options.hidden_size,
        timestamp_encoding=options.timestamp_encoding,
        id2label={i: name for name, i in label2id.items()},
        label2id=label2id,
        **options.head_config,
    )
    model = model_class(config)
    trainer = fit(
        model, options, run_dir, datasets["train"], datasets["validation"], collate_features, last,
        metric=options.metric, greater_is_better=options.metric != "loss",
        compute_metrics=lambda p: classification_metrics(np.asarray(p.predictions), np.asarray(p.label_ids)),
    )
    args = trainer.args

    model = trainer.model.float().eval()
    model.save_pretrained(str(run_dir))
    training_config = {
        **options.to_json(),
        "alex_version": __version__,
        "inputs_signature": signature,
        "videos": selection.counts(),
        "skipped": selection.skipped,
        "best_checkpoint": trainer.state.best_model_checkpoint,
    }
    (run_dir / TRAINING_CONFIG).write_text(json.dumps(training_config, indent=2) + "\n")

    device = torch.device("cpu") if args.use_cpu else args.device
    results = {split: evaluate_dataset(model, datasets[split], device, options.batch_size) for split in ("validation", "test")}
    metrics = {
        "validation": results["validation"].metrics,
        "test": results["test"].metrics,
        "epochs": trainer.state.epoch,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "videos": selection.counts(),
        "skipped": selection.skipped,
    }
    (run_dir / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
    plot_training_curve(trainer.state.log_history, run_dir / "training_curve.png", options.metric)
    plot_confusion_matrix(results["test"].confusion, names, run_dir / "confusion_matrix.png",
                          f"{options.head} on {', '.join(options.inputs)}: test split")
    for dataset in datasets.values():
        dataset.close()
    return metrics
