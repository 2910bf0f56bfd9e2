"""``AlexProcessor``: text with video placeholders + cached frame features (+ actions) -> model
inputs, exactly the seed's keys (seeds/000):

- ``input_ids`` (B, L): text tokens, and ``tokens_per_frame`` placeholder ids per frame;
- ``timestamp`` (B, L) float: each frame token its frame's time (timestamps per frame (T,), or per
  token (T, k) when a frame's tokens have their own, as a clip's token grid does); text tokens the
  time of the last frame token before them (0 before any frame);
- ``video_frame_mask`` (B, L) bool: positions holding a frame token;
- ``action_target_mask`` (B, L) bool: the last placeholder of each frame (it predicts the action);
- ``text_target_mask`` (B, L) bool: positions whose next token is answer text (the target and
  its EOS: they predict it; the prompt and the question are never trained on, as in LLaVA);
- ``actions`` (B, T, A) when actions are given;
plus what batching needs: ``attention_mask``, ``video_features`` (B, T, k, D) and ``frame_mask``
(B, T) for padded frames, and with targets or actions ``labels`` (B, L): the transformers convention, each
answer token's own id (aligned with ``input_ids``, the model shifts) and -100 everywhere else.
A target always ends in the tokenizer's EOS, whatever its post-processor does. Inputs may be text only, frames only (pseudo timestamps at
``default_fps`` when none are given) or text then frames (frames go at ``<video>`` if the text has
it, else after the text). Right padding for training, left padding for generation.

A ``ProcessorMixin``: ``save_pretrained`` writes the tokenizer and ``processor_config.json``
(``tokens_per_frame``, ``default_fps``) into the run folder; ``AutoProcessor.from_pretrained(run)``
loads it back after ``import alex``. ``LLMCollator`` turns items of the store Dataset into its batches.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from transformers import ProcessorMixin

from alex.heads.auto import register_processor
from alex.heads.llm.configuration_alex import AlexActionConfig, AlexTextConfig

VIDEO_TOKEN = "<video>"
FRAME_TOKEN = "<frame>"


class AlexProcessor(ProcessorMixin):
    """``chat_format``: ``plain`` (the prompt as it is), ``template`` (the prompt as the user turn of
    the tokenizer's chat template, the answer as the assistant's) or ``llava_v1`` (LLaVA's
    conversation format)."""

    def __init__(self, tokenizer: Any, tokens_per_frame: int = 1, default_fps: float = 1.0, chat_format: str = "plain",
                 **kwargs: Any):
        new = [t for t in (VIDEO_TOKEN, FRAME_TOKEN) if t not in tokenizer.get_vocab()]
        if new:
            tokenizer.add_special_tokens({"additional_special_tokens": new})
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.tokens_per_frame = int(tokens_per_frame)
        self.default_fps = float(default_fps)
        self.chat_format = chat_format
        super().__init__(tokenizer, **kwargs)

    @property
    def video_token_id(self) -> int:
        return self.tokenizer.convert_tokens_to_ids(VIDEO_TOKEN)

    @property
    def frame_token_id(self) -> int:
        return self.tokenizer.convert_tokens_to_ids(FRAME_TOKEN)

    def formatted(self, prompt: str, target: str | None, video: bool = False) -> tuple[str, str | None]:
        """The prompt (with its ``<video>``) and the answer, written in the processor's chat format
        (where frames go in a prompt that does not say: at the end of the user's turn)."""
        if self.chat_format != "plain" and video and VIDEO_TOKEN not in prompt:
            prompt = f"{prompt} {VIDEO_TOKEN}".strip()
        if self.chat_format == "template":
            prompt = self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                        add_generation_prompt=True)
        elif self.chat_format == "llava_v1":
            from alex.heads.llm.video_llava import llava_v1_prompt

            prompt = llava_v1_prompt(prompt)
            target = f" {target}" if target else target
        return prompt, target

    def _text_ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def sequence(self, text: str | None, frames: int, timestamps: np.ndarray | None, target: str | None = None,
                 eos: bool = False) -> dict[str, list]:
        """One sample as lists: ids, timestamps, the three masks and labels (-100 but on the answer)."""
        if frames and timestamps is None:  # frames only, no times: a pseudo clock at the default fps
            timestamps = np.arange(frames, dtype=np.float64) / self.default_fps
        text, target = self.formatted(text or "", target, frames > 0)
        before, placeholder, after = text.partition(VIDEO_TOKEN)
        if not placeholder:
            before, after = text, ""
        ids: list[int] = []
        times: list[float] = []
        frame_mask: list[bool] = []
        action_mask: list[bool] = []
        answer: list[bool] = []  # positions holding answer tokens (the target and its EOS)
        now = 0.0

        def add_text(piece: str, is_answer: bool = False) -> None:
            for token in self._text_ids(piece):
                ids.append(token), times.append(now), frame_mask.append(False), action_mask.append(False)
                answer.append(is_answer)

        add_text(before)
        per_token = np.broadcast_to(np.asarray(timestamps, dtype=np.float64).reshape(frames, -1),
                                    (frames, self.tokens_per_frame)) if frames else None  # (T, k)
        for f in range(frames):
            for k in range(self.tokens_per_frame):
                now = float(per_token[f, k])
                ids.append(self.frame_token_id), times.append(now), frame_mask.append(True)
                action_mask.append(k == self.tokens_per_frame - 1), answer.append(False)
        add_text(after)
        if target:
            add_text(target, is_answer=True)
        if eos:
            if self.tokenizer.eos_token_id is None:
                raise ValueError("the tokenizer has no EOS token: a generated answer could never end")
            ids.append(self.tokenizer.eos_token_id), times.append(now), frame_mask.append(False), action_mask.append(False)
            answer.append(True)
        text_target = [answer[i + 1] if i + 1 < len(ids) else False for i in range(len(ids))]
        labels = [token if is_answer else -100 for token, is_answer in zip(ids, answer)]
        return {"input_ids": ids, "timestamp": times, "video_frame_mask": frame_mask,
                "action_target_mask": action_mask, "text_target_mask": text_target, "labels": labels}

    def __call__(
        self,
        text: str | Sequence[str] | None = None,
        video_features: Sequence[np.ndarray | torch.Tensor] | np.ndarray | torch.Tensor | None = None,
        timestamps: Sequence[Any] | None = None,
        actions: Sequence[Any] | None = None,
        targets: Sequence[str] | None = None,
        padding_side: str = "right",
        video_frames: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, torch.Tensor]:
        """Batch of samples -> padded tensors. ``video_features`` per sample: (T, D) or (T, k, D);
        ``video_frames`` instead: raw preprocessed frames (T, ...) for a model that holds its image encoder."""
        visual = video_frames if video_frames is not None else video_features
        batch = len(text) if isinstance(text, (list, tuple)) else (len(visual) if visual is not None else 1)
        texts = list(text) if isinstance(text, (list, tuple)) else [text] * batch
        visuals = list(visual) if visual is not None else [None] * batch
        samples = []
        for b in range(batch):
            frames = 0 if visuals[b] is None else len(visuals[b])
            times = None if timestamps is None or timestamps[b] is None else np.asarray(timestamps[b], dtype=np.float64)
            samples.append(self.sequence(texts[b], frames, times, targets[b] if targets else None, eos=targets is not None))
        length = max(len(s["input_ids"]) for s in samples)
        pad = self.tokenizer.pad_token_id
        out = {
            "input_ids": torch.full((batch, length), pad, dtype=torch.long),
            "attention_mask": torch.zeros((batch, length), dtype=torch.long),
            "timestamp": torch.zeros((batch, length)),
            "video_frame_mask": torch.zeros((batch, length), dtype=torch.bool),
            "action_target_mask": torch.zeros((batch, length), dtype=torch.bool),
            "text_target_mask": torch.zeros((batch, length), dtype=torch.bool),
        }
        for b, sample in enumerate(samples):
            n = len(sample["input_ids"])
            where = slice(length - n, length) if padding_side == "left" else slice(0, n)
            out["input_ids"][b, where] = torch.tensor(sample["input_ids"], dtype=torch.long)
            out["attention_mask"][b, where] = 1
            out["timestamp"][b, where] = torch.tensor(sample["timestamp"], dtype=torch.float32)
            for key in ("video_frame_mask", "action_target_mask", "text_target_mask"):
                out[key][b, where] = torch.tensor(sample[key], dtype=torch.bool)
        if targets is not None or actions is not None:  # training: the Trainer finds its targets under `labels`
            out["labels"] = torch.full((batch, length), -100, dtype=torch.long)
            for b, sample in enumerate(samples):
                n = len(sample["labels"])
                where = slice(length - n, length) if padding_side == "left" else slice(0, n)
                out["labels"][b, where] = torch.tensor(sample["labels"], dtype=torch.long)
        if visual is not None and any(v is not None and len(v) for v in visuals):
            key = "video_frames" if video_frames is not None else "video_features"
            out[key], out["frame_mask"] = self._pad_frames(visuals)
        if actions is not None:
            out["actions"] = self._pad_frames([torch.as_tensor(np.asarray(a), dtype=torch.float32) for a in actions])[0]
        return out

    def _pad_frames(self, visuals: list[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        tensors = [torch.as_tensor(np.asarray(v)) if v is not None else None for v in visuals]
        example = next(t for t in tensors if t is not None and len(t))
        frames = max(len(t) if t is not None else 0 for t in tensors)
        out = torch.zeros((len(tensors), frames, *example.shape[1:]), dtype=example.dtype)
        mask = torch.zeros((len(tensors), frames), dtype=torch.bool)
        for b, t in enumerate(tensors):
            if t is not None and len(t):
                out[b, : len(t)] = t
                mask[b, : len(t)] = True
        return out, mask


class LLMCollator:
    """Items of the store Dataset (features + ``prompt``, ``target``, ``actions``) -> AlexProcessor
    batches: right-padded with targets for training, left-padded without for generation."""

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
            timestamps.append(item["timestamps"][name].numpy().reshape(-1, k))  # (T, k): each token its own time
        actions = [item["actions"] for item in items] if "actions" in items[0] else None
        targets = None if self.generation or not items[0].get("target") else [item["target"] for item in items]
        return self.processor(text=[item["prompt"] for item in items], video_features=features, timestamps=timestamps,
                              actions=actions, targets=targets, padding_side="left" if self.generation else "right")


register_processor(AlexTextConfig, AlexProcessor)
register_processor(AlexActionConfig, AlexProcessor)
