"""Tiny text models with their own tokenizers, built offline (no hub): for tests, the demo and
learning checks of the generative heads. The tokenizers come from the ``tokenizers`` library."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

SPECIAL = ["<pad>", "</s>", "<unk>"]
SENTINELS = [f"<extra_id_{i}>" for i in range(20)]
PREFIXES = ["caption:", "vqa:", "classify:", "span:"]


def word_tokenizer(texts: Iterable[str], extra_tokens: Iterable[str] = (), append_eos: bool = True):
    """A word-level fast tokenizer over the words of ``texts`` (T5 conventions: <pad> 0, </s> 1,
    <unk> 2, sentinels <extra_id_N>; </s> appended to every sequence unless ``append_eos`` is False:
    a tokenizer with no post-processor, as many built with the ``tokenizers`` library are)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for text in texts for w in text.split()} | set(PREFIXES) | set(extra_tokens))
    vocab = {token: i for i, token in enumerate(SPECIAL + SENTINELS + [w for w in words if w not in SPECIAL + SENTINELS])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if append_eos:
        tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   additional_special_tokens=SENTINELS)


def make_tiny_t5(folder: str | Path, texts: Iterable[str], seed: int = 0, d_model: int = 64, append_eos: bool = True) -> Path:
    """A randomly initialised T5 (2 + 2 layers) and a word tokenizer for ``texts``, saved as a
    checkpoint folder that ``alex train --head t5 --t5 FOLDER`` loads like a hub model."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    folder = Path(folder)
    tokenizer = word_tokenizer(texts, append_eos=append_eos)
    config = T5Config(vocab_size=len(tokenizer), d_model=d_model, d_kv=d_model // 4, d_ff=2 * d_model, num_layers=2,
                      num_decoder_layers=2, num_heads=4, dropout_rate=0.0, decoder_start_token_id=0, pad_token_id=0,
                      eos_token_id=1)
    torch.manual_seed(seed)
    T5ForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def make_tiny_llama(folder: str | Path, texts: Iterable[str], seed: int = 0, hidden: int = 64) -> Path:
    """A randomly initialised Llama (2 layers, grouped-query attention) and a word tokenizer for
    ``texts``, saved as a checkpoint folder that ``alex train --head llm --llm FOLDER`` loads."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = Path(folder)
    tokenizer = word_tokenizer(texts, extra_tokens=["<video>", "<frame>"])
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, pad_token_id=0,
                         bos_token_id=1, eos_token_id=1, tie_word_embeddings=False)
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def make_tiny_bart(folder: str | Path, texts: Iterable[str], seed: int = 0, d_model: int = 64) -> Path:
    """A randomly initialised BART (2 + 2 layers, learned absolute positions) and a word tokenizer
    for ``texts``, saved as a checkpoint folder that ``alex train --head t5 --model FOLDER`` loads (VL-BART)."""
    import torch
    from transformers import BartConfig, BartForConditionalGeneration

    folder = Path(folder)
    tokenizer = word_tokenizer(texts)
    config = BartConfig(vocab_size=len(tokenizer), d_model=d_model, encoder_layers=2, decoder_layers=2,
                        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=2 * d_model,
                        decoder_ffn_dim=2 * d_model, max_position_embeddings=256, dropout=0.0, attention_dropout=0.0,
                        pad_token_id=0, eos_token_id=1, bos_token_id=2, decoder_start_token_id=1, forced_bos_token_id=None,
                        forced_eos_token_id=None, scale_embedding=True)
    torch.manual_seed(seed)
    BartForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
