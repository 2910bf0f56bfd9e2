"""``alex extract --engine ray``: the same extraction as a Ray Data pipeline, for clusters.

Videos -> decode and sample in CPU tasks (``decode_task``, as the local decode workers run it) ->
encode in actors that hold the models (``num_gpus=1`` each when the cluster has GPUs; one batch mixes
the steps of several videos) -> the driver, which writes the store exactly as the local engine does
(the writer, the error rows, the commit of segments are the same code). Ray Data streams with
backpressure, so memory stays bounded however many videos there are; ``preserve_order`` keeps each
video's messages in order (start, steps, done). A task or actor lost mid-run is retried by Ray and
its output produced once, so no row is missing or doubled (the driver writes only what reaches it).

Messages cross Ray as pickled tuples in one ``message`` column (the local engine's protocol,
``alex.pipeline.workers``), plus ``("encoded", task_id, encoder, EncodedSteps)`` in place of
``steps``.
"""

from __future__ import annotations

import logging
import os
import pickle
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from alex.pipeline.workers import DecodeTask, decode_task

MESSAGES_PER_BATCH = 16  # decode output rows per block


@dataclass
class EncodedSteps:
    """Consecutive steps of one video for one encoder, encoded: what the writer appends."""

    index: np.ndarray  # (N,)
    t_start: np.ndarray  # (N,)
    t_end: np.ndarray  # (N,)
    padded: np.ndarray  # (N,)
    frame_times: np.ndarray | None  # (N, F)
    pooled: np.ndarray  # (N, D)
    arrays: dict[str, np.ndarray]  # name -> (N, ...)


def _decode(batch: dict[str, np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
    """Ray task: decode the videos of a batch (one per row), yielding their messages in order."""
    for task_bytes in batch["task"]:
        task: DecodeTask = pickle.loads(task_bytes)
        out: list[bytes] = [pickle.dumps(("start", task.task_id, os.getpid()))]  # as a local decode worker says it
        for message in decode_task(task):
            out.append(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
            if len(out) >= MESSAGES_PER_BATCH:
                yield {"message": np.array(out, dtype=object)}
                out = []
        if out:
            yield {"message": np.array(out, dtype=object)}


class _EncodeActor:
    """Ray actor: holds the encoders and replaces every ``steps`` message by its ``encoded`` one,
    encoding the steps of a batch together per encoder (several videos in one forward)."""

    def __init__(self, specs: dict[str, Any], compute_dtypes: dict[str, str], clip_options: dict[str, Any],
                 views: dict[str, bool], device: str):
        from alex.pipeline.encoders import build_encoder, resolve_device

        self.device = resolve_device(device)
        self.encoders = {name: build_encoder(spec, self.device, compute_dtype=compute_dtypes[name], **clip_options)
                         for name, spec in specs.items()}
        self.views = views

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from alex.pipeline.extract import encode_inputs

        messages = [pickle.loads(m) for m in batch["message"]]
        by_encoder: dict[str, list[int]] = {}
        for i, message in enumerate(messages):
            if message[0] == "steps":
                by_encoder.setdefault(message[2], []).append(i)
        for name, rows in by_encoder.items():
            chunks = [messages[i][3] for i in rows]
            data = [step for chunk in chunks for step in _steps_of(chunk.data, len(chunk.index))]
            pooled, arrays = encode_inputs(self.encoders[name], data, self.device, views=self.views[name])
            start = 0
            for i, chunk in zip(rows, chunks):
                n = len(chunk.index)
                encoded = EncodedSteps(chunk.index, chunk.t_start, chunk.t_end, chunk.padded, chunk.frame_times,
                                       pooled[start:start + n], {k: v[start:start + n] for k, v in arrays.items()})
                messages[i] = ("encoded", messages[i][1], name, encoded)
                start += n
        return {"message": np.array([pickle.dumps(m, protocol=pickle.HIGHEST_PROTOCOL) for m in messages], dtype=object)}


def _steps_of(data: Any, n: int) -> list[Any]:
    """The per-step inputs of a chunk: rows of an array, or dicts of rows (audio-visual clips)."""
    if isinstance(data, dict):
        return [{key: value[i] for key, value in data.items()} for i in range(n)]
    return [data[i] for i in range(n)]


class RayMessages:
    """The local engine's message source, run on Ray: ``messages()`` yields the decoders' messages
    with ``steps`` already encoded; ``close`` stops the pipeline."""

    def __init__(self, tasks: list[DecodeTask], specs: dict[str, Any], compute_dtypes: dict[str, str],
                 clip_options: dict[str, Any], views: dict[str, bool], device: str, batch_size: int,
                 address: str | None = None):
        import ray
        import ray.data

        logging.getLogger("ray").setLevel(logging.WARNING)  # alex reports progress itself
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                     logging_level=logging.WARNING)
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # each video's messages in order: start, steps, done
        context.enable_progress_bars = False
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 and device != "cpu" else 0
        actors = max(1, int(ray.cluster_resources().get("GPU", 0))) if gpus else 1
        videos = ray.data.from_items([{"task": pickle.dumps(t, protocol=pickle.HIGHEST_PROTOCOL)} for t in tasks],
                                     override_num_blocks=max(1, len(tasks)))
        decoded = videos.map_batches(_decode, batch_size=1, num_cpus=1)
        encoded = decoded.map_batches(
            _EncodeActor, fn_constructor_kwargs=dict(specs=specs, compute_dtypes=compute_dtypes, clip_options=clip_options,
                                                     views=views, device=device if gpus else "cpu"),
            batch_size=max(1, batch_size // 8), concurrency=actors, num_gpus=gpus,
            num_cpus=0 if gpus else max(1, min(2, int(ray.cluster_resources().get("CPU", 1)) - 1)),
        )
        self._rows = encoded.iter_rows()

    def messages(self) -> Iterator[tuple]:
        for row in self._rows:
            yield pickle.loads(row["message"])

    def close(self, abort: bool = False) -> None:
        self._rows = iter(())


def ray_address(address: str | None) -> str | None:
    """``--address``: ``auto`` (a running cluster), ``ray://HOST:PORT``, or None to start Ray here."""
    return address or os.environ.get("RAY_ADDRESS") or None
