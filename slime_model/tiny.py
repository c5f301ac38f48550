"""A tiny SliME built from configs in milliseconds: a byte-level BPE tokenizer trained in memory, a
2-layer CLIP at 112 px and a 2-layer Llama. Tests, demos and the trainer's CPU runs use it; nothing
is downloaded.
"""

from __future__ import annotations

import functools
from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import CLIPVisionConfig, LlamaConfig, PreTrainedTokenizerFast

BOS, EOS, PAD, IMAGE = "<s>", "</s>", "<pad>", "<image>"
LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
SPECIAL_TOKENS = [PAD, BOS, EOS, *LLAMA3_SPECIALS, IMAGE]
TINY_VOCAB_SIZE = 512  # the tiny LLM's vocabulary; the trained tokenizer stays below it

# A fixed corpus keeps the merges (and so every token id) identical from run to run.
_CORPUS = [
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions.",
    "USER: What is shown in the image? ASSISTANT: A red square on a blue background.",
    "USER: How many bars are in the chart? ASSISTANT: There are 4 bars, the tallest is 12.",
    "USER: What is the area of the triangle? ASSISTANT: The area is 1/2 * base * height = 6.",
    "user assistant question answer the a an of in on is are what which how many color shape",
    "0 1 2 3 4 5 6 7 8 9 10 , . ? ! : ; ( ) + - * / = %",
]


@functools.lru_cache(maxsize=1)
def _tiny_tokenizer_json() -> str:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=384,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS * 4, trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, tokenizer.token_to_id(BOS))]
    )
    return tokenizer.to_str()


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A fresh byte-level BPE tokenizer (~384 tokens) with `<image>` and the Llama-3 header tokens as specials."""
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tiny_tokenizer_json()),
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        extra_special_tokens=[IMAGE, *LLAMA3_SPECIALS],
    )
    tokenizer.model_max_length = 2048
    return tokenizer


def tiny_settings() -> dict[str, Any]:
    """Keyword arguments of the "tiny" `SliMEConfig` preset (64 global tokens, 16 local queries per crop)."""
    tokenizer = tiny_tokenizer()
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=112,
        patch_size=14,
        projection_dim=32,
    )
    text = LlamaConfig(
        vocab_size=TINY_VOCAB_SIZE,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return {
        "vision_config": vision,
        "text_config": text,
        "resampler_num_heads": 2,
        "local_num_queries": 16,
        "separator_token_id": tokenizer.convert_tokens_to_ids(","),
        "image_token_id": tokenizer.convert_tokens_to_ids(IMAGE),
        "chat_template": "vicuna_v1",
    }
