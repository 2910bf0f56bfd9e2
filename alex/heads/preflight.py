"""The usage errors of ``alex train`` that need no model, checked before torch or transformers is
imported, so that a wrong path or name is reported at once rather than after seconds of imports."""

from __future__ import annotations

from pathlib import Path

from alex.errors import UsageError
from alex.heads.distributed import per_device_batch
from alex.heads.inputs import input_signature
from alex.heads.labels import read_table
from alex.heads.options import TrainOptions
from alex.store.reader import open_store

TRAINING_CONFIG = "training_config.json"  # a run folder with it holds a finished run
CHECKPOINTS = "checkpoints"


def preflight(options: TrainOptions) -> None:
    """The run folder can take this run, the store opens and has the inputs, the labels file exists."""
    run_dir = Path(options.output)
    per_device_batch(options.batch_size)  # the global batch divides among the training processes
    if not options.resume and (run_dir / TRAINING_CONFIG).exists():
        raise UsageError(f"{run_dir} already holds a run; choose another --output or pass --resume to continue it")
    if not options.resume and any((run_dir / CHECKPOINTS).glob("checkpoint-*")):
        raise UsageError(f"{run_dir} holds the checkpoints of an unfinished run; pass --resume to continue it, or "
                         "choose another --output (or delete the folder) to start a new one")
    if options.resume and not any((run_dir / CHECKPOINTS).glob("checkpoint-*")):
        raise UsageError(f"--resume: {run_dir} has no checkpoint to resume from")
    with open_store(options.store) as store:
        input_signature(store, options.inputs)
    read_table(options.labels)  # exists, and is a CSV, JSON Lines or Parquet file
