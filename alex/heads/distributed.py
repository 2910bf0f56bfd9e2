"""Training on several processes: torchrun or ``accelerate launch`` start them, transformers' Trainer
(through Accelerate) runs DDP, and alex keeps a run the same run however many processes train it.

- ``--batch-size`` is the global batch: each of N processes takes ``batch_size / N`` (it must divide),
  so the schedule, the optimizer steps and the samples of every step are those of one process
  (Accelerate hands process ``i`` the per-device batches ``i, i + N, ...`` of one seeded order, so
  step ``k`` sees the same ``batch_size`` samples as step ``k`` of a single process).
- Only rank 0 writes the run folder (options, weights, metrics, plots, TensorBoard) and prints; the
  Trainer already saves checkpoints from the main process only.

Nothing here imports torch: the rank and world size come from the launcher's environment.
"""

from __future__ import annotations

import os

from alex.errors import UsageError


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def per_device_batch(batch_size: int) -> int:
    """The batch of one process for a global ``--batch-size``."""
    processes = world_size()
    if batch_size % processes:
        raise UsageError(f"--batch-size {batch_size} is the global batch and must divide among the {processes} "
                         f"processes (e.g. --batch-size {processes * max(1, batch_size // processes)})")
    return batch_size // processes


def wait_for_everyone() -> None:
    """A barrier across the training processes (none with one process)."""
    if world_size() > 1:
        from accelerate import PartialState

        PartialState().wait_for_everyone()
