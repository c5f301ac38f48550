"""Two processes (torchrun, gloo) under ZeRO-2 and ZeRO-3 where rank 1 only ever gets text-only
batches: nothing hangs, and under ZeRO-3 the stage starts from the previous stage's weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from slime_data.mix.manifest import load_mix_manifest, relative, write_mix_manifest
from slime_data.shards import ShardSet, write_shard_set
from slime_model.training import checkpoint as ckpt
from slime_model.training.recipe import load_recipe
from tests.slime_model.training.training_helpers import (
    build_mix,
    metrics,
    run,
    synthetic_records,
    two_process_command,
    write_recipe,
)

pytestmark = pytest.mark.slow


def _interleave(manifest: Path, stage: str) -> None:
    """Rewrite a mix stage (the mix shuffles rows) as image, text-only, image, text-only, ..."""
    mix = load_mix_manifest(manifest)
    folder = mix.stage_dir(stage)
    rows = list(ShardSet(folder))
    images, texts = [r for r in rows if r.image is not None], [r for r in rows if r.image is None]
    shards = write_shard_set(folder, [r for pair in zip(images, texts, strict=True) for r in pair], command="test")[
        "shards"
    ]
    mix.data["stages"][stage]["shards"] = [{**s, "file": relative(folder / s["file"], manifest)} for s in shards]
    write_mix_manifest(manifest, mix.data)


@pytest.fixture(scope="module")
def alternating_mix(tmp_path_factory):
    """Stages of image, text-only, image, ... rows; unshuffled, with one row per rank per step rank 0
    reads rows 0, 2, 4 ... (images) and rank 1 rows 1, 3, 5 ...: only text."""
    root = tmp_path_factory.mktemp("alternating")
    manifest = build_mix(
        root, synthetic_records("captions", 8, text_only_every=2), synthetic_records("vqa", 8, text_only_every=2)
    )
    for stage in ("pretrain", "sft"):
        _interleave(manifest, stage)
    return manifest


def _two_process_run(tmp_path, mix, zero_config: dict):
    (tmp_path / "zero.json").write_text(json.dumps(zero_config))
    base = load_recipe().model_dump(mode="json")
    one_each = {"max_steps": 2, "global_batch": 2, "micro_batch": 1, "alternate": False}
    stages = [
        {**base["stages"][0], **one_each},
        {**base["stages"][3], **one_each, "deepspeed": str(tmp_path / "zero.json")},
    ]
    recipe = write_recipe(
        tmp_path / "recipe.yaml", stages=stages, data={"shuffle": False, "group_by_length": False, "num_workers": 0}
    )
    cmd = two_process_command(mix, recipe, tmp_path / "out")
    result = run(cmd, timeout=240)  # a hang is a timeout, which fails the test
    assert result.returncode == 0, result.stderr[-4000:]
    return tmp_path / "out"


def _check_text_only_rank(out):
    for stage in ("1a", "3"):
        records = metrics(out / f"stage-{stage}")
        assert [r["step"] for r in records] == [1, 2]
        assert all(
            r["dummy_batches"] == 1 and r["samples"] == 2 and r["loss"] > 0 for r in records
        )  # rank 1's batch got the dummy
        assert ckpt.read_complete(out / f"stage-{stage}") is not None


def test_zero2_two_processes_with_a_text_only_rank(alternating_mix, tmp_path):
    out = _two_process_run(tmp_path, alternating_mix, {"zero_optimization": {"stage": 2, "reduce_bucket_size": "auto"}})
    _check_text_only_rank(out)


def test_zero3_two_processes_load_the_previous_stage_and_do_not_hang(alternating_mix, tmp_path):
    # persistence threshold 0: every parameter, even the tiny ones, is really partitioned over the ranks.
    zero3 = {
        "zero_optimization": {
            "stage": 3,
            "stage3_param_persistence_threshold": 0,
            "reduce_bucket_size": "auto",
            "stage3_prefetch_bucket_size": "auto",
            "stage3_gather_16bit_weights_on_model_save": True,
        }
    }
    out = _two_process_run(tmp_path, alternating_mix, zero3)
    _check_text_only_rank(out)
    before, after = load_file(out / "stage-1a" / "model.safetensors"), load_file(out / "stage-3" / "model.safetensors")
    frozen = [k for k in before if k.startswith("model.vision_tower.")]
    trained = [k for k in before if k.startswith(("model.language_model.", "model.local_resampler."))]
    assert all(torch.equal(before[k], after[k]) for k in frozen)  # loaded from stage 1a, gathered back intact
    assert any(not torch.equal(before[k], after[k]) for k in trained)
