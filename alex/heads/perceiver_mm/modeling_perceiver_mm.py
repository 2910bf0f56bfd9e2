"""DeepMind's multimodal Perceiver fine-tuned for video classification on frames + audio
(Jaegle et al. 2021, "Perceiver IO", Sec. 4.3; the emotion-recognition fine-tuning of seeds/002).

The model is transformers' ``PerceiverForMultimodalAutoencoding`` as pretrained, with the seed's
three changes for N new classes:

1. ``label2id`` / ``id2label`` / ``num_labels`` in the config;
2. the label modality's padding resized to ``input_channels - N`` and the preprocessor's minimum
   padding set so that every modality still pads to the pretrained input width (704 for the
   published model: the 700-way one-hot was the widest modality; with 6 labels audio (401) is, and
   transformers' formula would give 405 channels, which the pretrained cross-attention cannot
   take). The label input is masked with probability 1, as in pretraining, so its padding never
   reaches the encoder;
3. the label classifier Linear(512, 700) replaced by Linear(512, 256) -> Dropout(0.3) ->
   Linear(256, N).

Only the label is decoded (``subsampled_output_points`` with no image or audio point), so no
reconstruction is computed. ``PerceiverForMultimodalAutoencoding`` has no training loss; this
head's is the cross-entropy of the label logits. Several clips of a video are classified alone and
averaged: ``logits`` are the log of the mean of their probabilities.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from transformers import PerceiverForMultimodalAutoencoding
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.models.perceiver.modeling_perceiver import PerceiverOneHotPreprocessor

from alex.heads.auto import register_model
from alex.heads.perceiver_mm.configuration_perceiver_mm import PerceiverMMConfig

# Clips through the model at once: a published-size clip is 52,097 input points and a 784 x 52,097
# cross-attention map, so evaluating 2 videos x 8 clips in one call would need tens of GB.
CLIPS_PER_FORWARD = 4


class PerceiverMMForVideoClassification(PerceiverForMultimodalAutoencoding):
    config_class = PerceiverMMConfig
    main_input_name = "image"

    def __init__(self, config: PerceiverMMConfig):
        base = copy.deepcopy(config)  # the pretrained architecture: built for its own label count
        base.num_labels = config.base_num_labels or config.num_labels
        super().__init__(base)
        self.config = config
        self._adapt_to_labels(config)
        self.post_init()  # initialises the new padding and classifier only

    def _adapt_to_labels(self, config: PerceiverMMConfig) -> None:
        preprocessor = self.perceiver.input_preprocessor
        width = config.input_channels or preprocessor.num_channels
        preprocessor.modalities["label"] = PerceiverOneHotPreprocessor(config)
        widest = max(p.num_channels for p in preprocessor.modalities.values())
        if widest > width:
            raise ValueError(f"{config.num_labels} labels do not fit the pretrained input width of {width} channels")
        preprocessor.min_padding_size = width - widest  # every modality still pads to `width`
        preprocessor.padding["label"] = nn.Parameter(torch.zeros(1, width - config.num_labels))
        classifier = self.perceiver.output_postprocessor.modalities["label"]
        classifier.classifier = nn.Sequential(
            nn.Linear(config.output_num_channels, config.classifier_hidden_size),
            nn.Dropout(config.classifier_dropout),
            nn.Linear(config.classifier_hidden_size, config.num_labels),
        )
        config.input_channels = width

    def clip_logits(self, image: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """image (M, F, S, S, 3) uint8, audio (M, samples) float -> label logits (M, N)."""
        pixels = image.permute(0, 1, 4, 2, 3).float() / 255.0  # (M, F, 3, S, S) in [0, 1], as pretrained
        inputs = {
            "image": pixels,
            "audio": audio.float()[..., None],  # (M, samples, 1)
            "label": torch.zeros(image.shape[0], self.config.num_labels, device=image.device),  # masked anyway
        }
        nothing = torch.zeros(0, dtype=torch.long, device=image.device)
        points = {"image": nothing, "audio": nothing, "label": None}  # decode the label query only
        return super().forward(inputs=inputs, subsampled_output_points=points).logits["label"]

    def forward(
        self,
        image: torch.Tensor,  # (B, K, F, S, S, 3) uint8: K clips per video
        audio: torch.Tensor,  # (B, K, samples) float
        clip_mask: torch.Tensor | None = None,  # (B, K) bool: real clips (videos have different counts)
        labels: torch.Tensor | None = None,  # (B,)
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        batch, clips = image.shape[:2]
        if clip_mask is None:
            clip_mask = torch.ones(batch, clips, dtype=torch.bool, device=image.device)
        clip_mask = clip_mask.bool()
        chosen_image, chosen_audio = image[clip_mask], audio[clip_mask]  # (M, F, S, S, 3), (M, samples)
        logits = torch.cat([self.clip_logits(i, a) for i, a in zip(chosen_image.split(CLIPS_PER_FORWARD),
                                                                    chosen_audio.split(CLIPS_PER_FORWARD))])  # (M, N)
        log_probs = torch.full((batch, clips, logits.shape[-1]), float("-inf"), device=logits.device)
        log_probs[clip_mask] = logits.float().log_softmax(-1)  # (B, K, N)
        counts = clip_mask.sum(-1).clamp(min=1)  # (B,)
        mean = torch.logsumexp(log_probs, dim=1) - counts.log()[:, None]  # (B, N): log of the mean probability
        loss = None
        if labels is not None:
            per_clip = nn.functional.cross_entropy(
                logits.float(), labels[:, None].expand(batch, clips)[clip_mask], reduction="none")  # (M,)
            video = torch.zeros(batch, device=logits.device).index_add(
                0, clip_mask.nonzero()[:, 0], per_clip) / counts  # (B,) mean over each video's clips
            loss = video.mean()
        return SequenceClassifierOutput(loss=loss, logits=mean)

    def estimate_tokens(self, inputs: dict[str, Any]) -> int:
        """Clips in a batch, for the Trainer's FLOP count."""
        mask = inputs.get("clip_mask")
        return int(mask.sum()) if mask is not None else int(inputs["image"].shape[0])


def from_base(base: PerceiverForMultimodalAutoencoding, labels: list[str], **settings: Any) -> PerceiverMMForVideoClassification:
    """The head for ``labels`` from a pretrained ``PerceiverForMultimodalAutoencoding``: every
    pretrained weight kept, except the two the new label count replaces (the label padding and the
    classifier), which start fresh."""
    base_config = base.config.to_dict()
    for key in ("model_type", "architectures", "id2label", "label2id", "num_labels", "transformers_version"):
        base_config.pop(key, None)
    config = PerceiverMMConfig(
        **{**base_config, **settings}, base_num_labels=base.config.num_labels,
        input_channels=base.perceiver.input_preprocessor.num_channels,
        id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)},
    )
    model = PerceiverMMForVideoClassification(config)
    ours = model.state_dict()
    kept = {k: v for k, v in base.state_dict().items() if k in ours and ours[k].shape == v.shape}
    missing, _ = model.load_state_dict(kept, strict=False)
    fresh = {"perceiver.input_preprocessor.padding.label"}
    unexpected_fresh = [k for k in missing if k not in fresh and ".modalities.label.classifier." not in k]
    if unexpected_fresh:
        raise ValueError(f"pretrained weights missing for {unexpected_fresh[:5]}: not a multimodal Perceiver checkpoint")
    return model


register_model(PerceiverMMForVideoClassification, "AutoModelForVideoClassification")
