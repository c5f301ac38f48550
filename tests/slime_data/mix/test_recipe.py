"""Recipe loading and --target parsing: every mistake is one clear message."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from slime_data.mix.recipe import load_mix_recipe, parse_target
from slime_data.paths import PIPELINES_DIR


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ("2M", 2_000_000),
        ("1.5M", 1_500_000),
        ("500k", 500_000),
        ("2k", 2_000),
        ("2000000", 2_000_000),
        ("1.1m", 1_100_000),
        ("2_000", 2000),
        ("7", 7),
    ],
)
def test_parse_target(text: str, rows: int) -> None:
    assert parse_target(text) == rows


@pytest.mark.parametrize("text", ["", "2G", "-5", "0", "1.5", "1.2345k", "two", "2 M", "1e6"])
def test_parse_target_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="--target must be a whole number of rows like 2M"):
        parse_target(text)


def _recipe(tmp_path: Path, **changes: object) -> Path:
    recipe = {
        "name": "r",
        "stages": [
            {"name": "pretrain", "weight": 1, "sources": [{"name": "a", "input": "data/a"}]},
            {
                "name": "sft",
                "count": 10,
                "sources": [{"name": "b", "input": "data/b"}, {"name": "c", "input": "data/c"}],
            },
        ],
    }
    recipe.update(changes)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_shipped_recipes_load() -> None:
    for name in ("mix-2m.yaml", "mix-demo.yaml"):
        recipe = load_mix_recipe(PIPELINES_DIR / name)
        assert [s.name for s in recipe.stages] == ["pretrain", "sft"]
        assert recipe.max_repeats >= 3
    default = load_mix_recipe(PIPELINES_DIR / "mix-2m.yaml")
    assert [s.input for stage in default.stages for s in stage.sources] == [
        "data/llava_pretrain",
        "data/sharegpt4v",
        "data/sophisticated",
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"bogus": 1}, "unknown key 'bogus'"),
        ({"max_repeats": 0}, "max_repeats"),
        (
            {"stages": [{"name": "s", "weight": 1, "count": 3, "sources": [{"name": "a", "input": "x"}]}]},
            "weight or a count, not both",
        ),
        (
            {
                "stages": [
                    {"name": "s", "sources": [{"name": "a", "input": "x", "weight": 2}, {"name": "b", "input": "y"}]}
                ]
            },
            "b has none",
        ),
        (
            {"stages": [{"name": "s", "sources": [{"name": "a", "input": "x"}, {"name": "b", "input": "x"}]}]},
            "inputs listed twice: x",
        ),
        (
            {
                "stages": [
                    {"name": "s", "sources": [{"name": "a", "input": "x"}]},
                    {"name": "s", "sources": [{"name": "b", "input": "y"}]},
                ]
            },
            "stages listed twice",
        ),
        (
            {"stages": [{"name": "s", "sampling": "cubic", "sources": [{"name": "a", "input": "x"}]}]},
            "stages.0.sampling",
        ),
        ({"hygiene": [{"step": "no_such_step"}]}, "unknown hygiene step 'no_such_step'"),
        ({"hygiene": [{"step": "resolution"}]}, "does not belong in a mix"),
        ({"hygiene": [{"step": "cap"}]}, "does not belong in a mix"),
    ],
)
def test_bad_recipes(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_mix_recipe(_recipe(tmp_path, **changes))


def test_sampling_rules(tmp_path: Path) -> None:
    recipe = load_mix_recipe(
        _recipe(
            tmp_path, stages=[{"name": "s", "sampling": {"temperature": 2}, "sources": [{"name": "a", "input": "x"}]}]
        )
    )
    assert recipe.stages[0].rule == "temperature=2"
    assert load_mix_recipe(_recipe(tmp_path)).stages[1].rule == "proportional"
