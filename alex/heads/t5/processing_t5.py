"""``AlexT5Processor``: VL-T5's text side. Task prompts (VL-T5, Cho et al. 2021, frames every task as
text generation behind a task prefix) and target texts -> T5 token ids; T5's span corruption
(Raffel et al. 2020) for ``--task span``. ``T5Collator`` joins them to the store's feature batches.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from transformers import ProcessorMixin

from alex.errors import UsageError
from alex.heads.auto import register_processor
from alex.heads.t5.configuration_t5 import AlexT5Config
from alex.store.dataset import collate_features

TASK_PREFIXES = {"caption": "caption:", "vqa": "vqa:", "classify": "classify:", "span": "span:"}
TARGET_COLUMNS = {"caption": "text", "vqa": "text", "classify": "label", "span": "text"}


def prompt_for(task: str, prompt: str | None) -> str:
    """The encoder's text: the task prefix, then the question if there is one."""
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

    def parts(total: int, k: int) -> list[int]:
        """``total`` split into ``k`` random positive parts."""
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


MAX_TEXT_TOKENS = 512  # the longest prompt or target a run takes (BART's positions stop at 1024)


def fit_to_texts(processor: "AlexT5Processor", texts: Sequence[str]) -> int:
    """Grow ``processor.max_length`` to the longest of ``texts`` (with its EOS), so that no prompt or
    caption is cut short; one longer than ``MAX_TEXT_TOKENS`` is refused by name. Returns the length."""
    lengths = [len(ids) + 1 for ids in processor.tokenizer(list(texts), add_special_tokens=False)["input_ids"]] if texts else []
    longest = max(lengths, default=0)
    if longest > MAX_TEXT_TOKENS:
        text = texts[lengths.index(longest)]
        raise UsageError(f"a prompt or target of {longest} tokens ({text[:60]!r}...) is longer than the {MAX_TEXT_TOKENS} "
                         "a t5 head takes; shorten it in the labels file")
    processor.max_length = max(processor.max_length, longest)
    return longest


class AlexT5Processor(ProcessorMixin):
    """Prompts (and targets) -> ``input_ids``, ``attention_mask`` (and ``labels``, -100 on padding),
    at most ``max_length`` tokens each, every sequence ending in the tokenizer's EOS whatever its
    post-processor does (a T5 that never sees ``</s>`` in its targets never learns to stop).
    Saved in the run folder with its tokenizer."""

    def __init__(self, tokenizer: Any, max_length: int = 64, **kwargs: Any):
        self.max_length = max_length
        super().__init__(tokenizer, **kwargs)

    def sentinels(self) -> list[int]:
        vocab = self.tokenizer.get_vocab()
        return [vocab[f"<extra_id_{i}>"] for i in range(100) if f"<extra_id_{i}>" in vocab]

    def ids(self, text: str) -> list[int]:
        """Token ids of ``text``, at most ``max_length`` with the EOS that always ends them."""
        eos = self.tokenizer.eos_token_id
        if eos is None:
            raise ValueError("the tokenizer has no EOS token: a generated answer could never end")
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if ids and ids[-1] == eos:
            ids = ids[:-1]
        return ids[: self.max_length - 1] + [eos]

    def __call__(self, text: Sequence[str], targets: Sequence[str] | None = None, **kwargs: Any) -> dict[str, torch.Tensor]:
        input_ids, attention_mask = pad([self.ids(t) for t in text], self.tokenizer.pad_token_id)
        out = {"input_ids": input_ids, "attention_mask": attention_mask}
        if targets is not None:
            out["labels"] = pad([self.ids(t) for t in targets], -100)[0]  # no loss on padding
        return out

    def span_corrupted(self, text: Sequence[str], targets: Sequence[str], rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """Prompts followed by the span-corrupted target text; labels: the sentinels and hidden spans."""
        sentinels, eos = self.sentinels(), self.tokenizer.eos_token_id
        if not sentinels:
            raise UsageError("span corruption needs a tokenizer with T5 sentinel tokens <extra_id_0>, <extra_id_1>, ...")
        sources, hidden_spans = [], []
        for prompt, target in zip(text, targets):
            ids = self.tokenizer(target, add_special_tokens=False)["input_ids"][: self.max_length - 1]
            corrupted, hidden = span_corrupt(ids, sentinels, rng)
            prefix = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
            sources.append(prefix + corrupted + [eos])
            hidden_spans.append(hidden + [eos])
        input_ids, attention_mask = pad(sources, self.tokenizer.pad_token_id)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": pad(hidden_spans, -100)[0]}


def pad(sequences: list[list[int]], value: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded (B, L) ids and their (B, L) mask."""
    longest = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), longest), value, dtype=torch.long)
    mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        mask[row, : len(sequence)] = 1
    return ids, mask


class T5Collator:
    """Items of the store Dataset (features + ``prompt`` + ``target``) -> the head's inputs. With
    ``span``, the target text is span-corrupted afresh each time it is seen (seeded)."""

    def __init__(self, processor: AlexT5Processor, span: bool = False, seed: int = 0, targets: bool = True):
        self.processor = processor
        self.span = span
        self.targets = targets
        self.rng = np.random.default_rng(seed)

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        batch = collate_features(items)
        batch.pop("labels", None)
        prompts = [item["prompt"] for item in items]
        if self.span:
            batch.update(self.processor.span_corrupted(prompts, [item["target"] for item in items], self.rng))
        else:
            batch.update(self.processor(prompts, [item["target"] for item in items] if self.targets else None))
        return batch


register_processor(AlexT5Config, AlexT5Processor)
