"""Every shipped build recipe validates and every step in it can be built."""

from __future__ import annotations

from pathlib import Path

import pytest

from slime_data.build.recipe import build_step, load_recipe
from slime_data.paths import PIPELINES_DIR

BUILD_RECIPES = sorted(PIPELINES_DIR.glob("sophisticated*.yaml"))


@pytest.mark.parametrize("path", BUILD_RECIPES, ids=lambda p: p.name)
def test_shipped_recipe_builds_every_step(path: Path, tmp_path: Path) -> None:
    recipe, raw = load_recipe(path)
    assert raw["name"] == recipe.name
    for spec in [*recipe.step_specs("record"), *recipe.step_specs("global")]:  # enabled steps
        step = build_step(spec, recipe, root=str(tmp_path))
        assert step.name == spec.step


def test_both_recipes_are_shipped() -> None:
    assert [p.name for p in BUILD_RECIPES] == ["sophisticated-demo.yaml", "sophisticated.yaml"]
