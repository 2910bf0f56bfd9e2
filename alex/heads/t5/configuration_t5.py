from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig

from alex.heads.auto import register_config
from alex.heads.inputs import check_inputs
from alex.heads.options import GenerativeOptions
from alex.heads.time_encoding import check_time_encoding


SEQ2SEQ_TYPES = ("t5", "bart")  # VL-T5 and VL-BART (Cho et al. 2021)


class AlexT5Config(PretrainedConfig):
    """A T5 or BART (``seq2seq_config``: the checkpoint's own config) whose encoder also reads cached
    video features: the chosen store ``inputs`` (sizes ``input_dims``), with a ``timestamp_encoding``
    of their times and a frame-order embedding of up to ``max_steps`` steps."""

    model_type = "alex_t5"

    def __init__(
        self,
        seq2seq_config: dict[str, Any] | None = None,
        inputs: list[str] | None = None,
        input_dims: list[int] | None = None,
        timestamp_encoding: str = GenerativeOptions.timestamp_encoding,
        max_steps: int = 1024,
        task: str = "caption",
        base_model: str | None = None,
        initializer_range: float = 0.02,
        **kwargs: Any,
    ):
        seq2seq_config = dict(seq2seq_config or kwargs.pop("t5_config", None) or {"model_type": "t5"})
        if seq2seq_config.get("model_type", "t5") not in SEQ2SEQ_TYPES:
            raise ValueError(f"seq2seq_config of model_type {seq2seq_config.get('model_type')!r}: the VL-T5 / VL-BART head "
                             f"takes {', '.join(SEQ2SEQ_TYPES)}")
        self.seq2seq_config = seq2seq_config
        self.inputs, self.input_dims = check_inputs(inputs, input_dims)
        check_time_encoding(timestamp_encoding)
        self.timestamp_encoding = timestamp_encoding
        self.max_steps = max_steps
        self.task = task
        self.base_model = base_model
        self.initializer_range = initializer_range
        super().__init__(**kwargs)

    @property
    def backbone(self) -> str:
        """``t5`` or ``bart``."""
        return self.seq2seq_config.get("model_type", "t5")

    def text_model_config(self) -> PretrainedConfig:
        from transformers import AutoConfig

        config = dict(self.seq2seq_config)
        return AutoConfig.for_model(config.pop("model_type", "t5"), **config)


register_config(AlexT5Config)
