"""Issue 14's extraction workloads, run by ``python benchmarks/extraction.py --workload issue14``.

Two workloads, each measured side by side in one run:
- short clips: 200 clips of 2 to 4 s (320x240 @ 15 fps), sampled at 1 fps;
- long video: one 10-minute video (320x240 @ 15 fps), sampled at 1 fps.
For each: alex (``python -m alex extract --dtype auto``, a fresh process: start-up included), (i)
decode-only (alex's worker pool) + fp32 encode-only of the same frames, (ii) a plain loop that
decodes each video with PyAV, takes a frame per second and encodes them in fp32, one video at a
time. Targets: alex <= 0.6 x (i) on the short clips, alex >= 2x faster than (ii).
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import torch

from alex.datasets.write import write_video
from alex.pipeline.encoders import build_encoder
from alex.pipeline.encoders.precision import resolve_compute_dtype, torch_dtype
from alex.pipeline.extract import default_workers
from alex.pipeline.sampling import Sampling
from alex.pipeline.workers import DecodeTask, ProcessDecoder

SIZE, VIDEO_FPS = (320, 240), 15


def _frames(seconds: float, seed: int):
    width, height = SIZE
    y, x = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(seed)
    for t in range(int(seconds * VIDEO_FPS)):
        base = np.stack([(x + 3 * t + 40 * seed) % 256, (y + 2 * t) % 256, (x + y + t) % 256], axis=-1).astype(np.uint8)
        yield base ^ rng.integers(0, 16, (height, width, 3), dtype=np.uint8)


def make_workloads(root: Path) -> dict[str, Path]:
    short, long = root / "short", root / "long"
    if len(list(short.glob("*.mp4"))) != 200:
        shutil.rmtree(short, ignore_errors=True)
        lengths = np.random.default_rng(0).uniform(2.0, 4.0, size=200)
        for i, seconds in enumerate(lengths):
            write_video(short / f"clip_{i:03d}.mp4", _frames(seconds, i), fps=VIDEO_FPS)
    if not (long / "ten_minutes.mp4").exists():
        write_video(long / "ten_minutes.mp4", _frames(600.0, 7), fps=VIDEO_FPS)
    return {"short clips": short, "10-minute video": long}


def decode_only(paths: list[Path], encoder, workers: int) -> tuple[np.ndarray, float]:
    """alex's decode pool producing every preprocessed step, encoding nothing."""
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    tasks = [DecodeTask(i, str(p), {"e": encoder.steps}, Sampling(fps=1.0), threads=threads, video_id=p.name)
             for i, p in enumerate(paths)]
    started = time.perf_counter()
    decoder = ProcessDecoder(tasks, workers)
    steps = [m[3].data for m in decoder.messages() if m is not None and m[0] == "steps"]
    decoder.close()
    return np.concatenate(steps), time.perf_counter() - started


def encode_only(encoder, data: np.ndarray, batch_size: int = 32) -> float:
    encoder.encode(torch.from_numpy(data[:batch_size]))  # warm-up
    started = time.perf_counter()
    for start in range(0, len(data), batch_size):
        encoder.encode(torch.from_numpy(data[start: start + batch_size]))
    return time.perf_counter() - started


def plain_loop(paths: list[Path], encoder) -> tuple[int, float]:
    """Decode each video, keep the first frame at or after every whole second, encode them (fp32)."""
    started, frames = time.perf_counter(), 0
    for path in paths:
        picked, target = [], None
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                t = float(frame.time)
                target = t if target is None else target
                if t + 1e-6 >= target:
                    picked.append(encoder.steps.transform(frame.to_ndarray(format="rgb24")))
                    target += 1.0
        for start in range(0, len(picked), 32):
            encoder.encode(torch.from_numpy(np.stack(picked[start: start + 32])))
        frames += len(picked)
    return frames, time.perf_counter() - started


def alex_cli(videos: Path, store: Path, encoder: str, workers: int) -> tuple[float, str]:
    shutil.rmtree(store, ignore_errors=True)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "alex", "extract", "--videos", str(videos), "--store", str(store),
                           "-e", encoder, "--fps", "1", "--dtype", "auto", "--workers", str(workers), "-q", "--profile"],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stdout + done.stderr
    return wall, done.stdout


def flops_per_frame(encoder, data: np.ndarray) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        encoder.encode(torch.from_numpy(data[:1]))
    return float(counter.get_total_flops())


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeat: int = 10) -> float:
    """GFLOP/s of a large matrix product in ``dtype``: this machine's practical peak for it."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - started)
    return 2 * n**3 / statistics.median(times) / 1e9


def variants(spec: str, data: np.ndarray) -> list[tuple[str, float]]:
    """Encode-only frames/s of the encoder as built, in bf16 with channels-last, and compiled."""
    out = []
    sample = data[:128]
    for name, dtype in (("fp32", "fp32"), ("bf16", "bf16")):
        encoder = build_encoder(spec, "cpu", compute_dtype=dtype)
        out.append((name, len(sample) / encode_only(encoder, sample)))
    encoder = build_encoder(spec, "cpu", compute_dtype="bf16")
    encoder.model = encoder.model.to(memory_format=torch.channels_last)
    out.append(("bf16 + channels-last", len(sample) / encode_only(encoder, sample)))
    encoder = build_encoder(spec, "cpu", compute_dtype="bf16")
    started = time.perf_counter()
    encoder.model.encode_image = torch.compile(encoder.model.encode_image)
    encoder.encode(torch.from_numpy(sample[:32]))
    compile_s = time.perf_counter() - started
    out.append((f"bf16 + torch.compile (compile {compile_s:.0f} s)", len(sample) / encode_only(encoder, sample)))
    return out


def run_issue14(args) -> None:
    workers = default_workers() if args.workers is None else args.workers
    workloads = make_workloads(args.out)
    exact = build_encoder(args.encoder, "cpu", compute_dtype="fp32")
    auto = resolve_compute_dtype("auto", torch.device("cpu"))
    peaks = {"fp32": matmul_peak(torch.float32), auto: matmul_peak(torch_dtype(auto))}
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores ({platform.processor() or 'cpu'}), torch {torch.__version__}; "
          f"{args.encoder}; --dtype auto = {auto}; --workers {workers}; matmul peak: "
          + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items()))
    print("| workload | frames | (i) decode + fp32 encode | (ii) plain loop fp32 | alex --dtype auto | alex / (i) | (ii) / alex "
          "| alex frames/s | encoder GFLOP/s, share of peak |")
    print("|---|---|---|---|---|---|---|---|---|")
    data_for_variants = None
    for name, folder in workloads.items():
        paths = sorted(folder.glob("*.mp4"))
        data, decode_s = decode_only(paths, exact, workers)
        encode_s = encode_only(exact, data)
        loop_frames, loop_s = plain_loop(paths, exact)
        wall, stdout = alex_cli(folder, args.out / f"store-{folder.name}", args.encoder, workers)
        frames = len(data)
        assert loop_frames == frames, (loop_frames, frames)
        fast = build_encoder(args.encoder, "cpu", compute_dtype=auto)
        fast_s = encode_only(fast, data)
        gflops = flops_per_frame(exact, data) * frames / fast_s / 1e9
        first = decode_s + encode_s
        print(f"| {name} | {frames} | {decode_s:.1f} + {encode_s:.1f} = {first:.1f} s | {loop_s:.1f} s | {wall:.1f} s "
              f"| **{wall / first:.2f}** | **{loop_s / wall:.2f}x** | {frames / wall:.1f} "
              f"| {gflops:.0f} ({auto} encode-only {frames / fast_s:.1f} frames/s), {gflops / peaks[auto]:.0%} |")
        profile = [line.strip() for line in stdout.splitlines() if line.strip().startswith(("│ wait", "│ encode", "│ wall", "│ decode"))]
        print("    alex --profile: " + "; ".join(" ".join(p.strip("│ ").split()) for p in profile))
        data_for_variants = data
    if args.variants and data_for_variants is not None:
        for variant, rate in variants(args.encoder, data_for_variants):
            print(f"    encode-only {variant}: {rate:.1f} frames/s")
