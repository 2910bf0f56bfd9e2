"""Text for the generative heads: tokenizers, task prompts, span corruption, batches, metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from alex.errors import UsageError
from alex.store.dataset import collate_features

# VL-T5 (Cho et al. 2021) frames every task as text generation behind a task prefix.
TASK_PREFIXES = {"caption": "caption:", "vqa": "vqa:", "classify": "classify:", "span": "span:"}
TARGET_COLUMNS = {"caption": "text", "vqa": "text", "classify": "label", "span": "text"}


def load_tokenizer(name_or_path: str | Path):
    """A transformers tokenizer by hub id or folder; fails fast offline (see pipeline weights)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(name_or_path))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot load a tokenizer from {name_or_path}: {str(exc).splitlines()[0]}") from exc


def prompt_for(task: str, prompt: str | None) -> str:
    prefix = TASK_PREFIXES[task]
    return f"{prefix} {prompt}".strip() if prompt else prefix


def span_corrupt(ids: Sequence[int], sentinels: Sequence[int], rng: np.random.Generator, noise: float = 0.15,
                 mean_span: float = 3.0) -> tuple[list[int], list[int]]:
    """T5's span corruption (Raffel et al. 2020): mask ~``noise`` of the tokens in spans of mean
    length ``mean_span``; each span becomes one sentinel in the input, and the target lists the
    sentinels followed by the tokens they hide. ``ids`` excludes the end-of-sequence token."""
    n = len(ids)
    if n == 0:
        return [], []
    masked = max(1, int(round(n * noise)))
    spans = max(1, min(int(round(masked / mean_span)), masked, len(sentinels)))
    # split the masked count and the kept count into `spans` random positive parts, then interleave
    def parts(total: int, k: int) -> list[int]:
        if k <= 1:
            return [total]
        cuts = np.sort(rng.choice(np.arange(1, total), size=min(k - 1, total - 1), replace=False)) if total > 1 else []
        return list(np.diff(np.r_[0, cuts, total]).astype(int))

    noise_parts = parts(masked, spans)
    keep_parts = parts(n - masked, len(noise_parts)) if n - masked >= len(noise_parts) else [n - masked] + [0] * (len(noise_parts) - 1)
    inputs, targets, position = [], [], 0
    for s, (keep, drop) in enumerate(zip(keep_parts, noise_parts)):
        inputs.extend(ids[position : position + keep])
        position += keep
        inputs.append(sentinels[s])
        targets.append(sentinels[s])
        targets.extend(ids[position : position + drop])
        position += drop
    inputs.extend(ids[position:])
    return inputs, targets


class TextCollator:
    """Feature batches (``collate_features``) plus tokenised prompts and targets.

    Items carry ``prompt`` (model input text) and, for training, ``target``; with ``span`` the
    target text is span-corrupted on the fly (a fresh corruption each time it is seen)."""

    def __init__(self, tokenizer, span: bool = False, max_length: int = 64, seed: int = 0):
        self.tokenizer = tokenizer
        self.span = span
        self.max_length = max_length
        self.rng = np.random.default_rng(seed)
        self.sentinels = [tokenizer.convert_tokens_to_ids(f"<extra_id_{i}>") for i in range(100)
                          if f"<extra_id_{i}>" in tokenizer.get_vocab()]
        if span and not self.sentinels:
            raise UsageError("span corruption needs a tokenizer with T5 sentinel tokens <extra_id_0>, <extra_id_1>, ...")

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        batch = collate_features(items)
        batch.pop("labels", None)
        eos = self.tokenizer.eos_token_id
        if self.span:
            sources, targets = [], []
            for item in items:
                ids = self.tokenizer(item["target"], add_special_tokens=False)["input_ids"][: self.max_length - 1]
                corrupted, hidden = span_corrupt(ids, self.sentinels, self.rng)
                prefix = self.tokenizer(item["prompt"], add_special_tokens=False)["input_ids"]
                sources.append(prefix + corrupted + [eos])
                targets.append(hidden + [eos])
            batch.update(self._pad(sources, "input_ids", "attention_mask"))
            batch["labels"] = self._pad(targets, "labels", None)["labels"]
            return batch
        encoded = self.tokenizer([item["prompt"] for item in items], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt")
        batch["input_ids"], batch["attention_mask"] = encoded["input_ids"], encoded["attention_mask"]
        if "target" in items[0]:
            labels = self.tokenizer([item["target"] for item in items], padding=True, truncation=True,
                                    max_length=self.max_length, return_tensors="pt")["input_ids"]
            labels[labels == self.tokenizer.pad_token_id] = -100  # no loss on padding
            batch["labels"] = labels
        return batch

    def _pad(self, sequences: list[list[int]], ids_key: str, mask_key: str | None) -> dict[str, torch.Tensor]:
        longest = max(len(s) for s in sequences)
        pad = -100 if mask_key is None else self.tokenizer.pad_token_id
        ids = torch.full((len(sequences), longest), pad, dtype=torch.long)
        mask = torch.zeros((len(sequences), longest), dtype=torch.long)
        for row, sequence in enumerate(sequences):
            ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
            mask[row, : len(sequence)] = 1
        out = {ids_key: ids}
        if mask_key:
            out[mask_key] = mask
        return out


def normalise(text: str) -> str:
    return " ".join(text.strip().lower().split())


def exact_match(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Share of generations equal to their reference (case and spacing aside)."""
    if not references:
        return 0.0
    return float(np.mean([normalise(p) == normalise(r) for p, r in zip(predictions, references)]))
