"""Decode workers: processes that decode, sample and preprocess videos ahead of the encoder.

Each worker takes one video at a time and streams small chunks of steps (preprocessed frames,
clips or audio windows, see ``steps.py``) through its own pipe, at most a few chunks ahead of
the encoder (so memory stays bounded).
Workers import PyAV, numpy and PIL only; they never load torch. ``decode_task`` is the same
generator whether it runs in a worker process or inline (``--workers 0``).
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Iterator

import numpy as np

from alex.errors import VideoDecodeError
from alex.pipeline.decode import VideoReader, frame_to_rgb
from alex.pipeline.listing import fingerprint
from alex.pipeline.sampling import Sampling, even_targets, fps_targets, sample_stream
from alex.pipeline.steps import AudioSteps, Step, StepSpec

CHUNK_STEPS = 8


@dataclass
class DecodeTask:
    task_id: int
    path: str
    steps: dict[str, StepSpec]  # encoder name -> how its steps are built from the sampled frames
    sampling: Sampling
    threads: int = 0
    fingerprint: str | None = None  # None: hash the file here, in parallel with other workers
    audio_rate: int = 16000
    video_id: str = ""  # seeds augmented views, so they do not depend on the worker


@dataclass
class StepChunk:
    """Consecutive steps of one video for one encoder."""

    index: np.ndarray  # (N,) int32
    t_start: np.ndarray  # (N,) float64 seconds
    t_end: np.ndarray  # (N,) float64 seconds
    padded: np.ndarray  # (N,) int16: frames repeated to complete a clip
    data: np.ndarray  # (N, ...) the encoder's input
    frame_times: np.ndarray | None = None  # (N, clip_frames) float64: each clip frame's start time


@dataclass
class DecodeStats:
    decode_s: float = 0.0
    preprocess_s: float = 0.0
    frames: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


# Messages to the parent, as tuples: ("start", task_id, pid) ("steps", task_id, encoder, StepChunk)
# ("done", task_id, info dict, DecodeStats, fingerprint) ("error", task_id, reason, info dict | None, fingerprint)


def _pack(steps: list[Step]) -> StepChunk:
    return StepChunk(
        index=np.array([s.index for s in steps], dtype=np.int32),
        t_start=np.array([s.t_start for s in steps], dtype=np.float64),
        t_end=np.array([s.t_end for s in steps], dtype=np.float64),
        padded=np.array([s.padded for s in steps], dtype=np.int16),
        data=np.stack([s.data for s in steps]),
        frame_times=np.stack([s.frame_times for s in steps]) if steps[0].frame_times is not None else None,
    )


def decode_task(task: DecodeTask, chunk_steps: int = CHUNK_STEPS) -> Iterator[tuple]:
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
            n = task.sampling.num_frames
            window_s = (t_last - t_first) / (n - 1) if n > 1 and t_last > t_first else max(t_last - t_first, 1.0)
            # from the first frame actually shown (a decoder may drop leading packets) to the last
            targets = lambda first: even_targets(max(first, t_first), t_last, n)  # noqa: E731
        else:
            window_s = 1.0 / task.sampling.fps
            targets = lambda first: fps_targets(first, task.sampling.fps)  # noqa: E731
        video_key = int.from_bytes(hashlib.blake2b(task.video_id.encode(), digest_size=8).digest(), "big")
        builders = {name: spec.build(window_s, video_key) for name, spec in task.steps.items()}
        audio = {name: b for name, b in builders.items() if isinstance(b, AudioSteps)}
        visual = {name: b for name, b in builders.items() if name not in audio}
        pending: dict[str, list[Step]] = {name: [] for name in builders}

        def on_audio(samples: np.ndarray, start: float) -> None:
            for name, builder in audio.items():
                pending[name].extend(builder.feed_audio(samples, start))

        samples = sample_stream(reader.frames(on_audio if audio else None, task.audio_rate), targets)
        last_frame, rgb = None, None
        while True:
            t0 = time.perf_counter()
            sample = next(samples, None)
            t1 = time.perf_counter()
            stats.decode_s += t1 - t0
            if sample is None:
                break
            if visual and sample.payload is not last_frame:  # the same frame may serve several targets
                last_frame, rgb = sample.payload, frame_to_rgb(sample.payload, reader.rotation)
            for name, builder in visual.items():
                pending[name].extend(builder.feed(sample.index, sample.t_start, sample.t_end, rgb))
            for name, builder in audio.items():  # audio windows start at the targets themselves
                pending[name].extend(builder.feed(sample.index, sample.target, sample.target + window_s, None))
            stats.preprocess_s += time.perf_counter() - t1
            stats.frames += 1
            for name, steps in pending.items():
                if len(steps) >= chunk_steps:
                    yield ("steps", task.task_id, name, _pack(steps))
                    pending[name] = []
        for name, builder in builders.items():
            pending[name].extend(builder.finish())
        for name, steps in pending.items():
            for start in range(0, len(steps), chunk_steps):
                yield ("steps", task.task_id, name, _pack(steps[start : start + chunk_steps]))
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


def _worker_main(tasks: mp.Queue, conn: Connection, ahead: int) -> None:
    """Decode tasks until told to stop. A sender thread ships messages through this worker's own
    pipe while decoding continues, up to ``ahead`` messages in front of the parent."""
    parent = os.getppid()
    outbox: queue.Queue = queue.Queue(maxsize=ahead)

    def orphaned() -> bool:  # the parent was killed: do not linger
        return os.getppid() != parent

    def send_loop() -> None:
        while (message := outbox.get()) is not None:
            try:
                conn.send(message)
            except (BrokenPipeError, OSError):
                os._exit(1)

    sender = threading.Thread(target=send_loop, daemon=True)
    sender.start()

    def put(message: tuple) -> None:
        while True:
            try:
                outbox.put(message, timeout=1.0)
                return
            except queue.Full:
                if orphaned():
                    os._exit(1)

    while True:
        try:
            task = tasks.get(timeout=1.0)
        except queue.Empty:
            if orphaned():
                os._exit(1)
            continue
        if task is None:
            break
        put(("start", task.task_id, os.getpid()))
        for message in decode_task(task):
            put(message)
    outbox.put(None)
    sender.join()
    conn.close()


class InlineDecoder:
    """``--workers 0``: decode in the calling process, one video after another."""

    def __init__(self, tasks: list[DecodeTask]):
        self._tasks = tasks

    def messages(self) -> Iterator[tuple | None]:
        for task in self._tasks:
            yield ("start", task.task_id, os.getpid())
            yield from decode_task(task)

    def close(self, abort: bool = False) -> None:
        pass


@dataclass
class _Worker:
    proc: Any
    tasks: Any  # mp.Queue of DecodeTask | None
    conn: Connection  # read end of this worker's own pipe
    assigned: list[int] = field(default_factory=list)  # task ids, in the order it decodes them
    started: bool = False  # has it taken a task (as opposed to dying at start-up)?


class ProcessDecoder:
    """A pool of decode processes, each with its own task queue and its own result pipe.

    Nothing is shared between workers, so one that dies (a crash inside FFmpeg, or a kill) cannot
    block the others or leave a torn message in a shared channel: its pipe reaches end-of-file,
    the video it was decoding becomes an ``error`` message, its queued videos go back to the pool,
    and a fresh worker takes its place. ``messages()`` yields messages, or None when nothing
    arrived for ``idle_s`` (the caller's cue to encode a partial batch)."""

    def __init__(self, tasks: list[DecodeTask], workers: int, ahead: int = 4, idle_s: float = 0.05, prefetch: int = 2):
        self._ctx = mp.get_context("spawn")  # never fork a process that holds torch and threads
        self._pending = list(reversed(tasks))
        self._by_id = {t.task_id: t for t in tasks}
        self._unfinished = set(self._by_id)
        self._ahead, self._idle_s, self._prefetch = ahead, idle_s, prefetch
        self._workers: list[_Worker] = [self._spawn() for _ in range(workers)]
        self._feed()

    def _spawn(self) -> _Worker:
        tasks = self._ctx.Queue()
        reader, writer = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(target=_worker_main, args=(tasks, writer, self._ahead), daemon=True)
        proc.start()
        writer.close()  # only the worker holds the write end: its death is end-of-file here
        return _Worker(proc, tasks, reader)

    def _feed(self) -> None:
        """Round-robin: every worker gets a video before any gets a second one."""
        for depth in range(1, self._prefetch + 1):
            for worker in self._workers:
                if self._pending and len(worker.assigned) < depth:
                    task = self._pending.pop()
                    worker.assigned.append(task.task_id)
                    worker.tasks.put(task)

    def messages(self) -> Iterator[tuple | None]:
        while self._unfinished:
            ready = wait([w.conn for w in self._workers], timeout=self._idle_s)
            if not ready:
                yield None
                continue
            for conn in ready:
                worker = next(w for w in self._workers if w.conn is conn)
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    yield from self._replace(worker)
                    continue
                if message[0] == "start":
                    worker.started = True
                elif message[0] in ("done", "error"):
                    self._finish(message[1])
                yield message

    def _finish(self, task_id: int) -> None:
        self._unfinished.discard(task_id)
        for worker in self._workers:
            if task_id in worker.assigned:
                worker.assigned.remove(task_id)
        self._feed()

    def _replace(self, dead: _Worker) -> Iterator[tuple]:
        dead.proc.join(timeout=5)
        code = dead.proc.exitcode
        if not dead.started:
            raise RuntimeError(
                f"a decode worker process exited (code {code}) before taking a video; "
                "see its traceback above, or run with --workers 0 to decode in this process"
            )
        self._workers[self._workers.index(dead)] = self._spawn()
        dead.conn.close()
        current, queued = dead.assigned[:1], dead.assigned[1:]
        self._pending.extend(self._by_id[t] for t in reversed(queued))
        for task_id in current:
            self._finish(task_id)
            yield ("error", task_id, f"the decoder process died while decoding (exit code {code})", None, None)
        self._feed()

    def close(self, abort: bool = False) -> None:
        """Stop the workers: politely after a finished run, at once after a failed one."""
        for worker in self._workers:
            if abort:
                worker.proc.kill()
            else:
                worker.tasks.put(None)
        for worker in self._workers:
            worker.proc.join(timeout=5)
            if worker.proc.is_alive():
                worker.proc.kill()
                worker.proc.join()
            worker.tasks.cancel_join_thread()
            worker.conn.close()
