"""Run steps over units of work, resumably, then join the units into one shard set.

A pipeline's input is cut into *units* in a deterministic order (a chunk of a source's native
records, an input shard…). Each unit is processed independently — in a worker process when
``workers > 1`` — through the same list of steps, and its output is written under
``OUT/.work/`` as an Arrow file, a rejects file and, last, a ``.done`` marker with the unit's
step counts. Killing the run loses at most the units in flight; a rerun skips every unit with
a marker. When all units are done they are joined, in unit order, into the final shard set,
so the result is byte-identical whatever the number of workers or interruptions.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from slime_data.executor import unit_of_work
from slime_data.parallel import map_in_processes
from slime_data.record import ARROW_SCHEMA, Record, RecordError, Reject, records_to_table, validate_record
from slime_data.shards import MANIFEST, ShardWriter, config_hash, fsync_write
from slime_data.steps.base import Step

WORK_DIR = ".work"


# --------------------------------------------------------------------------------------
# Counting steps: rows in = rows out + rejects, per step
# --------------------------------------------------------------------------------------


@dataclass
class StepCount:
    step: str
    rows_in: int = 0
    rows_out: int = 0
    rejected: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "in": self.rows_in, "out": self.rows_out, "rejected": self.rejected}

    def add(self, other: dict[str, Any]) -> None:
        self.rows_in += other["in"]
        self.rows_out += other["out"]
        self.rejected += other["rejected"]


def _counted(step: Step, stream: Iterable[Record | Reject], count: StepCount) -> Iterator[Record | Reject]:
    """Run ``step`` over the records of ``stream``; rejects from earlier steps pass straight through."""
    passing: list[Reject] = []

    def records() -> Iterator[Record]:
        for item in stream:
            if isinstance(item, Reject):
                passing.append(item)
            else:
                count.rows_in += 1
                yield item

    for out in step.run(records()):
        yield from passing
        passing.clear()
        if isinstance(out, Reject):
            count.rejected += 1
        else:
            count.rows_out += 1
        yield out
    yield from passing


class ValidateRecords(Step):
    """The last step of every pipeline: a record that breaks the schema contract is a reject."""

    name = "validate"

    def run(self, records: Iterable[Record]) -> Iterator[Record | Reject]:
        for record in records:
            try:
                validate_record(record)
            except RecordError as err:
                yield self.reject(record, "invalid_record", str(err))
            else:
                yield record


def apply_steps(
    items: Iterable[Record | Reject], steps: list[Step]
) -> tuple[Iterator[Record | Reject], list[StepCount]]:
    """Chain ``steps`` over ``items``; returns the output stream and live per-step counts."""
    counts = [StepCount(step.name) for step in steps]
    stream: Iterable[Record | Reject] = items
    for step, count in zip(steps, counts):
        stream = _counted(step, stream, count)
    return iter(stream), counts


# --------------------------------------------------------------------------------------
# Units
# --------------------------------------------------------------------------------------


@dataclass
class Unit:
    """One independent piece of work. ``items`` are produced by ``load`` in the worker."""

    index: int
    key: str  # human-readable: "scienceqa/train#3"
    payload: Any  # picklable; what the pipeline's ``load`` turns into records


@dataclass
class UnitResult:
    index: int
    rows: int
    rejects: int
    counts: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, dict[str, float]] = field(default_factory=dict)  # per step: what this unit spent


def usage_counters(steps: list[Step]) -> dict[str, dict[str, float]]:
    """Cumulative counters of the steps that keep any (the teacher: requests, tokens, cost)."""
    return {step.name: dict(step.usage_counters()) for step in steps if hasattr(step, "usage_counters")}


def usage_delta(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    return {
        name: {k: v - before.get(name, {}).get(k, 0) for k, v in counters.items()} for name, counters in after.items()
    }


def add_usage(total: dict[str, dict[str, float]], part: dict[str, dict[str, float]]) -> None:
    for name, counters in part.items():
        for key, value in counters.items():
            total.setdefault(name, {})[key] = total.get(name, {}).get(key, 0) + value


class UnitPipeline:
    """What to do with one unit: ``load(payload)`` yields records/rejects, then ``make_steps(payload)`` run.

    ``first_step`` names the counter for rows/rejects that ``load`` itself yields (e.g.
    ``"source"`` for native records an adapter could not parse); None: not counted (rows of a shard set).
    """

    def __init__(
        self,
        load: Callable[[Any], Iterable[Record | Reject]],
        make_steps: Callable[[Any], list[Step]],
        first_step: str | None = "source",
    ):
        self.load = load
        self.make_steps = make_steps
        self.first_step = first_step

    def __call__(self, unit: Unit, work_dir: Path) -> UnitResult:
        source = StepCount(self.first_step or "")

        def loaded() -> Iterator[Record | Reject]:
            for item in self.load(unit.payload):
                source.rows_in += 1
                if isinstance(item, Reject):
                    source.rejected += 1
                else:
                    source.rows_out += 1
                yield item

        steps = [*self.make_steps(unit.payload), ValidateRecords()]
        spent_before = usage_counters(steps)
        stream, counts = apply_steps(loaded(), steps)
        records: list[Record] = []
        rejects: list[str] = []
        for item in stream:
            if isinstance(item, Reject):
                rejects.append(json.dumps(item.to_json(), ensure_ascii=False, sort_keys=True))
            else:
                records.append(item)
        stem = work_dir / f"unit-{unit.index:06d}"
        _write_arrow(stem.with_suffix(".arrow"), records_to_table(records))
        fsync_write(stem.with_suffix(".rejects.jsonl"), "".join(line + "\n" for line in rejects).encode("utf-8"))
        loaded_count = [source.to_json()] if self.first_step else []
        result = UnitResult(
            unit.index,
            len(records),
            len(rejects),
            [*loaded_count, *(c.to_json() for c in counts)],
            usage_delta(spent_before, usage_counters(steps)),
        )
        fsync_write(stem.with_suffix(".done"), json.dumps(result.__dict__).encode("utf-8"))
        return result


def _write_arrow(path: Path, table: pa.Table) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, ARROW_SCHEMA) as writer:
        writer.write_table(table)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    tmp.replace(path)


@unit_of_work(num_cpus=1, memory_gib=2, describe=lambda args: f"unit {args[1].index} ({args[1].key})")
def _run_one(args: tuple[UnitPipeline, Unit, Path]) -> UnitResult:
    pipeline, unit, work_dir = args
    return pipeline(unit, work_dir)


# --------------------------------------------------------------------------------------
# The runner
# --------------------------------------------------------------------------------------


@dataclass
class RunSummary:
    out_dir: Path
    manifest: dict[str, Any]
    units_total: int
    units_skipped: int


def run_units(
    units: Iterable[Unit],
    pipeline: UnitPipeline,
    out_dir: str | Path,
    *,
    command: str,
    config: Any,
    workers: int = 1,
    force: bool = False,
    on_unit_done: Callable[[UnitResult], None] | None = None,
    max_shard_bytes: int | None = None,
    max_shard_rows: int | None = None,
    manifest_extra: dict[str, Any] | None = None,
    join: Callable[..., dict[str, Any]] | None = None,
) -> RunSummary:
    """Process every unit (skipping finished ones), then join them into the shard set at ``out_dir``.

    ``config`` identifies the work: a rerun with a different config refuses to mix old units
    with new ones unless ``force`` is given. ``join``: writes the shard set instead of ``join_units``
    (same arguments), for a command whose output has its own manifest.
    """
    out_dir = Path(out_dir)
    work_dir = out_dir / WORK_DIR
    fingerprint = config_hash(config)
    if not force and (out_dir / MANIFEST).is_file():
        manifest = json.loads((out_dir / MANIFEST).read_text())
        if manifest.get("config_sha256") == fingerprint:  # this exact work already finished
            return RunSummary(out_dir, manifest, manifest.get("units", 0), manifest.get("units", 0))
    if force and out_dir.exists():
        shutil.rmtree(work_dir, ignore_errors=True)
        (out_dir / MANIFEST).unlink(missing_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    stamp = work_dir / "config.sha256"
    if stamp.exists() and stamp.read_text().strip() != fingerprint:
        raise ValueError(
            f"{out_dir} holds unfinished work made with a different configuration; rerun with --force to start over"
        )
    fsync_write(stamp, fingerprint.encode())

    units = list(units)
    done = {int(p.stem.split("-")[1]) for p in work_dir.glob("unit-*.done")}
    pending = [u for u in units if u.index not in done]
    for result_file in sorted(work_dir.glob("unit-*.done")):
        if on_unit_done is not None and int(result_file.stem.split("-")[1]) in {u.index for u in units}:
            on_unit_done(UnitResult(**json.loads(result_file.read_text())))

    for result in map_in_processes(_run_one, [(pipeline, unit, work_dir) for unit in pending], workers):
        if on_unit_done is not None:
            on_unit_done(result)

    manifest = (join or join_units)(
        [u.index for u in units],
        work_dir,
        out_dir,
        command=command,
        config=config,
        max_shard_bytes=max_shard_bytes,
        max_shard_rows=max_shard_rows,
        manifest_extra={"units": len(units), **(manifest_extra or {})},
    )
    shutil.rmtree(work_dir, ignore_errors=True)
    return RunSummary(out_dir, manifest, len(units), len(units) - len(pending))


def iter_unit_output(work_dir: Path, index: int) -> Iterator[Record | Reject]:
    """A finished unit's records then its rejects, as written."""
    stem = work_dir / f"unit-{index:06d}"
    with pa.memory_map(str(stem.with_suffix(".arrow")), "r") as source:
        reader = pa.ipc.open_file(source)
        for b in range(reader.num_record_batches):
            for row in reader.get_batch(b).to_pylist():
                yield Record.from_row(row)
    with open(stem.with_suffix(".rejects.jsonl"), encoding="utf-8") as f:
        for line in f:
            yield Reject(**json.loads(line))


def join_units(
    indices: list[int],
    work_dir: Path,
    out_dir: Path,
    *,
    command: str,
    config: Any,
    max_shard_bytes: int | None = None,
    max_shard_rows: int | None = None,
    manifest_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Join finished units, in order, into one shard set; step counts are summed across units."""
    totals: dict[str, StepCount] = {}
    usage: dict[str, dict[str, float]] = {}
    limits = {k: v for k, v in (("max_shard_bytes", max_shard_bytes), ("max_shard_rows", max_shard_rows)) if v}
    with ShardWriter(out_dir, command=command, config=config, **limits) as writer:
        for index in indices:
            result = json.loads((work_dir / f"unit-{index:06d}.done").read_text())
            for count in result["counts"]:
                totals.setdefault(count["step"], StepCount(count["step"])).add(count)
            add_usage(usage, result.get("usage", {}))
            writer.add_all(iter_unit_output(work_dir, index))
        writer.step_counts = [c.to_json() for c in totals.values()]
        writer.extra.update(manifest_extra or {})
        if usage:  # what metered steps (the teacher) spent, summed over units
            writer.extra["usage"] = usage
    return json.loads((out_dir / MANIFEST).read_text())
