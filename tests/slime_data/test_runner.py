"""The unit runner: per-step counts balance, resume skips finished units, workers don't change bytes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from slime_data.record import Record, Reject
from slime_data.runner import Unit, UnitPipeline, apply_steps, run_units
from slime_data.shards import ShardSet, config_hash, validate_shard_set
from slime_data.steps.base import Filter, Step


def text_record(i: int) -> Record:
    return Record(
        id=f"t/{i}",
        source="t",
        split="train",
        conversations=[{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": f"a{i}"}],
    )


class DropMultiplesOf(Filter):
    name = "drop_multiples"

    def __init__(self, k: int) -> None:
        self.k = k

    def decide(self, record: Record) -> tuple[str, str] | None:
        n = int(record.id.split("/")[1])
        return ("multiple", f"{n} % {self.k} == 0") if n % self.k == 0 else None


class Duplicate(Step):
    """A step that emits more than it receives (like teacher QA)."""

    name = "duplicate"

    def run(self, records: Iterable[Record]) -> Iterator[Record]:
        for record in records:
            yield record
            if record.id.endswith("1"):
                yield text_record(int(record.id.split("/")[1]) + 10_000)


def load_payload(payload: list[int]) -> Iterator[Record | Reject]:
    for n in payload:
        if n == 7:
            yield Reject(f"t/{n}", "t", "source", "bad_json", "planted")
        else:
            yield text_record(n)


def steps(payload: object = None) -> list[Step]:
    return [DropMultiplesOf(3), Duplicate()]


def units(n_units: int = 6, per_unit: int = 10) -> list[Unit]:
    return [Unit(i, f"t#{i}", list(range(i * per_unit, (i + 1) * per_unit))) for i in range(n_units)]


PIPELINE = UnitPipeline(load=load_payload, make_steps=steps)


def test_apply_steps_counts_balance() -> None:
    items = [text_record(i) for i in range(10)] + [Reject("t/x", "t", "source", "bad", "")]
    stream, counts = apply_steps(items, steps())
    out = list(stream)
    drop, dup = counts
    assert (drop.rows_in, drop.rows_out, drop.rejected) == (10, 6, 4)
    assert (dup.rows_in, dup.rows_out, dup.rejected) == (6, 7, 0)
    assert sum(isinstance(o, Reject) for o in out) == 5  # 4 dropped + 1 passed through


def test_run_units_writes_counts_that_balance(tmp_path: Path) -> None:
    summary = run_units(units(), PIPELINE, tmp_path / "out", command="test", config={"v": 1})
    manifest = summary.manifest
    by_step = {c["step"]: c for c in manifest["steps"]}
    assert by_step["source"] == {"step": "source", "in": 60, "out": 59, "rejected": 1}
    assert by_step["drop_multiples"]["rejected"] == 20  # 0,3,...,57 minus none rejected at source (7 isn't a multiple)
    assert manifest["num_rows"] == by_step["validate"]["out"]
    total_rejected = sum(c["rejected"] for c in manifest["steps"])
    assert total_rejected == manifest["rejects"]["total"]
    assert validate_shard_set(tmp_path / "out") == []
    assert not (tmp_path / "out" / ".work").exists()


def test_resume_skips_done_units_and_is_byte_identical(tmp_path: Path) -> None:
    clean = run_units(units(), PIPELINE, tmp_path / "clean", command="test", config={"v": 1}).manifest

    # Simulate a crash after three units: run them alone, keep the work dir.
    seen: list[int] = []
    work_units = units()
    pipeline = UnitPipeline(load=load_payload, make_steps=steps)
    work = tmp_path / "resumed" / ".work"
    work.mkdir(parents=True)
    for unit in work_units[:3]:
        pipeline(unit, work)
    (work / "config.sha256").write_text(config_hash({"v": 1}))
    summary = run_units(
        work_units,
        PIPELINE,
        tmp_path / "resumed",
        command="test",
        config={"v": 1},
        on_unit_done=lambda r: seen.append(r.index),
    )
    assert summary.units_skipped == 3
    assert sorted(seen) == list(range(6))
    assert [s["sha256"] for s in summary.manifest["shards"]] == [s["sha256"] for s in clean["shards"]]


def test_workers_do_not_change_output(tmp_path: Path) -> None:
    one = run_units(units(), PIPELINE, tmp_path / "one", command="test", config={"v": 1}, workers=1).manifest
    two = run_units(units(), PIPELINE, tmp_path / "two", command="test", config={"v": 1}, workers=2).manifest
    assert [s["sha256"] for s in one["shards"]] == [s["sha256"] for s in two["shards"]]
    assert [r.id for r in ShardSet(tmp_path / "one")] == [r.id for r in ShardSet(tmp_path / "two")]


def test_changed_config_needs_force(tmp_path: Path) -> None:
    work = tmp_path / "out" / ".work"
    work.mkdir(parents=True)
    (work / "config.sha256").write_text("something else")
    with pytest.raises(ValueError, match="--force"):
        run_units(units(), PIPELINE, tmp_path / "out", command="test", config={"v": 2})
    summary = run_units(units(), PIPELINE, tmp_path / "out", command="test", config={"v": 2}, force=True)
    assert summary.units_skipped == 0


class Metered(Step):
    """A step that keeps cumulative counters, like the teacher's requests and tokens."""

    name = "metered"

    def __init__(self) -> None:
        self.calls = 0

    def usage_counters(self) -> dict[str, float]:
        return {"requests": self.calls, "cost_usd": self.calls * 0.5}

    def run(self, records: Iterable[Record]) -> Iterator[Record]:
        for record in records:
            self.calls += 1
            yield record


_METERED = Metered()


def metered_steps(payload: object = None) -> list[Step]:
    return [_METERED]  # one instance for the whole process, as the build keeps its steps


def test_usage_is_summed_over_units_into_the_manifest(tmp_path: Path) -> None:
    _METERED.calls = 7  # spent before this run: not counted
    pipeline = UnitPipeline(load=load_payload, make_steps=metered_steps)
    manifest = run_units(units(), pipeline, tmp_path / "out", command="test", config={"v": 3}).manifest
    assert manifest["usage"] == {"metered": {"requests": 59, "cost_usd": 29.5}}
