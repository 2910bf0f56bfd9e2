"""The LLM head trained on cached features: ``alex train --head llm --llm ID_OR_PATH --task
caption|qa|action``. The LM is frozen (the projector, time embedding and action head learn),
adapted with LoRA (peft; merged into the weights when saved), or fully trained.

Captions and QA answers come from the labels file's ``text`` (and ``prompt``) columns; actions
from a file with one row per time: ``video_id``, ``timestamp``, ``actions`` (a list of floats),
each stored step taking the latest action row at or before its time (the sampling rule).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from alex import __version__
from alex.errors import UsageError
from alex.heads.data import check_signature, input_signature, make_dataset, select_labelled, usable_videos
from alex.heads.labels import DEFAULT_FRACTIONS, LabelTable, check_fractions, hash_split, read_labels, read_table
from alex.heads.llm.processing_alex import VIDEO_TOKEN, AlexProcessor
from alex.heads.plots import plot_training_curve
from alex.heads.text import exact_match, load_tokenizer
from alex.heads.training import METRICS, TRAINING_CONFIG, GenerativeOptions, check_run_folder, fit, head_device
from alex.hub import check_model_available, local_only
from alex.store.reader import open_store

LLM_TASKS = ("caption", "qa", "action")
PROMPTS = {"caption": "Describe the video. " + VIDEO_TOKEN, "qa": "", "action": VIDEO_TOKEN}


@dataclass(kw_only=True)
class LLMTrainOptions(GenerativeOptions):
    """An LLM head: ``model`` is a causal LM by hub id or folder (Llama, Qwen2, GPT-2 families)."""

    lm: str = "frozen"  # frozen | lora | full
    projector: str = "mlp2x_gelu"
    lm_loss_weight: float = 1.0
    action_loss_weight: float = 1.0
    lora_rank: int = 8


def read_actions(path: str | Path, fractions=DEFAULT_FRACTIONS) -> tuple[LabelTable, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Per-time actions: video_id -> (times (n,), actions (n, A)), and a LabelTable for the split."""
    relation = read_table(path)
    missing = [c for c in ("video_id", "timestamp", "actions") if c not in relation.columns]
    if missing:
        raise UsageError(f"actions file {path} has no column {', '.join(repr(m) for m in missing)} (it has: {', '.join(relation.columns)})")
    rows = relation.select("video_id, timestamp, actions").order("video_id, timestamp").fetchall()
    by_video: dict[str, list] = {}
    for video_id, t, action in rows:
        by_video.setdefault(str(video_id), []).append((float(t), [float(a) for a in action]))
    sizes = {len(a) for items in by_video.values() for _, a in items}
    if len(sizes) != 1:
        raise UsageError(f"actions file {path}: every 'actions' list must have the same length (found {sorted(sizes)})")
    actions = {v: (np.array([t for t, _ in items]), np.array([a for _, a in items], np.float32)) for v, items in by_video.items()}
    table = LabelTable(Path(path), {v: "action" for v in actions}, {v: hash_split(v, fractions) for v in actions})
    return table, actions


def align_actions(step_times: np.ndarray, times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each step takes the latest action at or before its time (the first one before any)."""
    index = np.searchsorted(times, step_times + 1e-6, side="right") - 1
    return values[np.clip(index, 0, len(values) - 1)]


class LLMCollator:
    """Items of the store Dataset (+ prompt, target, actions) -> AlexProcessor batches."""

    def __init__(self, processor: AlexProcessor, generation: bool = False):
        self.processor = processor
        self.generation = generation

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        k = self.processor.tokens_per_frame
        features, timestamps = [], []
        for item in items:
            name = next(iter(item["features"]))
            values = item["features"][name].float()
            features.append(values.reshape(-1, k, values.shape[-1]))  # (T, k, D)
            timestamps.append(item["timestamps"][name][::k].numpy())
        actions = [item["actions"] for item in items] if "actions" in items[0] else None
        targets = None if self.generation or not items[0].get("target") else [item["target"] for item in items]
        return self.processor(text=[item["prompt"] for item in items], video_features=features, timestamps=timestamps,
                              actions=actions, targets=targets, padding_side="left" if self.generation else "right")


def tokens_per_step(store, name: str, video_id: str) -> int:
    arrays = store.arrays(video_id, name)
    main = arrays.arrays[store.encoders[name].get("array", "embedding")]
    return int(np.prod(main.shape[1:-1], dtype=np.int64)) if main.ndim > 2 else 1


def build_llm(options: LLMTrainOptions, signature: dict[str, dict[str, Any]], tokens: int, image_encoder: str | None):
    import torch
    from transformers import AutoModelForCausalLM

    from alex.heads.llm import AlexForAction, AlexTextConfig, AlexTextModel

    check_model_available(options.model, "--llm")
    base = AutoModelForCausalLM.from_pretrained(options.model, local_files_only=local_only(options.model), dtype=torch.float32)
    tokenizer = load_tokenizer(options.model)
    processor = AlexProcessor(tokenizer, tokens_per_frame=tokens)
    (name,) = options.inputs
    config = AlexTextConfig(
        lm_config=base.config.to_dict(), inputs=options.inputs, input_dim=signature[name]["dim"], tokens_per_frame=tokens,
        projector_type=options.projector, timestamp_encoding=options.timestamp_encoding,
        frame_token_id=processor.frame_token_id, base_model=options.model, task=options.task, image_encoder=image_encoder,
        lm_loss_weight=options.lm_loss_weight, action_loss_weight=options.action_loss_weight, **options.head_config,
    )
    if options.task == "action":
        config.action_dim = options.head_config.get("action_dim", 0)
    model = (AlexForAction if options.task == "action" else AlexTextModel)(config)
    model.language_model.load_state_dict(base.state_dict())
    if options.lm == "frozen":
        model.language_model.requires_grad_(False)
    elif options.lm == "lora":
        from peft import LoraConfig, get_peft_model

        model.language_model = get_peft_model(model.language_model, LoraConfig(
            r=options.lora_rank, lora_alpha=2 * options.lora_rank, target_modules="all-linear", lora_dropout=0.0))
    elif options.lm != "full":
        raise UsageError(f"--lm {options.lm}: choose frozen, lora or full")
    return model, processor


def _extras(ids, task, table: LabelTable, actions, step_times) -> list[dict[str, Any]]:
    out = []
    for v in ids:
        prompt = table.prompts.get(v, "") + " " + VIDEO_TOKEN if task == "qa" else PROMPTS[task]
        item: dict[str, Any] = {"prompt": prompt.strip(), "target": table.labels[v] if task != "action" else ""}
        if actions is not None:
            item["actions"] = align_actions(step_times[v], *actions[v])
        out.append(item)
    return out


def _step_times(store, name: str, ids: list[str]) -> dict[str, np.ndarray]:
    return {v: store.arrays(v, name).t_start for v in ids}


def run_llm(model, processor, dataset, device, batch_size: int = 16, max_new_tokens: int = 32, generate_text: bool = True):
    """Greedy generations (text) and action predictions (per frame) for every item, in order."""
    import torch
    from torch.utils.data import DataLoader

    model = model.to(device).eval()
    texts: list[str] = []
    actions: list[np.ndarray] = []
    tokenizer = processor.tokenizer
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=LLMCollator(processor, generation=True)):
        batch = {k: v.to(device) for k, v in batch.items()}
        with torch.no_grad(), torch.autocast(device.type, enabled=device.type == "cuda"):
            if getattr(model.config, "action_dim", 0):
                out = model(**batch)
                per_video = batch["action_target_mask"].sum(dim=1).tolist()
                predictions = out.action_predictions.float().cpu().numpy()
                start = 0
                for n in per_video:
                    actions.append(predictions[start : start + n])
                    start += n
            if generate_text:
                generated = model.generate(**batch, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                           eos_token_id=tokenizer.eos_token_id)
                texts.extend(tokenizer.batch_decode(generated, skip_special_tokens=True))
    return texts, actions


def train_llm(options: LLMTrainOptions, say: Callable[[str], None] = print) -> dict[str, Any]:
    import torch
    import transformers

    if options.task not in LLM_TASKS:
        raise UsageError(f"--task {options.task} for --head llm: choose one of {', '.join(LLM_TASKS)}")
    if len(options.inputs) != 1:
        raise UsageError("--head llm reads one input encoder (e.g. --inputs clip, or a languagebind store with --keep-tokens)")
    check_fractions(options.split)
    run_dir = Path(options.output)
    last = check_run_folder(run_dir, options.resume)
    with open_store(options.features) as store:
        signature = input_signature(store, options.inputs)
        (name,) = options.inputs
        if options.task == "action":
            table, actions = read_actions(options.labels, options.split)
        else:
            table, actions = read_labels(options.labels, options.split, label_column="text"), None
            if options.task == "qa" and not table.prompts:
                raise UsageError(f"labels file {options.labels}: --task qa needs a 'prompt' column with the questions")
        selection = select_labelled(store, table, options.inputs)
        say("videos: " + ", ".join(f"{k} {v}" for k, v in selection.counts().items())
            + "; skipped: " + ", ".join(f"{v} {k}" for k, v in selection.skipped.items()))
        all_ids = [v for ids in selection.splits.values() for v in ids]
        tokens = tokens_per_step(store, name, all_ids[0])
        step_times = _step_times(store, name, all_ids) if actions is not None else {}
        datasets = {split: make_dataset(store, ids, options.inputs, extras=_extras(ids, options.task, table, actions, step_times))
                    for split, ids in selection.splits.items()}
        image_encoder = store.encoders[name].get("spec")
    transformers.set_seed(options.seed)
    transformers.utils.logging.disable_progress_bar()
    if actions is not None:
        options.head_config.setdefault("action_dim", int(next(iter(actions.values()))[1].shape[1]))
    model, processor = build_llm(options, signature, tokens, image_encoder)
    trainer = fit(model, options, run_dir, datasets["train"], datasets["validation"], LLMCollator(processor), last,
                  metric="loss", greater_is_better=False, label_names=["text_target_mask"])
    model = trainer.model
    if options.lm == "lora":
        model.language_model = model.language_model.merge_and_unload()
    model = model.float().eval()
    model.save_pretrained(str(run_dir))
    processor.tokenizer.save_pretrained(str(run_dir))
    training_config = {**options.to_json(), "alex_version": __version__, "inputs_signature": signature,
                       "videos": selection.counts(), "skipped": selection.skipped, "tokens_per_frame": tokens,
                       "best_checkpoint": trainer.state.best_model_checkpoint}
    (run_dir / TRAINING_CONFIG).write_text(json.dumps(training_config, indent=2) + "\n")
    device = torch.device("cpu") if trainer.args.use_cpu else trainer.args.device
    metrics: dict[str, Any] = {"epochs": trainer.state.epoch, "videos": selection.counts(), "skipped": selection.skipped}
    for split in ("validation", "test"):
        metrics[split] = {"loss": trainer.evaluate(datasets[split])["eval_loss"]}
        ids = selection.splits[split]
        texts, predicted = run_llm(model, processor, datasets[split], device, options.batch_size, options.max_new_tokens,
                                   generate_text=options.task != "action")
        if options.task == "action":
            metrics[split].update(action_metrics(predicted, [datasets[split].extras[i]["actions"] for i in range(len(ids))]))
        else:
            references = [table.labels[v] for v in ids]
            metrics[split]["exact_match"] = exact_match(texts, references)
            metrics[split]["examples"] = [{"video_id": v, "generated": p, "reference": r}
                                          for v, p, r in list(zip(ids, texts, references))[:5]]
    (run_dir / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
    plot_training_curve(trainer.state.log_history, run_dir / "training_curve.png", "loss")
    for dataset in datasets.values():
        dataset.close()
    return metrics


def action_metrics(predicted: list[np.ndarray], targets: list[np.ndarray]) -> dict[str, float]:
    """MSE of the predicted actions, and of always predicting the mean action (a baseline)."""
    prediction, target = np.concatenate(predicted), np.concatenate(targets)
    later = np.concatenate([np.arange(len(t)) > 0 for t in targets])  # a first frame shows no motion yet
    return {"action_mse": float(((prediction - target) ** 2).mean()),
            "action_mse_after_first_frame": float(((prediction[later] - target[later]) ** 2).mean()) if later.any() else 0.0,
            "action_mse_of_mean": float(((target - target.mean(axis=0)) ** 2).mean())}


def load_llm_run(run_dir: str | Path):
    from alex.heads import load_head

    run_dir = Path(run_dir)
    path = run_dir / TRAINING_CONFIG
    if not path.is_file():
        raise UsageError(f"{run_dir} is not a finished run: {TRAINING_CONFIG} is missing")
    training = json.loads(path.read_text())
    model = load_head(run_dir)
    processor = AlexProcessor(load_tokenizer(run_dir), tokens_per_frame=model.config.tokens_per_frame)
    return model, processor, training



def evaluate_llm_run(run_dir, features, labels, split: str = "test", device: str = "auto") -> dict[str, Any]:
    model, processor, training = load_llm_run(run_dir)
    task, (name,) = training["task"], model.config.inputs
    with open_store(features) as store:
        check_signature(store, training["inputs_signature"])
        if task == "action":
            table, actions = read_actions(labels, tuple(training["split"]))
        else:
            table, actions = read_labels(labels, tuple(training["split"]), label_column="text"), None
        selection = select_labelled(store, table, model.config.inputs, require=[split])
        ids = selection.splits[split]
        step_times = _step_times(store, name, ids) if actions is not None else {}
        dataset = make_dataset(store, ids, model.config.inputs, extras=_extras(ids, task, table, actions, step_times))
        texts, predicted = run_llm(model, processor, dataset, head_device(device), max_new_tokens=training.get("max_new_tokens", 32),
                                   generate_text=task != "action")
    result: dict[str, Any] = {"split": split, "videos": len(ids), "skipped": selection.skipped}
    if task == "action":
        result.update(action_metrics(predicted, [dataset.extras[i]["actions"] for i in range(len(ids))]))
    else:
        result["exact_match"] = exact_match(texts, [table.labels[v] for v in ids])
    dataset.close()
    return result


def predict_llm_run(run_dir, features, output, device: str = "auto", prompt: str | None = None) -> dict[str, Any]:
    """Text per video (caption, qa) or actions per stored step (action), as Parquet joinable on video_id."""
    model, processor, training = load_llm_run(run_dir)
    task, (name,) = training["task"], model.config.inputs
    with open_store(features) as store:
        check_signature(store, training["inputs_signature"])
        ids, skipped = usable_videos(store, model.config.inputs)
        text_prompt = (prompt + " " + VIDEO_TOKEN) if prompt else PROMPTS[task]
        extras = [{"prompt": text_prompt.strip(), "target": ""} for _ in ids]
        dataset = make_dataset(store, ids, model.config.inputs, extras=extras)
        texts, predicted = run_llm(model, processor, dataset, head_device(device), max_new_tokens=training.get("max_new_tokens", 32),
                                   generate_text=task != "action")
        times = _step_times(store, name, ids) if task == "action" else {}
        dataset.close()
    if task == "action":
        rows = [(v, float(t), list(map(float, a))) for v, p in zip(ids, predicted) for t, a in zip(times[v], p)]
        table = pa.table({"video_id": pa.array([r[0] for r in rows], pa.string()),
                          "t_start": pa.array([r[1] for r in rows], pa.float64()),
                          "actions": pa.array([r[2] for r in rows], pa.list_(pa.float32()))})
    else:
        table = pa.table({"video_id": pa.array(ids, pa.string()), "prompt": pa.array([text_prompt] * len(ids), pa.string()),
                          "text": pa.array(texts, pa.string())})
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, output)
    return {"videos": len(ids), "skipped": skipped, "output": str(output)}
