"""The weights a run starts from, and each stage's model loaded from the previous stage's checkpoint.

Every stage starts from a Hugging Face checkpoint folder: the first from `OUT/init` (written once
from the recipe's model source) or from the recipe's `checkpoint`, the others from the stage
before. So all stages load the same way, and a rerun after a crash needs nothing in memory.
Under ZeRO-3 `from_pretrained` runs inside DeepSpeed's `zero.Init` (via `HfDeepSpeedConfig`):
each parameter is partitioned as it is built and filled from the checkpoint by a gather on rank 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from slime_model.configuration import SliMEConfig
from slime_model.modeling import SliMEForConditionalGeneration
from slime_model.permissions import follow_umask
from slime_model.processing import SliMEProcessor
from slime_model.training.recipe import ModelSource

PRECISION_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def build_initial(source: ModelSource, seed: int) -> tuple[SliMEForConditionalGeneration, SliMEProcessor]:
    """A SliME model and processor from a preset (random weights) or a preset + vision tower + LLM."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, CLIPVisionModel

    from slime_model.tiny import tiny_tokenizer

    torch.manual_seed(seed)
    if source.vision_tower is None:  # the tiny preset: nothing to load
        config = SliMEConfig.from_name(source.preset)
        model = SliMEForConditionalGeneration(config)
        return model, SliMEProcessor.from_config(config, tiny_tokenizer())

    vision = CLIPVisionModel.from_pretrained(source.vision_tower)
    llm = AutoModelForCausalLM.from_pretrained(source.llm)
    tokenizer = AutoTokenizer.from_pretrained(source.llm)
    preset = SliMEConfig.from_name(source.preset)
    if preset.image_token not in tokenizer.get_vocab():
        tokenizer.add_tokens([preset.image_token], special_tokens=True)
    config = SliMEConfig.from_name(
        source.preset,
        vision_config=vision.config,
        text_config=llm.config,
        image_token_id=tokenizer.convert_tokens_to_ids(preset.image_token),
    )
    model = SliMEForConditionalGeneration(config)
    # The adapters keep their fresh initialisation; the tower and the LLM come from their checkpoints.
    model.model.vision_tower.load_state_dict(vision.state_dict())
    model.model.language_model.load_state_dict(llm.get_decoder().state_dict())
    model.lm_head.load_state_dict(llm.get_output_embeddings().state_dict())
    return model, SliMEProcessor.from_config(config, tokenizer)


def save_checkpoint_dir(
    model: SliMEForConditionalGeneration,
    processor: SliMEProcessor,
    out: Path,
    state_dict: dict[str, torch.Tensor] | None = None,
) -> None:
    """save_pretrained (safetensors) + the processor; `state_dict` when the model's own is partitioned (ZeRO-3).

    Keys are written exactly as the modules name them. A model loaded under ZeRO-3 records every
    legacy renaming transformers knows for its sub-models (not just those it applied), and the
    default `save_original_format=True` would write them back in reverse, e.g. `language_model.model.`.
    """
    model.save_pretrained(out, state_dict=state_dict, save_original_format=False)
    follow_umask(out)
    processor.save_pretrained(out)


@contextmanager
def zero3_init(ds_config: dict[str, Any] | None) -> Iterator[None]:
    """While active, transformers builds models partitioned by ZeRO-3 (None: an ordinary build)."""
    if ds_config is None:
        yield
        return
    from transformers.integrations import HfDeepSpeedConfig

    marker = HfDeepSpeedConfig(ds_config)  # transformers holds only a weak reference: keep it alive here
    try:
        yield
    finally:
        del marker


def load_stage_model(
    checkpoint: Path, precision: str, zero3_config: dict[str, Any] | None
) -> SliMEForConditionalGeneration:
    with zero3_init(zero3_config):
        return SliMEForConditionalGeneration.from_pretrained(checkpoint, dtype=PRECISION_DTYPES[precision])
