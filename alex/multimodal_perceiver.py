"""DeepMind's multimodal Perceiver (Jaegle et al. 2021, "Perceiver IO", Sec. 4.3; transformers'
``PerceiverForMultimodalAutoencoding``, hub id ``deepmind/multimodal-perceiver``): what its config
says about its inputs, shared by the extraction family ``perceiver-mm`` (which caches them) and
the head ``perceiver-mm`` (which fine-tunes the model on them).

The model eats clips of ``num_frames`` frames at ``image_size`` x ``image_size`` and
``num_frames * audio_samples_per_frame`` mono audio samples (16 frames, 30,720 samples for the
published model). Its config does not hold the frame rate: the published model was trained on
Kinetics-700 at 25 frames/s with 48 kHz audio (25 x 1920), so 25 is the default, and a config may
say otherwise with a ``frame_rate`` key. The audio rate follows: frame rate x samples per frame.

``tiny`` is a random model of the same classes and preprocessors (the same channel counts: 704
encoder input channels, 700 labels) with few latents and layers, 4 frames of 32 x 32 pixels:
small enough for tests on two CPU cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alex.errors import UsageError

DEFAULT_MODEL = "deepmind/multimodal-perceiver"
TINY = "tiny"
KINETICS_FRAME_RATE = 25.0

TINY_CONFIG: dict[str, Any] = dict(
    num_latents=16, d_latents=32, d_model=704, num_blocks=1, num_self_attends_per_block=1, num_self_attention_heads=2,
    num_cross_attention_heads=1, num_frames=4, image_size=32, output_shape=[1, 4, 32, 32], output_num_channels=32,
    audio_samples_per_frame=1920, samples_per_patch=16, num_labels=700, frame_rate=KINETICS_FRAME_RATE,
)


@dataclass(frozen=True)
class ClipGeometry:
    """What one clip of the model's input is, read from its config."""

    num_frames: int
    image_size: int
    frame_rate: float
    audio_samples: int  # per clip
    audio_rate: int  # Hz

    @classmethod
    def of(cls, config: Any) -> "ClipGeometry":
        size = config.image_size if isinstance(config.image_size, int) else int(config.image_size[0])
        frame_rate = float(getattr(config, "frame_rate", None) or KINETICS_FRAME_RATE)
        rate = frame_rate * config.audio_samples_per_frame
        if rate != int(rate):
            raise UsageError(f"frame rate {frame_rate} x {config.audio_samples_per_frame} samples per frame "
                             "is not a whole number of samples per second")
        return cls(int(config.num_frames), int(size), frame_rate, int(config.num_frames * config.audio_samples_per_frame),
                   int(rate))

    def to_dict(self) -> dict[str, Any]:
        return {"num_frames": self.num_frames, "image_size": self.image_size, "frame_rate": self.frame_rate,
                "audio_samples": self.audio_samples, "audio_rate": self.audio_rate}


def tiny_config():
    from transformers import PerceiverConfig

    return PerceiverConfig(**TINY_CONFIG)


def load_config(model: str, what: str, offline_check: Any):
    """The PerceiverConfig of ``model``: ``tiny``, a local folder or a hub id (``offline_check(model)``
    is called first: it fails fast when the config can be had neither from disk nor from the hub)."""
    from transformers import AutoConfig

    if model == TINY:
        return tiny_config()
    offline_check(model)
    local = Path(model).expanduser().is_dir()
    from alex.hub import hub_reachable

    try:
        config = AutoConfig.from_pretrained(model, local_files_only=local or not hub_reachable())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{what} {model}: cannot load its config: {str(exc).splitlines()[0]}") from exc
    if config.model_type not in ("perceiver", "alex_perceiver_mm") or not hasattr(config, "audio_samples_per_frame"):
        raise UsageError(f"{what} {model} is a {config.model_type!r} model, not a multimodal Perceiver "
                         f"(e.g. {DEFAULT_MODEL})")
    return config
