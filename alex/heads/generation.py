"""What the generative heads (t5, llm) share: their generation settings and text scores."""

from __future__ import annotations

from typing import Any

from alex.heads.metrics import caption_metrics, exact_match


def generation_config_for(base: Any, max_new_tokens: int, pad_token_id: int | None = None) -> Any:
    """Greedy decoding of at most ``max_new_tokens``, with the special token ids of the pretrained
    model's own ``generation_config`` (its sampling settings are not carried over: evaluation and
    prediction must be deterministic). Saved as the run's ``generation_config.json``."""
    from transformers import GenerationConfig

    ids = {key: getattr(base, key, None) for key in ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")}
    if pad_token_id is not None:
        ids["pad_token_id"] = pad_token_id
    return GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                            **{key: value for key, value in ids.items() if value is not None})


def text_metrics(texts: list[str], dataset: Any, captions: bool = False, shown: int = 5) -> dict[str, Any]:
    """Generations against each item's references: exact match (any reference) per item (per
    question for QA), with BLEU-4 and CIDEr over all of a video's captions when ``captions``; and a
    few examples."""
    references = [extra.get("references") or [extra["target"]] for extra in dataset.extras]
    scores: dict[str, Any] = {"exact_match": exact_match(texts, references)}
    if captions:
        scores.update(caption_metrics(texts, references))
    scores["examples"] = [{"video_id": v, "prompt": e["prompt"], "generated": g, "reference": r[0]}
                          for v, e, g, r in list(zip(dataset.index.video_ids, dataset.extras, texts, references))[:shown]]
    return scores


def generative_items(video_ids: list[str], targets: Any, prompt_of: Any, default_prompt: str | None,
                     train: bool) -> tuple[list[str], list[dict[str, Any]]]:
    """Items of a generative head: for training, one per (video, prompt, answer) so every caption and
    answer is learned; otherwise one per (video, prompt) with all its ``references``. Without
    targets, one per video asking ``default_prompt``. ``prompt_of(question)`` writes a prompt."""
    if targets is None:
        return list(video_ids), [{"prompt": prompt_of(default_prompt), "target": "", "references": []} for _ in video_ids]
    ids, items = [], []
    for video_id in video_ids:
        for sample in targets.samples_of(video_id):
            prompt = prompt_of(sample.prompt)
            if train:
                for reference in sample.references:
                    ids.append(video_id)
                    items.append({"prompt": prompt, "target": reference})
            else:
                ids.append(video_id)
                items.append({"prompt": prompt, "target": sample.references[0] if sample.references else "",
                              "references": list(sample.references)})
    return ids, items
