"""The extraction orchestrator: list -> plan -> decode ahead in workers -> batch across videos
-> encode -> write atomically.

Decode workers run ahead of the encoder and a batch mixes frames of several videos, so the
encoder never waits on one video's decoder (DESIGN.md, "Data flow"). Re-running skips videos
already done whose file is unchanged, re-extracts changed files, and extracts only the encoders
a video lacks. An audio encoder on a video without an audio track is done too (a ``no_audio``
item, not a failure); a run with ``--audio-dir`` tries it again, from the paired file.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
import warnings
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from alex import __version__
from alex.devices import check_device
from alex.errors import AlexError, UsageError
from alex.pipeline.encoders import DEFAULT_ENCODER, build_encoder, encoder_class, resolve_device
from alex.pipeline.encoders.precision import COMPUTE_DTYPES, LEGACY_COMPUTE_DTYPE, check_compute_dtype, resolve_compute_dtype
from alex.pipeline.encoders.spec import EncoderSpec
from alex.pipeline.listing import VIDEO_EXTENSIONS, VideoFile, fingerprint, list_videos, printable
from alex.pipeline.progress import ExtractProgress
from alex.pipeline.sampling import Sampling
from alex.pipeline.encoders.base import EncoderOutput
from alex.pipeline.workers import UNEXPECTED, DecodeTask, InlineDecoder, ProcessDecoder, StepChunk
from alex.store.config import check_encoder_compatible, check_encoder_name, read_store_config
from alex.store.layout import STATUS_ERROR, STATUS_OK, STORE_DTYPES, STORE_JSON
from alex.store.location import RemoteStore, is_url, remote, store_location
from alex.store.reader import Store, read_remote_config
from alex.store.writer import NonFiniteFeatureError, StepBatch, StoreWriter
from alex.versions import library_versions


DEFAULT_VIDEO_TIMEOUT = 600.0  # generous: a 4K frame at a low --fps takes seconds, not minutes
REPEATED_FAILURES = 3  # the same unexpected error on this many videos stops the run: it is not about them
ERRORS_LOG = "alex-errors.log"  # in the store: tracebacks of unexpected per-video failures
LOGS_DIR = "logs"  # in a store under a URL: logs/alex-errors-<time>-<pid>.log, one per run


class RepeatedFailureError(AlexError):
    """The same unexpected exception on several videos: a bug or a broken install, not bad input."""

    exit_code = 3


def default_workers() -> int:
    """One decode process per spare core (at least one, at most eight)."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


@dataclass
class ExtractOptions:
    videos: Path
    store: Path | str = Path("alex-store")  # a folder, or an fsspec URL (s3://bucket/path)
    encoders: list[str] = field(default_factory=lambda: [DEFAULT_ENCODER])
    fps: float | None = 1.0
    num_frames: int | None = None
    dtype: str = "auto"  # the encoders' precision: auto, fp32, bf16, fp16 (alex.pipeline.encoders.precision)
    store_dtype: str = "float16"  # the stored float type of features: float16 or float32
    globs: list[str] | None = None
    retry_errors: bool = False
    device: str = "auto"
    batch_size: int = 32
    workers: int | None = None
    decoder_threads: int = 0  # FFmpeg threads per decode process; 0: the cores divided among the workers
    quiet: bool = True
    shard_videos: int = 256
    clip_frames: int | None = None  # clip encoders: sampled frames per clip (default: the model's)
    clip_stride: int | None = None  # clip encoders: sampled frames between clip starts (default: clip_frames)
    keep_tokens: bool = False  # languagebind: also store per-frame tokens (Video-LLaVA's layer)
    views: int = 1  # per-frame encoders: K augmented views per frame, view 0 plain (for probe training)
    seed: int = 0  # seeds the augmented views
    audio_dir: Path | None = None  # audio encoders read DIR/<video stem>.wav|.flac instead of the container's track
    video_timeout: float | None = DEFAULT_VIDEO_TIMEOUT  # s without decoding progress on one video (decode workers); None: none
    engine: str = "local"  # local: decode processes here; ray: a Ray Data pipeline (alex.pipeline.ray_engine)
    address: str | None = None  # --engine ray: auto, ray://HOST:PORT, or None to start Ray on this machine


@dataclass
class ExtractReport:
    store: Path
    encoders: list[str]
    planned: int = 0
    ok: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    up_to_date: int = 0
    failed_before: list[tuple[str, str]] = field(default_factory=list)  # error rows not retried
    skipped_files: list[tuple[str, str]] = field(default_factory=list)
    no_audio: list[tuple[str, str]] = field(default_factory=list)  # (video, encoder): no audio track, not a failure
    frames: int = 0
    profile: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @property
    def exit_code(self) -> int:
        """0 all done; 1 finished but some inputs failed (they are ``error`` rows in the store)."""
        return 1 if self.failed or self.failed_before else 0


@dataclass
class _Video:
    task_id: int
    file: VideoFile
    size: int
    mtime_ns: int
    fingerprint: str | None  # None until a decode worker has hashed the file
    encoders: list[str]
    prior_ok: bool = False  # the store already has this very file as an ok video (adding encoders)
    prior_audio: tuple[str | None, str | None] = (None, None)  # its live row's audio_source, audio_path
    received: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    encoded: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    info: dict[str, Any] | None = None
    item_errors: dict[str, str] = field(default_factory=dict)  # encoder -> why it failed on this video
    no_audio: list[str] = field(default_factory=list)  # audio encoders that found no audio track in it
    started: bool = False
    finished: bool = False
    seen_chunks: set = field(default_factory=set)  # (encoder, first step) of encoded chunks written (--engine ray)


@dataclass
class _Pending:
    task_id: int
    index: int
    t_start: float
    t_end: float
    padded: int
    data: np.ndarray | dict[str, np.ndarray]  # one step's encoder input: (h, w, 3) pixels, (T, h, w, 3) clip, audio features...
    frame_times: np.ndarray | None = None  # (T,) a clip's frames' start times


def parse_encoders(texts: list[str]) -> list[EncoderSpec]:
    specs = [EncoderSpec.parse(t) for t in (texts or [DEFAULT_ENCODER])]
    names = [check_encoder_name(s.name) for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UsageError(
            f"encoder name {duplicates[0]!r} is used twice; name them: --encoder a=clip:... --encoder b=clip:..."
        )
    return specs


def extract(options: ExtractOptions) -> ExtractReport:
    """Run one extraction. Configuration errors raise before anything is written."""
    started = time.perf_counter()
    compute, store_dtype = _dtypes(options)
    if options.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {options.batch_size}")
    if options.video_timeout is not None and options.video_timeout <= 0:
        raise UsageError(f"--video-timeout must be positive, got {options.video_timeout:g}")
    check_device(options.device)
    for flag, value in (("--clip-frames", options.clip_frames), ("--clip-stride", options.clip_stride)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be at least 1, got {value}")
    sampling = Sampling(fps=None if options.num_frames is not None else options.fps, num_frames=options.num_frames)
    specs = parse_encoders(options.encoders)
    store = store_location(options.store)  # a folder, or an fsspec URL (s3://bucket/path)
    target = remote(store) if is_url(store) else None
    if options.views < 1:
        raise UsageError(f"--views must be at least 1, got {options.views}")
    clip_options = {"clip_frames": options.clip_frames, "clip_stride": options.clip_stride, "keep_tokens": options.keep_tokens}
    if options.audio_dir is not None and not Path(options.audio_dir).is_dir():
        raise UsageError(f"--audio-dir {options.audio_dir}: no such folder")
    if not Path(options.videos).exists():  # before any encoder's weights are looked for
        raise UsageError(f"--videos {options.videos}: no such file or folder")
    if target is None:
        existing = read_store_config(store) if (store / STORE_JSON).exists() else None
    else:
        existing = read_remote_config(target) if target.fs.exists(target.join(STORE_JSON)) else None
    identities, samplings = {}, {}
    for spec in specs:
        family = encoder_class(spec.family)
        stored = (existing or {}).get("encoders", {}).get(spec.name)
        # Weights are checked when a model loads; an encoder already in the store lends its recorded
        # geometry, so planning a rerun reads no model config and imports no torch.
        identity = family.identity(spec, check=False, stored=stored, **clip_options)
        clip = identity.pop("clip", {})  # clip encoders: clip length and stride are part of the sampling
        own = identity.pop("sampling", None)  # an encoder that eats frames at the model's own rate
        if own is not None:
            samplings[spec.name] = Sampling(**own)
        views = {"views": options.views, "views_seed": options.seed} if options.views > 1 and not clip and spec.family != "audio" else {}
        run_sampling = samplings.get(spec.name, sampling).to_dict()
        identities[spec.name] = {**identity, "sampling": {**run_sampling, **clip, **views}, "dtype": store_dtype}
        if getattr(family, "has_model", False):
            identities[spec.name]["compute_dtype"] = _compute_dtype(compute, stored, options.device)
    if existing is not None:
        for name, identity in identities.items():
            if name in existing["encoders"]:
                stored = existing["encoders"][name]
                if "compute_dtype" in identity and "compute_dtype" not in stored:  # written before --dtype
                    stored = {**stored, "compute_dtype": LEGACY_COMPUTE_DTYPE}
                check_encoder_compatible(name, stored, identity, store)
    report = ExtractReport(store=store, encoders=list(identities))
    listing = list_videos(options.videos, options.globs)
    if not listing.videos:
        how = f"matching --glob {' '.join(options.globs)}" if options.globs else f"with a video extension ({', '.join(VIDEO_EXTENSIONS)})"
        skipped = f"; skipped: {', '.join(f'{p} ({why})' for p, why in listing.skipped[:3])}" if listing.skipped else ""
        raise UsageError(f"--videos {options.videos}: no video files {how}{skipped}; nothing was written")
    report.skipped_files = listing.skipped
    videos, unreadable = _plan(listing.videos, store if existing else None, list(identities), options.retry_errors, report,
                               audio_dir=options.audio_dir is not None)
    report.planned = len(videos) + len(unreadable)
    if existing is not None and not videos and not unreadable:
        report.profile["wall_s"] = time.perf_counter() - started
        return report  # nothing to do: the store is not touched

    workers = default_workers() if options.workers is None else options.workers
    # Start-up overlapped: the decode processes spawn and import while the models load.
    if options.engine not in ("local", "ray"):
        raise UsageError(f"--engine {options.engine}: choose local or ray")
    local_pool = videos and workers > 0 and options.engine == "local"
    pool = ProcessDecoder([], workers, video_timeout=options.video_timeout) if local_pool else None
    try:
        device = resolve_device(options.device)
        needed = {name for v in videos for name in v.encoders} | (set() if existing else set(identities))
        encoders = {spec.name: build_encoder(spec, device, compute_dtype=identities[spec.name].get("compute_dtype", "fp32"),
                                             **clip_options)
                    for spec in specs if spec.name in needed}
    except BaseException:
        if pool is not None:
            pool.close(abort=True)
        raise
    try:
        with _writer(store, target, options) as writer:
            for name, encoder in encoders.items():
                if name not in writer.config["encoders"]:
                    writer.set_encoder_config(name, {**encoder.config(), **identities[name], "alex_version": __version__,
                                                     "versions": library_versions()})
                elif "model_geometry" in encoder.config() and "model_geometry" not in writer.config["encoders"][name]:
                    # a store written before geometries were recorded: its next reruns need no model config
                    writer.set_encoder_config(name, {**writer.config["encoders"][name],
                                                     "model_geometry": encoder.config()["model_geometry"]})
            for file, reason in unreadable:
                writer.fail_video(_row(file, None, STATUS_ERROR, reason))
                report.failed.append((file.video_id, reason))
            if videos:
                run = _Run(options, writer, encoders, videos, sampling, device, report, samplings, pool)
                pool = None  # the run closes its decoders
                run.run()
    finally:
        if pool is not None:
            pool.close(abort=True)
    report.profile["wall_s"] = time.perf_counter() - started
    return report


@contextmanager
def _writer(store: Path | str, target: RemoteStore | None, options: ExtractOptions) -> Iterator[StoreWriter]:
    """The store's writer: in the folder itself, or, for a store under a URL, in a local folder
    from which each sealed segment is uploaded (its ``videos.parquet`` last: the segment's commit)."""
    if target is None:
        with StoreWriter(store, shard_videos=options.shard_videos) as writer:
            yield writer
        return
    work = Path(tempfile.mkdtemp(prefix="alex-upload-"))
    try:
        with StoreWriter(work, shard_videos=options.shard_videos, remote=target) as writer:
            yield writer
    finally:
        log = work / ERRORS_LOG
        if log.exists():  # object stores cannot append: each run's tracebacks are a file of their own
            name = f"{Path(ERRORS_LOG).stem}-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}-{os.getpid()}.log"
            target.fs.put_file(str(log), target.join(LOGS_DIR, name))
        shutil.rmtree(work, ignore_errors=True)


def _dtypes(options: ExtractOptions) -> tuple[str, str]:
    """(the encoders' precision, the stored float type). ``dtype`` named the stored type before it
    named the precision: ``float16`` / ``float32`` there still mean that, with a warning."""
    compute, store_dtype = options.dtype, options.store_dtype
    if compute in STORE_DTYPES:
        warnings.warn(f"dtype={compute!r} is now store_dtype (--store-dtype); dtype is the encoders' precision "
                      f"({', '.join(COMPUTE_DTYPES)})", DeprecationWarning, stacklevel=3)
        compute, store_dtype = "auto", compute
    if store_dtype not in STORE_DTYPES:
        raise UsageError(f"--store-dtype {store_dtype}: choose one of {', '.join(STORE_DTYPES)}")
    return check_compute_dtype(compute), store_dtype


def _compute_dtype(requested: str, stored: dict[str, Any] | None, device: str) -> str:
    """The precision a model encoder runs in: ``auto`` keeps an existing encoder's own (one name never
    mixes precisions, and a rerun needs no torch to know it), else what suits the device."""
    if requested == "auto" and stored is not None:
        return stored.get("compute_dtype", LEGACY_COMPUTE_DTYPE)
    return resolve_compute_dtype(requested, resolve_device(device)) if requested == "auto" else requested


def _plan(files: list[VideoFile], store: Path | str | None, encoders: list[str], retry_errors: bool,
          report: ExtractReport, audio_dir: bool = False) -> tuple[list[_Video], list[tuple[VideoFile, str]]]:
    """Which videos need which encoders, from the live rows of an existing store.

    A file whose size and modification time match its live row keeps that row's fingerprint;
    one whose stat changed is hashed to see whether its content did; new files are hashed later,
    by the decode workers. ``no_audio`` items are done, unless this run pairs videos with audio
    files (``audio_dir``).
    """
    live: dict[str, tuple] = {}
    audio_of: dict[str, tuple] = {}
    done: set[tuple[str, str]] = set()
    item_errors: dict[tuple[str, str], str] = {}
    if store is not None:
        with Store(store) as s:
            rows = s.con.execute("SELECT video_id, fingerprint, status, error, size_bytes, mtime_ns FROM videos").fetchall()
            live = {r[0]: r[1:] for r in rows}
            columns = {c[0] for c in s.con.execute("DESCRIBE videos").fetchall()}
            if "audio_source" in columns:  # stores written before audio sources were recorded lack them
                audio_of = {r[0]: r[1:] for r in s.con.execute("SELECT video_id, audio_source, audio_path FROM videos").fetchall()}
            done = _done_items(s, include_no_audio=not audio_dir)
            item_errors = {(v, e): err for v, e, err in s.con.execute("SELECT video_id, encoder, error FROM _item_errors").fetchall()}
    videos, unreadable = [], []
    for file in files:
        try:
            stat = file.path.stat()
            prior = live.get(file.video_id)
            fp = None
            if prior is not None:
                unchanged_stat = (prior[3], prior[4]) == (stat.st_size, stat.st_mtime_ns)
                fp = prior[0] if unchanged_stat else fingerprint(file.path)
        except OSError as exc:
            unreadable.append((file, f"cannot read file: {exc.strerror or exc}"))
            continue
        same_file = prior is not None and fp == prior[0]
        if same_file:
            if prior[1] == STATUS_ERROR and not retry_errors and not (prior[2] or "").startswith(UNEXPECTED):
                report.failed_before.append((file.video_id, prior[2] or "failed before"))
                continue
            missing = [e for e in encoders if (file.video_id, e) not in done]
            failed = [e for e in missing if (file.video_id, e) in item_errors]
            if failed and not retry_errors:
                report.failed_before.extend((file.video_id, f"{e}: {item_errors[(file.video_id, e)]}") for e in failed)
                missing = [e for e in missing if e not in failed]
            if not missing:
                report.up_to_date += 0 if failed else 1
                continue
        else:
            missing = list(encoders)
        videos.append(_Video(len(videos), file, stat.st_size, stat.st_mtime_ns, fp, missing,
                             prior_ok=same_file and prior[1] == STATUS_OK,
                             prior_audio=audio_of.get(file.video_id, (None, None)) if same_file else (None, None)))
    return videos, unreadable


def _done_items(store: Store, include_no_audio: bool) -> set[tuple[str, str]]:
    """(video, encoder) pairs that need no extraction: live items, and ``no_audio`` ones if asked."""
    done = set(store.con.execute("SELECT video_id, encoder FROM _items_live").fetchall())
    if include_no_audio:
        done |= set(store.con.execute("SELECT video_id, encoder FROM _items_no_audio").fetchall())
    return done


AUDIO_SUFFIXES = (".wav", ".flac", ".WAV", ".FLAC")


def paired_audio(audio_dir: Path, file: VideoFile) -> tuple[str | None, str | None]:
    """(the audio file paired with a video, or None and why not): the video's path relative to
    ``--videos`` under ``audio_dir``, with ``.wav`` or ``.flac`` for its suffix (CREMA-D's
    ``AudioWAV/1001_DFA_ANG_XX.wav`` for ``VideoFlash/1001_DFA_ANG_XX.flv``; nested folders mirror
    the videos', so two videos with one stem never share a file)."""
    relative = Path(file.video_id)
    for suffix in AUDIO_SUFFIXES:
        candidate = audio_dir / relative.with_suffix(suffix)
        if candidate.is_file():
            return str(candidate.resolve()), None
    return None, f"no audio file for video {file.path}: looked for {audio_dir / relative.with_suffix('')}.wav or .flac"


def encode_inputs(encoder: Any, data: list, device, views: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Encode one batch of step inputs (of one or several videos) -> pooled (B, D) float32 and the
    encoder's arrays (B, ...) as numpy. ``views``: each input holds K augmented views (K, h, w, 3);
    all are encoded, view 0 is the plain feature and the (B, K, D) stack is the ``views`` array."""
    batch = _batch(data, device)  # (B, ...) as the encoder wants it, or name -> (B, ...)
    count = batch.shape[1] if views else 0
    if count:  # (B, K, h, w, 3): encode every view, keep view 0 as the plain features
        batch = batch.flatten(0, 1)
    output = encoder.encode(batch)
    if count:
        stacked = output.float().view(len(data), count, -1)  # (B, K, D)
        output = EncoderOutput(pooled=stacked[:, 0], arrays={"views": stacked})
    if isinstance(output, EncoderOutput):  # a pooled vector plus token arrays (HDF5)
        pooled = output.pooled.float().cpu().numpy()  # (B, D)
        # floats as float32 (the writer casts to the store dtype); integer arrays (uint8 pixels) as they are
        arrays = {key: (value.float() if value.is_floating_point() else value).cpu().numpy()
                  for key, value in output.arrays.items()}
    else:  # per-frame encoders: the pooled vector is all there is (it lives in the frames table)
        pooled = output.float().cpu().numpy()  # (B, D)
        arrays = {}
    return pooled, arrays


def _batch(data: list, device) -> Any:
    """Stack one batch of encoder inputs (arrays, or dicts of arrays) as tensors on ``device``."""
    import torch

    if isinstance(data[0], dict):
        return {key: _batch([d[key] for d in data], device) for key in data[0]}
    batch = torch.from_numpy(np.stack(data))
    if device.type == "cuda":
        batch = batch.pin_memory().to(device, non_blocking=True)
    return batch


def _row(video: "_Video | VideoFile", info: dict[str, Any] | None, status: str, error: str | None) -> dict[str, Any]:
    file = video.file if isinstance(video, _Video) else video
    if isinstance(video, _Video) and info is not None and info.get("audio_source") is None and video.prior_ok:
        # this run read no audio (e.g. it only added a visual encoder): the stored audio features keep their source
        info = {**info, "audio_source": video.prior_audio[0], "audio_path": video.prior_audio[1]}
    return {
        "video_id": file.video_id,
        "source_path": printable(str(file.path.resolve())),
        "size_bytes": getattr(video, "size", None),
        "mtime_ns": getattr(video, "mtime_ns", None),
        "fingerprint": getattr(video, "fingerprint", None),
        **(info or {}),
        "status": status,
        "error": error,
        "extracted_at": datetime.now(timezone.utc).replace(tzinfo=None),
    }


class _Run:
    """One pass over the planned videos: messages from the decoders in, batches to the encoders,
    finished videos to the writer."""

    def __init__(self, options: ExtractOptions, writer: StoreWriter, encoders: dict[str, Any],
                 videos: list[_Video], sampling: Sampling, device, report: ExtractReport,
                 samplings: dict[str, Sampling] | None = None, pool: ProcessDecoder | None = None):
        self.options, self.writer, self.encoders, self.report = options, writer, encoders, report
        self.device = device
        self.videos = {v.task_id: v for v in videos}
        self.buffers: dict[str, list[_Pending]] = {name: [] for name in encoders}
        workers = default_workers() if options.workers is None else options.workers
        # Split the cores between decode processes rather than letting each take them all.
        threads = options.decoder_threads or max(1, (os.cpu_count() or 1) // max(1, workers))
        own = {name: s for name, s in (samplings or {}).items() if name in encoders}
        tasks = []
        for v in videos:
            steps = {e: self._steps(e) for e in v.encoders}
            audio_path, audio_error = None, None
            if options.audio_dir is not None and any(spec.hears_audio for spec in steps.values()):
                audio_path, audio_error = paired_audio(Path(options.audio_dir), v.file)
            tasks.append(DecodeTask(v.task_id, str(v.file.path), steps, sampling, threads=threads,
                                    fingerprint=v.fingerprint, video_id=v.file.video_id, samplings=own,
                                    audio_path=audio_path, audio_error=audio_error))
        if options.engine == "ray":
            from alex.pipeline.ray_engine import RayMessages, ray_address

            specs = {spec.name: spec for spec in parse_encoders(options.encoders) if spec.name in encoders}
            self.decoder = RayMessages(
                tasks, specs, {name: getattr(e, "compute_dtype", "fp32") for name, e in encoders.items()},
                {"clip_frames": options.clip_frames, "clip_stride": options.clip_stride, "keep_tokens": options.keep_tokens},
                {name: self._steps(name).views > 1 for name in encoders}, options.device, options.batch_size,
                ray_address(options.address))
        elif pool is not None:  # already started by extract(), while the models loaded
            pool.add(tasks)
            self.decoder = pool
        else:
            self.decoder = (ProcessDecoder(tasks, workers, video_timeout=options.video_timeout) if workers > 0
                            else InlineDecoder(tasks))
        self._unexpected: list[tuple[str, str]] = []  # (video, reason) of the latest unexpected failures in a row
        self.progress = ExtractProgress(len(videos), quiet=options.quiet)
        self.profile = report.profile
        self._steps_seen = False

    def _steps(self, name: str):
        """The encoder's step spec, with --views augmented views for per-frame encoders."""
        steps = self.encoders[name].steps
        if self.options.views > 1 and steps.kind == "frame":
            return dataclasses.replace(steps, views=self.options.views, seed=self.options.seed)
        return steps

    def run(self) -> None:
        finished = False
        try:
            messages = self.decoder.messages()
            while True:
                t0 = time.perf_counter()
                message = next(messages, StopIteration)
                waited = time.perf_counter() - t0
                self.profile["wait_s"] += waited
                if not self._steps_seen:  # the models are loaded; the first frames are not there yet
                    self.profile["start_wait_s"] += waited
                if message is StopIteration:
                    break
                if message is None:  # decoders are busy: do not let the encoder idle
                    self._encode_all()
                else:
                    self._handle(message)
            self._encode_all()
            finished = True
        finally:
            self.decoder.close(abort=not finished)
            self.progress.close()
        unfinished = [v.file.video_id for v in self.videos.values() if not v.finished]
        if unfinished:
            raise RuntimeError(f"extraction ended with unfinished videos: {unfinished[:5]}")

    def _handle(self, message: tuple) -> None:
        kind, task_id = message[0], message[1]
        video = self.videos[task_id]
        if video.finished:
            return
        if kind == "start":
            if video.started:  # a retried Ray task says it again: the video is already open
                return
            video.started = True
            self.writer.begin_video(video.file.video_id)
        elif kind == "steps":
            self._steps_seen = True
            self._add_steps(video, message[2], message[3])
        elif kind == "encoded":  # --engine ray: steps encoded by an actor, ready to write
            self._steps_seen = True
            self._add_encoded(video, message[2], message[3])
        elif kind == "item_error":  # this encoder cannot use this video; the others go on
            name, reason = message[2], message[3]
            video.item_errors[name] = reason
            self.buffers[name] = [p for p in self.buffers[name] if p.task_id != video.task_id]
            video.received[name] = video.encoded[name]
            self.writer.drop_encoder(video.file.video_id, name)
        elif kind == "no_audio":  # an audio encoder on a video without an audio track: done, with 0 steps
            video.no_audio.append(message[2])
        elif kind == "done":
            video.info, stats, video.fingerprint = message[2], message[3], message[4]
            self.profile["decode_s"] += stats.decode_s
            self.profile["preprocess_s"] += stats.preprocess_s
            visual = [name for name in video.encoders if self.encoders[name].steps.kind != "audio"
                      and name not in video.item_errors and name not in video.no_audio]
            if visual and not any(video.received[name] for name in visual):
                self._fail(video, "no frame was sampled", video.info)
            else:
                self._maybe_finish(video)
        elif kind == "error":
            video.fingerprint = message[4] or video.fingerprint
            self._fail(video, message[2], message[3])
            self._count_unexpected(video, message[2], message[5] if len(message) > 5 else None)

    def _count_unexpected(self, video: _Video, reason: str, trace: str | None) -> None:
        """Log an unexpected failure's traceback in the store; stop the run (exit 3) when the same one
        hits ``REPEATED_FAILURES`` videos in a row: that is alex or its install, not the videos."""
        if not reason.startswith(UNEXPECTED):
            self._unexpected = []
            return
        if trace:
            with open(self.writer.root / ERRORS_LOG, "a") as log:
                log.write(f"--- {datetime.now(timezone.utc).isoformat(timespec='seconds')} alex {__version__}: "
                          f"video {video.file.video_id}\n{trace}")
        self._unexpected = [u for u in self._unexpected if u[1] == reason] + [(video.file.video_id, reason)]
        if len(self._unexpected) >= REPEATED_FAILURES:
            self._encode_all()  # keep the videos already decoded: encode and commit them first
            names = ", ".join(v for v, _ in self._unexpected)
            raise RepeatedFailureError(
                f"the same unexpected error on {len(self._unexpected)} videos in a row ({names}): {reason}. "
                f"That is a bug or a broken install, not bad videos, so the run stopped; tracebacks are in "
                f"{self.writer.root / ERRORS_LOG}. Videos finished so far are kept; rerun after the fix "
                "(videos that failed this way are tried again without --retry-errors).")

    def _add_encoded(self, video: _Video, name: str, chunk: Any) -> None:
        first = int(chunk.index[0]) if len(chunk.index) else -1
        if name in video.item_errors or (name, first) in video.seen_chunks:  # a retried task's repeat
            return
        video.seen_chunks.add((name, first))
        n = len(chunk.index)
        video.received[name] += n
        self.report.frames += n
        self.progress.add_frames(n)
        steps = StepBatch(index=np.asarray(chunk.index, dtype=np.int32), t_start=np.asarray(chunk.t_start),
                          t_end=np.asarray(chunk.t_end), pooled=chunk.pooled, arrays=chunk.arrays,
                          padded=np.asarray(chunk.padded, dtype=np.int16), frame_times=chunk.frame_times)
        try:
            self.writer.append(video.file.video_id, name, steps)
            video.encoded[name] += n
            self._maybe_finish(video)
        except NonFiniteFeatureError as exc:
            self._fail(video, str(exc), video.info)

    def _add_steps(self, video: _Video, name: str, chunk: StepChunk) -> None:
        if name in video.item_errors:
            return
        n = len(chunk.index)
        video.received[name] += n
        data = chunk.data
        self.buffers[name].extend(
            _Pending(video.task_id, int(chunk.index[i]), float(chunk.t_start[i]), float(chunk.t_end[i]),
                     int(chunk.padded[i]), {k: v[i] for k, v in data.items()} if isinstance(data, dict) else data[i],
                     None if chunk.frame_times is None else chunk.frame_times[i])
            for i in range(n)
        )
        while len(self.buffers[name]) >= self.options.batch_size:
            self._encode(name, self.options.batch_size)

    def _encode_all(self) -> None:
        for name in self.buffers:
            while self.buffers[name]:
                self._encode(name, min(len(self.buffers[name]), self.options.batch_size))

    def _encode(self, name: str, n: int) -> None:

        buffer = self.buffers[name]
        items, self.buffers[name] = buffer[:n], buffer[n:]
        t0 = time.perf_counter()
        pooled, arrays = encode_inputs(self.encoders[name], [item.data for item in items], self.device,
                                       views=self._steps(name).views > 1)
        t1 = time.perf_counter()
        self.profile["encode_s"] += t1 - t0
        self.report.frames += len(items)
        self.progress.add_frames(len(items))
        start = 0
        while start < len(items):  # consecutive rows of one video go to the writer together
            stop = start
            while stop < len(items) and items[stop].task_id == items[start].task_id:
                stop += 1
            video = self.videos[items[start].task_id]
            rows = items[start:stop]
            if video.finished:  # failed earlier in this same batch (frames of videos interleave)
                start = stop
                continue
            steps = StepBatch(
                index=np.array([r.index for r in rows], dtype=np.int32),
                t_start=np.array([r.t_start for r in rows]),
                t_end=np.array([r.t_end for r in rows]),
                pooled=pooled[start:stop],
                arrays={key: value[start:stop] for key, value in arrays.items()},
                padded=np.array([r.padded for r in rows], dtype=np.int16),
                frame_times=np.stack([r.frame_times for r in rows]) if rows[0].frame_times is not None else None,
            )
            try:
                self.writer.append(video.file.video_id, name, steps)
                video.encoded[name] += len(rows)
                self._maybe_finish(video)
            except NonFiniteFeatureError as exc:
                self._fail(video, str(exc), video.info)
            start = stop
        self.profile["write_s"] += time.perf_counter() - t1

    def _maybe_finish(self, video: _Video) -> None:
        if video.finished or video.info is None:
            return
        if any(video.encoded[name] < video.received[name] for name in video.encoders):
            return
        working = [name for name in video.encoders if name not in video.item_errors and name not in video.no_audio]
        failures = [(video.file.video_id, f"{name}: {reason}") for name, reason in video.item_errors.items()]
        if not working and not video.no_audio:  # every encoder failed on it (e.g. only audio encoders, and no audio file)
            self._fail(video, "; ".join(reason for _, reason in failures), video.info)
            return
        t0 = time.perf_counter()
        self.writer.finish_video(_row(video, video.info, STATUS_OK, None), working, video.item_errors, video.no_audio)
        self.profile["write_s"] += time.perf_counter() - t0
        video.finished = True
        self.report.ok.append(video.file.video_id)
        self.report.failed.extend(failures)
        self.report.no_audio.extend((video.file.video_id, name) for name in video.no_audio)
        self.progress.video_done()

    def _fail(self, video: _Video, reason: str, info: dict[str, Any] | None) -> None:
        video.finished = True
        for name in self.buffers:
            self.buffers[name] = [p for p in self.buffers[name] if p.task_id != video.task_id]
        if video.prior_ok:  # its stored features stay valid: only these encoders failed
            self.writer.fail_items(video.file.video_id, video.encoders, video.fingerprint, reason)
        else:
            self.writer.fail_video(_row(video, info, STATUS_ERROR, reason))
        self.report.failed.append((video.file.video_id, reason))
        self.progress.video_done()
