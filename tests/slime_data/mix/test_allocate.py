"""Allocation: exact totals, the sampling rules, fixed counts, and the repeat cap's clear failure."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slime_data.mix.allocate import AllocationError, allocate, split_exactly
from slime_data.mix.plan import draw
from slime_data.mix.recipe import MixRecipe


def recipe(sft_sampling: object = "proportional", **changes: object) -> MixRecipe:
    data = {
        "name": "r",
        "stages": [
            {"name": "pretrain", "weight": 0.279, "sources": [{"name": "llava", "input": "a"}]},
            {
                "name": "sft",
                "weight": 0.721,
                "sampling": sft_sampling,
                "sources": [{"name": "sharegpt4v", "input": "b"}, {"name": "smr", "input": "c"}],
            },
        ],
    }
    data.update(changes)
    return MixRecipe(**data)


PAPER = {"llava": 558_128, "sharegpt4v": 665_058, "smr": 476_000}


@pytest.mark.parametrize("total", [0, 1, 7, 1000, 2_000_000])
@pytest.mark.parametrize("weights", [[1.0], [1, 1, 1], [0.279, 0.721], [5, 0.001, 3]])
def test_split_exactly_adds_up(total: int, weights: list[float]) -> None:
    parts = split_exactly(total, weights)
    assert sum(parts) == total
    for part, weight in zip(parts, weights):
        assert abs(part - total * weight / sum(weights)) < 1


@pytest.mark.parametrize("target", [2_000_000, 1_500_000, 500_000, 2_000, 3])
def test_exact_totals_for_several_targets(target: int) -> None:
    stages = allocate(recipe(), target, PAPER)
    assert sum(s.rows for s in stages) == target
    for stage in stages:
        assert sum(q.rows for q in stage.sources) == stage.rows


def test_the_paper_mixture_at_2m() -> None:
    pretrain, sft = allocate(recipe(), 2_000_000, PAPER)
    assert pretrain.rows == 558_000 and sft.rows == 1_442_000
    sharegpt4v, smr = sft.sources
    # Proportional: both SFT sources are upsampled by the same factor, 1_442_000 / 1_141_058.
    assert sharegpt4v.rows / sharegpt4v.available == pytest.approx(smr.rows / smr.available, abs=1e-5)
    assert (sharegpt4v.whole_repeats, smr.whole_repeats) == (1, 1)
    assert sharegpt4v.rows == sharegpt4v.whole_repeats * sharegpt4v.available + sharegpt4v.remainder


def test_sqrt_and_temperature() -> None:
    sqrt = allocate(recipe("sqrt"), 2_000_000, PAPER)[1].sources
    expected = math.sqrt(665_058) / (math.sqrt(665_058) + math.sqrt(476_000))
    assert sqrt[0].share == pytest.approx(expected)
    assert sqrt[0].rows == round(1_442_000 * expected)
    assert sqrt[0].rule == "sqrt"
    tau2 = allocate(recipe({"temperature": 2}), 2_000_000, PAPER)[1].sources
    assert [q.rows for q in tau2] == [q.rows for q in sqrt]
    tau1 = allocate(recipe({"temperature": 1}), 2_000_000, PAPER)[1].sources
    assert [q.rows for q in tau1] == [q.rows for q in allocate(recipe(), 2_000_000, PAPER)[1].sources]


def test_fixed_counts_and_explicit_weights() -> None:
    r = MixRecipe(
        name="r",
        stages=[
            {"name": "pretrain", "count": 100, "sources": [{"name": "a", "input": "a"}]},
            {
                "name": "sft",
                "weight": 1,
                "sources": [
                    {"name": "b", "input": "b", "count": 10},
                    {"name": "c", "input": "c", "weight": 3},
                    {"name": "d", "input": "d", "weight": 1},
                ],
            },
        ],
    )
    pretrain, sft = allocate(r, 150, {"a": 500, "b": 50, "c": 50, "d": 50})
    assert pretrain.rows == 100 and sft.rows == 50
    assert [q.rows for q in sft.sources] == [10, 30, 10]
    assert [q.rule for q in sft.sources] == ["count", "weight", "weight"]
    with pytest.raises(AllocationError, match="fixed counts of the stages add up to 100, more than the 99"):
        allocate(r, 99, {"a": 500, "b": 50, "c": 50, "d": 50})


def test_repeat_cap_fails_clearly() -> None:
    with pytest.raises(AllocationError) as err:
        allocate(recipe(), 6_000_000, PAPER)
    message = str(err.value)
    assert "--target 6,000,000 cannot be met" in message
    assert "1,699,186 rows are available" in message
    assert "Raise max_repeats" in message and "lower --target" in message
    # The largest feasible target it suggests does fit, and one more row does not.
    suggested = int(message.split("lower --target (--target ")[1].split(" ")[0].replace(",", ""))
    allocate(recipe(), suggested, PAPER)
    with pytest.raises(AllocationError):
        allocate(recipe(), suggested + 1, PAPER)
    # A higher cap for that source makes the same target feasible.
    allocate(recipe(max_repeats=4), 6_000_000, PAPER)


def test_draw_whole_repeats_plus_seeded_remainder() -> None:
    from slime_data.mix.allocate import SourceQuota

    kept = np.array([3, 5, 8, 9, 12])
    quota = SourceQuota("s", "x", available=5, rows=13, share=1.0, rule="proportional", max_repeats=3)
    rows, repeats = draw(kept, quota, np.random.default_rng(0))
    assert len(rows) == 13
    assert sorted(np.bincount(repeats)) == [3, 5, 5]
    counts = {int(r): int(c) for r, c in zip(*np.unique(rows, return_counts=True))}
    assert set(counts) == set(kept.tolist()) and sorted(counts.values()) == [2, 2, 3, 3, 3]
    down = SourceQuota("s", "x", available=5, rows=3, share=1.0, rule="proportional", max_repeats=3)
    rows, repeats = draw(kept, down, np.random.default_rng(0))
    assert len(set(rows.tolist())) == 3 and not repeats.any()  # without replacement
