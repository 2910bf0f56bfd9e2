"""Run a trained LLM head on raw frames: build the frozen image encoder its store was extracted
with (``config.image_encoder``) and attach it, so ``video_frames`` replace ``video_features``.

This module joins the two halves on purpose: ``alex.heads`` never imports ``alex.pipeline``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alex.errors import UsageError


def attach_image_encoder(model: Any, device: str = "cpu") -> Any:
    """Build ``model.config.image_encoder`` (an encoder spec) and attach it; returns the encoder,
    whose ``steps.transform`` preprocesses a decoded frame into what ``video_frames`` holds."""
    from alex.pipeline.encoders import build_encoder, resolve_device
    from alex.pipeline.encoders.spec import EncoderSpec

    spec = getattr(model.config, "image_encoder", None)
    if not spec:
        raise UsageError("this head records no image encoder (train it on a store to get one)")
    # In the precision the store's features were computed in, so raw frames give the cached features.
    dtype = getattr(model.config, "image_encoder_dtype", None) or "fp32"
    encoder = build_encoder(EncoderSpec.parse(spec), resolve_device(device), compute_dtype=dtype)
    model.attach_image_encoder(encoder)
    return encoder


def load_for_frames(run_dir: str | Path, device: str = "cpu") -> tuple[Any, Any]:
    """A trained LLM head with its image encoder attached: (model, encoder)."""
    from alex.heads import load_head

    model = load_head(run_dir)
    return model, attach_image_encoder(model, device)


def read_frames(video: str | Path, encoder: Any, fps: float = 1.0, num_frames: int | None = None) -> tuple[Any, Any]:
    """Decode ``video`` as ``alex extract`` would for ``encoder`` (the same sampling on real
    timestamps, the same preprocessing): (frames (T, ...) as the model's ``video_frames`` take them,
    timestamps (T,) in seconds from the first sampled frame, the clock heads are trained on)."""
    import numpy as np

    from alex.errors import VideoDecodeError
    from alex.pipeline.sampling import Sampling
    from alex.pipeline.workers import DecodeTask, decode_task

    sampling = Sampling(fps=None, num_frames=num_frames) if num_frames is not None else Sampling(fps=fps)
    chunks = []
    for message in decode_task(DecodeTask(0, str(video), {"frames": encoder.steps}, sampling, video_id=str(video))):
        if message[0] == "steps":
            chunks.append(message[3])
        elif message[0] == "error":
            raise VideoDecodeError(str(video), message[2])
    if not chunks:
        raise VideoDecodeError(str(video), "no frame was sampled")
    frames = np.concatenate([c.data for c in chunks])  # (T, ...)
    times = np.concatenate([c.t_start for c in chunks])  # (T,) container times
    return frames, times - times[0]
