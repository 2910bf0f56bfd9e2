"""Video-LLaVA compatibility (seeds/001; Lin et al. 2023, "Video-LLaVA: Learning United Visual
Representation by Alignment Before Projection"): its ``mm_projector`` weights, and LLaVA's ``v1``
conversation format for LMs whose tokenizer has no chat template (Vicuna, Video-LLaVA's LM).

LLaVA saves the projector inside the LM checkpoint as ``model.mm_projector.<key>`` (and, after its
pretraining stage, alone in ``mm_projector.bin``): ``0.weight``, ``0.bias``, ``2.weight``,
``2.bias`` for ``mlp2x_gelu``, ``weight``, ``bias`` for ``linear``, exactly the keys of
``build_projector`` in ``modeling_alex``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from alex.errors import UsageError

PROJECTOR_KEY = "mm_projector."
# LLaVA's conv_vicuna_v1 (llava/conversation.py): the system prompt, USER / ASSISTANT roles, " " between
# turns and the tokenizer's EOS after the answer.
LLAVA_V1_SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. "
                   "The assistant gives helpful, detailed, and polite answers to the human's questions.")


def llava_v1_prompt(question: str) -> str:
    """LLaVA v1's prompt for one question; the answer follows it after a space."""
    return f"{LLAVA_V1_SYSTEM} USER: {question} ASSISTANT:"


def _projector_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every ``*mm_projector.*`` tensor of a file or checkpoint folder, by its key after ``mm_projector.``."""
    if path.is_dir():
        for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
            index = path / index_name
            if index.is_file():  # a sharded checkpoint: read only the shards that hold the projector
                shards = {shard for key, shard in json.loads(index.read_text())["weight_map"].items() if PROJECTOR_KEY in key}
                found: dict[str, torch.Tensor] = {}
                for shard in sorted(shards):
                    found.update(_projector_tensors(path / shard))
                return found
        files = [path / name for name in ("mm_projector.bin", "model.safetensors", "pytorch_model.bin") if (path / name).is_file()]
        if not files:
            raise UsageError(f"--projector-weights {path}: no mm_projector.bin, model.safetensors or pytorch_model.bin in the folder")
        return _projector_tensors(files[0])
    if not path.is_file():
        raise UsageError(f"--projector-weights {path}: no such file or folder")
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return {k.split(PROJECTOR_KEY, 1)[1]: f.get_tensor(k) for k in f.keys() if PROJECTOR_KEY in k}
    state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)  # tensors only, never code
    return {k.split(PROJECTOR_KEY, 1)[1]: v.clone() for k, v in state.items() if PROJECTOR_KEY in k}


def load_projector_weights(projector: torch.nn.Module, path: str | Path) -> None:
    """Copy a Video-LLaVA / LLaVA checkpoint's ``mm_projector`` into ``projector``, every key and
    shape matching, or a clear error."""
    path = Path(path).expanduser()
    tensors = _projector_tensors(path)
    if not tensors:
        raise UsageError(f"--projector-weights {path}: no '{PROJECTOR_KEY}' weights in it (a LLaVA / Video-LLaVA checkpoint has them)")
    expected = projector.state_dict()
    if set(tensors) != set(expected):
        raise UsageError(f"--projector-weights {path}: its projector has {sorted(tensors)}, this head's --projector has "
                         f"{sorted(expected)}; choose the matching --projector (mlp2x_gelu or linear)")
    wrong = [f"{k} {tuple(v.shape)} (head: {tuple(expected[k].shape)})" for k, v in tensors.items() if v.shape != expected[k].shape]
    if wrong:
        raise UsageError(f"--projector-weights {path}: shapes differ: {', '.join(wrong)}; the features' size and the LM's "
                         "width must be those the projector was trained with (Video-LLaVA: LanguageBind tokens, 1024 -> 4096)")
    projector.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()})
