"""``slime-data teach --executor ray``: the teacher over a shard set in batches of rows, one task each.

A batch is a row range of the input shard set (a path and two numbers: no image crosses Ray's
object store); each runs the teacher step and writes its rows, rejects and completion marker
under ``OUT/.work`` (``slime_data.runner``), so a rerun after a failure or a budget stop redoes
only unfinished batches, and cached answers are free. The batches are joined, in row order, into
a shard set with the manifest ``slime-data teach`` writes on one machine: the same shards, the
same rejects, the same step counts and teacher usage, whatever the number of workers. All
batches share one rate limiter, budget and cache through the run's teacher hub
(``slime_data.teacher.cluster``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from slime_data.executor import TaskFailed
from slime_data.record import Record
from slime_data.runner import StepCount, Unit, UnitPipeline, UnitResult, add_usage, iter_unit_output, run_units
from slime_data.shards import ShardSet, ShardWriter, load_manifest
from slime_data.steps.base import Step
from slime_data.steps.teacher import TeacherStep
from slime_data.teacher.cluster import teacher_hubs
from slime_data.teacher.errors import BudgetExhausted
from slime_data.teacher.usage import Usage

BATCH_ROWS = 256  # rows per task: minutes of teacher calls at typical concurrency, a small loss when killed
# Settings a rerun may change without invalidating finished batches (a higher budget, other limits).
LIMITS = ("concurrency", "rpm", "tpm", "max_requests", "max_cost_usd")


def _rows(payload: dict[str, Any]) -> Iterator[Record]:
    shard_set = ShardSet(payload["path"])
    for index in range(payload["start"], payload["stop"]):
        yield shard_set[index]


def _teacher_steps(params: dict[str, Any], payload: dict[str, Any]) -> list[Step]:
    return [TeacherStep(**params)]


def usage_from_counters(counters: dict[str, float], step: TeacherStep) -> dict[str, Any]:
    """The ``Usage`` JSON of the whole run from the batches' summed counters (retry causes are not kept)."""
    fields = {name for name in Usage.__dataclass_fields__ if name not in ("price", "retry_causes")}
    return Usage(price=step.config.price(), **{k: int(v) for k, v in counters.items() if k in fields}).to_json()


def _join(
    step: TeacherStep,
    input_set: ShardSet,
    indices: list[int],
    work_dir: Path,
    out_dir: Path,
    *,
    command: str,
    manifest_config: Any,
    **_: Any,
) -> dict[str, Any]:
    """The batches' rows and rejects, in order, into one shard set with ``teach``'s manifest (``manifest_config``)."""
    totals: dict[str, StepCount] = {}
    usage: dict[str, dict[str, float]] = {}
    with ShardWriter(out_dir, command=command, config=manifest_config) as writer:
        for index in indices:
            result = UnitResult(**json.loads((work_dir / f"unit-{index:06d}.done").read_text()))
            for count in result.counts:
                totals.setdefault(count["step"], StepCount(count["step"])).add(count)
            add_usage(usage, result.usage)
            writer.add_all(iter_unit_output(work_dir, index))
        writer.step_counts = [count.to_json() for count in totals.values()]
        writer.extra["teacher"] = {
            **step.summary(),
            "usage": usage_from_counters(usage.get(step.name, {}), step),
            "input": {"path": str(input_set.root), "num_rows": len(input_set)},
        }
    return load_manifest(out_dir)[1]


def teach_in_batches(
    input_set: ShardSet,
    step: TeacherStep,
    out: Path,
    *,
    command: str,
    config: dict[str, Any],
    on_rows: Callable[[int], None] | None = None,
    batch_rows: int = BATCH_ROWS,
) -> dict[str, Any]:
    """Run ``step``'s teacher over ``input_set`` in batches on the active executor; the output's manifest.

    Raises ``BudgetExhausted`` when the cluster's budget stopped a batch (finished batches stay for a rerun).
    """
    units = [
        Unit(
            index=i,
            key=f"rows {start}-{min(start + batch_rows, len(input_set))}",
            payload={"path": str(input_set.root), "start": start, "stop": min(start + batch_rows, len(input_set))},
        )
        for i, start in enumerate(range(0, len(input_set), batch_rows))
    ]
    params = step.params.model_dump(exclude_none=True)
    pipeline = UnitPipeline(load=_rows, make_steps=partial(_teacher_steps, params), first_step=None)
    work = {  # what finished batches depend on: not the limits, so a budget-stopped run continues with more
        "input": input_set.manifest["shards"],
        "batch_rows": batch_rows,
        "params": step.params.model_dump(mode="json", exclude_none=True, exclude=set(LIMITS)),
    }
    try:
        with teacher_hubs(lambda: [step.config]):
            summary = run_units(
                units,
                pipeline,
                out,
                command=command,
                config=work,
                on_unit_done=None if on_rows is None else lambda result: on_rows(result.rows + result.rejects),
                join=partial(_join, step, input_set, manifest_config=config),
            )
    except TaskFailed as err:
        if isinstance(err.cause, BudgetExhausted):
            raise err.cause from None
        raise
    return summary.manifest
