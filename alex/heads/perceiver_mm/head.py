"""The multimodal Perceiver on the one training path: a classifier (``alex.heads.classifier``) whose
items are cached clips (``data.py``) instead of feature tokens, and whose model is pretrained."""

from __future__ import annotations

from typing import Any

import numpy as np

from alex.errors import UsageError
from alex.heads.classifier import ClassifierFamily
from alex.heads.data import sort_labels
from alex.heads.perceiver_mm.options import PerceiverMMOptions
from alex.multimodal_perceiver import TINY, ClipGeometry, tiny_config

RANDOM_SEED = 0


def load_base(model: str):
    """The pretrained ``PerceiverForMultimodalAutoencoding`` by hub id or folder (failing fast when it
    cannot be had), or ``tiny@random``: the tiny config with seeded random weights."""
    import torch
    from transformers import PerceiverForMultimodalAutoencoding

    from alex.hub import check_model_available, local_only

    if model == f"{TINY}@random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_SEED)
            return PerceiverForMultimodalAutoencoding(tiny_config())
    if model == TINY:
        raise UsageError("--model tiny has no published weights; use --model tiny@random")
    check_model_available(model, "--model")
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(model, local_files_only=local_only(model))
    except (OSError, ValueError) as exc:
        raise UsageError(f"--model {model}: cannot load its config: {str(exc).splitlines()[0]}") from exc
    if config.model_type != "perceiver" or "PerceiverForMultimodalAutoencoding" not in (config.architectures or []):
        raise UsageError(f"--model {model} is a {config.model_type!r} model ({', '.join(config.architectures or [])}); "
                         "--head perceiver-mm starts from a pretrained PerceiverForMultimodalAutoencoding "
                         "(deepmind/multimodal-perceiver)")
    try:
        return PerceiverForMultimodalAutoencoding.from_pretrained(model, local_files_only=local_only(model))
    except (OSError, ValueError) as exc:
        raise UsageError(f"--model {model}: cannot load a multimodal Perceiver: {str(exc).splitlines()[0]}") from exc


def check_store_geometry(store_config: dict[str, Any], geometry: ClipGeometry, name: str) -> None:
    """The store's clips must be what the model eats (frames, size, samples)."""
    if store_config.get("family") != "perceiver-mm":
        raise UsageError(f"--inputs {name}: a {store_config.get('family')} encoder; --head perceiver-mm reads the cached "
                         "clips of a perceiver-mm encoder (alex extract --encoder perceiver-mm:MODEL)")
    stored = store_config.get("preprocessing", {})
    wanted = geometry.to_dict()
    different = {k: (stored.get(k), v) for k, v in wanted.items() if stored.get(k) != v}
    if different:
        said = ", ".join(f"{k} {a} (the model: {b})" for k, (a, b) in different.items())
        raise UsageError(f"input '{name}' holds clips the model cannot eat: {said}; extract with "
                         f"--encoder perceiver-mm:MODEL for this model")


class PerceiverMMFamily(ClassifierFamily):
    name = "perceiver-mm"
    options_class = PerceiverMMOptions
    model_types = ("alex_perceiver_mm",)

    def build(self, options, store, targets, selection, signature):
        from alex.heads.perceiver_mm.modeling_perceiver_mm import from_base

        name = options.inputs[0]
        base = load_base(options.model)
        check_store_geometry(store.encoders[name], ClipGeometry.of(base.config), name)
        labels = sort_labels(set(selection.labels.values()))
        settings = {"inputs": [name], "eval_clips": options.eval_clips, **options.head_config}
        try:
            return from_base(base, labels, **settings), None
        except ValueError as exc:
            raise UsageError(f"--model {options.model}: {exc}") from exc

    def dataset(self, store, video_ids, inputs, train, extras, model):
        from alex.heads.perceiver_mm.data import ClipDataset

        return ClipDataset(store, video_ids, inputs[0], train, model.config.eval_clips, extras)

    def collator(self, processor, model, options):
        from alex.heads.perceiver_mm.data import collate_clips

        return collate_clips

    def infer(self, model, processor, dataset, device, batch_size) -> np.ndarray:
        """Log mean clip probabilities (N, C) over the dataset, in order; autocast on GPU."""
        import torch
        from torch.utils.data import DataLoader

        from alex.heads.perceiver_mm.data import collate_clips

        model = model.to(device).eval()
        outputs = []
        half = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float16
        with torch.no_grad(), torch.autocast(device.type, dtype=half, enabled=device.type == "cuda"):  # as the Trainer trains
            for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_clips):
                batch.pop("labels", None)
                outputs.append(model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu().numpy())
        return np.concatenate(outputs) if outputs else np.zeros((0, model.config.num_labels), dtype=np.float32)


HEAD = PerceiverMMFamily()
