"""Every shipped training recipe runs: its stages (groups, branches, experts, LoRA, ZeRO config) for two
optimizer steps each, with the tiny model standing in for the real vision tower and LLM (same module
structure, fp32 on CPU), and `plan` sizes each one."""

from __future__ import annotations

import json

import pytest

from slime_model.training.recipe import load_recipe
from slime_model.training.runner import train
from tests.slime_model.training.training_helpers import REPO

pytestmark = pytest.mark.slow
SHIPPED = sorted(p.name for p in (REPO / "pipelines" / "train").glob("*.yaml") if p.name != "tiny.yaml")
TWO_STEPS = {"max_steps": 2, "global_batch": 2, "micro_batch": 1, "precision": "fp32", "gradient_checkpointing": False}


def tiny_stand_in(name: str, tmp_path):
    """The shipped recipe with the tiny preset as its model and two small fp32 steps per stage."""
    recipe = load_recipe(REPO / "pipelines" / "train" / name).model_dump(mode="json")
    recipe.update(
        model={"preset": "tiny"},
        data={**recipe["data"], "num_workers": 0, "shuffle_buffer": 64},
        rounds=1,
        max_drop_ratio=0.25,
    )  # the test mix's SFT stage has one corrupt image in 24 rows
    for stage in recipe["stages"]:
        stage.update(TWO_STEPS, deepspeed=str(REPO / "pipelines" / "train" / stage["deepspeed"]))
        if stage.get("lora"):
            stage["lora"] = {**stage["lora"], "rank": 4, "alpha": 8.0}
    path = tmp_path / name
    path.write_text(json.dumps(recipe))
    return load_recipe(path)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_recipe_runs_two_steps_per_stage_with_a_tiny_stand_in(name, tiny_mix, tmp_path):
    recipe = tiny_stand_in(name, tmp_path)
    results = train(tiny_mix, recipe, tmp_path / "out")
    assert [(r.name, r.status, r.steps) for r in results] == [(s.name, "trained", 2) for s in recipe.stages]
    assert all(r.final_loss is not None for r in results)
