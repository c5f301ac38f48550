"""`--override`: the abort advice "rerun with --resume and a lower learning rate" works. A started run
may change an unfinished stage's optimizer settings (recorded in OUT/train.json, reapplied on every
rerun); any other change of the recipe is still refused."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from transformers import get_cosine_schedule_with_warmup

from slime_model.training import checkpoint as ckpt
from slime_model.training.overrides import parse_overrides
from slime_model.training.recipe import load_recipe
from slime_model.training.runner import TrainingAborted, train
from tests.slime_model.training.training_helpers import metrics, write_recipe


def _cosine_lrs(lr: float, steps: int, warmup: int) -> list[float]:
    """The learning rate at the start of each step, as the trainer's schedule gives it."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    schedule, lrs = get_cosine_schedule_with_warmup(optimizer, warmup, steps), []
    for _ in range(steps):
        lrs.append(schedule.get_last_lr()[0])
        optimizer.step()
        schedule.step()
    return lrs


def test_a_lower_learning_rate_applies_on_resume_is_recorded_and_reapplied(interrupted, tiny_mix, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(interrupted[0], out)
    recipe = load_recipe(interrupted[1])
    [result] = train(tiny_mix, recipe, out, resume=True, overrides=parse_overrides(["1a.lr=1e-5", "max_bad_steps=3"]))
    assert (result.status, result.steps) == ("resumed", 3)
    lrs = [r["lr"] for r in metrics(out / "stage-1a")]
    assert lrs[0] == 0.0  # step 1 ran before the override (warm-up)
    assert lrs[1:] == pytest.approx(_cosine_lrs(1e-5, 3, 1)[1:], rel=1e-12)
    record = json.loads((out / "train.json").read_text())
    assert record["overrides"] == {"1a.optimizer.lr": 1e-5, "max_bad_steps": 3}

    assert [r.status for r in train(tiny_mix, recipe, out)] == ["done before"]  # the recorded overrides still match
    with pytest.raises(ValueError, match="--override 1a.optimizer.lr: stage 1a is finished"):
        train(tiny_mix, recipe, out, overrides=parse_overrides(["1a.lr=1e-6"]))


@pytest.mark.parametrize(
    "override, refusal",
    [
        ("1a.global_batch=4", "--override 1a.global_batch: only STAGE.optimizer.FIELD"),
        ("9.lr=1e-4", "--override 9.optimizer.lr: only STAGE.optimizer.FIELD"),
        ("1a.lr=-1", "greater than 0"),
        ("1a.lr", "write KEY=VALUE"),
    ],
)
def test_overrides_outside_the_optimizer_and_tolerances_are_refused(interrupted, tiny_mix, tmp_path, override, refusal):
    out = tmp_path / "out"
    shutil.copytree(interrupted[0], out)
    with pytest.raises(ValueError, match=refusal):
        train(tiny_mix, load_recipe(interrupted[1]), out, resume=True, overrides=parse_overrides([override]))
    assert ckpt.latest_resume_checkpoint(out / "stage-1a")["step"] == 1  # nothing ran
    assert json.loads((out / "train.json").read_text())["overrides"] == {}


def test_an_edited_recipe_file_is_still_another_recipe(interrupted, tiny_mix, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(interrupted[0], out)
    recipe = json.loads(interrupted[1].read_text())
    recipe["stages"][0]["optimizer"]["lr"] = 1e-5
    edited = write_recipe(
        tmp_path / "edited.yaml", stages=recipe["stages"], checkpoint_every=1, max_bad_steps=0, data={"num_workers": 0}
    )
    edited = load_recipe(edited)
    with pytest.raises(ValueError, match="holds a run of another recipe.*--override"):
        train(tiny_mix, edited, out, resume=True)


def test_a_learning_rate_that_diverges_with_finite_values_stops_the_stage_and_the_advice_works(tiny_mix, tmp_path):
    stage = {**load_recipe().model_dump(mode="json")["stages"][0], "max_steps": 2, "global_batch": 2, "micro_batch": 1}
    stage.update(alternate=False, optimizer={**stage["optimizer"], "lr": 1e6, "warmup_ratio": 0.0})
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml", stages=[stage], data={"num_workers": 0}))
    advice = r"stage 1a: the trainable weights' RMS grew.* by step 2.*1e\+06 is likely too high.*--override 1a.lr=LOWER"
    with pytest.raises(TrainingAborted, match=advice) as err:
        train(tiny_mix, recipe, tmp_path / "out")
    assert ckpt.read_complete(tmp_path / "out" / "stage-1a") is None  # not passed on to the next stage
    assert "stage-1a" in str(err.value)
    shutil.rmtree(tmp_path / "out" / "stage-1a")
    [result] = train(tiny_mix, recipe, tmp_path / "out", overrides=parse_overrides(["1a.lr=1e-3"]))
    assert (result.status, result.steps) == ("trained", 2)
