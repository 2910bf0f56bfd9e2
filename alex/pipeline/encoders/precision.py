"""The precision a frozen encoder computes in: ``--dtype auto|fp32|bf16|fp16``.

Reduced precision is applied by casting the model's weights and its inputs (``model.to(dtype)``),
not by autocast: on a CPU with native bf16 (AVX512-BF16 / AMX), ViT-B-32 with bf16 weights and
inputs runs about twice as fast as fp32, while autocast, which casts at every op, is slower than
fp32 (measured in benchmarks/extraction.py). Outputs go back to float32 before they are stored.

``auto`` picks bf16 on a GPU that has it (fp16 on older ones), bf16 on a CPU with native bf16,
and fp32 elsewhere. The dtype an encoder computed in is part of its identity in ``store.json``
(``compute_dtype``), as its weights are: one encoder name never mixes precisions. Encoders without
a model (pixels, audio, perceiver-mm) have none. Light on purpose: torch is imported only to
resolve ``auto`` for a model that is about to load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alex.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    import torch

COMPUTE_DTYPES = ("auto", "fp32", "bf16", "fp16")
LEGACY_COMPUTE_DTYPE = "fp32"  # what model encoders of stores written before --dtype computed in on a CPU


def check_compute_dtype(name: str) -> str:
    if name not in COMPUTE_DTYPES:
        raise UsageError(f"--dtype {name}: choose one of {', '.join(COMPUTE_DTYPES)} (the encoders' precision; "
                         "the stored float type is --store-dtype)")
    return name


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 matrix products in hardware (torch's own CPU feature probe)."""
    import torch

    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(probe() for probe in probes if probe is not None)


def resolve_compute_dtype(requested: str, device: torch.device) -> str:
    """``auto`` -> what is fast and safe on ``device``; an explicit name as it is."""
    check_compute_dtype(requested)
    if requested != "auto":
        return requested
    import torch

    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return "fp32"


def torch_dtype(name: str) -> torch.dtype:
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]
