"""What a head contributes to the one train / evaluate / predict path (``alex.heads.training``).

The training path does everything that is the same for every head: run-folder handling, labels,
the store Dataset, the ``Trainer`` (checkpoints, early stopping, seeds, TensorBoard), saving,
metrics files, the training curve and writing predictions. A head answers only what is its own:

- ``options_class``: its options dataclass (``alex/heads/<head>/options.py``);
- ``read_targets``: which columns of a labels file it learns from;
- ``build``: its config, model and processor (``configuration_*.py``, ``modeling_*.py``,
  ``processing_*.py``), from the options and what the store holds;
- ``items``: the dataset's items (one per video, or one per caption or question of a video) and
  what each carries besides features (a label id, a prompt and its answers, actions);
- ``dataset`` (optional): how items are read from the store, by default its features;
- ``collator``: items -> model inputs;
- ``infer``, ``metrics``, ``prediction_table``, ``plots``: its outputs, how they are scored, how a
  prediction row looks, and its pictures.

Its configuration, modeling and processing modules register their classes with transformers'
Auto classes when imported (``alex.heads.auto``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from alex.heads.data import Selection
    from alex.heads.labels import LabelTable
    from alex.heads.options import TrainOptions
    from alex.store.dataset import FeatureDataset
    from alex.store.reader import Store


class HeadFamily:
    """Base class of a head family; subclasses live in ``alex/heads/<head>/head.py`` as ``HEAD``."""

    name: str = ""
    options_class: type = object
    model_types: tuple[str, ...] = ()  # the config.json model_type(s) of its models
    metric: str = "loss"  # the validation metric for early stopping and the best checkpoint
    greater_is_better: bool = False
    label_names: list[str] | None = None  # batch keys holding targets (the Trainer's evaluation loss)
    takes_prompt: bool = False  # whether `alex predict --prompt` means something for this head

    # ---- training ---------------------------------------------------------------------------------

    def read_targets(self, path: Path, fractions: tuple[float, float, float], task: str | None) -> LabelTable:
        raise NotImplementedError

    def build(self, options: TrainOptions, store: Store, targets: LabelTable, selection: Selection,
              signature: dict[str, dict[str, Any]]) -> tuple[Any, Any]:
        """(model, processor or None) ready to train: ``targets`` is the labels file read by
        ``read_targets``, ``selection`` the usable labelled videos per split, ``signature`` the
        inputs' encoder configs (their ``dim`` among them)."""
        raise NotImplementedError

    def items(self, store: Store, video_ids: list[str], targets: LabelTable | None, model: Any,
              prompt: str | None = None, train: bool = False) -> tuple[list[str], list[dict[str, Any]] | None]:
        """The dataset's items: the video of each (a video may give several: its captions when
        ``train``, its questions) and the fields each carries besides features. ``targets`` is None
        when predicting without questions (then ``prompt`` is asked of every video)."""
        return list(video_ids), None

    def dataset(self, store: Store, video_ids: list[str], inputs: list[str], train: bool,
                extras: list[dict[str, Any]] | None, model: Any) -> Any:
        """The Dataset of these items: by default the store's features (``FeatureDataset``); a head
        that eats cached model inputs instead (clips of frames and audio) reads them its own way."""
        from alex.heads.data import make_dataset

        return make_dataset(store, video_ids, inputs, augment=train, extras=extras)

    def check_targets(self, model: Any, targets: LabelTable, video_ids: list[str]) -> None:
        """Refuse targets a trained model cannot score (e.g. labels it never saw)."""

    def collator(self, processor: Any, model: Any, options: TrainOptions) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
        raise NotImplementedError

    def trainer_metrics(self) -> Callable[[Any], dict[str, float]] | None:
        """The ``Trainer``'s ``compute_metrics`` for per-epoch validation beyond the loss (None: the loss only)."""
        return None

    def finish(self, model: Any, options: TrainOptions) -> Any:
        """The trained model as it is saved (e.g. LoRA adapters merged)."""
        return model

    # ---- using a trained head ------------------------------------------------------------------

    def load_processor(self, run_dir: Path, model: Any) -> Any:
        return None

    def infer(self, model: Any, processor: Any, dataset: FeatureDataset, device: Any, batch_size: int) -> Any:
        """The head's outputs for every item of ``dataset``, in order."""
        raise NotImplementedError

    def metrics(self, outputs: Any, dataset: FeatureDataset, model: Any) -> dict[str, Any]:
        raise NotImplementedError

    def plots(self, run_dir: Path, outputs: Any, dataset: FeatureDataset, model: Any, title: str) -> list[str]:
        """Extra pictures of the test split in the run folder; returns their file names."""
        return []

    def prediction_table(self, outputs: Any, dataset: FeatureDataset, model: Any) -> pa.Table:
        raise NotImplementedError
