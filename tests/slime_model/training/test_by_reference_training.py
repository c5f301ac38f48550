"""The trainer reads a by-reference mix (images left in the input shards) to exactly the losses of the copying mix."""

from __future__ import annotations

from slime_model.training.recipe import load_recipe
from slime_model.training.runner import train
from tests.slime_model.training.training_helpers import build_mix, metrics, synthetic_records, write_recipe


def test_by_reference_mix_trains_to_the_same_losses_as_the_copying_mix(tmp_path):
    losses = {}
    for images in ("copy", "reference"):
        mix = build_mix(
            tmp_path / images,
            synthetic_records("captions", 16),
            synthetic_records("vqa", 24, text_only_every=5),
            rows_per_shard=8,
            images=images,
        )
        base = load_recipe().model_dump(mode="json")["stages"]
        quick = {"max_steps": 2, "global_batch": 4, "micro_batch": 2, "alternate": False}
        recipe = load_recipe(
            write_recipe(
                tmp_path / f"{images}.yaml",
                stages=[{**base[0], **quick}, {**base[3], **quick}],
                data={"num_workers": 0},
            )
        )
        train(mix, recipe, tmp_path / f"out-{images}")
        losses[images] = [[r["loss"] for r in metrics(tmp_path / f"out-{images}" / f"stage-{s}")] for s in ("1a", "3")]
    assert all(loss is not None for stage in losses["copy"] for loss in stage)
    assert losses["reference"] == losses["copy"]
