"""`slime-model plan`: parameter counts equal the real model's, LoRA counts equal peft's, the activation
model matches what autograd really saves on CPU, ZeRO divides what it should, and the CLI prints a table."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from transformers import LlamaConfig
from typer.testing import CliRunner

from slime_model.cli import app
from slime_model.configuration import SliMEConfig
from slime_model.modeling import SliMEForConditionalGeneration
from slime_model.planning import Hardware, activation_bytes, lora_parameters, parameter_counts, plan_recipe
from slime_model.training.lora import LoraSpec, add_lora
from slime_model.training.recipe import load_recipe
from tests.slime_model.training.training_helpers import REPO

A100 = Hardware(gpus=8, memory_gb=80, peak_flops=312e12, mfu=0.35, reserve=0.1)


def test_parameter_and_lora_counts_equal_the_built_models():
    config = SliMEConfig.from_name("tiny")
    counts, meta_model = parameter_counts(config)
    model = SliMEForConditionalGeneration(config)
    assert counts == {g: sum(p.numel() for _, p in ps) for g, ps in model.parameter_groups().items()}
    spec = LoraSpec(rank=4, alpha=8)
    before = sum(p.numel() for p in model.parameters())
    add_lora(model, spec)
    assert lora_parameters(meta_model, spec) == sum(p.numel() for p in model.parameters()) - before


SHAPES = [(64, 172, 4, 4), (256, 688, 4, 2)]  # (hidden, intermediate, heads, KV heads): the tiny width, and GQA
TOKENS = 256
# Measured in a fresh process: DeepSpeed's ZeRO-3 (run in-process by other tests) may leave torch's linear
# patched with a function that saves inputs even for frozen weights.
MEASURE = """
import json, sys
import torch, torch.nn.attention
from transformers import LlamaConfig, LlamaModel

def saved_bytes(config, tokens, trained):
    torch.manual_seed(0)
    model = LlamaModel(config).train().requires_grad_(trained)
    embeds = torch.randn(1, tokens, config.hidden_size, requires_grad=True)  # adapters below want gradients
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}  # saved for input gradients, not activations
    storages = {}

    def keep(tensor):
        if tensor.untyped_storage().data_ptr() not in weights:
            storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    # The flash kernel (CPU has one too) keeps no LxL matrix, as on the GPUs the plan is for.
    with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.FLASH_ATTENTION):
        with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
            model(inputs_embeds=embeds)
    return sum(storages.values())

out = {}
for hidden, inter, heads, kv in json.loads(sys.argv[1]):
    config = LlamaConfig(vocab_size=512, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=2,
                         num_attention_heads=heads, num_key_value_heads=kv, attn_implementation="sdpa")
    for trained in (True, False):
        out[f"{hidden}-{trained}"] = saved_bytes(config, int(sys.argv[2]), trained)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def measured_activations() -> dict[str, int]:
    """Bytes autograd keeps for backward in one forward of each LLM shape (storages counted once)."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, json.dumps(SHAPES), str(TOKENS)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("trained", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_activation_model_within_20_percent_of_what_autograd_saves_on_cpu(shape, trained, measured_activations):
    hidden, inter, heads, kv_heads = shape
    config = LlamaConfig(
        vocab_size=512,
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=2,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
    )
    measured = measured_activations[f"{hidden}-{trained}"]
    planned = activation_bytes(config, TOKENS, 0, 4, trained, checkpointing=False)
    assert abs(planned - measured) / measured < 0.20, (planned, measured)


def test_gradient_checkpointing_keeps_layer_inputs_plus_one_layer():
    config = SliMEConfig.from_name("slime-vicuna-7b").text_config
    full = activation_bytes(config, 2048, 0, 2, True, checkpointing=False)
    checkpointed = activation_bytes(config, 2048, 0, 2, True, checkpointing=True)
    assert checkpointed == pytest.approx(32 * 2048 * 4096 * 2 + full / 32)


def test_zero_stages_divide_the_state_as_the_zero_paper_says():
    sft_zero3 = plan_recipe(load_recipe(REPO / "pipelines" / "train" / "slime-vicuna-7b.yaml"), A100)[-1]
    assert sft_zero3.zero == 3
    trainable = sft_zero3.trainable
    assert sft_zero3.per_gpu_gb["optimizer"] == pytest.approx(trainable * 12 / 8 / 1e9)
    assert sft_zero3.per_gpu_gb["gradients"] == pytest.approx(trainable * 2 / 8 / 1e9)
    pretrain_zero2 = plan_recipe(load_recipe(REPO / "pipelines" / "train" / "slime-vicuna-7b.yaml"), A100)[0]
    assert pretrain_zero2.per_gpu_gb["weights"] == pytest.approx(sum(pretrain_zero2.params.values()) * 2 / 1e9)
    lora = plan_recipe(
        load_recipe(REPO / "pipelines" / "train" / "slime-llama3-70b-lora.yaml"),
        Hardware(gpus=64, memory_gb=80, peak_flops=312e12, mfu=0.35, reserve=0.1),
    )[-1]
    assert lora.offload == ["param", "optimizer"] and lora.cpu_gb > 2.0
    assert 1.5e9 < lora.trainable < 2.0e9  # r=128 on every linear layer of 80 layers + the adapters


def test_plan_cli_prints_every_stage_and_the_anchor():
    result = CliRunner().invoke(
        app,
        ["plan", "--recipe", str(REPO / "pipelines/train/slime-llama3-8b-lora.yaml"), "--gpus", "8"],
        env={"COLUMNS": "250"},
    )
    assert result.exit_code == 0, result.output
    for stage in ("1a", "1b", "2", "3"):
        assert f"│ {stage} " in result.output
    assert "anchor: LLaVA-1.5-7B" in result.output
    bad = CliRunner().invoke(app, ["plan", "--recipe", "nope.yaml"])
    assert bad.exit_code == 2 and "no such file" in bad.output
