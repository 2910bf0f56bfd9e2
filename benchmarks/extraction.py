"""Extraction efficiency: ``alex extract`` against its own parts, measured side by side in one run.

Makes ``--videos`` synthetic videos, then measures on the same videos, encoder and settings:
- decode-only: alex's decode worker pool (``ProcessDecoder``, the same ``--workers``) producing
  every preprocessed step, encoding nothing;
- encode-only: the encoder on exactly those steps, in batches of ``--batch-size``;
- extract: the whole ``alex extract`` (``extract()``: planning, model build, workers, writing).
Prints wall(extract) / (decode-only + encode-only), the CPU target (<= 1.1), and
wall(extract) / max(decode-only, encode-only), the GPU target (<= 1.1), with frames/s.

    python benchmarks/extraction.py [--encoder clip:ViT-B-32@random] [--device auto] [--workers N]

``--workload issue14`` (issue 14) instead measures, on 200 short clips (2 to 4 s, 320x240 @ 15 fps,
sampled at 1 fps) and on one 10-minute video: ``alex extract --dtype auto`` as a user runs it (a
subprocess: start-up included) against (i) decode-only + fp32 encode-only of the same frames and
(ii) a plain loop that decodes each video and encodes its frames in fp32 (what the usual tools
do); frames/s, the encoder's achieved GFLOP/s (FLOPs counted by torch's FlopCounterMode on one
frame) and its share of this machine's measured matmul peak for that dtype. ``--variants`` also
times encode-only in fp32, bf16, bf16 + channels-last and bf16 + torch.compile.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from alex.datasets.write import write_video
from alex.pipeline.encoders import build_encoder, resolve_device
from alex.pipeline.extract import ExtractOptions, default_workers, extract
from alex.pipeline.sampling import Sampling
from alex.pipeline.workers import DecodeTask, ProcessDecoder


def make_videos(root: Path, count: int, seconds: float, fps: int, width: int, height: int) -> list[Path]:
    """Moving colour gradients with a little noise: cheap to make, real work to decode."""
    paths = []
    y, x = np.mgrid[0:height, 0:width]
    for v in range(count):
        rng = np.random.default_rng(v)
        frames = (
            np.stack([(x + 3 * t + 40 * v) % 256, (y + 2 * t) % 256, (x + y + t * (v + 1)) % 256], axis=-1).astype(np.uint8)
            ^ rng.integers(0, 16, (height, width, 3), dtype=np.uint8)
            for t in range(int(seconds * fps))
        )
        paths.append(write_video(root / f"clip_{v:03d}.mp4", frames, fps=fps))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="clip:ViT-B-32@random")
    parser.add_argument("--num-videos", "--videos", dest="videos", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--video-fps", type=int, default=30)
    parser.add_argument("--fps", type=float, default=2.0, help="sampling rate")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=Path("/tmp/alex-bench-extract"))
    parser.add_argument("--workload", choices=["gradients", "issue14"], default="gradients")
    parser.add_argument("--variants", action="store_true", help="issue14: also time encoder variants")
    args = parser.parse_args()
    if args.workload == "issue14":
        from extraction_issue14 import run_issue14

        run_issue14(args)
        return
    width, height = map(int, args.size.split("x"))
    workers = default_workers() if args.workers is None else args.workers
    device = resolve_device(args.device)
    videos_dir = args.out / "videos"
    if not videos_dir.is_dir() or len(list(videos_dir.glob("*.mp4"))) != args.videos:
        shutil.rmtree(args.out, ignore_errors=True)
        make_videos(videos_dir, args.videos, args.seconds, args.video_fps, width, height)
    paths = sorted(videos_dir.glob("*.mp4"))
    encoder = build_encoder(args.encoder, device)
    sampling = Sampling(fps=args.fps)
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))

    # decode-only: the worker pool, keeping every step it produces
    tasks = [DecodeTask(i, str(p), {"e": encoder.steps}, sampling, threads=threads, video_id=p.name) for i, p in enumerate(paths)]
    started = time.perf_counter()
    decoder = ProcessDecoder(tasks, workers)
    steps = [m[3].data for m in decoder.messages() if m is not None and m[0] == "steps"]
    decoder.close()
    decode_s = time.perf_counter() - started
    data = np.concatenate(steps)
    frames = len(data)

    # encode-only: the same steps, same batch size
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    encoder.encode(torch.from_numpy(data[: args.batch_size]).to(device))  # warm-up (kernels, allocator)
    sync()
    started = time.perf_counter()
    for start in range(0, frames, args.batch_size):
        batch = torch.from_numpy(data[start : start + args.batch_size])
        if device.type == "cuda":
            batch = batch.pin_memory().to(device, non_blocking=True)
        encoder.encode(batch).cpu()
    sync()
    encode_s = time.perf_counter() - started
    del encoder

    # the whole extraction
    store = args.out / "store"
    shutil.rmtree(store, ignore_errors=True)
    started = time.perf_counter()
    report = extract(ExtractOptions(videos=videos_dir, store=store, encoders=[args.encoder], fps=args.fps,
                                    batch_size=args.batch_size, workers=workers, device=args.device))
    wall = time.perf_counter() - started
    assert report.frames == frames and not report.failed, (report.frames, frames, report.failed)

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, device {device}"
          + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else "")
          + f"; torch {torch.__version__}; {args.encoder}, {len(paths)} videos of {args.seconds:g} s {args.size} "
          f"@ {args.video_fps} fps, sampled at {args.fps:g} fps: {frames} frames; --workers {workers} --batch-size {args.batch_size}")
    print(f"decode-only {decode_s:.2f} s ({frames / decode_s:.1f} frames/s), encode-only {encode_s:.2f} s "
          f"({frames / encode_s:.1f} frames/s), extract {wall:.2f} s ({frames / wall:.1f} frames/s)")
    print(f"wall / (decode + encode) = {wall / (decode_s + encode_s):.3f}  (CPU target <= 1.1)")
    print(f"wall / max(decode, encode) = {wall / max(decode_s, encode_s):.3f}  (GPU target <= 1.1)")
    print("stages inside extract: " + ", ".join(f"{k} {v:.2f}" for k, v in report.profile.items()))


if __name__ == "__main__":
    main()
