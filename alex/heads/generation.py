"""What the generative heads (t5, llm) share: their generation settings and text scores."""

from __future__ import annotations

from typing import Any

from alex.heads.metrics import exact_match


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


def text_metrics(texts: list[str], dataset: Any, shown: int = 5) -> dict[str, Any]:
    """Exact match of generations against the items' ``target`` texts, and a few examples."""
    references = [extra["target"] for extra in dataset.extras]
    return {"exact_match": exact_match(texts, references),
            "examples": [{"video_id": v, "generated": g, "reference": r}
                         for v, g, r in list(zip(dataset.index.video_ids, texts, references))[:shown]]}
