"""``clip``: the pooled image embedding of each sampled frame from any open_clip model.

CLIP: Radford et al. 2021, "Learning Transferable Visual Models From Natural Language
Supervision"; models and weights through open_clip (Ilharco et al. 2021). The preprocessing is
the one that belongs to the chosen weights (size, interpolation, resize mode, mean and std from
open_clip's pretrained config). ``clip:tiny@random`` is a tiny config shipped with alex.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from alex.errors import EncoderSpecError, UsageError
from alex.pipeline.encoders.base import RANDOM_SEED, seeded
from alex.pipeline.encoders.precision import torch_dtype
from alex.pipeline.encoders.spec import EncoderSpec
from alex.pipeline.encoders.transforms import ResizeCrop
from alex.pipeline.steps import StepSpec
from alex.hub import cached_hub_file, hub_reachable, require_hub

if TYPE_CHECKING:  # pragma: no cover
    import torch

MODEL_CONFIGS = Path(__file__).with_name("model_configs")


def _open_clip() -> Any:
    """open_clip (and torch), imported when a model or its catalogue is needed, not to plan a rerun."""
    import open_clip

    if str(MODEL_CONFIGS) not in _REGISTERED:
        open_clip.add_model_config(MODEL_CONFIGS)
        _REGISTERED.add(str(MODEL_CONFIGS))
    return open_clip


_REGISTERED: set[str] = set()

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_WEIGHTS = "laion2b_s34b_b79k"
HF_WEIGHT_FILES = ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
CLIP_LOCAL_HINT = "pass their local path, e.g. --encoder 'clip:ViT-B-32@/path/to/open_clip_pytorch_model.bin'"


def default_weights(model: str) -> str:
    if model == DEFAULT_MODEL:
        return DEFAULT_WEIGHTS
    if model.startswith(("hf-hub:", "local-dir:")):
        return ""
    check_model_name(model)
    tags = _open_clip().list_pretrained_tags_by_model(model)
    if len(tags) == 1:
        return tags[0]
    if not tags:
        raise EncoderSpecError(
            f"open_clip model {model!r} has no published weights; use clip:{model}@random for random "
            f"weights or clip:{model}@/path/to/weights.bin"
        )
    raise EncoderSpecError(f"choose weights for clip:{model}: one of {', '.join('@' + t for t in tags)}")


def check_model_name(model: str) -> None:
    """An architecture open_clip knows, or a usage error naming the closest ones."""
    import difflib

    known = _open_clip().list_models()
    if model not in known:
        close = difflib.get_close_matches(model, known, n=6, cutoff=0.6)
        raise EncoderSpecError(
            f"open_clip has no model {model!r}" + (f"; did you mean {', '.join(close)}?" if close else "")
            + " (`python -c 'import open_clip; print(open_clip.list_models())'` lists all)"
        )


def resolve_weights(model: str, weights: str) -> tuple[str | None, dict[str, Any]]:
    """-> (``pretrained`` argument for open_clip, extra create_model kwargs). Fails fast when offline."""
    if model.startswith("local-dir:"):
        return None, {}
    if model.startswith("hf-hub:"):
        repo = model[len("hf-hub:"):]
        if cached_hub_file(repo, ["open_clip_config.json"]) is None:
            require_hub(f"clip:{model}", f"{repo}/open_clip_config.json", CLIP_LOCAL_HINT)
        return None, {}
    check_model_name(model)
    if weights == "random":
        return None, {}
    if os.path.sep in weights or weights.endswith((".pt", ".bin", ".safetensors", ".pth")):
        if not os.path.isfile(weights):
            raise EncoderSpecError(f"clip weights file {weights} does not exist")
        return weights, {}
    cfg = _open_clip().get_pretrained_cfg(model, weights)
    if not cfg:
        tags = _open_clip().list_pretrained_tags_by_model(model)
        raise EncoderSpecError(
            f"open_clip has no weights {weights!r} for {model}; known: {', '.join(tags) or 'none'}, "
            "or 'random', or a path to a weights file"
        )
    # The tag's own settings, so a cached file loads exactly as the tag would.
    tag_kwargs: dict[str, Any] = {
        "force_quick_gelu": bool(cfg.get("quick_gelu", False)),
        "force_preprocess_cfg": {
            k: cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in cfg
        },
    }
    if cfg.get("hf_hub"):
        hub = cfg["hf_hub"]  # 'org/repo/' (default file names) or 'org/repo/file.bin'
        repo, filename = (hub.rstrip("/"), "") if hub.endswith("/") else os.path.split(hub)
        names = [filename] if filename else HF_WEIGHT_FILES
        cached = cached_hub_file(repo, names)
        if cached:
            return cached, tag_kwargs
        require_hub(f"clip:{model}@{weights}", f"{repo}/{names[-1]}", CLIP_LOCAL_HINT)
        return weights, {}
    url = cfg.get("url", "")
    cached = os.path.join(os.path.expanduser("~/.cache/clip"), os.path.basename(url))
    if os.path.isfile(cached):
        return cached, tag_kwargs
    if not hub_reachable(url):
        require_hub(f"clip:{model}@{weights}", cached, CLIP_LOCAL_HINT)
    return weights, {}


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class ClipEncoder:
    """open_clip image tower -> pooled embedding (``encode_image``); its text tower serves search."""

    has_model = True  # computes in --dtype (alex.pipeline.encoders.precision)

    family = "clip"

    @staticmethod
    def identity(spec: EncoderSpec, check: bool = True, **_: Any) -> dict[str, Any]:
        """Model and weights with defaults filled in; with ``check``, also that the weights can be had
        (open_clip's catalogue, the hub cache). Loads nothing. Without ``check`` (planning a run that
        may load no model at all) ``clip`` and ``clip:MODEL@WEIGHTS`` need no import of open_clip."""
        model = spec.model or DEFAULT_MODEL
        weights = spec.weights or (DEFAULT_WEIGHTS if spec.model is None else default_weights(model))
        if check:
            resolve_weights(model, weights)
        text = f"clip:{model}@{weights}" if weights else f"clip:{model}"
        return {"family": "clip", "model": model, "weights": weights or None, "spec": text}

    def __init__(self, spec: EncoderSpec, device: torch.device, compute_dtype: str = "fp32", **_: Any):
        import torch

        identity = self._identity = self.identity(spec)
        self.model_name, self.weights = identity["model"], identity["weights"] or ""
        self.device = device
        pretrained, kwargs = resolve_weights(self.model_name, self.weights)
        if spec.is_random:
            with seeded(RANDOM_SEED), _quiet_root_logger():  # random weights were asked for: no warning
                model = _open_clip().create_model(self.model_name, pretrained=None)
        else:
            model = _open_clip().create_model(self.model_name, pretrained=pretrained, **kwargs)
        self.compute_dtype, self.dtype = compute_dtype, torch_dtype(compute_dtype)
        self.model = model.eval().requires_grad_(False).to(device=device, dtype=self.dtype)
        pp = dict(getattr(model.visual, "preprocess_cfg", {}))
        size = pp.get("size", model.visual.image_size)
        size = size[0] if isinstance(size, (tuple, list)) and size[0] == size[-1] else size
        resize_mode = pp.get("resize_mode", "shortest")
        if not isinstance(size, int) or resize_mode not in ("shortest", "squash"):
            raise UsageError(
                f"clip:{self.model_name} uses image size {size} with resize mode {resize_mode!r}; alex supports "
                "square inputs with 'shortest' or 'squash' resizing"
            )
        self.preprocess = {
            "size": size,
            "interpolation": pp.get("interpolation", "bicubic"),
            "resize_mode": resize_mode,
            "mean": list(pp.get("mean", _open_clip().OPENAI_DATASET_MEAN)),
            "std": list(pp.get("std", _open_clip().OPENAI_DATASET_STD)),
        }
        self.transform = ResizeCrop(size, self.preprocess["interpolation"], resize_mode)
        self.steps = StepSpec("frame", transform=self.transform)
        self._mean = torch.tensor(self.preprocess["mean"], device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(self.preprocess["std"], device=device).view(1, 3, 1, 1)
        self.dim = int(model.visual.output_dim)
        self._tokenizer = None

    def normalize(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, h, w, 3) uint8 -> (B, 3, h, w) float, exactly torchvision's ToTensor + Normalize."""
        x = batch.permute(0, 3, 1, 2).float().div_(255.0)
        return ((x - self._mean) / self._std).to(self.dtype)  # normalised in float32, then the model's dtype

    def encode(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, h, w, 3) uint8 -> (B, D) image embeddings (not L2-normalised)."""
        import torch

        with torch.no_grad():
            return self.model.encode_image(self.normalize(batch)).float()

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """Texts -> (N, D) embeddings from the same model's text tower."""
        import torch

        if self._tokenizer is None:
            self._tokenizer = _open_clip().get_tokenizer(self.model_name)
        tokens = self._tokenizer(texts).to(self.device)
        with torch.no_grad():
            return self.model.encode_text(tokens).float()

    def config(self) -> dict[str, Any]:
        return {
            **self._identity,
            "dim": self.dim,
            "preprocessing": self.preprocess,
            "library": f"open_clip {_open_clip().__version__}",
        }
