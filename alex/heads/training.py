"""``alex train``, ``alex evaluate`` and ``alex predict``: ONE path for every head.

As LeRobot's ``lerobot_train.py`` trains any policy its factory builds by name, this module trains
any head of ``alex.heads.registry``: run folder, labels, datasets, transformers' ``Trainer``
(Accelerate underneath: bf16/fp16 on GPU, a checkpoint per epoch, ``--resume``, early stopping on
the validation metric, seeded data order, TensorBoard logs), saving, metrics, plots and prediction
files are done here once. The head (a ``HeadFamily``) contributes its config, model, processor,
collator, metrics and prediction rows.

A run folder holds what loads without unpickling: ``config.json`` + ``model.safetensors``
(``AutoModel.from_pretrained(run)`` after ``import alex``), the processor and tokenizer files
(``AutoProcessor``), ``generation_config.json`` for generative heads, ``training_config.json``,
``metrics.json`` and plots. The one exception is ``checkpoints/``: the ``Trainer``'s own
checkpoints for ``--resume`` (optimizer and RNG states are torch pickles).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pyarrow.parquet as pq

from alex import __version__
from alex.errors import UsageError
from alex.heads.data import select_labelled, usable_videos
from alex.heads.inputs import check_signature, input_signature
from alex.heads.labels import read_questions, read_table
from alex.heads.options import EvaluateOptions, PredictOptions, TrainOptions
from alex.heads.distributed import is_main, per_device_batch, wait_for_everyone
from alex.heads.plots import plot_training_curve
from alex.heads.preflight import CHECKPOINTS, TRAINING_CONFIG, preflight
from alex.heads.registry import head_family
from alex.heads.resume import check_resume, model_differences, remember_options, started_options
from alex.store.reader import open_store

METRICS = "metrics.json"

log = logging.getLogger("alex.train")


def head_device(device: str):
    """``auto`` -> cuda when available, else cpu (heads never import the pipeline's helper)."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: CUDA is not available here (use --device cpu)")
    return torch.device(device)


def _precision(device: str) -> dict[str, Any]:
    """TrainingArguments for the device: the CPU in fp32, a GPU in bf16 (fp16 where bf16 is missing)."""
    import torch

    if head_device(device).type != "cuda":
        return {"use_cpu": True}
    return {"bf16": True} if torch.cuda.is_bf16_supported() else {"fp16": True}


def last_checkpoint(run_dir: Path, resume: bool) -> str | None:
    """The checkpoint ``--resume`` continues from (``preflight`` made sure there is one)."""
    if not resume:
        return None
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(run_dir / CHECKPOINTS))


def fit(model, options: TrainOptions, run_dir: Path, train_set, eval_set, collator, last: str | None, family,
        say: Callable[[str], None] | None = None):
    """Run transformers' Trainer the way every alex head trains: AdamW with a cosine schedule and
    warm-up, an evaluation and a checkpoint per epoch, early stopping on the head's metric, the best
    model kept, seeded data order, TensorBoard logs in ``run_dir/tensorboard``, bf16/fp16 on GPU.
    Progress on stderr (``alex.heads.progress``: a bar and an epoch table on a terminal, status lines
    elsewhere); how training ended (early stop, best epoch) goes to ``say``."""
    from torch.utils.tensorboard import SummaryWriter
    from transformers import EarlyStoppingCallback, Trainer, TrainingArguments
    from transformers.integrations import TensorBoardCallback
    from transformers.trainer_callback import PrinterCallback

    from alex.heads.progress import TrainProgress

    steps_per_epoch = math.ceil(len(train_set) / options.batch_size)  # global batches (alex.heads.distributed)
    per_device = per_device_batch(options.batch_size)
    args = TrainingArguments(
        output_dir=str(run_dir / CHECKPOINTS),
        num_train_epochs=options.epochs,
        per_device_train_batch_size=per_device,
        per_device_eval_batch_size=per_device,
        # alex's heads return the mean loss of their batch; the Trainer would scale it by the process
        # count (its token-averaging across devices), doubling the gradients on 2 processes.
        average_tokens_across_devices=False,
        learning_rate=options.learning_rate,
        weight_decay=options.weight_decay,
        lr_scheduler_type="cosine",
        warmup_steps=int(options.warmup * steps_per_epoch * options.epochs),
        eval_strategy="epoch",
        save_strategy="epoch",
        logging_strategy="steps",
        logging_steps=max(1, steps_per_epoch // 2),
        load_best_model_at_end=True,
        metric_for_best_model=family.metric,
        greater_is_better=family.greater_is_better,
        save_total_limit=2,
        seed=options.seed,
        data_seed=options.seed,
        dataloader_num_workers=options.num_workers,
        remove_unused_columns=False,
        report_to="none",
        disable_tqdm=True,  # TrainProgress draws the bar (tqdm's would print raw dict logs)
        label_names=family.label_names,  # the batch keys that carry targets (the Trainer computes eval loss when present)
        prediction_loss_only=family.trainer_metrics() is None,  # never gather (B, L, vocab) logits of a whole split
        **_precision(options.device),
    )

    class FeatureTrainer(Trainer):
        def floating_point_ops(self, inputs: dict[str, Any]) -> int:  # inputs hold dicts of tensors per encoder
            return 6 * self.model.estimate_tokens(inputs) * self.model.num_parameters(exclude_embeddings=True)

    main = is_main()  # only rank 0 writes TensorBoard and reports progress
    tensorboard = SummaryWriter(log_dir=str(run_dir / "tensorboard")) if main else None
    early_stopping = EarlyStoppingCallback(early_stopping_patience=options.patience)
    progress = TrainProgress(family.metric, family.greater_is_better, early_stopping, quiet=options.quiet or not main,
                             say=say if main else (lambda line: None))
    callbacks = [early_stopping, progress] + ([TensorBoardCallback(tensorboard)] if main else [])
    trainer = FeatureTrainer(
        model=model, args=args, train_dataset=train_set, eval_dataset=eval_set, data_collator=collator,
        compute_metrics=family.trainer_metrics(), callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)  # raw dict logs; alex reports the outcome itself
    try:
        trainer.train(resume_from_checkpoint=last)
    finally:
        progress.close()
        if tensorboard is not None:
            tensorboard.close()  # on every path: a failed run's event file is complete and closed too
    return trainer


def _counts(selection) -> str:
    return ("videos: " + ", ".join(f"{k} {v}" for k, v in selection.counts().items())
            + "; skipped: " + ", ".join(f"{v} {k}" for k, v in selection.skipped.items()))


def train(options: TrainOptions, say: Callable[[str], None] = log.info) -> dict[str, Any]:
    """Train the head ``options`` describes (its class names the head) on a store's cached features;
    returns the metrics written to ``metrics.json``. Bad input stops before training, and before
    torch and transformers are imported (a usage error is reported at once)."""
    preflight(options)
    main = is_main()  # several processes (torchrun, accelerate launch): only rank 0 writes and speaks
    if not main:
        say = lambda line: None  # noqa: E731
    run_dir = Path(options.output)
    if options.resume:  # before anything heavy is imported: a refusal comes at once
        changed = check_resume(run_dir, started_options(run_dir, CHECKPOINTS, TRAINING_CONFIG), options)
        if changed:
            say(f"resuming {run_dir} with changed options: {'; '.join(changed)}")
    family = head_family(options.head)
    last = last_checkpoint(run_dir, options.resume)
    datasets: dict[str, Any] = {}
    try:  # the datasets' HDF5 handles are closed on every path, a failure while building them included
        with open_store(options.store) as store:
            signature = input_signature(store, options.inputs)
            table = family.read_targets(options.labels, options.split_fractions, getattr(options, "task", None))
            selection = select_labelled(store, table, options.inputs)
            say(_counts(selection))
            import torch
            import transformers

            transformers.utils.logging.disable_progress_bar()
            transformers.set_seed(options.seed)  # the head's initial weights, then the data order
            model, processor = family.build(options, store, table, selection, signature)
            if last is not None:
                model_differences(run_dir, type(model.config).from_pretrained(last).to_dict(), model.config.to_dict())
            for split, ids in selection.splits.items():
                item_ids, extras = family.items(store, ids, table, model, train=split == "train")
                datasets[split] = family.dataset(store, item_ids, options.inputs, split == "train", extras, model)
        wait_for_everyone()  # every process has checked the run folder before rank 0 writes to it
        if last is None and main:
            remember_options(run_dir, CHECKPOINTS, options)
        trainer = fit(model, options, run_dir, datasets["train"], datasets["validation"], family.collator(processor, model, options),
                      last, family, say=say)
        history = list(trainer.state.log_history)
        if last is not None and main:  # a resumed run holds its (allowed) new options from now on
            remember_options(run_dir, CHECKPOINTS, options)
        model = family.finish(trainer.model, options).eval()
        if main:
            save_run(run_dir, model, processor, {
                **options.to_json(), "alex_version": __version__, "inputs_signature": signature,
                "videos": selection.counts(), "skipped": selection.skipped,
                "best_checkpoint": trainer.state.best_model_checkpoint,
            })
        device = torch.device("cpu") if trainer.args.use_cpu else trainer.args.device
        metrics: dict[str, Any] = {}
        for split in ("validation", "test"):
            loss = trainer.evaluate(datasets[split], metric_key_prefix=split)[f"{split}_loss"]  # every process takes part
            if not main:
                continue
            outputs = family.infer(model, processor, datasets[split], device, options.batch_size)
            metrics[split] = {**family.metrics(outputs, datasets[split], model), "loss": loss}
            if split == "test":
                family.plots(run_dir, outputs, datasets[split], model, f"{options.head} on {', '.join(options.inputs)}: test split")
        metrics.update(epochs=trainer.state.epoch, best_checkpoint=trainer.state.best_model_checkpoint,
                       videos=selection.counts(), skipped=selection.skipped)
        if main:
            (run_dir / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
            plot_training_curve(history, run_dir / "training_curve.png", family.metric, family.greater_is_better)
    finally:
        for dataset in datasets.values():
            dataset.close()
    return metrics


def save_run(run_dir: Path, model, processor, training_config: dict[str, Any]) -> None:
    """The head (config.json, model.safetensors, generation_config.json), its processor and
    tokenizer files, and ``training_config.json`` last: a folder with it is a finished run."""
    model.save_pretrained(str(run_dir))
    if processor is not None:
        processor.save_pretrained(str(run_dir))
    (run_dir / TRAINING_CONFIG).write_text(json.dumps(training_config, indent=2) + "\n")


def split_fractions(training: dict[str, Any]) -> tuple[float, float, float]:
    """The train/validation/test fractions a run was trained with (``split`` in run folders written before the option was renamed)."""
    return tuple(training.get("split_fractions", training.get("split")))  # type: ignore[return-value]


@dataclass
class Run:
    """A finished run folder, loaded: its head family, model, processor and training config."""

    path: Path
    family: Any
    model: Any
    processor: Any
    training: dict[str, Any]

    @property
    def inputs(self) -> list[str]:
        return list(self.training["inputs"])


def finished_training(run_dir: Path) -> dict[str, Any]:
    """The training config of a finished run (light: no model is loaded)."""
    path = Path(run_dir) / TRAINING_CONFIG
    if not path.is_file():
        raise UsageError(f"{run_dir} is not a finished run: {TRAINING_CONFIG} is missing (train one with `alex train`)")
    return json.loads(path.read_text())


def check_run_inputs(run_dir: Path, store: Path, labels: Path | None = None) -> None:
    """What evaluate and predict can refuse before a model loads: a run folder that holds no finished
    run, a store without the run's inputs as it trained on them, a labels file that cannot be read."""
    training = finished_training(run_dir)
    with open_store(store) as opened:
        check_signature(opened, training["inputs_signature"])
    if labels is not None:
        read_table(labels)


def load_run(run_dir: str | Path) -> Run:
    """A finished run: the model exactly as trained (``AutoModel.from_pretrained``), its processor."""
    from alex.heads.auto import register_auto_classes

    run_dir = Path(run_dir)
    training = finished_training(run_dir)
    family = head_family(training.get("head", ""))
    register_auto_classes()
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(run_dir)).eval()
    return Run(run_dir, family, model, family.load_processor(run_dir, model), training)


def evaluate(run: str | Path, store: str | Path, labels: str | Path, **options: Any) -> dict[str, Any]:
    """Metrics of a trained head on one split of a labels file (the run's own split rule). Keyword
    options: those of ``EvaluateOptions`` (split, device, batch_size)."""
    opts = EvaluateOptions(run=run, store=store, labels=labels, **options)
    check_run_inputs(opts.run, opts.store, opts.labels)
    loaded = load_run(opts.run)
    family, model = loaded.family, loaded.model
    with open_store(opts.store) as store:
        check_signature(store, loaded.training["inputs_signature"])
        table = family.read_targets(opts.labels, split_fractions(loaded.training), loaded.training.get("task"))
        selection = select_labelled(store, table, loaded.inputs, require=[opts.split])
        ids = selection.splits[opts.split]
        family.check_targets(model, table, ids)
        item_ids, extras = family.items(store, ids, table, model)
        dataset = family.dataset(store, item_ids, loaded.inputs, False, extras, model)
    try:
        outputs = family.infer(model, loaded.processor, dataset, head_device(opts.device),
                               opts.batch_size or loaded.training["batch_size"])
        scores = family.metrics(outputs, dataset, model)
    finally:
        dataset.close()
    return {"split": opts.split, "videos": len(ids), "skipped": selection.skipped, **scores}


def predict(run: str | Path, store: str | Path, output: str | Path, **options: Any) -> dict[str, Any]:
    """Predictions for every usable video of a store, as Parquet joinable with ``videos`` on video_id.
    Keyword options: those of ``PredictOptions`` (device, batch_size, prompt)."""
    opts = PredictOptions(run=run, store=store, output=output, **options)
    check_run_inputs(opts.run, opts.store, opts.questions)
    loaded = load_run(opts.run)
    family, model = loaded.family, loaded.model
    if (opts.prompt is not None or opts.questions is not None) and not family.takes_prompt:
        raise UsageError(f"--prompt / --questions: a {family.name} head takes no prompt")
    with open_store(opts.store) as store:
        check_signature(store, loaded.training["inputs_signature"])
        ids, skipped = usable_videos(store, loaded.inputs)
        questions = None
        if opts.questions is not None:
            questions = read_questions(opts.questions)
            known = {v for (v,) in store.con.execute("SELECT video_id FROM videos").fetchall()}
            unknown = sorted(set(questions.labels) - known)
            if unknown:
                raise UsageError(f"questions file {opts.questions} names video(s) not in store {opts.store}, e.g. {unknown[0]}")
            ids = [v for v in ids if v in questions.labels]
        item_ids, extras = family.items(store, ids, questions, model, prompt=opts.prompt)
        dataset = family.dataset(store, item_ids, loaded.inputs, False, extras, model)
    try:
        outputs = family.infer(model, loaded.processor, dataset, head_device(opts.device),
                               opts.batch_size or loaded.training["batch_size"])
        table = family.prediction_table(outputs, dataset, model)
    finally:
        dataset.close()
    opts.output.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, opts.output)
    return {"videos": len(ids), "rows": table.num_rows, "skipped": skipped, "output": str(opts.output)}
