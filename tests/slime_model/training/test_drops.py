"""Rows that cannot be used (corrupt image bytes) are dropped and counted; past `max_drop_ratio` of
the rows a stage reads the stage stops, and a step left without any sample changes no weight."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from slime_model.training import checkpoint as ckpt
from slime_model.training.recipe import load_recipe
from slime_model.training.runner import TrainingAborted, train
from tests.slime_model.training.training_helpers import build_mix, metrics, synthetic_records, write_recipe


@pytest.fixture(scope="module")
def broken_mix(tmp_path_factory):
    """Pre-training rows whose images are all truncated PNGs; SFT rows intact."""
    root = tmp_path_factory.mktemp("broken")
    broken = synthetic_records("captions", 8, corrupt=tuple(range(8)))
    return build_mix(root, broken, synthetic_records("vqa", 8), rows_per_shard=8)


def _recipe(path, **changes):
    stage = {**load_recipe().model_dump(mode="json")["stages"][0], "max_steps": 2, "global_batch": 2, "micro_batch": 1}
    decaying = {**stage["optimizer"], "weight_decay": 0.1}  # AdamW's decay moves weights on any applied step
    stage.update(alternate=False, optimizer=decaying)
    return load_recipe(write_recipe(path, stages=[stage], data={"num_workers": 0}, **changes))


def test_drops_past_max_drop_ratio_stop_the_stage_with_the_reason(broken_mix, tmp_path):
    recipe = _recipe(tmp_path / "r.yaml", max_drop_ratio=0.01)
    stopped = r"stage 1a: 2 rows dropped so far, more than max_drop_ratio 0.01 of the 4 rows.*image_unreadable"
    with pytest.raises(TrainingAborted, match=stopped):
        train(broken_mix, recipe, tmp_path / "out")
    assert ckpt.read_complete(tmp_path / "out" / "stage-1a") is None


def test_a_step_without_samples_is_not_an_optimizer_step(broken_mix, tmp_path):
    recipe = _recipe(tmp_path / "r.yaml", max_drop_ratio=1.0)
    [result] = train(broken_mix, recipe, tmp_path / "out")
    records = metrics(tmp_path / "out" / "stage-1a")
    assert [(r["samples"], r["loss"], r["skipped"], r["empty"]) for r in records] == [(0, None, True, True)] * 2
    assert (result.samples, result.empty_steps, result.skipped_steps) == (0, 2, 0)
    assert result.dropped_rows == {"image_unreadable: OSError": 4}
    before = load_file(tmp_path / "out" / "init" / "model.safetensors")
    after = load_file(tmp_path / "out" / "stage-1a" / "model.safetensors")
    assert all(torch.equal(before[key], after[key]) for key in before)
