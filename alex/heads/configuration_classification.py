"""The configuration every classification head (probe, perceiver) shares: its inputs, width, time
encoding and labels."""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig

from alex.heads.inputs import check_inputs
from alex.heads.options import ClassifierOptions
from alex.heads.time_encoding import check_time_encoding


class ClassificationHeadConfig(PretrainedConfig):
    """Inputs (store encoder names and their feature sizes), width, time encoding, labels, and
    ``clips_per_video`` (V-JEPA's multi-clip evaluation). Defaults are those of ``alex train``
    (``ClassifierOptions``)."""

    def __init__(
        self,
        inputs: list[str] | None = None,
        input_dims: list[int] | None = None,
        hidden_size: int = ClassifierOptions.hidden_size,
        timestamp_encoding: str = ClassifierOptions.timestamp_encoding,
        dropout: float = 0.1,
        initializer_range: float = 0.02,
        clips_per_video: int = ClassifierOptions.clips_per_video,
        **kwargs: Any,
    ):
        self.inputs, self.input_dims = check_inputs(inputs, input_dims)
        self.clips_per_video = int(clips_per_video)
        check_time_encoding(timestamp_encoding)
        self.hidden_size = hidden_size
        self.timestamp_encoding = timestamp_encoding
        self.dropout = dropout
        self.initializer_range = initializer_range
        super().__init__(**kwargs)
        if self.id2label and not getattr(self, "label2id", None):
            self.label2id = {label: int(i) for i, label in self.id2label.items()}
