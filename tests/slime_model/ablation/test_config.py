"""The ablation file: the shipped one loads, every arm is a valid recipe, and mistakes are named."""

from __future__ import annotations

import pytest
import yaml

from slime_model.ablation.config import DEFAULT_ABLATION, arm_recipe, load_ablation


@pytest.fixture(scope="module")
def shipped():
    return load_ablation()


def test_the_shipped_file_names_every_claim_and_each_arm_once(shipped):
    assert [claim.key for claim in shipped.claim_list] == ["a", "b", "c", "d"]
    assert shipped.arm_names() == [
        "reference", "global-only", "top-p-0.75", "top-p-0.5", "end-to-end", "mlp-only", "resampler-only"
    ]  # fmt: skip
    assert all(claim.arms[0] == "reference" for claim in shipped.claim_list)
    assert len(shipped.seeds) >= 3 and len(set(shipped.seeds)) == len(shipped.seeds)


def test_the_reference_arm_is_the_recipe_seeded(shipped):
    recipe = arm_recipe(shipped, "reference", seed=5)
    assert recipe.seed == 5 and [s.name for s in recipe.stages] == ["1a", "1b", "2", "3"]
    assert [s.max_steps for s in recipe.stages] == [s["max_steps"] for s in shipped.recipe["stages"]]
    assert recipe.stages[-1].branch == "both" and recipe.stages[-1].top_p == 1.0


def test_arms_change_only_what_they_say(shipped):
    reference = arm_recipe(shipped, "reference", 0)
    global_only = arm_recipe(shipped, "global-only", 0)
    assert [s.name for s in global_only.stages] == ["1a", "1b", "3"]
    assert global_only.stages[-1].branch == "global" and "local.compressor" not in global_only.stages[-1].trainable
    assert global_only.stages[-1].optimizer == reference.stages[-1].optimizer
    assert arm_recipe(shipped, "top-p-0.5", 0).stages[-1].top_p == 0.5
    end_to_end = arm_recipe(shipped, "end-to-end", 0)
    assert [s.name for s in end_to_end.stages] == ["2", "3"]
    pretrain = end_to_end.stages[0]
    assert pretrain.branch == "both" and set(pretrain.trainable) == {
        "global.mlp", "global.resampler", "global.gate", "local.compressor"
    }  # fmt: skip
    # the same pre-training budget as the three alternating stages together
    assert pretrain.max_steps == sum(s.max_steps for s in reference.stages[:3])
    assert arm_recipe(shipped, "mlp-only", 0).stages[-1].global_expert == "mlp"
    assert arm_recipe(shipped, "resampler-only", 0).stages[-1].global_expert == "resampler"


def test_step_scale_shrinks_every_stage_but_keeps_one_step(shipped):
    scaled = arm_recipe(shipped, "reference", 0, step_scale=0.001)
    assert all(stage.max_steps == 1 for stage in scaled.stages)
    assert arm_recipe(shipped, "reference", 0, step_scale=0.5).stages[-1].max_steps == 240


def _write(tmp_path, change):
    data = yaml.safe_load(DEFAULT_ABLATION.read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_a_claim_naming_an_unknown_arm_is_refused(tmp_path):
    path = _write(tmp_path, lambda d: d["claims"][0]["arms"].append("no-such-arm"))
    with pytest.raises(ValueError, match=r"claim a lists unknown arm\(s\) \['no-such-arm'\]"):
        load_ablation(path)


def test_an_arm_patching_a_missing_stage_is_refused(tmp_path):
    path = _write(tmp_path, lambda d: d["arms"]["top-p-0.5"].update(stages={"4": {"top_p": 0.5}}))
    with pytest.raises(ValueError, match=r"arm top-p-0.5: no reference stage\(s\) \['4'\]"):
        load_ablation(path)


def test_an_arm_that_makes_an_invalid_recipe_is_refused_with_its_name(tmp_path):
    # a global-only stage cannot train the local compressor: the recipe's own check, named by arm
    path = _write(tmp_path, lambda d: d["arms"]["global-only"]["stages"]["3"].pop("trainable"))
    with pytest.raises(ValueError, match=r"arm global-only: .*local.compressor"):
        load_ablation(path)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ValueError, match="ablation file .* not found"):
        load_ablation(tmp_path / "none.yaml")
