"""Recipes as data: the shipped recipes reproduce DESIGN §2, rounds, validation messages, the
DeepSpeed config the trainer builds and the batch layout it derives from the world size."""

from __future__ import annotations

import json

import pytest
import yaml

from slime_data.paths import PIPELINES_DIR
from slime_model.training.ds_config import batch_layout, deepspeed_config
from slime_model.training.recipe import load_recipe, plan_stages

PAPER = {  # stage: (trainable groups, branch, global expert, data, LR, global batch, ZeRO stage, top-p)
    "1a": (["global.mlp"], "global", "mlp", "pretrain", 1e-3, 256, 2, 1.0),
    "1b": (["global.resampler"], "global", "resampler", "pretrain", 1e-3, 256, 2, 1.0),
    "2": (["local.compressor"], "local", "mlp", "pretrain", 1e-3, 256, 2, 1.0),
    "3": (
        ["llm", "global.mlp", "global.resampler", "global.gate", "local.compressor"],
        "both",
        "mix",
        "sft",
        None,
        128,
        3,
        0.95,
    ),
}


@pytest.mark.parametrize(
    ("name", "sft_lr", "template"), [("slime-vicuna-7b", 2e-5, "vicuna_v1"), ("slime-llama3-8b", 1e-5, "llama3")]
)
def test_paper_recipes_reproduce_the_stage_table(name, sft_lr, template):
    recipe = load_recipe(PIPELINES_DIR / "train" / f"{name}.yaml")
    assert [p.name for p in plan_stages(recipe)] == ["1a", "1b", "2", "3"]
    for stage in recipe.stages:
        groups, branch, expert, data, lr, batch, zero, top_p = PAPER[stage.name]
        ds = json.loads(recipe.resolve(stage.deepspeed).read_text())
        assert (stage.trainable, stage.branch, stage.global_expert, stage.data, stage.global_batch) == (
            groups,
            branch,
            expert,
            data,
            batch,
        )
        assert (
            stage.optimizer.lr == (lr or sft_lr) and ds["zero_optimization"]["stage"] == zero and stage.top_p == top_p
        )
        assert (
            stage.optimizer.name,
            stage.optimizer.schedule,
            stage.optimizer.warmup_ratio,
            stage.optimizer.weight_decay,
        ) == ("adamw", "cosine", 0.03, 0.0)
        assert (stage.epochs, stage.precision, stage.max_length) == (1, "bf16", 2048)
        assert stage.chat_template == ("plain" if data == "pretrain" else template)


def test_default_recipe_is_the_tiny_cpu_one():
    recipe = load_recipe()
    assert recipe.name == "tiny" and recipe.model.preset == "tiny"
    assert [s.name for s in recipe.stages] == ["1a", "1b", "2", "3"]
    # a few CPU minutes: short adapter stages, a few hundred SFT steps of 16 samples
    assert all(s.precision == "fp32" and s.global_batch <= 16 for s in recipe.stages)
    assert [s.max_steps <= 40 for s in recipe.stages] == [True, True, True, False]
    assert recipe.stages[-1].max_steps <= 1000 and recipe.stages[-1].top_p == 1.0


def _write(tmp_path, recipe: dict):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _tiny():
    recipe = yaml.safe_load((PIPELINES_DIR / "train" / "tiny.yaml").read_text())
    for stage in recipe["stages"]:
        stage["deepspeed"] = str(PIPELINES_DIR / "deepspeed" / "zero2.json")
    return recipe


def test_rounds_repeat_the_alternating_block_before_the_other_stages(tmp_path):
    recipe = load_recipe(_write(tmp_path, {**_tiny(), "rounds": 3}))
    planned = plan_stages(recipe)
    assert [p.name for p in planned] == ["1a", "1b", "2", "1a-r2", "1b-r2", "2-r2", "1a-r3", "1b-r3", "2-r3", "3"]
    assert [p.round for p in planned[:4]] == [1, 1, 1, 2]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["stages"][0].update(learning_rate=1), "stages.0.learning_rate: unknown key 'learning_rate'"),
        (lambda r: r["stages"][0].update(trainable=["local.compressor"]), "never runs them"),
        (lambda r: r["stages"][1].update(trainable=["global.gate"]), "never runs them"),
        (lambda r: r["stages"][0].update(trainable=["projector"]), "unknown parameter group"),
        (lambda r: r["stages"].insert(2, r["stages"].pop(3)), "next to each other"),
        (lambda r: r["stages"][3].update(epochs=None, max_steps=None), "give epochs, max_steps or both"),
        (lambda r: r["stages"][1].update(name="1a"), "stages listed twice: 1a"),
        (lambda r: r["stages"][0].update(deepspeed="missing.json"), "missing.json not found"),
        (lambda r: r.update(model={"preset": "slime-vicuna-7b"}), "needs vision_tower and llm"),
        (lambda r: r.update(model={"checkpoint": "x", "preset": "tiny"}), "not both"),
    ],
)
def test_bad_recipes_fail_at_load_naming_the_field(tmp_path, change, message):
    recipe = _tiny()
    change(recipe)
    with pytest.raises(ValueError, match=message):
        load_recipe(_write(tmp_path, recipe))


@pytest.mark.parametrize(
    ("world", "micro", "accumulation"),
    [(8, 32, 1), (4, 32, 2), (1, 32, 8), (16, 16, 1), (5, None, None)],
)
def test_batch_layout_derives_micro_batch_and_accumulation_from_the_world_size(world, micro, accumulation):
    if micro is None:
        with pytest.raises(ValueError, match="global_batch 256 is not a multiple of the 5 processes"):
            batch_layout("1a", 256, 32, world)
        return
    layout = batch_layout("1a", 256, 32, world)
    assert (layout.micro_batch, layout.accumulation, layout.global_batch) == (micro, accumulation, 256)


def test_batch_layout_picks_the_largest_micro_batch_that_divides():
    layout = batch_layout("3", 96, 16, 8)  # 12 samples per rank
    assert (layout.micro_batch, layout.accumulation) == (12, 1)


def test_deepspeed_config_takes_zero_from_the_file_and_the_rest_from_the_recipe(tmp_path):
    stage = load_recipe(PIPELINES_DIR / "train" / "slime-vicuna-7b.yaml").stages[3]
    layout = batch_layout("3", 128, 16, 4)
    config = deepspeed_config(PIPELINES_DIR / "deepspeed" / "zero3.json", stage, layout, hidden_size=4096)
    assert (
        config["train_batch_size"],
        config["train_micro_batch_size_per_gpu"],
        config["gradient_accumulation_steps"],
    ) == (128, 16, 2)
    assert config["optimizer"]["params"]["lr"] == 2e-5 and config["optimizer"]["params"]["torch_adam"]
    assert config["bf16"] == {"enabled": True} and config["gradient_clipping"] == 1.0
    zero = config["zero_optimization"]
    assert (
        zero["reduce_bucket_size"],
        zero["stage3_prefetch_bucket_size"],
        zero["stage3_param_persistence_threshold"],
    ) == (4096**2, int(0.9 * 4096**2), 40960)

    clash = tmp_path / "clash.json"
    clash.write_text(json.dumps({"train_batch_size": 64, "zero_optimization": {"stage": 2}}))
    with pytest.raises(ValueError, match="'train_batch_size' comes from the training recipe"):
        deepspeed_config(clash, stage, layout, 4096)
    clash.write_text(json.dumps({"zero_optimization": {"stage": 0}}))
    with pytest.raises(ValueError, match="stage must be 1, 2 or 3"):
        deepspeed_config(clash, stage, layout, 4096)
    clash.write_text(json.dumps({"zero_optimization": {"stage": 2, "allgather_bucket_size": "auto"}}))
    with pytest.raises(ValueError, match='allgather_bucket_size cannot be "auto"'):
        deepspeed_config(clash, stage, layout, 4096)


def test_a_copied_recipe_finds_the_shipped_deepspeed_configs_by_name_or_path(tmp_path):
    shipped = PIPELINES_DIR / "train" / "slime-vicuna-7b.yaml"
    copy = tmp_path / "my-recipe.yaml"
    copy.write_text(shipped.read_text())  # its `../deepspeed/zero2.json` points nowhere from here
    recipe = load_recipe(copy)
    by_name = yaml.safe_load(shipped.read_text())
    for stage in by_name["stages"]:
        stage["deepspeed"] = "zero3" if stage["name"] == "3" else "zero2.json"
    named = load_recipe(_write(tmp_path, by_name))
    for loaded in (recipe, named):
        zero = [json.loads(loaded.deepspeed_config(s).read_text())["zero_optimization"]["stage"] for s in loaded.stages]
        assert zero == [2, 2, 2, 3]
    own = tmp_path / "zero2.json"  # a config beside the recipe wins over the shipped one of that name
    own.write_text(json.dumps({"zero_optimization": {"stage": 1}}))
    assert named.deepspeed_config(named.stages[0]) == own.resolve()
