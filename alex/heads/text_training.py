"""Generative heads (VL-T5 today) trained on cached features: captions, answers, label words,
or span-corruption pretraining, through the same Trainer setup as the classification heads.

The run folder holds the head (``save_pretrained``) and its tokenizer, ``training_config.json``,
``metrics.json`` (exact match of greedy generations on validation and test) and
``training_curve.png``; ``alex evaluate`` and ``alex predict`` need nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq

from alex import __version__
from alex.errors import UsageError
from alex.heads.data import check_signature, input_signature, make_dataset, select_labelled, usable_videos
from alex.heads.labels import check_fractions, read_labels
from alex.heads.plots import plot_training_curve
from alex.heads.text import TARGET_COLUMNS, TASK_PREFIXES, TextCollator, exact_match, load_tokenizer, prompt_for
from alex.heads.training import METRICS, TRAINING_CONFIG, GenerativeOptions, check_run_folder, fit, head_device
from alex.hub import check_model_available, local_only
from alex.store.reader import open_store


@dataclass(kw_only=True)
class TextTrainOptions(GenerativeOptions):
    """A VL-T5 head: ``model`` is a T5 checkpoint (hub id or folder) or an earlier alex t5 run."""

    head: str = "t5"


def build_t5(options: TextTrainOptions, signature: dict[str, dict[str, Any]]):
    """A VL-T5 head from a T5 checkpoint (its weights and tokenizer), or from an earlier alex t5 run."""
    from transformers import T5ForConditionalGeneration

    from alex.heads.t5 import AlexT5Config, AlexT5ForConditionalGeneration

    source = Path(options.model)
    if (source / "config.json").is_file() and json.loads((source / "config.json").read_text()).get("model_type") == "alex_t5":
        model = AlexT5ForConditionalGeneration.from_pretrained(str(source))  # e.g. after span pretraining
        if model.config.inputs != options.inputs:
            raise UsageError(f"{source} was trained on inputs {model.config.inputs}, not {options.inputs}")
        model.config.task = options.task
        return model, load_tokenizer(source)
    check_model_available(options.model, "--t5")
    base = T5ForConditionalGeneration.from_pretrained(options.model, local_files_only=local_only(options.model))
    tokenizer = load_tokenizer(options.model)
    config = AlexT5Config(
        t5_config=base.config.to_dict(), inputs=options.inputs,
        input_dims=[signature[name]["dim"] for name in options.inputs],
        timestamp_encoding=options.timestamp_encoding, task=options.task, base_model=options.model,
        **options.head_config,
    )
    model = AlexT5ForConditionalGeneration(config)
    model.t5.load_state_dict(base.state_dict())
    return model, tokenizer


def _items(video_ids: list[str], task: str, targets: dict[str, str], prompts: dict[str, str]) -> list[dict[str, str]]:
    return [{"prompt": prompt_for(task, prompts.get(v)), "target": targets[v]} for v in video_ids]


def generate(model, tokenizer, dataset, device, batch_size: int = 32, max_new_tokens: int = 32) -> list[str]:
    """Greedy generations for every item of a dataset, in order."""
    import torch
    from torch.utils.data import DataLoader

    collator = TextCollator(tokenizer)
    model = model.to(device).eval()
    texts: list[str] = []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collator):
        batch.pop("labels", None)
        batch = {k: ({n: t.to(device) for n, t in v.items()} if isinstance(v, dict) else v.to(device)) for k, v in batch.items()}
        with torch.autocast(device.type, enabled=device.type == "cuda"):
            out = model.generate(**batch, max_new_tokens=max_new_tokens)
        texts.extend(tokenizer.batch_decode(out, skip_special_tokens=True))
    return texts


def train_text(options: TextTrainOptions, say: Callable[[str], None] = print) -> dict[str, Any]:
    import torch
    import transformers

    if options.task not in TASK_PREFIXES:
        raise UsageError(f"--task {options.task}: choose one of {', '.join(TASK_PREFIXES)}")
    if options.head != "t5":
        raise UsageError(f"generative head {options.head!r}: this release trains 't5'")
    check_fractions(options.split)
    run_dir = Path(options.output)
    last = check_run_folder(run_dir, options.resume)
    with open_store(options.features) as store:
        signature = input_signature(store, options.inputs)
        table = read_labels(options.labels, options.split, label_column=TARGET_COLUMNS[options.task])
        if options.task == "vqa" and not table.prompts:
            raise UsageError(f"labels file {options.labels}: --task vqa needs a 'prompt' column with the questions")
        selection = select_labelled(store, table, options.inputs)
        say("videos: " + ", ".join(f"{k} {v}" for k, v in selection.counts().items())
            + "; skipped: " + ", ".join(f"{v} {k}" for k, v in selection.skipped.items()))
        datasets = {
            split: make_dataset(store, ids, options.inputs, augment=split == "train",
                                extras=_items(ids, options.task, table.labels, table.prompts))
            for split, ids in selection.splits.items()
        }
    transformers.set_seed(options.seed)
    transformers.utils.logging.disable_progress_bar()
    model, tokenizer = build_t5(options, signature)
    collator = TextCollator(tokenizer, span=options.task == "span", seed=options.seed)
    trainer = fit(model, options, run_dir, datasets["train"], datasets["validation"], collator, last,
                  metric="loss", greater_is_better=False)
    model = trainer.model.float().eval()
    model.save_pretrained(str(run_dir))
    tokenizer.save_pretrained(str(run_dir))
    training_config = {**options.to_json(), "alex_version": __version__, "inputs_signature": signature,
                       "videos": selection.counts(), "skipped": selection.skipped,
                       "best_checkpoint": trainer.state.best_model_checkpoint}
    (run_dir / TRAINING_CONFIG).write_text(json.dumps(training_config, indent=2) + "\n")
    device = torch.device("cpu") if trainer.args.use_cpu else trainer.args.device
    metrics: dict[str, Any] = {"epochs": trainer.state.epoch, "videos": selection.counts(), "skipped": selection.skipped}
    for split in ("validation", "test"):
        evaluation = trainer.evaluate(datasets[split])
        metrics[split] = {"loss": evaluation["eval_loss"]}
        if options.task != "span":
            predictions = generate(model, tokenizer, datasets[split], device, options.batch_size, options.max_new_tokens)
            references = [table.labels[v] for v in selection.splits[split]]
            metrics[split]["exact_match"] = exact_match(predictions, references)
            metrics[split]["examples"] = [{"video_id": v, "generated": p, "reference": r}
                                          for v, p, r in list(zip(selection.splits[split], predictions, references))[:5]]
    (run_dir / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
    plot_training_curve(trainer.state.log_history, run_dir / "training_curve.png", "loss")
    for dataset in datasets.values():
        dataset.close()
    return metrics


def _load_text_run(run_dir: str | Path):
    from alex.heads.t5 import AlexT5ForConditionalGeneration

    run_dir = Path(run_dir)
    path = run_dir / TRAINING_CONFIG
    if not path.is_file():
        raise UsageError(f"{run_dir} is not a finished run: {TRAINING_CONFIG} is missing")
    return AlexT5ForConditionalGeneration.from_pretrained(str(run_dir)), load_tokenizer(run_dir), json.loads(path.read_text())



def evaluate_text_run(run_dir: str | Path, features: str | Path, labels: str | Path, split: str = "test",
                      device: str = "auto") -> dict[str, Any]:
    model, tokenizer, training = _load_text_run(run_dir)
    task = training["task"]
    with open_store(features) as store:
        check_signature(store, training["inputs_signature"])
        table = read_labels(labels, tuple(training["split"]), label_column=TARGET_COLUMNS[task])
        selection = select_labelled(store, table, model.config.inputs, require=[split])
        ids = selection.splits[split]
        dataset = make_dataset(store, ids, model.config.inputs, extras=_items(ids, task, table.labels, table.prompts))
        predictions = generate(model, tokenizer, dataset, head_device(device), max_new_tokens=training.get("max_new_tokens", 32))
        dataset.close()
    return {"split": split, "videos": len(ids), "skipped": selection.skipped,
            "exact_match": exact_match(predictions, [table.labels[v] for v in ids])}


def predict_text_run(run_dir: str | Path, features: str | Path, output: str | Path, device: str = "auto",
                     prompt: str | None = None) -> dict[str, Any]:
    """Generate for every usable video; Parquet with video_id, prompt, text (joins ``videos``)."""
    model, tokenizer, training = _load_text_run(run_dir)
    task = training["task"]
    with open_store(features) as store:
        check_signature(store, training["inputs_signature"])
        ids, skipped = usable_videos(store, model.config.inputs)
        prompts = {v: prompt for v in ids} if prompt else {}
        dataset = make_dataset(store, ids, model.config.inputs, extras=_items(ids, task, {v: "" for v in ids}, prompts))
        texts = generate(model, tokenizer, dataset, head_device(device), max_new_tokens=training.get("max_new_tokens", 32))
        dataset.close()
    table = pa.table({"video_id": pa.array(ids, pa.string()),
                      "prompt": pa.array([prompt_for(task, prompts.get(v)) for v in ids], pa.string()),
                      "text": pa.array(texts, pa.string())})
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, output)
    return {"videos": len(ids), "skipped": skipped, "output": str(output)}
