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
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Iterator

import numpy as np

from alex.errors import AudioSourceError, VideoDecodeError
from alex.pipeline.decode import VideoReader, frame_to_rgb, open_audio
from alex.pipeline.listing import fingerprint
from alex.pipeline.sampling import Sample, Sampling, StreamSampler, even_targets, fps_targets
from alex.pipeline.steps import Step, StepsUnavailable, StepSpec

UNEXPECTED = "unexpected "  # the start of the reason of a failure that is not a decoding error (a bug, an exotic file)

CHUNK_STEPS = 8


@dataclass
class DecodeTask:
    task_id: int
    path: str
    steps: dict[str, StepSpec]  # encoder name -> how its steps are built from the sampled frames
    sampling: Sampling
    threads: int = 0
    fingerprint: str | None = None  # None: hash the file here, in parallel with other workers
    video_id: str = ""  # seeds augmented views, so they do not depend on the worker
    samplings: dict[str, Sampling] = field(default_factory=dict)  # encoders that sample at their own rate
    audio_path: str | None = None  # read audio from this file instead of the container (--audio-dir)
    audio_error: str | None = None  # why the paired audio file cannot be used (e.g. none found)


@dataclass
class StepChunk:
    """Consecutive steps of one video for one encoder."""

    index: np.ndarray  # (N,) int32
    t_start: np.ndarray  # (N,) float64 seconds
    t_end: np.ndarray  # (N,) float64 seconds
    padded: np.ndarray  # (N,) int16: frames repeated to complete a clip
    data: np.ndarray | dict[str, np.ndarray]  # (N, ...) the encoder's input, or name -> (N, ...)
    frame_times: np.ndarray | None = None  # (N, clip_frames) float64: each clip frame's start time


@dataclass
class DecodeStats:
    decode_s: float = 0.0
    preprocess_s: float = 0.0
    frames: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


# Messages to the parent, as tuples: ("start", task_id, pid) ("steps", task_id, encoder, StepChunk)
# ("item_error", task_id, encoder, reason): that encoder fails on this video, the others go on
# ("no_audio", task_id, encoder): an audio encoder on a video without an audio track (and no --audio-dir)
# ("done", task_id, info dict, DecodeStats, fingerprint)
# ("error", task_id, reason, info dict | None, fingerprint[, traceback text of an unexpected exception])


def _pack(steps: list[Step]) -> StepChunk:
    first = steps[0].data
    return StepChunk(
        index=np.array([s.index for s in steps], dtype=np.int32),
        t_start=np.array([s.t_start for s in steps], dtype=np.float64),
        t_end=np.array([s.t_end for s in steps], dtype=np.float64),
        padded=np.array([s.padded for s in steps], dtype=np.int16),
        # one array per step, or several (e.g. a clip's frames and its audio): stacked per name
        data={key: np.stack([s.data[key] for s in steps]) for key in first} if isinstance(first, dict)
        else np.stack([s.data for s in steps]),
        frame_times=np.stack([s.frame_times for s in steps]) if steps[0].frame_times is not None else None,
    )


def _targets(sampling: Sampling, reader: VideoReader, bounds: list) -> tuple[Any, float]:
    """(make_targets, window seconds) of a sampling; ``--num-frames`` needs the video's time span
    (one demux pass, done once per video and kept in ``bounds``)."""
    if sampling.num_frames is None:
        return (lambda first: fps_targets(first, sampling.fps)), 1.0 / sampling.fps
    if not bounds:
        bounds.extend(reader.time_bounds())
    t_first, t_last = bounds
    n = sampling.num_frames
    window_s = (t_last - t_first) / (n - 1) if n > 1 and t_last > t_first else max(t_last - t_first, 1.0)
    # from the first frame actually shown (a decoder may drop leading packets) to the last
    return (lambda first: even_targets(max(first, t_first), t_last, n)), window_s


def decode_task(task: DecodeTask, chunk_steps: int = CHUNK_STEPS) -> Iterator[tuple]:
    """Decode one video into messages; a decode failure is an ``error`` message, never an exception.

    Encoders that share a sampling share one sampler; one with its own rate (``task.samplings``)
    gets its own, over the same decoded frames (each video is decoded once)."""
    stats = DecodeStats()
    reader: VideoReader | None = None
    digest = task.fingerprint
    try:
        video_key = int.from_bytes(hashlib.blake2b(task.video_id.encode(), digest_size=8).digest(), "big")
        hears = {name for name, spec in task.steps.items() if spec.hears_audio}
        audio_error = task.audio_error if hears else None
        if hears and audio_error is None and task.audio_path is not None:
            try:
                open_audio(task.path, task.audio_path).close()
            except AudioSourceError as exc:
                audio_error = exc.reason
        steps = dict(task.steps)
        if audio_error is not None:  # the paired audio file is unusable: those encoders fail, the rest go on
            for name in sorted(hears):
                yield ("item_error", task.task_id, name, audio_error)
                del steps[name]
            hears = set()
        reader = VideoReader(task.path, threads=task.threads, audio_path=task.audio_path)
        if digest is None:  # hashed once the file opens as a video: a 10 GB file of junk costs a probe, not a read
            try:
                digest = fingerprint(task.path)
            except OSError as exc:
                raise VideoDecodeError(task.path, f"cannot read file: {exc.strerror or exc}") from exc
        if hears and task.audio_path is None and not reader.container.streams.audio:
            for name in sorted(hears):  # nothing to hear: those encoders are done with 0 steps, the rest go on
                yield ("no_audio", task.task_id, name)
                del steps[name]
            hears = set()
        bounds: list = []
        groups: dict[Sampling, list[str]] = {}
        for name in steps:
            groups.setdefault(task.samplings.get(name, task.sampling), []).append(name)
        samplers, windows, builders = {}, {}, {}
        for sampling, names in groups.items():
            make_targets, windows[sampling] = _targets(sampling, reader, bounds)
            samplers[sampling] = StreamSampler(make_targets, count=sampling.num_frames)
            builders.update({name: steps[name].build(windows[sampling], video_key) for name in names})
        if not groups:  # nothing to encode (every encoder failed above): decode anyway, for the row
            samplers[task.sampling] = StreamSampler(_targets(task.sampling, reader, bounds)[0])
        pending: dict[str, list[Step]] = {name: [] for name in builders}
        rates = tuple(sorted({steps[name].rate for name in hears}))

        failed: dict[str, str] = {}  # encoders that cannot use this video, and why (not yet reported)

        def give_up(name: str, reason: str) -> None:
            failed[name], builders[name], pending[name] = reason, None, []

        def on_audio(samples: np.ndarray, start: float, rate: int) -> None:
            for name in hears:
                if builders[name] is not None and steps[name].rate == rate:
                    pending[name].extend(builders[name].feed_audio(samples, start))

        last_frame, rgb = None, None

        def take(sampling: Sampling, sample: Sample) -> None:
            nonlocal last_frame, rgb
            for name in groups.get(sampling, []):
                builder = builders[name]
                if builder is None:
                    continue
                if steps[name].kind == "audio":  # audio windows start at the targets themselves
                    pending[name].extend(builder.feed(sample.index, sample.target, sample.target + windows[sampling], None))
                    continue
                if sample.payload is not last_frame:  # the same frame may serve several targets
                    last_frame, rgb = sample.payload, frame_to_rgb(sample.payload, reader.rotation)
                try:
                    pending[name].extend(builder.feed(sample.index, sample.t_start, sample.t_end, rgb))
                except StepsUnavailable as exc:  # e.g. audio-visual clips of a video whose audio never comes
                    give_up(name, f"{exc} (video {task.path})")
            stats.frames += 1

        def report_failures() -> Iterator[tuple]:
            for name in list(failed):
                yield ("item_error", task.task_id, name, failed.pop(name))

        frames = reader.frames(on_audio if hears else None, rates)
        while True:
            t0 = time.perf_counter()
            decoded = next(frames, None)
            t1 = time.perf_counter()
            stats.decode_s += t1 - t0
            if decoded is None:
                break
            for sampling, sampler in samplers.items():
                for sample in sampler.push(*decoded):
                    take(sampling, sample)
            stats.preprocess_s += time.perf_counter() - t1
            yield from report_failures()
            for name, ready in pending.items():
                if len(ready) >= chunk_steps:
                    yield ("steps", task.task_id, name, _pack(ready))
                    pending[name] = []
        for sampling, sampler in samplers.items():
            for sample in sampler.finish():
                take(sampling, sample)
            if sampler.count is not None and 0 < sampler.emitted != sampler.count:  # never fewer, silently
                raise VideoDecodeError(task.path, f"sampled {sampler.emitted} of the {sampler.count} frames "
                                                  f"--num-frames asked for")
        for name, builder in builders.items():
            if builder is None:
                continue
            if name in hears and reader.audio_failure is not None:  # the audio file broke mid-way
                give_up(name, reader.audio_failure)
                continue
            try:
                pending[name].extend(builder.finish())
            except StepsUnavailable as exc:  # e.g. an audio-visual clip encoder on a video without audio
                give_up(name, f"{exc} (video {task.path})")
        yield from report_failures()
        for name, ready in pending.items():
            if builders[name] is None:
                continue
            for start in range(0, len(ready), chunk_steps):
                yield ("steps", task.task_id, name, _pack(ready[start : start + chunk_steps]))
        yield ("done", task.task_id, reader.info().to_row(), stats, digest)
    except VideoDecodeError as exc:
        yield ("error", task.task_id, exc.reason, _safe_info(reader), digest)
    except Exception as exc:  # a bug or an exotic file must not take the run down (the parent counts them)
        yield ("error", task.task_id, f"{UNEXPECTED}{type(exc).__name__}: {exc}"[:300], _safe_info(reader), digest,
               traceback.format_exc())
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
    decoding: int | None = None  # the task it said it started and has not finished
    since: float = 0.0  # when it last sent anything about that task (progress)
    timed_out: bool = False  # killed by the parent: no progress for --video-timeout seconds


class ProcessDecoder:
    """A pool of decode processes, each with its own task queue and its own result pipe.

    Nothing is shared between workers, so one that dies (a crash inside FFmpeg, or a kill) cannot
    block the others or leave a torn message in a shared channel: its pipe reaches end-of-file,
    the video it was decoding becomes an ``error`` message, its queued videos go back to the pool,
    and a fresh worker takes its place. ``messages()`` yields messages, or None when nothing
    arrived for ``idle_s`` (the caller's cue to encode a partial batch)."""

    def __init__(self, tasks: list[DecodeTask], workers: int, ahead: int = 16, idle_s: float = 0.05, prefetch: int = 6,
                 video_timeout: float | None = None):
        self._ctx = mp.get_context("spawn")  # never fork a process that holds torch and threads
        self.video_timeout = video_timeout  # seconds without progress on one video before its worker is killed
        self._orphan_deaths: dict[int, int] = {}  # task id -> deaths of workers that held it queued, not started
        self._pending: list[DecodeTask] = []
        self._by_id: dict[int, DecodeTask] = {}
        self._unfinished: set[int] = set()
        self._ahead, self._idle_s, self._prefetch = ahead, idle_s, prefetch
        self._workers: list[_Worker] = [self._spawn() for _ in range(workers)]
        self.add(tasks)

    def add(self, tasks: list[DecodeTask]) -> None:
        """Queue more videos. The pool can start with none: its processes spawn and import while the
        caller loads its models, and take videos as soon as they are added."""
        self._pending = list(reversed(tasks)) + self._pending
        self._by_id.update((t.task_id, t) for t in tasks)
        self._unfinished.update(t.task_id for t in tasks)
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
            self._kill_stalled()
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
                worker.since = time.monotonic()
                if message[0] == "start":
                    worker.started, worker.decoding = True, message[1]
                elif message[0] in ("done", "error"):
                    if worker.decoding == message[1]:
                        worker.decoding = None
                    self._finish(message[1])
                yield message

    def _kill_stalled(self) -> None:
        """A worker that sent nothing about its video for ``video_timeout`` seconds is killed; its
        pipe's end-of-file then blames that video (``_replace``)."""
        if not self.video_timeout:
            return
        now = time.monotonic()
        for worker in self._workers:
            if worker.decoding is not None and not worker.timed_out and now - worker.since > self.video_timeout:
                worker.timed_out = True
                worker.proc.kill()

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
        # Blame only the video it said it was decoding; the ones queued behind it go back to the pool.
        # (A death between two videos blames none. A video whose "start" never arrived but that was
        # first in line at two deaths is blamed too, so a video that kills its decoder at once
        # cannot go round forever.)
        blamed = [] if dead.decoding is None or dead.decoding not in self._unfinished else [dead.decoding]
        queued = [t for t in dead.assigned if t not in blamed]
        if queued and not blamed:
            first = queued[0]
            self._orphan_deaths[first] = self._orphan_deaths.get(first, 0) + 1
            if self._orphan_deaths[first] >= 2:
                blamed, queued = [first], queued[1:]
        dead.assigned = []
        self._pending.extend(self._by_id[t] for t in reversed(queued))
        if dead.timed_out:
            why = f"timed out: no decoding progress for {self.video_timeout:g} s (--video-timeout); the decoder was stopped"
        else:
            why = f"the decoder process died while decoding (exit code {code})"
        for task_id in blamed:
            self._finish(task_id)
            yield ("error", task_id, why, None, None)
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
