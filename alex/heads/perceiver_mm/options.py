from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from alex.errors import UsageError
from alex.heads.options import TrainOptions, option


@dataclass(kw_only=True)
class PerceiverMMOptions(TrainOptions):
    """``alex train --head perceiver-mm --model ID_OR_PATH``: DeepMind's multimodal Perceiver
    (``deepmind/multimodal-perceiver``, or ``tiny@random`` for tests) fine-tuned end to end on the
    frames and audio an ``alex extract --encoder perceiver-mm`` store holds, one random clip per video
    per epoch; a video's prediction averages its clips' probabilities. The classifier's hidden size
    and dropout: ``--set classifier_hidden_size=256 --set classifier_dropout=0.3``. Defaults: the seed's
    batch 2 and 10 epochs; its learning rate 0.01 diverged in the learning check (validation loss 5 to
    85 where chance is ln 3 = 1.1, accuracy at chance), so the default is 3e-4 (BENCHMARKS.md)."""

    head: ClassVar[str] = "perceiver-mm"

    model: str | None = option(None, flags=("--model",), metavar="ID_OR_PATH",
                               help="The pretrained multimodal Perceiver: a hub id (deepmind/multimodal-perceiver), a "
                                    "local folder, or tiny@random (a small random one of the same classes, for tests).")
    inputs: list[str] = option(default_factory=lambda: ["perceiver-mm"], metavar="NAME",
                               help="The store's perceiver-mm encoder (its cached frames and audio).")
    epochs: int = option(10, help="Maximum number of epochs (early stopping may end sooner).")
    batch_size: int = option(2, help="Videos per training batch (one clip of each).")
    learning_rate: float = option(3e-4, flags=("--lr", "--learning-rate"),
                                  help="Peak learning rate (AdamW, cosine schedule after warm-up). The seed's 0.01 "
                                       "diverges in alex's learning check (BENCHMARKS.md).")
    eval_clips: int = option(8, help="Clips per video at evaluation and prediction, evenly spaced (all when fewer); "
                                     "their probabilities are averaged.")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.model:
            raise UsageError("--head perceiver-mm needs --model ID_OR_PATH, the pretrained multimodal Perceiver "
                             "(e.g. --model deepmind/multimodal-perceiver, or --model tiny@random to try it offline)")
        if len(self.inputs) != 1:
            raise UsageError(f"--inputs {','.join(self.inputs)}: perceiver-mm reads one input, the store's perceiver-mm encoder")
        if self.eval_clips < 1:
            raise UsageError(f"--eval-clips {self.eval_clips}: must be at least 1")


OPTIONS = PerceiverMMOptions
