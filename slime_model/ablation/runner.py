"""Train every (arm, seed) of the ablation from scratch and score it with `slime-model eval`.

    OUT/runs/<arm>/seed-<s>/          the training folder (`slime-model train`'s layout)
    OUT/runs/<arm>/seed-<s>/eval/     results.json, results.md and per-sample logs of the held-out split
    OUT/scores.jsonl                  one line per finished run (reused on a rerun: finished runs are skipped)
    OUT/summary.md, summary.json, claims.png   mean ± 95% interval per arm beside chance, and the plot

Runs go to `workers` spawned processes (slime_data.parallel): each holds its own one-process DeepSpeed
world and one CPU thread, so two runs share a 2-core machine without oversubscribing it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path

from slime_data.parallel import map_in_processes
from slime_model.ablation.config import AblationConfig, arm_recipe
from slime_model.ablation.data import BENCHMARK, AblationInputs
from slime_model.ablation.summary import ArmSummary, RunScore, markdown_table, plot, summarize
from slime_model.training.distributed import LAUNCHER_VARIABLES

SCORES_FILE = "scores.jsonl"


def run_one(
    config: AblationConfig, arm: str, seed: int, inputs: AblationInputs, out: Path, step_scale: float
) -> RunScore:
    """Train one arm with one seed, then score its final checkpoint on the held-out split."""
    os.environ["OMP_NUM_THREADS"] = "1"  # the trainer sizes its thread pool to the machine unless told
    for name in LAUNCHER_VARIABLES:  # each run is a one-process world of its own, whatever launched the ablation
        os.environ.pop(name, None)
    import torch
    from transformers.utils import logging as transformers_logging

    from slime_model.evaluation.evaluate import EvalSettings, evaluate
    from slime_model.generation import load_checkpoint
    from slime_model.training.runner import SilentCallbacks, train

    torch.set_num_threads(1)
    transformers_logging.disable_progress_bar()  # a spawned worker does not inherit the command's setting
    recipe = arm_recipe(config, arm, seed, step_scale)
    run_dir = out / "runs" / arm / f"seed-{seed}"
    train(inputs.manifest, recipe, run_dir, resume=True, callbacks=SilentCallbacks())  # a stopped run goes on
    final = recipe.stages[-1]
    model, processor = load_checkpoint(run_dir / f"stage-{final.name}")
    settings = EvalSettings(
        benchmarks=BENCHMARK,
        root=inputs.heldout_root,
        out=run_dir / "eval",
        batch=16,
        extra={"ablation": {"arm": arm, "seed": seed, "step_scale": step_scale, "eval_top_p": final.top_p}},
    )
    metrics = evaluate(str(run_dir / f"stage-{final.name}"), model, processor, settings)["benchmarks"][BENCHMARK]
    return RunScore(
        claim="",
        arm=arm,
        seed=seed,
        accuracy=metrics["metrics"]["accuracy"],
        chance=metrics["metrics"]["chance"],
    )


def _finished(out: Path) -> dict[tuple[str, int], RunScore]:
    path = out / SCORES_FILE
    if not path.is_file():
        return {}
    scores = [RunScore(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {(s.arm, s.seed): s for s in scores}


def _run_job(job: tuple[str, int], config: AblationConfig, inputs: AblationInputs, out: Path, step_scale: float):
    arm, seed = job
    return run_one(config, arm, seed, inputs, out, step_scale)


def run_all(
    config: AblationConfig,
    inputs: AblationInputs,
    out: Path,
    seeds: list[int],
    step_scale: float,
    workers: int = 2,
    on_done: Callable[[RunScore], None] | None = None,
) -> list[RunScore]:
    """Every arm a claim uses x every seed; finished runs (OUT/scores.jsonl) are not trained again.

    Runs go through slime_data's parallel map: spawned workers that a Ctrl-C stops at once (a run cut
    short keeps its finished stages, which a rerun skips).
    """
    order = config.arm_names()
    done = _finished(out)
    scores = [done[key] for key in done if key[1] in seeds and key[0] in order]
    todo = [(arm, seed) for seed in seeds for arm in order if (arm, seed) not in done]
    job = partial(_run_job, config=config, inputs=inputs, out=out, step_scale=step_scale)
    for score in map_in_processes(job, todo, workers):
        with open(out / SCORES_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(score)) + "\n")
        scores.append(score)
        if on_done:
            on_done(score)
    return sorted(scores, key=lambda score: (order.index(score.arm), score.seed))  # the same order on every rerun


def write_summary(config: AblationConfig, scores: list[RunScore], out: Path) -> tuple[list[ArmSummary], Path, Path]:
    """OUT/summary.md (the table), OUT/summary.json (every number) and OUT/claims.png from the run scores."""
    claims = config.claim_list
    per_claim = [replace(s, claim=claim.key) for claim in claims for s in scores if s.arm in claim.arms]
    summaries = summarize(per_claim, claims)
    table = markdown_table(summaries, claims)
    (out / "summary.md").write_text(table + "\n", encoding="utf-8")
    document = {
        "benchmark": BENCHMARK,
        "claims": [asdict(claim) for claim in claims],
        "arms": [asdict(summary) for summary in summaries],
        "runs": [asdict(score) for score in scores],
    }
    (out / "summary.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return summaries, out / "summary.md", plot(summaries, claims, out / "claims.png")
