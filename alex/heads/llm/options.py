from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from alex.heads.options import GenerativeOptions, option

LM_MODES = ("frozen", "lora", "full")
PROJECTORS = ("linear", "mlp2x_gelu")
LM_DTYPES = ("auto", "bf16", "fp16", "fp32")
CHAT_FORMATS = ("auto", "plain", "template", "llava_v1")


@dataclass(kw_only=True)
class LLMOptions(GenerativeOptions):
    """``alex train --head llm --model ID_OR_PATH``: a causal LM (Llama, Qwen2, GPT-2 families) reading
    the cached features through a LLaVA projector; the LM frozen, adapted with LoRA or trained in full."""

    head: ClassVar[str] = "llm"
    tasks: ClassVar[tuple[str, ...]] = ("caption", "qa", "action")

    lm: str = option("frozen", choices=LM_MODES,
                     help="frozen (projector, time embedding and action head learn), lora (peft, merged when saved) or full.")
    projector: str = option("mlp2x_gelu", choices=PROJECTORS, help="LLaVA projector: linear or mlp2x_gelu.")
    lm_loss_weight: float = option(1.0, help="Weight of the LM loss in the total loss.")
    action_loss_weight: float = option(1.0, help="--task action: weight of the action MSE in the total loss.")
    lora_rank: int = option(8, help="--lm lora: rank of the LoRA adapters (alpha = 2 x rank).")
    merge: bool = option(False, help="--lm lora: merge the adapters into the LM and save the whole LM "
                                     "(by default the run keeps the adapters, as a peft adapter folder).")
    projector_weights: str | None = option(None, metavar="PATH",
                                           help="Start the projector from a LLaVA / Video-LLaVA checkpoint's mm_projector "
                                                "(mm_projector.bin, a .safetensors or .bin file, or a checkpoint folder).")
    chat_format: str = option("auto", choices=CHAT_FORMATS,
                              help="How prompts are written: template (the tokenizer's chat template), llava_v1 (LLaVA's "
                                   "conversation format, as Video-LLaVA's Vicuna), plain; auto: template when the "
                                   "tokenizer has one, else plain.")
    dtype: str = option("auto", choices=LM_DTYPES,
                        help="The LM's weights: bf16, fp16 or fp32; auto is bf16 on a GPU (fp16 without bf16), fp32 on the CPU. "
                             "The projector, time embedding and action head train in fp32.")


OPTIONS = LLMOptions
