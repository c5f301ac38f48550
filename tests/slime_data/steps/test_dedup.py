"""Steps exact_dedup and near_dedup over a shard set: plan, then filter; counts balance."""

from __future__ import annotations

from pathlib import Path

import pytest

from slime_data.build.recipe import BuildRecipe, StepSpec, build_step
from slime_data.record import Reject
from slime_data.runner import apply_steps
from slime_data.shards import ShardSet, ShardWriter
from slime_data.steps import STEP_REGISTRY
from slime_data.steps import dedup as dedup_steps
from slime_data.steps.dedup import ExactDedupStep, NearDedupStep, release_signatures, shared_signatures
from tests.slime_data.dedup.planted import chart, encode, image_record, text_record, variants

QUESTION = "What is the value of item 3?"


@pytest.fixture(scope="module")
def shard_set(tmp_path_factory: pytest.TempPathFactory) -> ShardSet:
    base = chart(7)
    records = [image_record("original", encode(base), QUESTION, source="chartqa")]
    records += [image_record(name, data, QUESTION, source="dvqa") for name, data in variants(base).items()]
    records += [
        image_record("copy", encode(base), QUESTION.upper(), source="dvqa"),  # same bytes, same question
        image_record("other-question", encode(base), "Which bar is the tallest?", source="dvqa"),
        image_record("other-chart", encode(chart(8)), QUESTION, source="dvqa"),
        text_record("poem", "Write a poem about the sea.", "The sea is wide.", source="sharegpt4v"),
        text_record("poem-again", "Write a poem about the sea!", "The sea is wide", source="sharegpt4v"),
    ]
    out = tmp_path_factory.mktemp("dedup") / "set"
    with ShardWriter(out, command="test", max_shard_rows=3) as writer:
        for record in records:
            writer.add(record)
    return ShardSet(out)


def run_global(steps: list, shard_set: ShardSet) -> tuple[list, list[Reject], list]:
    """What the build's phase 2 does: plan each step ignoring earlier drops, then one filtering pass."""
    dropped: set[str] = set()
    for step in steps:
        dropped.update(step.plan(shard_set, exclude=dropped))
    stream, counts = apply_steps(iter(shard_set), steps)
    out = list(stream)
    return [r for r in out if not isinstance(r, Reject)], [r for r in out if isinstance(r, Reject)], counts


def test_registered_under_recipe_names() -> None:
    assert STEP_REGISTRY["exact_dedup"] is ExactDedupStep and STEP_REGISTRY["near_dedup"] is NearDedupStep
    assert ExactDedupStep.scope == NearDedupStep.scope == "global"


def test_exact_then_near_dedup(shard_set: ShardSet) -> None:
    kept, rejects, counts = run_global([ExactDedupStep(), NearDedupStep(max_hamming=6, min_jaccard=0.8)], shard_set)
    by_step = {(r.step, r.id): r.reason for r in rejects}
    assert by_step == {
        ("exact_dedup", "dvqa/copy"): "exact_duplicate",
        ("exact_dedup", "sharegpt4v/poem-again"): "exact_duplicate",
        ("near_dedup", "dvqa/reencoded"): "near_duplicate",
        ("near_dedup", "dvqa/resized"): "near_duplicate",
        ("near_dedup", "dvqa/cropped"): "near_duplicate",
    }
    assert {r.id for r in kept} == {"chartqa/original", "dvqa/other-question", "dvqa/other-chart", "sharegpt4v/poem"}
    # Rows in = rows out + rejects, per step, and nothing is lost overall.
    exact, near = (c.to_json() for c in counts)
    assert exact == {"step": "exact_dedup", "in": 9, "out": 7, "rejected": 2}
    assert near == {"step": "near_dedup", "in": 7, "out": 4, "rejected": 3}
    assert len(kept) + len(rejects) == len(shard_set)


def test_near_dedup_alone_catches_the_exact_copies_too(shard_set: ShardSet) -> None:
    step = NearDedupStep()
    drops = step.plan(shard_set)
    assert {"dvqa/copy", "sharegpt4v/poem-again"} <= set(drops) and step.drops == drops
    assert step.stats["dropped"] == len(drops) and step.stats["rows"] == len(shard_set)


def test_unknown_or_bad_parameters_are_one_line_errors() -> None:
    recipe = BuildRecipe(name="t", sources=[], steps=[])
    with pytest.raises(ValueError, match="max_haming"):
        build_step(StepSpec(step="near_dedup", max_haming=3), recipe)
    with pytest.raises(ValueError, match="min_jaccard"):
        build_step(StepSpec(step="near_dedup", min_jaccard=1.5), recipe)
    with pytest.raises(ValueError, match="threshold"):
        build_step(StepSpec(step="exact_dedup", threshold=3), recipe)


def test_drop_set_is_deterministic(shard_set: ShardSet, tmp_path: Path) -> None:
    first = NearDedupStep().plan(shard_set)
    # Same rows in another order and shard layout: the same rows are dropped for the same reasons.
    out = tmp_path / "reversed"
    with ShardWriter(out, command="test", max_shard_rows=2) as writer:
        for record in reversed(list(shard_set)):
            writer.add(record)
    assert NearDedupStep().plan(ShardSet(out)) == first


def test_one_signature_pass_serves_both_steps(shard_set: ShardSet, monkeypatch: pytest.MonkeyPatch) -> None:
    passes = []
    compute = dedup_steps.signatures_of_files
    monkeypatch.setattr(dedup_steps, "signatures_of_files", lambda *args: passes.append(args) or compute(*args))
    fresh = ShardSet(shard_set.root)  # signatures are held per shard set object
    _, rejects, _ = run_global([ExactDedupStep(), NearDedupStep(max_hamming=6, min_jaccard=0.8)], fresh)
    assert len(passes) == 1 and len(rejects) == 5
    NearDedupStep(seed=1).plan(fresh)  # other MinHash settings: another pass, replacing the one held
    assert len(passes) == 2
    ExactDedupStep().plan(fresh)  # exact_dedup takes whatever is held
    assert shared_signatures(fresh, NearDedupStep(seed=1).hasher) is shared_signatures(fresh, None)
    assert len(passes) == 2
    release_signatures(fresh)
    ExactDedupStep().plan(fresh)
    assert len(passes) == 3


def test_workers_give_the_same_drops(shard_set: ShardSet) -> None:
    one = [ExactDedupStep(), NearDedupStep()]
    two = [ExactDedupStep(workers=2), NearDedupStep(workers=2)]
    _, rejects_one, _ = run_global(one, ShardSet(shard_set.root))
    _, rejects_two, _ = run_global(two, ShardSet(shard_set.root))
    assert rejects_one == rejects_two and len(rejects_two) == 5
