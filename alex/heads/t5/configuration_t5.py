from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig, T5Config

from alex.heads.auto import register_config
from alex.heads.inputs import check_inputs
from alex.heads.options import GenerativeOptions
from alex.heads.time_encoding import check_time_encoding


class AlexT5Config(PretrainedConfig):
    """A T5 (``t5_config``: any T5 checkpoint's config) whose encoder also reads cached video
    features: the chosen store ``inputs`` (sizes ``input_dims``), with a ``timestamp_encoding``
    of their times and a frame-order embedding of up to ``max_steps`` positions."""

    model_type = "alex_t5"

    def __init__(
        self,
        t5_config: dict[str, Any] | None = None,
        inputs: list[str] | None = None,
        input_dims: list[int] | None = None,
        timestamp_encoding: str = GenerativeOptions.timestamp_encoding,
        max_steps: int = 1024,
        task: str = "caption",
        base_model: str | None = None,
        initializer_range: float = 0.02,
        **kwargs: Any,
    ):
        self.t5_config = dict(t5_config or {})
        self.inputs, self.input_dims = check_inputs(inputs, input_dims)
        check_time_encoding(timestamp_encoding)
        self.timestamp_encoding = timestamp_encoding
        self.max_steps = max_steps
        self.task = task
        self.base_model = base_model
        self.initializer_range = initializer_range
        super().__init__(**kwargs)

    def t5(self) -> T5Config:
        return T5Config(**self.t5_config)


register_config(AlexT5Config)
