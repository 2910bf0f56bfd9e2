"""``perceiver-mm``: the inputs of DeepMind's multimodal Perceiver, cached once (seeds/002).

The head ``perceiver-mm`` fine-tunes the whole pretrained model (Jaegle et al. 2021, "Perceiver
IO"; ``alex.multimodal_perceiver``), so no model runs here: what is cached is exactly what the
model eats, decoded once. Per clip of ``num_frames`` consecutive frames sampled at the model's frame
rate (whatever ``--fps`` says for the run's other encoders):

- ``image`` (N, F, S, S, 3) uint8: each frame's centre square resized to ``image_size``
  (shorter side to S, bilinear, centre crop, as the model card's preprocessing), one HDF5 chunk
  per clip;
- ``audio`` (N, samples) float32: ``num_frames * audio_samples_per_frame`` mono samples at
  frame rate x samples per frame Hz, from the clip's first frame's time (the stored ``t_start``),
  from the container's track or ``--audio-dir``; past the end of the track, silence.

16 frames at 224 x 224 and 30,720 samples at 48 kHz (0.64 s) for ``deepmind/multimodal-perceiver``,
all read from the model config. Clips are cut every ``--clip-stride`` frames (default: back to
back); the last is completed by repeating its last frame (``padded``). A video without audio has
no clips (an ``error`` item: this model needs both). About 2.4 MB per published-size clip.

The pooled vector (the ``frames`` table) is a summary for SQL, not a feature: the clip's mean red,
green and blue in [0, 1] and its audio level in dBFS (RMS; -100 for silence).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alex.errors import EncoderSpecError
from alex.multimodal_perceiver import DEFAULT_MODEL, TINY, ClipGeometry, load_config
from alex.pipeline.encoders.base import EncoderOutput, stored_geometry
from alex.pipeline.encoders.hub import check_available
from alex.pipeline.encoders.spec import EncoderSpec
from alex.pipeline.encoders.transforms import ResizeCrop
from alex.pipeline.steps import StepSpec, raw_samples

if TYPE_CHECKING:  # pragma: no cover  (planning a rerun needs no torch)
    import torch

SILENCE_DB = -100.0


def _geometry(spec: EncoderSpec, stored: dict[str, Any] | None = None) -> tuple[str, ClipGeometry]:
    """The model and its clip geometry: from ``stored`` (this name's config in an existing store) when
    it holds the same model, else from the model's config."""
    model = spec.model or DEFAULT_MODEL
    if spec.weights not in (None, "random"):
        raise EncoderSpecError(f"perceiver-mm:{model}@{spec.weights}: the model id or folder is all it takes "
                               f"(only its config is read here); drop @{spec.weights}")
    if model == TINY and spec.weights != "random":
        raise EncoderSpecError("perceiver-mm:tiny has no published weights; use perceiver-mm:tiny@random")
    known = stored_geometry(stored, model, spec.weights)
    if known is not None:
        return model, ClipGeometry(**known)
    config = load_config(model, "perceiver-mm:", lambda m: check_available(m, "perceiver-mm"))
    return model, ClipGeometry.of(config)


class PerceiverMMEncoder:
    family = "perceiver-mm"

    @staticmethod
    def identity(spec: EncoderSpec, clip_frames: int | None = None, clip_stride: int | None = None,
                 stored: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
        return _identity(spec, *_geometry(spec, stored), clip_frames, clip_stride)

    def __init__(self, spec: EncoderSpec, device: torch.device, clip_stride: int | None = None, **_: Any):
        model, self.geometry = _geometry(spec)
        self._identity = _identity(spec, model, self.geometry, None, clip_stride)
        self._identity.pop("sampling")
        clip = self._identity.pop("clip")
        self.device = device
        self.dim = 4
        self.transform = ResizeCrop(self.geometry.image_size, interpolation="bilinear", mode="shortest")
        self.steps = StepSpec("avclip", transform=self.transform, clip_frames=clip["clip_frames"],
                              stride=clip["clip_stride"], features=raw_samples, rate=self.geometry.audio_rate,
                              audio_samples=self.geometry.audio_samples)

    def encode(self, batch: dict[str, torch.Tensor]) -> EncoderOutput:
        """{"image": (B, F, S, S, 3) uint8, "audio": (B, samples) float32} -> the same arrays, and a
        (B, 4) summary: mean R, G, B in [0, 1], audio RMS in dBFS (no model, no autograd graph)."""
        import torch

        image, audio = batch["image"].detach(), batch["audio"].detach().float()
        colour = image.float().mean(dim=(1, 2, 3)) / 255.0  # (B, 3)
        rms = audio.pow(2).mean(dim=1).sqrt()  # (B,)
        level = (20.0 * torch.log10(rms.clamp(min=1e-12))).clamp(min=SILENCE_DB)  # (B,)
        return EncoderOutput(pooled=torch.cat([colour, level[:, None]], dim=1), arrays={"image": image, "audio": audio})

    def config(self) -> dict[str, Any]:
        return {
            **self._identity,
            "dim": self.dim,
            "array": "embedding",  # what other heads may read: the summary; the perceiver-mm head reads the arrays
            "arrays": ["image", "audio"],
            "array_dtypes": {"image": "uint8", "audio": "float32"},
            "preprocessing": {**self.geometry.to_dict(), "resize": self.transform.to_dict(), "audio_channels": "mono"},
            "model_geometry": self.geometry.to_dict(),
        }


def _identity(spec: EncoderSpec, model: str, geometry: ClipGeometry, clip_frames: int | None,
              clip_stride: int | None) -> dict[str, Any]:
    """Model, weights, clip and sampling of the spec (the model's own frame rate and clip length)."""
    if clip_frames is not None and clip_frames != geometry.num_frames:
        raise EncoderSpecError(f"--clip-frames {clip_frames}: perceiver-mm:{model} eats clips of exactly "
                               f"{geometry.num_frames} frames (its config's num_frames); leave --clip-frames out")
    text = f"perceiver-mm:{model}" + ("@random" if spec.weights == "random" else "")
    return {"family": "perceiver-mm", "model": model, "weights": spec.weights, "spec": text,
            "clip": {"clip_frames": geometry.num_frames, "clip_stride": clip_stride or geometry.num_frames},
            "sampling": {"fps": geometry.frame_rate, "num_frames": None}}

