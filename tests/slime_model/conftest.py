"""Shared fixtures: the tiny preset (2-layer CLIP at 112 px, 2-layer Llama, in-memory BPE tokenizer)."""

from __future__ import annotations

import pytest
import torch

from slime_model.configuration import SliMEConfig
from slime_model.modeling import SliMEForConditionalGeneration
from slime_model.processing import SliMEProcessor
from slime_model.tiny import tiny_tokenizer


@pytest.fixture(autouse=True)
def single_torch_thread():
    """Tiny models run ~50x slower with 2 intra-op threads on a busy 2-core machine (thread contention)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def config() -> SliMEConfig:
    return SliMEConfig.from_name("tiny")


@pytest.fixture
def model(config: SliMEConfig) -> SliMEForConditionalGeneration:
    torch.manual_seed(0)
    return SliMEForConditionalGeneration(config).eval()


@pytest.fixture
def processor(config: SliMEConfig) -> SliMEProcessor:
    return SliMEProcessor.from_config(config, tiny_tokenizer())
