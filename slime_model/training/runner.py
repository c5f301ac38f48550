"""Run a training recipe over a mix: stage after stage, each a fresh DeepSpeed engine (stage.py).

    OUT/train.json       the recipe and the mix this folder trains (a rerun must match them), and the
                         `--override`s given so far (overrides.py), reapplied on every rerun
    OUT/init/            the Hugging Face checkpoint the first stage starts from
    OUT/stage-NAME/      per stage: metrics.jsonl, loss.png, the HF checkpoint, COMPLETE.json

A stage loads the previous stage's checkpoint, sets the branch, global expert, selector top-p and
trainable groups, streams its mix stage and saves a checkpoint when done. Finished stages are
skipped on a rerun; `resume=True` continues an interrupted stage from its last resumable checkpoint
with the same batches, noise and losses as an uninterrupted run.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from slime_data.mix.manifest import load_mix_manifest
from slime_model.training import checkpoint as ckpt
from slime_model.training.distributed import DistInfo, barrier, init_distributed, set_cpu_threads
from slime_model.training.guards import TrainingAborted
from slime_model.training.model_init import build_initial, save_checkpoint_dir
from slime_model.training.overrides import apply_overrides, overridden_stage
from slime_model.training.recipe import PlannedStage, TrainRecipe, plan_stages
from slime_model.training.shard_check import verify_mix_stages
from slime_model.training.stage import Callbacks, StageResult, StageRunner

__all__ = ["SilentCallbacks", "StageResult", "TrainingAborted", "train"]

RUN_RECORD = "train.json"
INIT_DIR = "init"


class SilentCallbacks:
    def stage_started(self, name: str, total_steps: int, done_steps: int) -> None:
        pass

    def step_done(self, record: dict[str, Any]) -> None:
        pass

    def stage_finished(self, result: StageResult) -> None:
        pass

    def run_finished(self, results: list[StageResult]) -> None:
        pass


def train(
    data: Path,
    recipe: TrainRecipe,
    out: Path,
    *,
    resume: bool = False,
    verify: bool | None = None,
    overrides: dict[str, Any] | None = None,
    report_to: str = "none",
    callbacks: Callbacks | None = None,
) -> list[StageResult]:
    """Train every stage of `recipe` on the mix `data` (manifests/mix.json) into `out`.

    `verify`: sha256 of every shard read (None: only for mix stages up to SHA256_AUTO_BYTES).
    `overrides`: {key: value} of `parse_overrides`, for stages not finished yet (kept in OUT/train.json)."""
    callbacks = callbacks or SilentCallbacks()
    dist = init_distributed()
    set_cpu_threads(dist, recipe.data.num_workers)
    mix = load_mix_manifest(data)
    stages = plan_stages(recipe)
    missing = sorted({s.spec.data for s in stages} - set(mix.stages))
    if missing:
        raise ValueError(f"the recipe reads mix stage(s) {missing} but {data} has only {mix.stages}")
    verify_mix_stages(mix, [s.spec.data for s in stages], verify)
    recipe, overridden = _run_recipe(out, recipe, mix.data["fingerprint"], data, dist, stages, overrides or {})
    stages = plan_stages(recipe)
    previous = _initial_checkpoint(recipe, out, dist)
    results = []
    for index, planned in enumerate(stages):
        stage_dir = out / f"stage-{planned.name}"
        done = ckpt.read_complete(stage_dir)
        if done is not None:
            results.append(StageResult(**{**done, "status": "done before"}))
            if dist.is_main:
                callbacks.stage_finished(results[-1])
        else:
            interrupted = ckpt.latest_resume_checkpoint(stage_dir) is not None
            if interrupted and not resume:
                raise ValueError(
                    f"stage {planned.name} was interrupted and has a checkpoint in {stage_dir}: "
                    "pass --resume to continue it, or delete the folder to restart it"
                )
            runner = StageRunner(
                recipe,
                planned,
                index,
                mix.stage_dir(planned.spec.data),
                previous,
                stage_dir,
                dist,
                report_to,
                callbacks,
                reapply_optimizer_settings=planned.spec.name in overridden,
            )
            results.append(runner.run(resume=interrupted))
        previous = stage_dir
    if dist.is_main:
        callbacks.run_finished(results)
    return results


def _run_recipe(
    out: Path,
    recipe: TrainRecipe,
    fingerprint: str,
    data: Path,
    dist: DistInfo,
    stages: list[PlannedStage],
    overrides: dict[str, Any],
) -> tuple[TrainRecipe, set[str]]:
    """The recipe this folder trains, with every override given so far; and the stages they change.

    The recipe file and the mix must be the ones the folder started with; new overrides may only
    change stages with a round not finished yet."""
    record = {"recipe_sha256": recipe.sha256(), "mix_fingerprint": fingerprint}
    existing = ckpt.read_json(out / RUN_RECORD)
    if existing is not None:
        for key, value in record.items():
            if existing.get(key) != value:
                what = "recipe" if key == "recipe_sha256" else "mix"
                raise ValueError(
                    f"{out} holds a run of another {what} ({out / RUN_RECORD}); choose a new --out or delete it "
                    "(an unfinished stage's optimizer settings may change with --override: `slime-model train --help`)"
                )
    recorded = (existing or {}).get("overrides", {})
    for key in overrides:
        stage = overridden_stage(key)
        rounds = [p for p in stages if p.spec.name == stage]
        if rounds and all(ckpt.read_complete(out / f"stage-{p.name}") is not None for p in rounds):
            raise ValueError(f"--override {key}: stage {stage} is finished; only unfinished stages may change")
    merged = {**recorded, **overrides}
    effective = apply_overrides(recipe, merged)
    if dist.is_main and (existing is None or merged != recorded):
        base = recipe.model_dump(mode="json")
        ckpt.write_json(out / RUN_RECORD, {**record, "data": str(data.resolve()), "recipe": base, "overrides": merged})
    barrier()
    return effective, {overridden_stage(key) for key in merged} - {None}


def _initial_checkpoint(recipe: TrainRecipe, out: Path, dist: DistInfo) -> Path:
    """The recipe's checkpoint, or OUT/init built once by rank 0 (written aside, then renamed into place)."""
    if recipe.model.checkpoint is not None:
        return Path(recipe.model.checkpoint)
    init = out / INIT_DIR
    if dist.is_main and ckpt.read_complete(init) is None:
        partial = out / f".{INIT_DIR}.tmp"
        shutil.rmtree(partial, ignore_errors=True)
        model, processor = build_initial(recipe.model, recipe.seed)
        save_checkpoint_dir(model, processor, partial)
        ckpt.write_complete(partial, {"source": recipe.model.model_dump(mode="json")})
        shutil.rmtree(init, ignore_errors=True)
        partial.rename(init)
    barrier()
    return init
