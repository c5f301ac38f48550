"""LoRA stages: merging is exact, only the adapters and the stage's other groups train, the merged
checkpoint loads without peft, and LoRA runs under ZeRO-2 and ZeRO-3 with two gloo processes."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from slime_model.configuration import SliMEConfig
from slime_model.modeling import PARAMETER_GROUPS, SliMEForConditionalGeneration
from slime_model.training.lora import LLAMA_LINEAR_LAYERS, LoraSpec, add_lora, merge_state_dict
from slime_model.training.recipe import load_recipe
from slime_model.training.runner import train
from tests.slime_model.training.training_helpers import run, two_process_command, write_recipe

LORA = {"rank": 4, "alpha": 8.0, "dropout": 0.0, "keep_adapters": True}


def _text_logits(model: SliMEForConditionalGeneration, input_ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).logits


def test_merged_state_dict_gives_the_unmerged_models_logits_and_its_own_keys():
    torch.manual_seed(0)
    config = SliMEConfig.from_name("tiny")
    model = SliMEForConditionalGeneration(config).eval()
    plain_keys = set(model.state_dict())
    spec = LoraSpec(**LORA)
    add_lora(model, spec)
    for name, param in model.named_parameters():
        if ".lora_B." in name:  # B starts at 0 (no change); give the adapters something to merge
            torch.nn.init.normal_(param, std=0.5)
    input_ids = torch.randint(3, config.text_config.vocab_size, (2, 12))
    with_adapters = _text_logits(model, input_ids)

    merged = merge_state_dict(model.state_dict(), spec.scaling)
    assert set(merged) == plain_keys  # loads into a model without peft, nothing missing or extra
    fresh = SliMEForConditionalGeneration(config).eval()
    fresh.load_state_dict(merged, strict=True)
    assert not torch.allclose(
        _text_logits(fresh, input_ids), _text_logits(SliMEForConditionalGeneration(config).eval(), input_ids)
    )
    torch.testing.assert_close(_text_logits(fresh, input_ids), with_adapters, atol=1e-5, rtol=1e-5)


def test_unknown_target_module_is_a_clear_error():
    model = SliMEForConditionalGeneration(SliMEConfig.from_name("tiny"))
    with pytest.raises(ValueError, match=r"\['c_attn'\] are not linear layers of the LLM"):
        add_lora(model, LoraSpec(target_modules=["c_attn"]))


def test_a_lora_section_without_the_llm_group_is_refused(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", stage_changes={"lora": LORA})  # stages 1a/1b/2 do not train the llm
    with pytest.raises(ValueError, match="does not train the llm group"):
        load_recipe(path)


def _groups(weights: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    groups: dict[str, dict[str, torch.Tensor]] = {name: {} for name in PARAMETER_GROUPS}
    for key, tensor in weights.items():
        groups[next(g for g, prefixes in PARAMETER_GROUPS.items() if key.startswith(prefixes))][key] = tensor
    return groups


def _lora_sft_stage(deepspeed: str | None = None, **changes) -> dict:
    sft = load_recipe().model_dump(mode="json")["stages"][3]
    stage = {
        **sft,
        "trainable": ["llm", "global.mlp"],
        "lora": LORA,
        "max_steps": 2,
        "global_batch": 2,
        "micro_batch": 1,
        "optimizer": {**sft["optimizer"], "lr": 5e-3},
        **changes,
    }
    return stage if deepspeed is None else {**stage, "deepspeed": deepspeed}


def test_a_lora_stage_changes_only_the_adapted_layers_and_its_other_groups(tiny_mix, tmp_path):
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml", stages=[_lora_sft_stage()], data={"num_workers": 0}))
    [result] = train(tiny_mix, recipe, tmp_path / "out")
    assert result.status == "trained" and result.steps == 2
    before = _groups(load_file(tmp_path / "out" / "init" / "model.safetensors"))
    after = _groups(load_file(tmp_path / "out" / "stage-3" / "model.safetensors"))
    assert {g: set(v) for g, v in before.items()} == {g: set(v) for g, v in after.items()}  # no LoRA keys left

    changed = {g for g in before if any(not torch.equal(before[g][k], after[g][k]) for k in before[g])}
    assert changed == {"llm", "global.mlp"}
    llm_changed = {k for k in before["llm"] if not torch.equal(before["llm"][k], after["llm"][k])}
    assert llm_changed and all(
        k.rsplit(".", 2)[-2] in LLAMA_LINEAR_LAYERS for k in llm_changed
    )  # embeddings, norms, head kept

    adapters = load_file(tmp_path / "out" / "stage-3" / "lora" / "adapter_model.safetensors")
    assert adapters and all(k.startswith("base_model.model.layers.") and ".default." not in k for k in adapters)
    config = json.loads((tmp_path / "out" / "stage-3" / "lora" / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"]) == (4, 8.0)


@pytest.mark.slow
@pytest.mark.parametrize("zero_stage", [2, 3])
def test_lora_under_zero_with_two_gloo_processes(tiny_mix, tmp_path, zero_stage):
    zero = tmp_path / "zero.json"
    zero.write_text(
        json.dumps({"zero_optimization": {"stage": zero_stage, "stage3_gather_16bit_weights_on_model_save": True}})
    )
    recipe = write_recipe(tmp_path / "r.yaml", stages=[_lora_sft_stage(str(zero))], data={"num_workers": 0})
    cmd = two_process_command(tiny_mix, recipe, tmp_path / "out")
    result = run(cmd, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    before = load_file(tmp_path / "out" / "init" / "model.safetensors")
    after = load_file(tmp_path / "out" / "stage-3" / "model.safetensors")
    assert set(before) == set(after)
    q = "model.language_model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(before[q], after[q])
    embed = "model.language_model.embed_tokens.weight"
    assert torch.equal(before[embed], after[embed])
