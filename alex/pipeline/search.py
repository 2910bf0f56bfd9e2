"""Text -> nearest stored frames: the text tower of the very model that embedded the frames
(weights from ``store.json``), scored by DuckDB over the ``frames`` view."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alex.devices import check_device
from alex.errors import UsageError
from alex.pipeline.encoders import build_encoder, encoder_class, resolve_device
from alex.pipeline.encoders.spec import EncoderSpec
from alex.store.reader import open_store


def text_encoders(encoders: dict[str, dict[str, Any]]) -> list[str]:
    """Names of the store's encoders whose family has a text tower."""
    return sorted(name for name, cfg in encoders.items() if hasattr(encoder_class(cfg["family"]), "encode_text"))


def search_text(store: str | Path, text: str, k: int = 10, encoder: str | None = None, device: str = "auto") -> list[dict[str, Any]]:
    check_device(device)
    with open_store(store) as s:
        candidates = text_encoders(s.encoders)
        if encoder is None:
            if not candidates:
                raise UsageError(
                    f"store {store} has no encoder with a text tower (it has: {', '.join(sorted(s.encoders)) or 'none'}); "
                    "extract with a clip encoder to search by text"
                )
            if len(candidates) > 1:
                raise UsageError(f"store {store} has several text encoders ({', '.join(candidates)}); choose one with --encoder")
            encoder = candidates[0]
        elif encoder not in candidates:
            raise UsageError(f"encoder '{encoder}' cannot embed text; text encoders in {store}: {', '.join(candidates) or 'none'}")
        cfg = s.encoders[encoder]
        model = build_encoder(EncoderSpec(encoder, cfg["family"], cfg.get("model"), cfg.get("weights")), resolve_device(device),
                              compute_dtype=cfg.get("compute_dtype", "fp32"))  # the text tower in the image tower's precision
        vector = model.encode_text([text])[0].cpu().numpy()  # (D,)
        relation = s.search(vector, encoder, k, cache=False)  # one query: scan the Parquet directly
        columns = relation.columns
        return [dict(zip(columns, row)) for row in relation.fetchall()]
