"""Search and storage overheads of the store, measured side by side in one run.

Writes N pooled 512-d float16 embeddings (``--videos`` videos x ``--steps`` steps) through the
store writer, then
- search: top-10 by cosine through ``Store.search`` (alex's DuckDB path) with a warm cache,
  against numpy brute force (cosine on the same vectors, in memory); also the one-shot path
  (``cache=False``, what ``alex search`` runs) for reference;
- storage: bytes of the store folder over the raw float16 bytes of the vectors (N x D x 2).

    python benchmarks/search_and_storage.py [--num-videos 1000 --steps 1000 --dim 512]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import time
from pathlib import Path

import numpy as np

import alex
from alex.store.writer import StepBatch, StoreWriter


def build(root: Path, videos: int, steps: int, dim: int) -> None:
    rng = np.random.default_rng(0)
    with StoreWriter(root, shard_videos=250) as writer:
        writer.set_encoder_config("clip", {"family": "clip", "model": "bench", "weights": None, "spec": "clip:bench",
                                           "dim": dim, "dtype": "float16", "sampling": {"fps": 1.0, "num_frames": None}})
        for v in range(videos):
            video_id = f"video_{v:05d}.mp4"
            writer.begin_video(video_id)
            t = np.arange(steps, dtype=np.float64)
            writer.append(video_id, "clip", StepBatch(np.arange(steps), t, t + 1, rng.standard_normal((steps, dim), dtype=np.float32), {}))
            writer.finish_video({"video_id": video_id, "fingerprint": str(v), "status": "ok", "size_bytes": 0}, ["clip"])


def best(fn, repeat: int = 5) -> float:
    fn()  # warm
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-videos", "--videos", dest="videos", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--out", type=Path, default=Path("/tmp/alex-bench-search"))
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    n = args.videos * args.steps
    started = time.perf_counter()
    build(args.out, args.videos, args.steps, args.dim)
    print(f"machine: {platform.machine()}, Python {platform.python_version()}; wrote {n:,} x {args.dim} float16 "
          f"vectors in {time.perf_counter() - started:.1f} s")

    store = alex.open_store(args.out)
    query = np.random.default_rng(1).standard_normal(args.dim).astype(np.float32)
    vectors = np.concatenate([store.arrays(f"video_{v:05d}.mp4", "clip").embedding for v in range(args.videos)]).astype(np.float32)

    def numpy_cosine():
        scores = vectors @ query / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))
        top = np.argpartition(-scores, 10)[:10]
        return top[np.argsort(-scores[top])]

    started = time.perf_counter()
    store.search(query, "clip", k=10).fetchall()
    cold = time.perf_counter() - started
    duckdb_warm = best(lambda: store.search(query, "clip", k=10).fetchall())
    duckdb_once = best(lambda: store.search(query, "clip", k=10, cache=False).fetchall(), repeat=2)
    numpy_time = best(numpy_cosine)
    hits = store.search(query, "clip", k=10).fetchall()
    expected = numpy_cosine()
    assert [h[0] for h in hits][:3] == [f"video_{i // args.steps:05d}.mp4" for i in expected[:3]], "the two disagree"
    print(f"search top-10 over {n:,} x {args.dim}: DuckDB warm {duckdb_warm:.3f} s, numpy cosine {numpy_time:.3f} s "
          f"-> ratio {duckdb_warm / numpy_time:.2f} (target <= 1.5); first query incl. cache build {cold:.1f} s; "
          f"one-shot Parquet scan {duckdb_once:.2f} s")
    store.close()

    raw = n * args.dim * 2
    on_disk = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"storage: {on_disk / 1e6:.1f} MB on disk for {raw / 1e6:.1f} MB of raw float16 vectors -> ratio "
          f"{on_disk / raw:.3f} (target <= 1.1)")


if __name__ == "__main__":
    main()
