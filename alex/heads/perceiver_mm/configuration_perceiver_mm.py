from __future__ import annotations

from typing import Any

from transformers import PerceiverConfig

from alex.heads.auto import register_config


class PerceiverMMConfig(PerceiverConfig):
    """The pretrained model's own ``PerceiverConfig`` and what fine-tuning changed (seeds/002):
    ``num_labels`` / ``id2label`` / ``label2id`` the new classes; ``base_num_labels`` the label count the
    pretrained model was built with (700 for Kinetics-700), which fixes its architecture;
    ``input_channels`` the pretrained encoder's input width (704), kept whatever the new label
    count; the label classifier Linear(output_num_channels, ``classifier_hidden_size``) ->
    Dropout(``classifier_dropout``) -> Linear(``classifier_hidden_size``, num_labels)."""

    model_type = "alex_perceiver_mm"

    def __init__(
        self,
        base_num_labels: int | None = None,
        input_channels: int | None = None,
        classifier_hidden_size: int = 256,
        classifier_dropout: float = 0.3,
        inputs: list[str] | None = None,
        eval_clips: int = 8,
        **kwargs: Any,
    ):
        self.base_num_labels = base_num_labels
        self.input_channels = input_channels
        self.classifier_hidden_size = classifier_hidden_size
        self.classifier_dropout = classifier_dropout
        self.inputs = list(inputs or ["perceiver-mm"])
        self.eval_clips = eval_clips
        super().__init__(**kwargs)


register_config(PerceiverMMConfig)
