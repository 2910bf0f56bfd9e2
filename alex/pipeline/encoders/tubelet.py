"""``tubelet``: V-JEPA-style tubelet tokens of video clips from a transformers video encoder.

V-JEPA 2 (``VJEPA2Model``, default ``facebook/vjepa2-vitl-fpc64-256``; Bardes et al. 2024,
"Revisiting Feature Prediction for Learning Visual Representations from Video", and Assran et
al. 2025, V-JEPA 2) or VideoMAE (``VideoMAEModel``; Tong et al. 2022), by hub id or local path.
Clips of ``clip_frames`` sampled frames are windowed over the whole video every ``clip_stride``
frames. Each clip gives its token grid (T/tubelet, H/patch, W/patch, D), stored in HDF5 as
``tokens`` (float16, one chunk per clip), and their mean as the pooled vector in ``frames``.
The features are the library model's own forward (``skip_predictor=True`` for V-JEPA 2: the
encoder only).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alex.errors import EncoderSpecError
from alex.pipeline.encoders.base import RANDOM_SEED, EncoderOutput, seeded, stored_geometry
from alex.pipeline.encoders.precision import torch_dtype
from alex.pipeline.encoders.hub import check_available, is_local, offline
from alex.pipeline.encoders.spec import EncoderSpec
from alex.pipeline.encoders.transforms import ResizeCrop
from alex.pipeline.steps import StepSpec

if TYPE_CHECKING:  # pragma: no cover  (planning a rerun needs no torch)
    import torch

DEFAULT_MODEL = "facebook/vjepa2-vitl-fpc64-256"
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
DEFAULT_CLIP_FRAMES = 16

# A V-JEPA 2 small enough for tests on two CPU cores: 32 px crops, 8 px patches, tubelets of 2.
TINY_VJEPA2 = dict(
    patch_size=8, crop_size=32, frames_per_clip=8, tubelet_size=2, hidden_size=32, num_attention_heads=2,
    num_hidden_layers=2, mlp_ratio=2.0, pred_hidden_size=16, pred_num_attention_heads=2, pred_num_hidden_layers=1,
    num_pooler_layers=1,
)


def _load_config(model: str):
    from transformers import AutoConfig, VJEPA2Config

    if model == "tiny":
        return VJEPA2Config(**TINY_VJEPA2)
    config = AutoConfig.from_pretrained(model, local_files_only=offline(model))
    if config.model_type not in ("vjepa2", "videomae"):
        raise EncoderSpecError(f"tubelet:{model} is a {config.model_type!r} model; tubelet takes V-JEPA 2 or VideoMAE")
    return config


def _geometry(config) -> dict[str, int]:
    """Model type, input size, patch and tubelet size, and clip length of a V-JEPA 2 or VideoMAE config."""
    if config.model_type == "vjepa2":
        return {"model_type": "vjepa2", "size": config.crop_size, "patch": config.patch_size,
                "tubelet": config.tubelet_size, "frames": config.frames_per_clip}
    return {"model_type": config.model_type, "size": config.image_size, "patch": config.patch_size,
            "tubelet": config.tubelet_size, "frames": config.num_frames}


class TubeletEncoder:
    has_model = True  # computes in --dtype (alex.pipeline.encoders.precision)
    family = "tubelet"

    @staticmethod
    def identity(spec: EncoderSpec, clip_frames: int | None = None, clip_stride: int | None = None,
                 stored: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
        """Model, weights and clip of the spec. ``stored``: this name's config in an existing store;
        when it holds the same model, its recorded geometry stands in for the model config (planning
        a rerun reads no config, imports no torch)."""
        model = spec.model or DEFAULT_MODEL
        if spec.weights not in (None, "random"):
            raise EncoderSpecError(f"tubelet:{model}@{spec.weights}: weights come with the model id or folder; only @random is accepted")
        if model == "tiny" and spec.weights != "random":
            raise EncoderSpecError("tubelet:tiny has no published weights; use tubelet:tiny@random")
        geometry = stored_geometry(stored, model, spec.weights)
        if geometry is None:
            if model != "tiny":
                check_available(model, "tubelet")
            geometry = _geometry(_load_config(model))
        # VideoMAE's position embeddings fix its clip length; V-JEPA 2 (RoPE) takes any multiple of its tubelet.
        frames = clip_frames or (geometry["frames"] if geometry["model_type"] == "videomae" else DEFAULT_CLIP_FRAMES)
        if frames % geometry["tubelet"]:
            raise EncoderSpecError(f"--clip-frames {frames} is not a multiple of the model's tubelet size {geometry['tubelet']}")
        text = f"tubelet:{model}" + ("@random" if spec.weights == "random" else "")
        return {"family": "tubelet", "model": model, "weights": spec.weights, "spec": text,
                "clip": {"clip_frames": frames, "clip_stride": clip_stride or frames}}

    def __init__(self, spec: EncoderSpec, device: torch.device, clip_frames: int | None = None,
                 clip_stride: int | None = None, compute_dtype: str = "fp32", **_: Any):
        import torch
        from transformers import AutoModel, VJEPA2Model, VideoMAEModel

        self._identity = self.identity(spec, clip_frames, clip_stride)
        model_name = self._identity["model"]
        self.device = device
        self.hf_config = _load_config(model_name)
        if spec.is_random or model_name == "tiny":
            cls = VJEPA2Model if self.hf_config.model_type == "vjepa2" else VideoMAEModel
            with seeded(RANDOM_SEED):
                model = cls(self.hf_config)
        else:
            model = AutoModel.from_pretrained(model_name, local_files_only=offline(model_name))
        self.compute_dtype, self.dtype = compute_dtype, torch_dtype(compute_dtype)
        self.model = model.eval().requires_grad_(False).to(device=device, dtype=self.dtype)
        geometry = _geometry(self.hf_config)
        self.size, self.patch, self.tubelet = geometry["size"], geometry["patch"], geometry["tubelet"]
        self.preprocess = self._preprocessing(model_name)
        self.transform = ResizeCrop(self.size, interpolation="bilinear", mode="shortest", resize=self.preprocess["resize"])
        clip = self._identity["clip"]
        self.clip_frames, self.clip_stride = clip["clip_frames"], clip["clip_stride"]
        self.steps = StepSpec("clip", transform=self.transform, clip_frames=self.clip_frames, stride=self.clip_stride)
        self.grid = (self.clip_frames // self.tubelet, self.size // self.patch, self.size // self.patch)
        self.dim = int(self.hf_config.hidden_size)
        self._mean = torch.tensor(self.preprocess["mean"], device=device).view(1, 1, 3, 1, 1)
        self._std = torch.tensor(self.preprocess["std"], device=device).view(1, 1, 3, 1, 1)

    def _preprocessing(self, model_name: str) -> dict[str, Any]:
        """Sizes, mean and std from the model's own video processor config when it has one."""
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        resize = int(self.size * 256 / 224) if self.hf_config.model_type == "vjepa2" else self.size
        source = "ImageNet defaults (the model has no processor config)"
        if model_name != "tiny":
            path = _processor_config(model_name)
            if path is not None:
                source = Path(path).name
                cfg = json.loads(open(path).read())
                mean, std = cfg.get("image_mean", mean), cfg.get("image_std", std)
                shortest = (cfg.get("size") or {}).get("shortest_edge")
                resize = int(shortest) if shortest else resize
        return {"size": self.size, "resize": resize, "interpolation": "bilinear", "mean": list(mean), "std": list(std),
                "from": source if model_name != "tiny" else "ImageNet defaults (tiny)"}

    def encode(self, batch: torch.Tensor) -> EncoderOutput:
        """(B, T, h, w, 3) uint8 clips -> pooled (B, D) and tokens (B, T/tubelet, h/patch, w/patch, D)."""
        import torch

        x = batch.permute(0, 1, 4, 2, 3).float().div_(255.0)  # (B, T, 3, h, w)
        x = ((x - self._mean) / self._std).to(self.dtype)  # normalised in float32, then the model's dtype
        with torch.no_grad():
            tokens = self.forward_pixels(x).float()  # (B, N, D)
        grid = tokens.reshape(tokens.shape[0], *self.grid, self.dim)  # (B, t, h, w, D)
        return EncoderOutput(pooled=tokens.mean(dim=1), arrays={"tokens": grid})

    def forward_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """The library model's own forward: (B, T, 3, H, W) normalised -> (B, N, D) tokens."""
        if self.hf_config.model_type == "vjepa2":
            return self.model(pixel_values_videos=pixels, skip_predictor=True).last_hidden_state
        return self.model(pixel_values=pixels).last_hidden_state

    def config(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in self._identity.items() if k != "clip"},
            "dim": self.dim,
            "array": "tokens",
            "token_grid": list(self.grid),
            "model_type": self.hf_config.model_type,
            "model_geometry": _geometry(self.hf_config),
            "preprocessing": self.preprocess,
        }


def _processor_config(model_name: str) -> str | None:
    """The model's video (or image) processor config: from its folder, the HF cache or the hub.
    None only when the model has none (known, not guessed); a failed download is an error."""
    from pathlib import Path

    from alex.hub import hub_file

    names = ["video_preprocessor_config.json", "preprocessor_config.json"]
    if is_local(model_name):
        found = [Path(model_name) / n for n in names if (Path(model_name) / n).is_file()]
        return str(found[0]) if found else None
    return hub_file(model_name, names, f"tubelet:{model_name}")
