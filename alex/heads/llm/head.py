"""The LLM head on the one training path: ``--task caption|qa|action`` around a causal LM by hub id
or folder, built once in ``--dtype``. The LM is frozen (the projector, time embedding and action
head learn), adapted with LoRA (peft; kept as an adapter, merged with ``--merge``), or fully
trained; frozen and LoRA runs save only what they trained.

Captions and answers come from a labels file's ``text`` (and ``prompt``) columns; actions from a
file with one row per time (``video_id``, ``timestamp``, ``actions``), each stored step taking the
latest action row at or before its time (the sampling rule).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from alex.heads.options import check_settings
from alex.errors import UsageError
from alex.heads.data import step_times
from alex.heads.family import HeadFamily
from alex.heads.labels import align_actions, read_actions, read_labels
from alex.heads.llm.options import LLMOptions
from alex.heads.llm.processing_alex import AlexProcessor, VIDEO_TOKEN

PROMPTS = {"caption": "Describe the video. " + VIDEO_TOKEN, "qa": VIDEO_TOKEN, "action": VIDEO_TOKEN}


def prompt_for(task: str, question: str | None) -> str:
    """The LM's prompt: the task's own, or for QA the question followed by the video."""
    if question:
        return f"{question} {VIDEO_TOKEN}"
    return PROMPTS[task]


class LLMFamily(HeadFamily):
    name = "llm"
    options_class = LLMOptions
    model_types = ("alex_llm", "alex_llm_action")
    label_names = ["labels"]
    takes_prompt = True

    def read_targets(self, path, fractions, task):
        if task == "action":
            return read_actions(path, fractions)
        table = read_labels(path, fractions, label_column="text", several=True)
        if task == "qa" and not table.prompts:
            raise UsageError(f"labels file {path}: --task qa needs a 'prompt' column with the questions")
        return table

    def build(self, options, store, targets, selection, signature):
        from pathlib import Path

        from alex.heads.generation import generation_config_for
        from alex.heads.llm.configuration_alex import AlexActionConfig, AlexTextConfig
        from alex.heads.llm.modeling_alex import AlexForAction, AlexTextModel, load_language_model
        from alex.hub import load_tokenizer

        if len(options.inputs) != 1:
            raise UsageError("--head llm reads one input encoder (e.g. --inputs clip, or a languagebind store with --keep-tokens)")
        (name,) = options.inputs
        all_ids = [v for ids in selection.splits.values() for v in ids]
        tokens = tokens_per_step(store, name, all_ids[0])
        dtype = lm_dtype(options.dtype, options.device)
        base = load_language_model(options.model, dtype)  # built once, in its dtype; the head wraps it
        local = Path(options.model).expanduser()
        base_model = str(local.resolve()) if local.is_dir() else options.model  # a run loads it from anywhere
        tokenizer = load_tokenizer(options.model)
        processor = AlexProcessor(tokenizer, tokens_per_frame=tokens, chat_format=chat_format(options.chat_format, tokenizer))
        action = options.task == "action"
        config_class = AlexActionConfig if action else AlexTextConfig
        settings = dict(options.head_config)
        check_settings(config_class, settings, options.head)
        if action:
            settings.setdefault("action_dim", int(next(iter(targets.actions.values()))[1].shape[1]))
        config = config_class(
            lm_config=base.config.to_dict(), inputs=options.inputs, input_dim=signature[name]["dim"], tokens_per_frame=tokens,
            projector_type=options.projector, timestamp_encoding=options.timestamp_encoding,
            frame_token_id=processor.frame_token_id, base_model=base_model, task=options.task,
            image_encoder=store.encoders[name].get("spec"), image_encoder_dtype=store.encoders[name].get("compute_dtype"),
            lm_loss_weight=options.lm_loss_weight,
            action_loss_weight=options.action_loss_weight, lm_mode=options.lm, lm_dtype=dtype, **settings,
        )
        model = (AlexForAction if action else AlexTextModel)(config, language_model=base)
        model.generation_config = generation_config_for(base.generation_config, options.max_new_tokens,
                                                        processor.tokenizer.pad_token_id)
        if options.projector_weights:  # e.g. Video-LLaVA's mm_projector, over its LanguageBind tokens
            from alex.heads.llm.video_llava import load_projector_weights

            load_projector_weights(model.projector, options.projector_weights)
        if options.lm == "frozen":
            model.language_model.requires_grad_(False)
        elif options.lm == "lora":
            from peft import LoraConfig, get_peft_model

            model.language_model = get_peft_model(model.language_model, LoraConfig(
                r=options.lora_rank, lora_alpha=2 * options.lora_rank, target_modules="all-linear", lora_dropout=0.0))
        return model, processor

    def items(self, store, video_ids, targets, model, prompt=None, train=False):
        from alex.heads.generation import generative_items

        task = model.config.task
        if task != "action" or targets is None:
            return generative_items(video_ids, targets, lambda question: prompt_for(task, question), prompt, train)
        (name,) = model.config.inputs
        times = step_times(store, name, video_ids)  # on the one clock: seconds from each video's first stored frame
        return list(video_ids), [{"prompt": PROMPTS["action"], "target": "", "actions": align_actions(times[v], *targets.actions[v])}
                                 for v in video_ids]

    def collator(self, processor, model, options):
        from alex.heads.llm.processing_alex import LLMCollator

        return LLMCollator(processor)

    def finish(self, model, options):
        if options.lm == "lora" and options.merge:
            model.language_model = model.language_model.merge_and_unload()
            model.config.merged = True
        return model

    def load_processor(self, run_dir, model):
        return AlexProcessor.from_pretrained(str(run_dir))

    def infer(self, model, processor, dataset, device, batch_size) -> dict[str, list]:
        """Greedy generations (caption, qa) or per-frame action predictions (action), in order."""
        import torch
        from torch.utils.data import DataLoader

        from alex.heads.llm.processing_alex import LLMCollator

        model = model.to(device).eval()
        texts: list[str] = []
        actions: list[np.ndarray] = []
        tokenizer = processor.tokenizer
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=LLMCollator(processor, generation=True))
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            with torch.no_grad(), torch.autocast(device.type, enabled=device.type == "cuda"):
                if model.config.task == "action":
                    predictions = model(**batch).action_predictions.float().cpu().numpy()
                    per_video = batch["action_target_mask"].sum(dim=1).tolist()
                    actions.extend(np.split(predictions, np.cumsum(per_video)[:-1]))
                else:
                    texts.extend(tokenizer.batch_decode(model.generate(**batch), skip_special_tokens=True))
        return {"texts": texts, "actions": actions}

    def metrics(self, outputs, dataset, model) -> dict[str, Any]:
        from alex.heads.generation import text_metrics
        from alex.heads.metrics import action_metrics

        if model.config.task == "action":
            return action_metrics(outputs["actions"], [extra["actions"] for extra in dataset.extras])
        return text_metrics(outputs["texts"], dataset, captions=model.config.task == "caption")

    def prediction_table(self, outputs, dataset, model):
        import pyarrow as pa

        ids = dataset.index.video_ids
        if model.config.task == "action":  # one row per stored step: its index and its time from the first frame
            (name,) = model.config.inputs
            k = model.config.tokens_per_frame
            times = [dataset[i]["timestamps"][name].numpy()[::k] for i in range(len(ids))]
            rows = [(v, step, float(t), list(map(float, a)))
                    for v, ts, p in zip(ids, times, outputs["actions"]) for step, (t, a) in enumerate(zip(ts, p))]
            return pa.table({"video_id": pa.array([r[0] for r in rows], pa.string()),
                             "index": pa.array([r[1] for r in rows], pa.int32()),
                             "timestamp": pa.array([r[2] for r in rows], pa.float64()),
                             "actions": pa.array([r[3] for r in rows], pa.list_(pa.float32()))})
        return pa.table({"video_id": pa.array(ids, pa.string()),
                         "prompt": pa.array([extra["prompt"] for extra in dataset.extras], pa.string()),
                         "text": pa.array(outputs["texts"], pa.string())})


def chat_format(requested: str, tokenizer) -> str:
    """``auto``: the tokenizer's chat template when it has one, else the prompt as it is."""
    if requested != "auto":
        return requested
    return "template" if getattr(tokenizer, "chat_template", None) else "plain"


def lm_dtype(requested: str, device: str) -> str:
    """``auto``: bf16 on a GPU that has it, fp16 on one that does not, fp32 on the CPU."""
    if requested != "auto":
        return requested
    import torch

    from alex.heads.training import head_device

    if head_device(device).type != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def tokens_per_step(store, name: str, video_id: str) -> int:
    """Feature tokens one stored step holds (1 for a pooled vector, e.g. 257 for LanguageBind tokens)."""
    arrays = store.arrays(video_id, name)
    main = arrays.arrays[store.encoders[name].get("array", "embedding")]
    return int(np.prod(main.shape[1:-1], dtype=np.int64)) if main.ndim > 2 else 1


HEAD = LLMFamily()
