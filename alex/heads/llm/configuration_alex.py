from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig

from alex.heads.auto import register_config
from alex.heads.llm.options import LLMOptions, PROJECTORS
from alex.heads.time_encoding import check_time_encoding


class AlexTextConfig(PretrainedConfig):
    """A causal LM (``lm_config``: any transformers causal LM config, Llama, Qwen2, GPT-2...) that
    reads cached video features at placeholder positions.

    ``input_dim``: size of one feature token; ``tokens_per_frame``: tokens a frame contributes
    (1 for a pooled vector, 257 for LanguageBind's ``--keep-tokens``); ``projector_type``: LLaVA's
    ``linear`` or ``mlp2x_gelu``; ``timestamp_encoding``: ``time2vec``, ``sinusoidal`` or ``none``
    (added to the frame tokens' embeddings); ``action_dim`` and the loss weights for
    ``AlexForAction``; ``image_encoder``: the encoder spec the store was built with, so a model
    can run on raw frames.

    Where the LM's weights live: ``lm_mode`` ``full`` (or ``merged`` LoRA) keeps them in the run's
    ``model.safetensors``; ``frozen`` and ``lora`` keep only the trainable weights there (and the
    LoRA adapters in ``adapter/``), and load the LM from ``base_model`` (a hub id or an absolute
    folder) in ``lm_dtype``.
    """

    model_type = "alex_llm"

    def __init__(
        self,
        lm_config: dict[str, Any] | None = None,
        inputs: list[str] | None = None,
        input_dim: int = 0,
        tokens_per_frame: int = 1,
        projector_type: str = LLMOptions.projector,
        timestamp_encoding: str = LLMOptions.timestamp_encoding,
        frame_token_id: int = 0,
        action_dim: int = 0,
        lm_loss_weight: float = LLMOptions.lm_loss_weight,
        action_loss_weight: float = LLMOptions.action_loss_weight,
        image_encoder: str | None = None,
        image_encoder_dtype: str | None = None,
        base_model: str | None = None,
        task: str = "caption",
        initializer_range: float = 0.02,
        lm_mode: str = "full",
        merged: bool = False,
        lm_dtype: str = "fp32",
        **kwargs: Any,
    ):
        if projector_type not in PROJECTORS:
            raise ValueError(f"projector_type {projector_type!r}: choose one of {', '.join(PROJECTORS)}")
        check_time_encoding(timestamp_encoding)
        self.lm_config = dict(lm_config or {})
        self.inputs = list(inputs or [])
        self.input_dim = int(input_dim)
        self.tokens_per_frame = int(tokens_per_frame)
        self.projector_type = projector_type
        self.timestamp_encoding = timestamp_encoding
        self.frame_token_id = int(frame_token_id)
        self.action_dim = int(action_dim)
        self.lm_loss_weight = float(lm_loss_weight)
        self.action_loss_weight = float(action_loss_weight)
        self.image_encoder = image_encoder
        self.image_encoder_dtype = image_encoder_dtype  # the precision the store's features were computed in
        self.base_model = base_model
        self.task = task
        self.initializer_range = initializer_range
        self.lm_mode = lm_mode
        self.merged = bool(merged)
        self.lm_dtype = lm_dtype
        super().__init__(**kwargs)

    @property
    def lm_in_run(self) -> bool:
        """Whether the run's own weights hold the whole LM (else it comes from ``base_model``)."""
        return self.lm_mode == "full" or self.merged

    def language_config(self):
        from transformers import AutoConfig

        config = dict(self.lm_config)
        return AutoConfig.for_model(config.pop("model_type"), **config)


class AlexActionConfig(AlexTextConfig):
    """``AlexForAction``'s config: an ``AlexTextConfig`` whose ``action_dim`` is the size of one
    action. Its own model_type lets ``AutoModel`` load an action run as ``AlexForAction``."""

    model_type = "alex_llm_action"

    def __init__(self, **kwargs: Any):  # its own __init__: transformers makes a config without one a dataclass
        super().__init__(**kwargs)


register_config(AlexTextConfig)
register_config(AlexActionConfig)
