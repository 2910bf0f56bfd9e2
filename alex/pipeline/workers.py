"""Decode workers: processes that decode, sample and preprocess videos ahead of the encoder.

Each worker takes one video at a time and streams small chunks of preprocessed uint8 frames
into a bounded queue (so memory stays bounded and decoding never runs unboundedly ahead).
Workers import PyAV, numpy and PIL only; they never load torch. ``decode_task`` is the same
generator whether it runs in a worker process or inline (``--workers 0``).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from alex.errors import VideoDecodeError
from alex.pipeline.decode import VideoReader, frame_to_rgb
from alex.pipeline.listing import fingerprint
from alex.pipeline.sampling import Sampling, even_targets, fps_targets, sample_stream

CHUNK_FRAMES = 8


@dataclass
class DecodeTask:
    task_id: int
    path: str
    transforms: dict[str, Callable[[np.ndarray], np.ndarray]]  # encoder name -> spatial preprocessing
    sampling: Sampling
    threads: int = 0
    fingerprint: str | None = None  # None: hash the file here, in parallel with other workers


@dataclass
class FrameChunk:
    """Consecutive samples of one video: per encoder (N, h, w, 3) uint8, times in seconds."""

    index: np.ndarray  # (N,) int32
    t_start: np.ndarray  # (N,) float64
    t_end: np.ndarray  # (N,) float64
    pixels: dict[str, np.ndarray]


@dataclass
class DecodeStats:
    decode_s: float = 0.0
    preprocess_s: float = 0.0
    frames: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


# Messages on the result queue, as tuples: ("start", task_id, pid) ("frames", task_id, FrameChunk)
# ("done", task_id, info dict, DecodeStats, fingerprint) ("error", task_id, reason, info dict | None, fingerprint)


def decode_task(task: DecodeTask, chunk_frames: int = CHUNK_FRAMES) -> Iterator[tuple]:
    """Decode one video into messages; a decode failure is an ``error`` message, never an exception."""
    stats = DecodeStats()
    reader: VideoReader | None = None
    digest = task.fingerprint
    try:
        if digest is None:
            try:
                digest = fingerprint(task.path)
            except OSError as exc:
                raise VideoDecodeError(task.path, f"cannot read file: {exc.strerror or exc}") from exc
        reader = VideoReader(task.path, threads=task.threads)
        if task.sampling.num_frames is not None:
            t_first, t_last = reader.time_bounds()
            targets = lambda _first: even_targets(t_first, t_last, task.sampling.num_frames)  # noqa: E731
        else:
            targets = lambda first: fps_targets(first, task.sampling.fps)  # noqa: E731
        samples = sample_stream(reader.frames(), targets)
        chunk: list[tuple[int, float, float, dict[str, np.ndarray]]] = []
        last_frame, last_pixels = None, None
        while True:
            t0 = time.perf_counter()
            sample = next(samples, None)
            t1 = time.perf_counter()
            stats.decode_s += t1 - t0
            if sample is None:
                break
            if sample.payload is not last_frame:  # the same frame may serve several targets
                rgb = frame_to_rgb(sample.payload, reader.rotation)
                last_frame, last_pixels = sample.payload, {name: t(rgb) for name, t in task.transforms.items()}
            stats.preprocess_s += time.perf_counter() - t1
            chunk.append((sample.index, sample.t_start, sample.t_end, last_pixels))
            stats.frames += 1
            if len(chunk) >= chunk_frames:
                yield ("frames", task.task_id, _pack(chunk))
                chunk = []
        if chunk:
            yield ("frames", task.task_id, _pack(chunk))
        yield ("done", task.task_id, reader.info().to_row(), stats, digest)
    except VideoDecodeError as exc:
        yield ("error", task.task_id, exc.reason, _safe_info(reader), digest)
    except Exception as exc:  # a bug or an exotic file must not take the run down
        yield ("error", task.task_id, f"unexpected {type(exc).__name__}: {exc}"[:300], _safe_info(reader), digest)
    finally:
        if reader is not None:
            reader.close()


def _safe_info(reader: VideoReader | None) -> dict[str, Any] | None:
    if reader is None:
        return None
    try:
        return reader.info().to_row()
    except Exception:
        return None


def _pack(chunk: list[tuple[int, float, float, dict[str, np.ndarray]]]) -> FrameChunk:
    names = chunk[0][3].keys()
    return FrameChunk(
        index=np.array([c[0] for c in chunk], dtype=np.int32),
        t_start=np.array([c[1] for c in chunk], dtype=np.float64),
        t_end=np.array([c[2] for c in chunk], dtype=np.float64),
        pixels={name: np.stack([c[3][name] for c in chunk]) for name in names},
    )


def _worker_main(tasks: mp.Queue, results: mp.Queue) -> None:
    parent = os.getppid()

    def orphaned() -> bool:  # the parent was killed: do not linger
        return os.getppid() != parent

    def put(message: tuple) -> None:
        while True:
            try:
                results.put(message, timeout=1.0)
                return
            except queue.Full:
                if orphaned():
                    os._exit(1)

    while True:
        try:
            task = tasks.get(timeout=1.0)
        except queue.Empty:
            if orphaned():
                return
            continue
        if task is None:
            return
        put(("start", task.task_id, os.getpid()))
        for message in decode_task(task):
            put(message)


class InlineDecoder:
    """``--workers 0``: decode in the calling process, one video after another."""

    def __init__(self, tasks: list[DecodeTask]):
        self._tasks = tasks

    def messages(self) -> Iterator[tuple | None]:
        for task in self._tasks:
            yield ("start", task.task_id, os.getpid())
            yield from decode_task(task)

    def close(self) -> None:
        pass


class ProcessDecoder:
    """A pool of decode processes, each with its own task queue, so the parent always knows
    which videos a worker holds. ``messages()`` yields messages, or None when nothing arrived
    for ``idle_s`` (the caller's cue to encode a partial batch). A worker that dies (a crash
    inside FFmpeg) turns the video it was decoding into an ``error`` message, its queued
    videos go to the others, and a fresh worker takes its place."""

    def __init__(self, tasks: list[DecodeTask], workers: int, queue_chunks: int | None = None,
                 idle_s: float = 0.05, prefetch: int = 2):
        self._ctx = mp.get_context("spawn")  # never fork a process that holds torch and threads
        self._pending = list(reversed(tasks))
        self._unfinished = {t.task_id for t in tasks}
        self._by_id = {t.task_id: t for t in tasks}
        self._results: mp.Queue = self._ctx.Queue(maxsize=queue_chunks or 4 * workers + 4)
        self._idle_s = idle_s
        self._prefetch = prefetch
        self._workers: list[dict[str, Any]] = [self._spawn() for _ in range(workers)]
        self._feed()

    def _spawn(self) -> dict[str, Any]:
        tasks: mp.Queue = self._ctx.Queue()
        proc = self._ctx.Process(target=_worker_main, args=(tasks, self._results), daemon=True)
        proc.start()
        return {"proc": proc, "tasks": tasks, "assigned": [], "suspect": False, "started": False}

    def _feed(self) -> None:
        for worker in self._workers:
            while self._pending and len(worker["assigned"]) < self._prefetch:
                task = self._pending.pop()
                worker["assigned"].append(task.task_id)
                worker["tasks"].put(task)

    def messages(self) -> Iterator[tuple | None]:
        while self._unfinished:
            try:
                message = self._results.get(timeout=self._idle_s)
            except queue.Empty:
                yield None
                yield from self._reap_dead()
                continue
            if message[0] == "start":
                for worker in self._workers:
                    if worker["proc"].pid == message[2]:
                        worker["started"] = True
            elif message[0] in ("done", "error") and message[1] in self._unfinished:
                self._finish(message[1])
            yield message

    def _finish(self, task_id: int) -> None:
        self._unfinished.discard(task_id)
        for worker in self._workers:
            if task_id in worker["assigned"]:
                worker["assigned"].remove(task_id)
        self._feed()

    def _reap_dead(self) -> Iterator[tuple]:
        for i, worker in enumerate(self._workers):
            if worker["proc"].is_alive():
                continue
            if not worker["suspect"]:  # drain what it sent before dying, then reap
                worker["suspect"] = True
                continue
            code = worker["proc"].exitcode
            if not worker["started"]:
                raise RuntimeError(
                    f"a decode worker process exited (code {code}) before taking a video; "
                    "see its traceback above, or run with --workers 0 to decode in this process"
                )
            assigned = worker["assigned"]
            self._workers[i] = self._spawn()
            self._pending.extend(self._by_id[t] for t in reversed(assigned[1:]))
            if assigned:
                self._finish(assigned[0])
                yield ("error", assigned[0], f"the decoder process died while decoding (exit code {code})", None, None)
            self._feed()

    def close(self) -> None:
        for worker in self._workers:
            worker["tasks"].put(None)
        for worker in self._workers:
            worker["proc"].join(timeout=5)
            if worker["proc"].is_alive():
                worker["proc"].kill()
            worker["tasks"].cancel_join_thread()
        self._results.cancel_join_thread()
