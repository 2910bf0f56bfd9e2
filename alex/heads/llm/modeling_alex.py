"""``AlexTextModel`` and ``AlexForAction`` (seeds/000): a causal LM reads cached video features.

A LLaVA projector (Liu et al. 2023, "Visual Instruction Tuning": ``linear`` or ``mlp2x_gelu``)
maps each feature token into the LM's embedding space, where it replaces a frame placeholder;
a time encoding of the frame's timestamp (Time2Vec, Kazemi et al. 2019) is added to it, because
time in video is continuous and positions are not. ``AlexTextModel`` trains the LM loss on
the answer (``labels``, -100 elsewhere; or ``text_target_mask`` positions); ``AlexForAction`` adds an action head, a regression from the
hidden state at each frame's last placeholder (``action_target_mask``), with an MSE loss.

Outputs are transformers' ``CausalLMOutputWithPast`` (``AlexCausalLMOutput`` adds the action
fields), built from the LM's own output, so they follow transformers when it renames a field
(``past_key_values`` became ``cache`` in 5.x).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForCausalLM, GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from alex.heads.auto import register_model
from alex.heads.llm.configuration_alex import AlexActionConfig, AlexTextConfig
from alex.heads.time_encoding import Time2Vec, build_time_encoding


DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
ADAPTER_DIR = "adapter"  # a LoRA run's adapters, in peft's own format


def load_language_model(name_or_path: str, dtype: str = "fp32", what: str = "--model") -> PreTrainedModel:
    """A causal LM by hub id or folder, built once, in ``dtype`` (fails fast offline)."""
    from alex.hub import check_model_available, local_only

    check_model_available(name_or_path, what)
    return AutoModelForCausalLM.from_pretrained(name_or_path, local_files_only=local_only(name_or_path),
                                                dtype=DTYPES[dtype])


def build_projector(kind: str, in_dim: int, hidden: int) -> nn.Module:
    """LLaVA's projectors: ``linear``, or ``mlp2x_gelu`` = Linear, GELU, Linear."""
    if kind == "linear":
        return nn.Linear(in_dim, hidden)
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden))


@dataclass
class AlexCausalLMOutput(CausalLMOutputWithPast):
    """The LM's output, with the head's total ``loss`` and its parts, and the action predictions."""

    action_predictions: torch.Tensor | None = None  # (frames in the batch, action_dim)
    lm_loss: torch.Tensor | None = None
    action_loss: torch.Tensor | None = None


class AlexTextModel(PreTrainedModel, GenerationMixin):
    config_class = AlexTextConfig
    base_model_prefix = "alex"
    main_input_name = "input_ids"

    def __init__(self, config: AlexTextConfig, language_model: PreTrainedModel | None = None):
        """``language_model``: a loaded causal LM to wrap (built from ``config.lm_config`` when None,
        as in ``from_pretrained``)."""
        super().__init__(config)
        lm_config = config.language_config()
        self.language_model = language_model if language_model is not None else AutoModelForCausalLM.from_config(lm_config)
        hidden = lm_config.hidden_size
        self.projector = build_projector(config.projector_type, config.input_dim, hidden)
        self.time_embedding = build_time_encoding(config.timestamp_encoding, hidden)
        self.image_encoder = None  # attached at run time (not a weight of this model), see attach_image_encoder
        self.post_init()

    # ---- the frozen image encoder, for raw frames -------------------------------------------

    def attach_image_encoder(self, encoder: Any) -> None:
        """Let the model take ``video_frames``: ``encoder.encode(frames)`` gives (N, D) features, the
        same ones ``alex extract`` cached (the encoder of ``config.image_encoder``). It is frozen and
        not part of this model's weights."""
        object.__setattr__(self, "image_encoder", encoder)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "image_encoder":  # never registered as a submodule: it is not saved with the head
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def video_tokens(self, video_features: torch.Tensor | None = None, video_frames: torch.Tensor | None = None,
                     frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Projected feature tokens of the real frames, in order: (frames in the batch * k, hidden)."""
        if video_frames is not None:
            if self.image_encoder is None:
                raise ValueError("video_frames need an image encoder: attach_image_encoder(...) (alex.heads_with_encoder)")
            B, T = video_frames.shape[:2]
            with torch.no_grad():
                encoded = self.image_encoder.encode(video_frames.flatten(0, 1))
            features = getattr(encoded, "pooled", encoded).float().view(B, T, -1)  # (B, T, D)
        else:
            features = video_features
        B, T = features.shape[:2]
        features = features.reshape(B, T, self.config.tokens_per_frame, -1)  # (B, T, k, D)
        if frame_mask is None:
            frame_mask = torch.ones(B, T, dtype=torch.bool, device=features.device)
        projector_dtype = next(self.projector.parameters()).dtype
        return self.projector(features[frame_mask].to(projector_dtype)).flatten(0, 1)  # (n * k, hidden)

    def embed(self, input_ids: torch.Tensor, video_frame_mask: torch.Tensor | None = None,
              timestamp: torch.Tensor | None = None, video_features: torch.Tensor | None = None,
              video_frames: torch.Tensor | None = None, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Token embeddings with frame placeholders replaced by projected features plus time: (B, L, H)."""
        embeddings = self.language_model.get_input_embeddings()
        if video_frame_mask is None or not video_frame_mask.any():
            return embeddings(input_ids)
        embeds = embeddings(input_ids.masked_fill(video_frame_mask, 0))  # placeholders have no LM embedding
        tokens = self.video_tokens(video_features, video_frames, frame_mask).to(embeds.dtype)
        if tokens.shape[0] != int(video_frame_mask.sum()):
            raise ValueError(f"{int(video_frame_mask.sum())} frame placeholders for {tokens.shape[0]} feature tokens")
        embeds = embeds.masked_scatter(video_frame_mask[..., None], tokens)
        if self.time_embedding is not None and timestamp is not None:
            time = self.time_embedding(timestamp).to(embeds.dtype)  # (B, L, H)
            embeds = embeds + time * video_frame_mask[..., None]
        return embeds

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        timestamp: torch.Tensor | None = None,
        video_frame_mask: torch.Tensor | None = None,
        action_target_mask: torch.Tensor | None = None,
        text_target_mask: torch.Tensor | None = None,
        video_features: torch.Tensor | None = None,
        video_frames: torch.Tensor | None = None,
        frame_mask: torch.Tensor | None = None,
        actions: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> AlexCausalLMOutput:
        """``labels`` (B, L): the answer's token ids where they stand, -100 elsewhere (shifted here,
        as transformers' causal LMs do). ``position_ids`` default to counting real tokens only,
        so a sample's outputs do not depend on the padding its batch needs, left or right.
        Other ``kwargs`` go to the LM as they are (its cache, ``use_cache``...)."""
        if inputs_embeds is None:
            inputs_embeds = self.embed(input_ids, video_frame_mask, timestamp, video_features, video_frames, frame_mask)
        if position_ids is None and attention_mask is not None:
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # (B, L)
        # The decoder, then the LM head: the action head reads the last hidden state without every
        # layer's activations being kept (output_hidden_states), and the logits are the LM's own.
        out = self.language_model.get_decoder()(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                                position_ids=position_ids, **kwargs)
        hidden = out.last_hidden_state  # (B, L, H)
        logits = self.language_model.get_output_embeddings()(hidden)  # (B, L, V)
        lm_loss = None
        if labels is not None:
            if (labels[:, 1:] != -100).any():
                predicting = logits[:, :-1].flatten(0, 1).float()  # position i predicts token i + 1
                lm_loss = nn.functional.cross_entropy(predicting, labels[:, 1:].flatten(), ignore_index=-100)
        elif text_target_mask is not None and input_ids is not None and text_target_mask[:, :-1].any():
            predict = text_target_mask[:, :-1]  # position i predicts token i + 1
            lm_loss = nn.functional.cross_entropy(logits[:, :-1][predict].float(), input_ids[:, 1:][predict])
        predictions, action_loss = self._actions(hidden, action_target_mask, actions, frame_mask)
        parts = [w * l for w, l in ((self.config.lm_loss_weight, lm_loss), (self.config.action_loss_weight, action_loss))
                 if l is not None]
        fields = {k: v for k, v in out.items() if k != "last_hidden_state"}  # the LM's own fields, current names
        fields.update(loss=sum(parts) if parts else None, logits=logits, lm_loss=lm_loss, action_loss=action_loss,
                      action_predictions=predictions)
        return AlexCausalLMOutput(**fields)

    def _actions(self, hidden, action_target_mask, actions, frame_mask) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(action predictions, action loss): none without an action head."""
        return None, None

    @torch.no_grad()
    def generate(self, input_ids=None, attention_mask=None, timestamp=None, video_frame_mask=None, video_features=None,
                 video_frames=None, frame_mask=None, **kwargs):
        """Embed the prompt (text and frames) once; the LM generates the continuation (new tokens only)
        with this head's ``generation_config`` (greedy, ``max_new_tokens``; keyword arguments override it)."""
        embeds = self.embed(input_ids, video_frame_mask, timestamp, video_features, video_frames, frame_mask)
        kwargs.setdefault("generation_config", self.generation_config)
        for key in ("action_target_mask", "text_target_mask", "actions", "labels"):
            kwargs.pop(key, None)
        return self.language_model.generate(inputs_embeds=embeds, attention_mask=attention_mask, **kwargs)

    def estimate_tokens(self, inputs: dict[str, Any]) -> int:
        return int(inputs["attention_mask"].sum()) if "attention_mask" in inputs else 0

    # ---- a run folder: the whole LM, or only what was trained ----------------------------------

    def kept_weights(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """What a run folder keeps of ``state_dict``: everything when the LM is part of the run,
        else the head's own weights and the LM's trainable ones (LoRA adapters)."""
        if self.config.lm_in_run:
            return state_dict
        trainable = {name for name, p in self.named_parameters() if p.requires_grad}
        return {k: v for k, v in state_dict.items() if not k.startswith("language_model.") or k in trainable}

    def save_pretrained(self, save_directory: str | Path, *args: Any, state_dict: dict | None = None, **kwargs: Any) -> None:
        """As transformers saves a model, but a frozen or LoRA run keeps only the weights it trained
        (a few MB beside a 7B LM), the LoRA adapters also as a peft adapter folder (``adapter/``)."""
        state = self.kept_weights(state_dict if state_dict is not None else self.state_dict())
        super().save_pretrained(save_directory, *args, state_dict=state, **kwargs)
        if self.config.lm_mode == "lora" and not self.config.merged and hasattr(self.language_model, "peft_config"):
            self.language_model.save_pretrained(str(Path(save_directory) / ADAPTER_DIR))

    def _restore_own_weights(self, weights: Path) -> None:
        """transformers loads a whole model in one dtype (the LM's): give the head's own modules back
        their fp32 weights, exactly as saved."""
        from safetensors import safe_open

        if not weights.is_file():
            return
        for name, module in self.named_children():
            if name != "language_model":
                module.float()
        with safe_open(str(weights), framework="pt") as f:
            own = {k: f.get_tensor(k) for k in f.keys() if not k.startswith("language_model.")}
        self.load_state_dict(own, strict=False)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, *model_args: Any, config: Any = None, **kwargs: Any):
        """A run folder, exactly as trained. When it does not hold the LM, the LM is loaded once from
        ``config.base_model`` (in ``config.lm_dtype``, or ``dtype=``), its LoRA adapters from
        ``adapter/``, and the run's weights on top."""
        from safetensors.torch import load_file

        path = Path(pretrained_model_name_or_path)
        if config is None:
            config = cls.config_class.from_pretrained(str(path))
        if config.lm_in_run or not (path / "model.safetensors").is_file():
            model = super().from_pretrained(str(path), *model_args, config=config, **kwargs)
            model._restore_own_weights(path / "model.safetensors")
            return model
        dtype = kwargs.get("dtype")
        dtype = next((k for k, v in DTYPES.items() if v == dtype), dtype) if dtype is not None else config.lm_dtype
        model = cls(config, language_model=load_language_model(config.base_model, dtype, what="the run's base_model"))
        if config.lm_mode == "lora":  # wrapped after the head is built, as in training (tied weights resolve first)
            from peft import PeftModel

            model.language_model = PeftModel.from_pretrained(model.language_model, str(path / ADAPTER_DIR))
        missing, unexpected = model.load_state_dict(load_file(str(path / "model.safetensors")), strict=False)
        wrong = list(unexpected) + [k for k in missing if not k.startswith("language_model.")]
        if wrong:
            raise ValueError(f"{path / 'model.safetensors'} does not fit this head: {', '.join(wrong[:5])}")
        if (path / "generation_config.json").is_file():
            from transformers import GenerationConfig

            model.generation_config = GenerationConfig.from_pretrained(str(path))
        return model.eval()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if any(module is m for m in self.language_model.modules()):
            return  # the LM initialises (or loads) its own weights
        super()._init_weights(module)
        if isinstance(module, Time2Vec):
            module.reset_time_parameters()


class AlexForAction(AlexTextModel):
    """AlexTextModel plus an action head: the action of each frame regressed from the hidden state
    at its last placeholder, MSE, weighted against the LM loss (``lm_loss_weight``, ``action_loss_weight``)."""

    config_class = AlexActionConfig

    def __init__(self, config: AlexActionConfig, language_model: PreTrainedModel | None = None):
        super().__init__(config, language_model)
        hidden = config.language_config().hidden_size
        self.action_head = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, max(1, config.action_dim)))
        self.post_init()

    def _actions(self, hidden, action_target_mask, actions, frame_mask):
        if action_target_mask is None:
            return None, None
        last = hidden[action_target_mask]  # (frames in the batch, H): each frame's last placeholder
        predictions = self.action_head(last.to(self.action_head[0].weight.dtype)).float()
        action_loss = None
        if actions is not None:
            targets = actions[frame_mask] if frame_mask is not None else actions.flatten(0, 1)
            action_loss = nn.functional.mse_loss(predictions, targets.float())
        return predictions, action_loss


register_model(AlexTextModel, "AutoModelForCausalLM")
register_model(AlexForAction)
