"""``languagebind``: the LanguageBind video tower as an alex encoder.

Clips of the model's own frame count (8 for the published checkpoints) are windowed over the
video at the run's fps; each clip gives its video embedding in LanguageBind's joint space (the
projected, mean-over-frames CLS, spec §3.6-§3.7) and, with ``--keep-tokens``, the per-frame
tokens of the layer Video-LLaVA uses (``hidden_states[-2]``: T x 257 tokens, no post-LN, CLS
kept; spec §5) for LLM heads. Checkpoints load with ``strict=True`` under their published
names: ``LanguageBind/LanguageBind_Video_FT``, ``LanguageBind/LanguageBind_Video_merge``, a
local folder, or LoRA checkpoints (collapsed as ``_merge`` was). Its text tower serves
``alex search``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alex.errors import EncoderSpecError, WeightsUnavailableError
from alex.pipeline.encoders.base import RANDOM_SEED, EncoderOutput, seeded, stored_geometry
from alex.pipeline.encoders.precision import torch_dtype
from alex.pipeline.encoders.hub import check_available, is_local, offline
from alex.pipeline.encoders.languagebind.processing import LanguageBindFrames
from alex.pipeline.encoders.spec import EncoderSpec
from alex.pipeline.steps import StepSpec

if TYPE_CHECKING:  # pragma: no cover  (planning a rerun needs no torch: the model code loads to run)
    import torch

    from alex.pipeline.encoders.languagebind.configuration_languagebind import LanguageBindVideoConfig
    from alex.pipeline.encoders.languagebind.modeling_languagebind import LanguageBindVideo

DEFAULT_MODEL = "LanguageBind/LanguageBind_Video_FT"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
VIDEO_LLAVA_LAYER = -2


def _file(model: str, name: str) -> str | None:
    """A file of a local folder or hub repo (from the cache, or downloaded), or None when the repo
    has no such file; a download that fails for another reason is an error (``alex.hub.hub_file``)."""
    if is_local(model):
        path = Path(model) / name
        return str(path) if path.is_file() else None
    from alex.hub import hub_file

    return hub_file(model, [name], f"languagebind:{model}")


def load_config(model: str) -> LanguageBindVideoConfig:
    from alex.pipeline.encoders.languagebind.configuration_languagebind import TINY, LanguageBindVideoConfig

    if model == "tiny":
        return LanguageBindVideoConfig(**TINY)
    path = _file(model, "config.json")
    if path is None:
        raise WeightsUnavailableError(f"languagebind:{model}: config.json not found")
    return LanguageBindVideoConfig(**json.loads(Path(path).read_text()))


def load_weights(model: LanguageBindVideo, name: str) -> None:
    """Load a published checkpoint strictly (after collapsing LoRA and filling position ids)."""
    import torch

    from alex.pipeline.encoders.languagebind.modeling_languagebind import convert_state_dict

    for filename in WEIGHT_FILES:
        path = _file(name, filename)
        if path is None:
            continue
        if filename.endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(convert_state_dict(state, model), strict=True)
        return
    raise WeightsUnavailableError(f"languagebind:{name}: no {' or '.join(WEIGHT_FILES)} found")


class LanguageBindEncoder:
    has_model = True  # computes in --dtype (alex.pipeline.encoders.precision)
    family = "languagebind"

    @staticmethod
    def identity(spec: EncoderSpec, clip_frames: int | None = None, clip_stride: int | None = None,
                 keep_tokens: bool = False, stored: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
        """Model, weights, clip and tokens of the spec. ``stored``: this name's config in an existing
        store; when it holds the same model, its recorded frames per clip stand in for the config."""
        model = spec.model or DEFAULT_MODEL
        if spec.weights not in (None, "random"):
            raise EncoderSpecError(f"languagebind:{model}@{spec.weights}: weights come with the repo or folder; only @random is accepted")
        if model == "tiny" and spec.weights != "random":
            raise EncoderSpecError("languagebind:tiny has no published weights; use languagebind:tiny@random")
        geometry = stored_geometry(stored, model, spec.weights)
        if geometry is None:
            if model != "tiny":
                check_available(model, "languagebind")
            geometry = {"num_frames": int(load_config(model).vision_config.num_frames)}
        frames = geometry["num_frames"]
        if clip_frames not in (None, frames):
            raise EncoderSpecError(f"languagebind:{model} takes exactly {frames} frames per clip (--clip-frames {clip_frames})")
        text = f"languagebind:{model}" + ("@random" if spec.weights == "random" else "")
        return {"family": "languagebind", "model": model, "weights": spec.weights, "spec": text,
                "tokens": bool(keep_tokens), "clip": {"clip_frames": frames, "clip_stride": clip_stride or frames}}

    def __init__(self, spec: EncoderSpec, device: torch.device, clip_frames: int | None = None,
                 clip_stride: int | None = None, keep_tokens: bool = False, compute_dtype: str = "fp32", **_: Any):
        from alex.pipeline.encoders.languagebind.modeling_languagebind import LanguageBindVideo

        self._identity = self.identity(spec, clip_frames, clip_stride, keep_tokens)
        name = self._identity["model"]
        self.device = device
        config = load_config(name)
        with seeded(RANDOM_SEED):
            model = LanguageBindVideo(config)
        if not spec.is_random:
            load_weights(model, name)
        self.compute_dtype, self.dtype = compute_dtype, torch_dtype(compute_dtype)
        self.model = model.eval().requires_grad_(False).to(device=device, dtype=self.dtype)
        self.keep_tokens = self._identity["tokens"]
        clip = self._identity["clip"]
        self.clip_frames, self.clip_stride = clip["clip_frames"], clip["clip_stride"]
        self.transform = LanguageBindFrames(size=config.vision_config.image_size)
        self.steps = StepSpec("clip", transform=self.transform, clip_frames=self.clip_frames, stride=self.clip_stride)
        self.dim = int(config.projection_dim)
        self._tokenizer = None

    def encode(self, batch: torch.Tensor) -> EncoderOutput:
        """(B, T, H, W, 3) normalised frames -> joint-space embeddings (B, P) [and tokens (B, T, N, D)]."""
        import torch

        with torch.no_grad():
            return self._encode(batch)

    def _encode(self, batch: torch.Tensor) -> EncoderOutput:
        pixels = batch.to(self.dtype).permute(0, 4, 1, 2, 3)  # (B, 3, T, H, W), the processor's layout
        embedding, tokens = self.model.video_features(pixels, VIDEO_LLAVA_LAYER if self.keep_tokens else None)
        arrays = {"tokens": tokens.float()} if tokens is not None else {}
        return EncoderOutput(pooled=embedding.float(), arrays=arrays)

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        import torch

        ids = self._tokenize(texts).to(self.device)
        with torch.no_grad():
            return self.model.text_features(ids).float()

    def _tokenize(self, texts: list[str]) -> torch.Tensor:
        """The checkpoint's CLIP tokenizer (77 tokens); the tiny model uses open_clip's copy of the same BPE."""
        if self._tokenizer is None:
            name = self._identity["model"]
            if name == "tiny":
                import open_clip

                self._tokenizer = open_clip.get_tokenizer("ViT-B-32")
            else:
                from transformers import CLIPTokenizer

                tokenizer = CLIPTokenizer.from_pretrained(name, local_files_only=offline(name))
                self._tokenizer = lambda t: tokenizer(t, max_length=77, padding="max_length", truncation=True,
                                                      return_tensors="pt")["input_ids"]
        return self._tokenizer(texts)

    def config(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in self._identity.items() if k != "clip"},
            "dim": self.dim,
            "array": "tokens" if self.keep_tokens else "embedding",
            "preprocessing": {"size": self.transform.size, "mean": list(self.transform.mean), "std": list(self.transform.std),
                              "resize": "short side, bilinear, no antialias", "crop": "centre", "flip": "none"},
            "hidden_layer": VIDEO_LLAVA_LAYER if self.keep_tokens else None,
            "model_geometry": {"num_frames": self.clip_frames},
        }
