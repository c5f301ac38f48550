"""plan_drops: the build's dedup steps over all mix inputs, one signature pass, in --workers processes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slime_data.mix import hygiene
from slime_data.mix.hygiene import plan_drops
from slime_data.mix.inputs import open_inputs
from slime_data.mix.recipe import load_mix_recipe
from slime_data.steps import dedup as dedup_steps
from slime_data.steps.base import make_step
from tests.slime_data.mix.mixdata import write_recipe

DEDUP = [{"step": "exact_dedup"}, {"step": "near_dedup", "max_hamming": 6, "min_jaccard": 0.8}]


def recipe_and_inputs(tmp_path: Path, inputs: dict[str, Path], steps: list[dict]):
    recipe = load_mix_recipe(write_recipe(tmp_path / "recipe.yaml", inputs, hygiene=steps))
    return recipe, open_inputs(recipe)


def test_make_step_gives_the_context_a_step_declares() -> None:
    context = {"recipe_dir": Path("/r"), "workers": 3}
    assert make_step("near_dedup", {"max_hamming": 2}, context, "hygiene step").workers == 3
    assert make_step("exact_dedup", {}, context, "hygiene step").workers == 3
    assert make_step("decontaminate", {"benchmarks": [{"format": "mmmu", "path": "x"}]}, context).base_dir == Path("/r")
    with pytest.raises(ValueError, match="hygiene step 'near_dedup': max_haming"):
        make_step("near_dedup", {"max_haming": 2}, context, "hygiene step")


@pytest.mark.parametrize("steps", [DEDUP, DEDUP[::-1]])
def test_one_signature_pass_per_run_released_after_the_last_reader(
    tmp_path: Path, mix_inputs: dict[str, Path], steps: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    passes, released = [], []
    compute = dedup_steps.signatures_of_files
    monkeypatch.setattr(dedup_steps, "signatures_of_files", lambda *args: passes.append(args) or compute(*args))
    release = hygiene.release_signatures
    monkeypatch.setattr(
        hygiene, "release_signatures", lambda view: released.append(view in dedup_steps._SHARED) or release(view)
    )
    result = plan_drops(*recipe_and_inputs(tmp_path, mix_inputs, steps))
    assert len(passes) == 1
    assert released == [True]  # once, after the second step: no later step reads them
    assert sum(len(d) for d in result.dropped) == 2  # qa_b's two copies of qa_a rows


def test_workers_do_not_change_the_drops(tmp_path: Path, mix_inputs: dict[str, Path]) -> None:
    recipe, inputs = recipe_and_inputs(tmp_path, mix_inputs, DEDUP)
    one, two = plan_drops(recipe, inputs, workers=1), plan_drops(recipe, inputs, workers=2)
    assert all(np.array_equal(a, b) for a, b in zip(one.dropped, two.dropped))
    assert one.rejects == two.rejects and one.steps == two.steps
    assert [s["rejected"] for s in two.steps] == [2, 0]


def test_make_step_keeps_a_type_error_inside_a_step_a_bug(monkeypatch) -> None:
    """A parameter the step does not take is the recipe's mistake (ValueError); a TypeError raised
    while the step builds itself is a bug and stays a TypeError."""
    from slime_data.steps.base import STEP_REGISTRY, Step

    class Strict(Step):
        name = "strict_test_step"

        def __init__(self, threshold: int = 1) -> None:
            self.threshold = threshold + "1"  # the bug: int + str

        def run(self, records):
            yield from records

    monkeypatch.setitem(STEP_REGISTRY, Strict.name, Strict)
    with pytest.raises(ValueError, match="step 'strict_test_step': got an unexpected keyword argument 'treshold'"):
        make_step(Strict.name, {"treshold": 2}, {})
    with pytest.raises(TypeError, match="unsupported operand"):
        make_step(Strict.name, {"threshold": 2}, {})
