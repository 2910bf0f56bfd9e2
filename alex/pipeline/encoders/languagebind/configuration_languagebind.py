"""``LanguageBindVideoConfig`` (spec §1): a CLIP text config, a CLIP vision config with the
temporal fields, and the shared projection size."""

from __future__ import annotations

from typing import Any

from transformers import CLIPTextConfig, CLIPVisionConfig, PretrainedConfig

VISION_EXTRAS = {
    "add_time_attn": False,
    "num_frames": 1,
    "force_patch_dropout": 0.0,
    "lora_r": 2,
    "lora_alpha": 16,
    "lora_dropout": 0.0,
    "clip_type": "vl",  # 'vl_new': 3-D patch embedding and one CLS vector per frame (V1.5)
    "tube_size": 1,
}


class LanguageBindVideoConfig(PretrainedConfig):
    model_type = "LanguageBindVideo"

    def __init__(self, text_config: dict | None = None, vision_config: dict | None = None, projection_dim: int = 512,
                 logit_scale_init_value: float = 2.6592, **kwargs: Any):
        # Legacy keys override (the Huge V1.5 config.json keeps its video fields there).
        text_config = {**(text_config or {}), **(kwargs.pop("text_config_dict", None) or {})}
        vision_config = {**(vision_config or {}), **(kwargs.pop("vision_config_dict", None) or {})}
        super().__init__(**kwargs)
        extras = {key: vision_config.pop(key, default) for key, default in VISION_EXTRAS.items()}
        text_config.pop("add_time_attn", None)  # text layers never have temporal parts
        self.text_config = CLIPTextConfig(**text_config)
        self.vision_config = CLIPVisionConfig(**vision_config)
        for key, value in extras.items():
            setattr(self.vision_config, key, value)
        self.projection_dim = projection_dim
        self.logit_scale_init_value = logit_scale_init_value
        self.initializer_factor = 1.0

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["text_config"] = self.text_config.to_dict()
        vision = self.vision_config.to_dict()
        vision.update({key: getattr(self.vision_config, key) for key in VISION_EXTRAS})
        out["vision_config"] = vision
        return out


# A configuration of the same architecture small enough for tests on two CPU cores: 32 px
# frames, 8 px patches (17 tokens), 4 frames, 2 layers, the real CLIP vocabulary.
TINY = {
    "projection_dim": 16,
    "text_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                    "max_position_embeddings": 77, "vocab_size": 49408, "hidden_act": "gelu"},
    "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                      "image_size": 32, "patch_size": 8, "hidden_act": "gelu", "add_time_attn": True, "num_frames": 4,
                      "lora_r": 0},
}
