"""``slime-data build``: run a build recipe end to end.

Two phases:

1. **Record steps, per unit** (load_image, resolution, quality, teacher…): every source's
   native stream is cut into units (``chunk_size`` items); units run in parallel and resume
   from completion markers (``slime_data.runner``). The units join into ``OUT/.stage1``.
   With ``--shard I/N`` only every N-th unit runs and the slice is the output; ``merge``
   joins slices into ``.stage1`` and goes on with phase 2.
2. **Global steps** (exact/near dedup, decontaminate, cap…): each plans over compact columns
   of ``.stage1`` ignoring what earlier ones drop, then one streaming pass filters and writes
   the final shard set, carrying phase-1 rejects along so every row is accounted for.

A self-contained ``report.html`` (tables, figures, sample rows) is written beside the shards.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from slime_data.build.recipe import BuildRecipe, SourceSpec, build_step
from slime_data.ingest import get_adapter, make_units, native_items, resolve_splits
from slime_data.paths import expand_path
from slime_data.record import Record, Reject
from slime_data.runner import StepCount, Unit, UnitPipeline, UnitResult, add_usage, apply_steps, run_units
from slime_data.shards import ShardSet, ShardWriter, config_hash, load_manifest
from slime_data.sources.base import SourceNotFound
from slime_data.steps.base import GlobalStep, Step
from slime_data.steps.dedup import release_signatures
from slime_data.teacher.cluster import teacher_hubs
from slime_data.teacher.config import TeacherConfig

STAGE1 = ".stage1"


@dataclass
class ResolvedSource:
    spec: SourceSpec
    root: Path  # the located dataset folder
    splits: list[str]


@dataclass
class BuildContext:
    recipe: BuildRecipe
    raw_recipe: dict[str, Any]
    root: Path | None
    out: Path
    workers: int = 1
    force: bool = False
    command: str = "slime-data build"
    warnings: list[str] = field(default_factory=list)

    def expand(self, path: str, base: Path | None = None) -> Path:
        """A recipe path, ``{data}`` being the folder that holds ``out``: generated inputs go beside the output."""
        return expand_path(path, base, data_dir=self.out.absolute().parent)


def resolve_sources(ctx: BuildContext) -> list[ResolvedSource]:
    """Find every source's data; missing required sources are one error naming each and where we looked."""
    resolved, missing = [], []
    for spec in ctx.recipe.sources:
        adapter = get_adapter(spec.name)
        if spec.root is not None:
            base = ctx.expand(spec.root, ctx.root)
        elif ctx.root is not None:
            base = ctx.root / spec.name
        else:
            raise ValueError(
                f"source {spec.name!r} has no root: give --root DIR (holding {spec.name}/) or `root:` in the recipe"
            )
        try:
            if not base.exists():
                raise SourceNotFound(f"source {spec.name!r}: {base} does not exist")
            located = adapter.locate(base)
        except SourceNotFound as err:
            if spec.optional:
                ctx.warnings.append(f"skipped optional source {spec.name}: {err}")
            else:
                missing.append(str(err))
            continue
        resolved.append(ResolvedSource(spec, located, resolve_splits(adapter, located, spec.splits)))
    if missing:
        listing = missing[0] if len(missing) == 1 else f"{len(missing)} sources are missing:\n  " + "\n  ".join(missing)
        raise SourceNotFound(f"{listing}\n(`slime-data sources NAME` shows the layout a source expects)")
    return resolved


def plan_units(sources: list[ResolvedSource], chunk_size: int) -> Iterator[Unit]:
    """Units over all sources in recipe order, numbered globally (stable across reruns)."""
    index = 0
    for source in sources:
        adapter = get_adapter(source.spec.name)
        items = native_items(adapter, source.root, source.splits, source.spec.limit)
        for unit in make_units(items, chunk_size, source.spec.name):
            yield Unit(index=index, key=unit.key, payload={"root": str(source.root), "items": unit.payload})
            index += 1


def _unit_items(payload: dict[str, Any]) -> list[Record | Reject]:
    return payload["items"]


# Steps live for the whole process, so a step's state (the teacher's client, cache and budget)
# spans every unit it processes; only load_image depends on the unit (its dataset root).
_PROCESS_STEPS: dict[tuple[str, int, str | None], Step] = {}


def _record_steps(recipe: BuildRecipe, payload: dict[str, Any]) -> list[Step]:
    steps = []
    recipe_key = config_hash(recipe.model_dump(mode="json"))
    for position, spec in enumerate(recipe.step_specs("record")):
        key = (recipe_key, position, payload["root"] if spec.step == "load_image" else None)
        if key not in _PROCESS_STEPS:
            _PROCESS_STEPS[key] = build_step(spec, recipe, root=payload["root"])
        steps.append(_PROCESS_STEPS[key])
    return steps


def run_phase1(
    ctx: BuildContext,
    out: Path,
    shard: tuple[int, int] | None = None,
    on_unit_done: Callable[[UnitResult], None] | None = None,
    sources: list[ResolvedSource] | None = None,
) -> dict[str, Any]:
    """The per-record steps over every unit of ``sources`` (default: ``resolve_sources(ctx)``) into ``out``."""
    sources = resolve_sources(ctx) if sources is None else sources
    if not sources:
        raise ValueError("no source could be read: nothing to build")
    roots = {s.spec.name: str(s.root) for s in sources}
    units: Iterable[Unit] = plan_units(sources, ctx.recipe.chunk_size)
    if shard is not None:
        index, count = shard
        units = [u for u in units if u.index % count == index]
    root = str(ctx.root.resolve()) if ctx.root else None
    config = {
        "recipe": ctx.raw_recipe,
        "root": root,
        "roots": roots,
        "phase": 1,
        "slice": list(shard) if shard else None,
    }
    pipeline = UnitPipeline(load=_unit_items, make_steps=partial(_record_steps, ctx.recipe))
    extra = {"slice": {"index": shard[0], "count": shard[1]}} if shard else {}
    with teacher_hubs(partial(_teacher_configs, ctx.recipe)):  # under --executor ray: one teacher for the cluster
        return run_units(
            units,
            pipeline,
            out,
            command=ctx.command,
            config=config,
            workers=ctx.workers,
            force=ctx.force,
            on_unit_done=on_unit_done,
            manifest_extra=extra,
        ).manifest


def _teacher_configs(recipe: BuildRecipe) -> list[TeacherConfig]:
    return [build_step(spec, recipe).config for spec in recipe.step_specs("record") if spec.step == "teacher"]


def run_phase2(
    recipe: BuildRecipe, raw_recipe: dict[str, Any], stage1: Path, out: Path, *, command: str, workers: int = 1
) -> dict[str, Any]:
    """Plan every global step over ``stage1`` (in ``workers`` processes where a step can), then filter it in one pass
    into ``out``."""
    source_set = ShardSet(stage1)
    root = source_set.manifest["config"].get("root")  # the build's --root: benchmark paths are relative to it
    steps: list[GlobalStep] = [
        build_step(spec, recipe, root=root, workers=workers) for spec in recipe.step_specs("global")
    ]
    dropped: set[str] = set()
    for step in steps:
        dropped.update(step.plan(source_set, exclude=dropped))
    release_signatures(source_set)  # the dedup signatures (~250 bytes a row) are not needed for the filtering pass
    stream, counts = apply_steps(iter(source_set), steps)
    with ShardWriter(out, command=command, config=raw_recipe, name=recipe.name) as writer:
        writer.add_all(Reject(**r) for r in source_set.rejects())
        writer.add_all(stream)
        writer.step_counts = [*source_set.manifest["steps"], *(c.to_json() for c in counts)]
        writer.extra["stage1"] = {"rows": len(source_set), "counts": source_set.manifest["counts"]}
        if "usage" in source_set.manifest:
            writer.extra["usage"] = source_set.manifest["usage"]
        # What each global step found (pairs, clusters, per-benchmark coverage), for the report.
        stats = {step.name: getattr(step, "stats", {}) for step in steps}
        writer.extra["global_steps"] = json.loads(json.dumps(stats, default=int))
    return load_manifest(out)[1]


def join_slices(slices: list[Path], out: Path, command: str) -> dict[str, Any]:
    """Concatenate slice shard sets (from ``--shard I/N``) into one, summing their step counts."""
    manifests = [load_manifest(s)[1] for s in slices]
    recipes = {config_hash(m["config"]["recipe"]) for m in manifests}
    if len(recipes) != 1:
        raise ValueError("the slices were built from different recipes; merge only slices of one build")
    info = [m.get("slice") for m in manifests]
    if any(i is None for i in info):
        raise ValueError("merge takes slices made with --shard I/N")
    counts = {i["count"] for i in info}
    indices = sorted(i["index"] for i in info)
    if len(counts) != 1 or indices != list(range(counts.pop())):
        raise ValueError(f"incomplete or repeated slices: got indices {indices}")
    totals: dict[str, StepCount] = {}
    usage: dict[str, dict[str, float]] = {}
    with ShardWriter(out, command=command, config=manifests[0]["config"]) as writer:
        for path, manifest in sorted(zip(slices, manifests), key=lambda pair: pair[1]["slice"]["index"]):
            shard_set = ShardSet(path)
            writer.add_all(shard_set)
            writer.add_all(Reject(**r) for r in shard_set.rejects())
            for count in manifest["steps"]:
                totals.setdefault(count["step"], StepCount(count["step"])).add(count)
            add_usage(usage, manifest.get("usage", {}))
        writer.step_counts = [c.to_json() for c in totals.values()]
        if usage:
            writer.extra["usage"] = usage
    return load_manifest(out)[1]


def finish(
    recipe: BuildRecipe, raw_recipe: dict[str, Any], stage1: Path, out: Path, command: str, workers: int = 1
) -> dict[str, Any]:
    """Phase 2 over a finished ``stage1``, then the report; ``stage1`` is removed once the output is complete."""
    from slime_data.build.report import write_report

    manifest = run_phase2(recipe, raw_recipe, stage1, out, command=command, workers=workers)
    write_report(out)
    shutil.rmtree(stage1, ignore_errors=True)
    return manifest
