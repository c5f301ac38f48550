"""``run_mix``: inputs -> hygiene -> allocation -> plan -> shards (in parallel) -> stage sets -> mix.json.

Everything up to the plan reads compact columns only and writes nothing, so an infeasible
target fails before any file changes. The plan is saved under ``OUT/.work`` with the
fingerprint of its inputs, recipe, target and seed: a rerun after a kill reuses it and writes
only the output shards that have no completion marker. Output layout::

    OUT/<stage>/data-00000-of-00042.arrow ...  # a regular shard set per stage (manifest.json, README.md, rejects.jsonl)
    MANIFEST (manifests/mix.json)              # written last
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from slime_data import __version__
from slime_data.card import render_card
from slime_data.memory import return_freed_memory, system_allocator
from slime_data.mix.allocate import allocate
from slime_data.mix.gather import release_input_maps
from slime_data.mix.hygiene import plan_drops
from slime_data.mix.inputs import MixInput, open_inputs
from slime_data.mix.manifest import MIX_KIND, MIX_VERSION, relative, write_mix_manifest
from slime_data.mix.plan import Plan, plan_stage
from slime_data.mix.recipe import MixRecipe, recipe_config
from slime_data.mix.write import ShardJob, read_marker, write_shard
from slime_data.parallel import map_in_processes
from slime_data.shards import (
    CARD,
    MANIFEST,
    REJECTS,
    config_hash,
    fsync_write,
    shard_name,
    shard_set_manifest,
)

WORK_DIR = ".work"


@dataclass
class MixResult:
    manifest_path: Path
    manifest: dict[str, Any]
    shards_total: int
    shards_resumed: int  # output shards a previous (killed) run had already finished
    plan_reused: bool
    timings: dict[str, float] = field(
        default_factory=dict
    )  # seconds: hygiene, plan (inputs, allocation, draws, shuffle), write, finish


def fingerprint(recipe: MixRecipe, target: int, inputs: list[MixInput]) -> str:
    return config_hash(
        {
            "recipe": recipe_config(recipe),
            "target": target,
            "inputs": [i.manifest_sha256 for i in inputs],
            "tool": __version__,
        }
    )


def make_plan(
    recipe: MixRecipe,
    target: int,
    inputs: list[MixInput],
    work_dir: Path,
    identity: str,
    recipe_dir: Path | None,
    workers: int,
    timings: dict[str, float],
) -> Plan:
    """Hygiene (in ``workers`` processes), allocation and pointers; raises (writing nothing) when the target cannot be
    met."""
    clock = time.perf_counter()
    hygiene = plan_drops(recipe, inputs, recipe_dir, workers)
    timings["hygiene"] = time.perf_counter() - clock
    available = {i.name: len(i) - len(hygiene.dropped[i.index]) for i in inputs}
    quotas = allocate(recipe, target, available)
    pointers = {q.name: plan_stage(s, q, inputs, hygiene, recipe.seed) for s, q in enumerate(quotas)}
    rejects = {q.name: [r for i in inputs if i.stage == q.name for r in hygiene.rejects[i.index]] for q in quotas}
    plan = Plan(
        fingerprint=identity,
        stages=[
            {
                "name": q.name,
                "rows": q.rows,
                "shards": max(1, -(-q.rows // recipe.rows_per_shard)),
                "sources": [asdict(s) for s in q.sources],
            }
            for q in quotas
        ],
        inputs=[
            {
                "index": i.index,
                "stage": i.stage,
                "name": i.name,
                "input": i.spec.input,
                "manifest": str(i.manifest_path.resolve()),
                "sha256": i.manifest_sha256,
                "rows": len(i),
                "shard_paths": [str(p.resolve()) for p in i.shard_set.shard_paths],
            }
            for i in inputs
        ],
        hygiene_steps=hygiene.steps,
        dropped={i.name: len(hygiene.dropped[i.index]) for i in inputs},
    )
    shutil.rmtree(work_dir, ignore_errors=True)
    plan.save(work_dir, pointers, rejects)
    return plan


def shard_jobs(plan: Plan, recipe: MixRecipe, out: Path, work_dir: Path) -> list[ShardJob]:
    inputs = tuple((i["input"], tuple(i["shard_paths"])) for i in plan.inputs)
    jobs = []
    for stage in plan.stages:
        for index in range(stage["shards"]):
            start = index * recipe.rows_per_shard
            jobs.append(
                ShardJob(
                    work_dir=str(work_dir),
                    stage_dir=str(out / stage["name"]),
                    stage=stage["name"],
                    index=index,
                    total=stage["shards"],
                    start=start,
                    stop=min(start + recipe.rows_per_shard, stage["rows"]),
                    inputs=inputs,
                    by_reference=recipe.images == "reference",
                )
            )
    return jobs


def _finished(job: ShardJob) -> bool:
    marker = read_marker(Path(job.work_dir), job.stage, job.index)
    final = Path(job.stage_dir) / marker["shard"]["file"] if marker else None
    return final is not None and final.is_file() and final.stat().st_size == marker["shard"]["bytes"]


def run_jobs(jobs: list[ShardJob], workers: int, on_rows: Callable[[int], None] | None) -> None:
    for done in map_in_processes(write_shard, jobs, workers):
        if on_rows is not None:
            on_rows(done["shard"]["rows"])
    release_input_maps()  # jobs that ran in this process leave their inputs mapped for the next one


def finish_stage(
    plan: Plan, stage: dict[str, Any], recipe: MixRecipe, target: int, out: Path, work_dir: Path, command: str
) -> dict[str, Any]:
    """Make the stage folder a regular shard set: drop stale files, write rejects, card and (last) manifest.json."""
    stage_dir = out / stage["name"]
    markers = [read_marker(work_dir, stage["name"], i) for i in range(stage["shards"])]
    shards = [m["shard"] for m in markers]
    keep = {shard_name(i, stage["shards"]) for i in range(stage["shards"])}
    for stale in [*stage_dir.glob("data-*-of-*.arrow"), *stage_dir.glob(".data-*.tmp")]:
        if stale.name not in keep:  # shards of an earlier, different plan; temporaries of killed runs
            stale.unlink()
    counts: dict[str, Counter[str]] = {}
    for marker in markers:
        for key, values in marker["counts"].items():
            counts.setdefault(key, Counter()).update(values)
    rejects = plan.rejects(work_dir, stage["name"])
    by_step: dict[str, Counter[str]] = {}
    for reject in rejects:
        by_step.setdefault(reject["step"], Counter())[reject["reason"]] += 1
    fsync_write(stage_dir / REJECTS, (work_dir / f"{stage['name']}.rejects.jsonl").read_bytes())
    stage_inputs = [i for i in plan.inputs if i["stage"] == stage["name"]]
    rows_in = sum(i["rows"] for i in stage_inputs)
    dropped = sum(plan.dropped[i["name"]] for i in stage_inputs)
    manifest = shard_set_manifest(
        name=f"{recipe.name}/{stage['name']}",
        command=command,
        config={"recipe": recipe_config(recipe), "stage": stage["name"], "target": target},
        shards=shards,
        counts={key: counts.get(key, Counter()) for key in ("source", "split", "task")},
        rejects=by_step,
        steps=[{"step": "hygiene", "in": rows_in, "out": rows_in - dropped, "rejected": dropped}],
        extra={"mix": {"fingerprint": plan.fingerprint, "stage": stage["name"]}},
    )
    fsync_write(stage_dir / CARD, render_card(manifest).encode("utf-8"))
    fsync_write(stage_dir / MANIFEST, (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return manifest


def mix_manifest(
    plan: Plan,
    recipe: MixRecipe,
    target: int,
    out: Path,
    manifest_path: Path,
    command: str,
    stage_manifests: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    stages = {}
    input_by_name = {i["name"]: i for i in plan.inputs}
    for stage in plan.stages:
        stage_dir = out / stage["name"]
        sources = {}
        for quota in stage["sources"]:
            item = input_by_name[quota["source"]]
            available = quota["available"]
            whole = quota["rows"] // available if available else 0
            sources[quota["source"]] = {
                "input": relative(Path(item["manifest"]), manifest_path),
                "rule": quota["rule"],
                "weight": round(quota["share"], 12),
                "rows_in": item["rows"],
                "dropped": plan.dropped[quota["source"]],
                "available": available,
                "rows_out": quota["rows"],
                "repeats": {
                    "whole": whole,
                    "remainder": quota["rows"] - whole * available,
                    "factor": round(quota["rows"] / available, 6) if available else 0.0,
                    "max": quota["max_repeats"],
                },
            }
        stage_manifest = stage_manifests[stage["name"]]
        stages[stage["name"]] = {
            "rows": stage["rows"],
            "path": relative(stage_dir, manifest_path),
            "shards": [{**s, "file": relative(stage_dir / s["file"], manifest_path)} for s in stage_manifest["shards"]],
            "sources": sources,
            "rejects": stage_manifest["rejects"]["by_step"],
        }
    by_step: dict[str, Counter[str]] = {}
    for manifest in stage_manifests.values():
        for step, reasons in manifest["rejects"]["by_step"].items():
            by_step.setdefault(step, Counter()).update(reasons)
    config = recipe_config(recipe)
    return {
        "kind": MIX_KIND,
        "version": MIX_VERSION,
        "tool": {"name": "slime", "version": __version__},
        "command": command,
        "fingerprint": plan.fingerprint,
        "target": target,
        "seed": recipe.seed,
        "recipe": config,
        "recipe_sha256": config_hash(config),
        "out": relative(out, manifest_path),
        "stages": stages,
        "inputs": [
            {
                "name": i["name"],
                "stage": i["stage"],
                "path": relative(Path(i["manifest"]), manifest_path),
                "sha256": i["sha256"],
                "rows": i["rows"],
            }
            for i in plan.inputs
        ],
        "hygiene": {
            "dropped": sum(plan.dropped.values()),
            "steps": plan.hygiene_steps,
            "by_step": {step: dict(sorted(r.items())) for step, r in sorted(by_step.items())},
        },
    }


def run_mix(
    recipe: MixRecipe,
    target: int,
    *,
    out: Path,
    manifest_path: Path,
    workers: int = 1,
    recipe_dir: Path | None = None,
    command: str = "slime-data mix",
    on_plan: Callable[[Plan, int], None] | None = None,
    on_rows: Callable[[int], None] | None = None,
) -> MixResult:
    """Write the mix; ``on_plan(plan, rows_left)`` is called once the plan is known, ``on_rows(n)`` as shards finish.

    ``recipe_dir``: what relative paths inside hygiene steps (benchmark files) are relative to.
    """
    out, manifest_path = Path(out), Path(manifest_path)
    work_dir = out / WORK_DIR
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    inputs = open_inputs(recipe)
    identity = fingerprint(recipe, target, inputs)
    plan = Plan.load(work_dir, identity)
    reused = plan is not None
    if plan is None:
        with system_allocator():  # planning's many short-lived arrays: memory the OS gets back below
            plan = make_plan(recipe, target, inputs, work_dir, identity, recipe_dir, workers, timings)
    timings["plan"] = time.perf_counter() - clock - timings.get("hygiene", 0.0)
    return_freed_memory()

    # From here on files change: a finished mix stops looking finished until it is rewritten.
    manifest_path.unlink(missing_ok=True)
    for stage in plan.stages:
        (out / stage["name"]).mkdir(parents=True, exist_ok=True)
        (out / stage["name"] / MANIFEST).unlink(missing_ok=True)
    jobs = shard_jobs(plan, recipe, out, work_dir)
    pending = [job for job in jobs if not _finished(job)]
    if on_plan is not None:
        on_plan(plan, sum(job.stop - job.start for job in pending))
    clock = time.perf_counter()
    run_jobs(pending, workers, on_rows)
    timings["write"] = time.perf_counter() - clock

    clock = time.perf_counter()
    stage_manifests = {s["name"]: finish_stage(plan, s, recipe, target, out, work_dir, command) for s in plan.stages}
    manifest = mix_manifest(plan, recipe, target, out, manifest_path, command, stage_manifests)
    write_mix_manifest(manifest_path, manifest)
    shutil.rmtree(work_dir, ignore_errors=True)
    timings["finish"] = time.perf_counter() - clock
    return MixResult(manifest_path, manifest, len(jobs), len(jobs) - len(pending), reused, timings)
