"""VL-T5 / VL-BART on the one training path: captions, answers, label words or span-corruption
pretraining, from a T5 or BART checkpoint (hub id or folder) or an earlier alex t5 run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alex.heads.options import check_settings
from alex.errors import UsageError
from alex.heads.family import HeadFamily
from alex.heads.labels import read_labels
from alex.heads.t5.options import T5Options


class T5Family(HeadFamily):
    name = "t5"
    options_class = T5Options
    model_types = ("alex_t5",)
    label_names = ["labels"]
    takes_prompt = True

    def read_targets(self, path, fractions, task):
        from alex.heads.t5.processing_t5 import TARGET_COLUMNS

        table = read_labels(path, fractions, label_column=TARGET_COLUMNS[task], several=task != "classify")
        if task == "vqa" and not table.prompts:
            raise UsageError(f"labels file {path}: --task vqa needs a 'prompt' column with the questions")
        return table

    def build(self, options, store, targets, selection, signature):
        from transformers import AutoModelForSeq2SeqLM

        from alex.heads.generation import generation_config_for
        from alex.heads.t5.configuration_t5 import SEQ2SEQ_TYPES, AlexT5Config
        from alex.heads.t5.modeling_t5 import AlexT5ForConditionalGeneration
        from alex.heads.t5.processing_t5 import AlexT5Processor, fit_to_texts
        from alex.hub import check_model_available, load_tokenizer, local_only

        source = Path(options.model)
        if _is_alex_t5_run(source):  # e.g. after span pretraining
            model = AlexT5ForConditionalGeneration.from_pretrained(str(source))
            if model.config.inputs != options.inputs:
                raise UsageError(f"{source} was trained on inputs {model.config.inputs}, not {options.inputs}")
            model.config.task = options.task
            processor = AlexT5Processor.from_pretrained(str(source))
        else:
            check_model_available(options.model, "--model")
            base = AutoModelForSeq2SeqLM.from_pretrained(options.model, local_files_only=local_only(options.model))
            if base.config.model_type not in SEQ2SEQ_TYPES:
                raise UsageError(f"--model {options.model} is a {base.config.model_type} model; --head t5 takes T5 or "
                                 "BART checkpoints (VL-T5, VL-BART)")
            processor = AlexT5Processor(load_tokenizer(options.model))
            settings = dict(options.head_config)
            check_settings(AlexT5Config, settings, options.head)
            settings["max_steps"] = max(settings.get("max_steps", AlexT5Config().max_steps), longest_video(store, options.inputs))
            config = AlexT5Config(
                seq2seq_config=base.config.to_dict(), inputs=options.inputs,
                input_dims=[signature[name]["dim"] for name in options.inputs],
                timestamp_encoding=options.timestamp_encoding, task=options.task, base_model=options.model, **settings,
            )
            model = AlexT5ForConditionalGeneration(config, language_model=base)
        fit_to_texts(processor, label_texts(targets, options.task))  # never cut a caption or question short
        model.generation_config = generation_config_for(model.language_model.generation_config, options.max_new_tokens,
                                                        processor.tokenizer.pad_token_id)
        if options.task == "span" and not processor.sentinels():
            raise UsageError(f"--task span: the tokenizer of {options.model} has no T5 sentinel tokens <extra_id_0>, ...")
        return model, processor

    def items(self, store, video_ids, targets, model, prompt=None, train=False):
        from alex.heads.generation import generative_items
        from alex.heads.t5.processing_t5 import prompt_for

        task = model.config.task
        return generative_items(video_ids, targets, lambda question: prompt_for(task, question), prompt, train)

    def collator(self, processor, model, options):
        from alex.heads.t5.processing_t5 import T5Collator

        return T5Collator(processor, span=model.config.task == "span", seed=options.seed)

    def load_processor(self, run_dir, model):
        from alex.heads.t5.processing_t5 import AlexT5Processor

        return AlexT5Processor.from_pretrained(str(run_dir))

    def infer(self, model, processor, dataset, device, batch_size) -> list[str]:
        """Greedy generations (the run's ``generation_config``) for every item, in order."""
        import torch
        from torch.utils.data import DataLoader

        from alex.heads.t5.processing_t5 import T5Collator

        if model.config.task == "span":
            return []
        model = model.to(device).eval()
        texts: list[str] = []
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=T5Collator(processor, targets=False))
        for batch in loader:
            batch = {k: ({n: t.to(device) for n, t in v.items()} if isinstance(v, dict) else v.to(device)) for k, v in batch.items()}
            with torch.autocast(device.type, enabled=device.type == "cuda"):
                out = model.generate(**batch)
            texts.extend(processor.tokenizer.batch_decode(out, skip_special_tokens=True))
        return texts

    def metrics(self, outputs, dataset, model) -> dict[str, Any]:
        from alex.heads.generation import text_metrics

        task = model.config.task
        return {} if task == "span" else text_metrics(outputs, dataset, captions=task == "caption")

    def prediction_table(self, outputs, dataset, model):
        import pyarrow as pa

        if model.config.task == "span":
            raise UsageError("a --task span run pretrains the head; it predicts nothing (train a caption, vqa or classify run from it)")
        return pa.table({"video_id": pa.array(dataset.index.video_ids, pa.string()),
                         "prompt": pa.array([extra["prompt"] for extra in dataset.extras], pa.string()),
                         "text": pa.array(outputs, pa.string())})


def longest_video(store, inputs: list[str]) -> int:
    """The most steps any video of the store has for one of ``inputs`` (the frame-order embedding
    must hold them all: positions are never clamped)."""
    (steps,) = store.con.execute("SELECT coalesce(max(num_steps), 0) FROM _items_live WHERE encoder IN (SELECT unnest($inputs))",
                                 {"inputs": list(inputs)}).fetchone()
    return int(steps)


def label_texts(targets, task: str) -> list[str]:
    """Every prompt (as the head words it) and every target text of a labels table."""
    from alex.heads.t5.processing_t5 import prompt_for

    texts = []
    for video_id in targets.labels:
        for sample in targets.samples_of(video_id):
            texts.append(prompt_for(task, sample.prompt))
            texts.extend(sample.references)
    return texts


def _is_alex_t5_run(source: Path) -> bool:
    config = source / "config.json"
    return config.is_file() and json.loads(config.read_text()).get("model_type") == "alex_t5"


HEAD = T5Family()
