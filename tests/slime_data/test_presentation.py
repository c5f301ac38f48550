"""Presentation templates: the shipped file, which template a row gets, and loud errors for bad
templates, sources, tasks and recipe entries (at load, before any build work)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from slime_data.build.recipe import load_recipe
from slime_data.presentation import PRESENTATION_FILE, load_presentation
from slime_data.steps.base import make_step


def write_templates(path: Path, **changes: object) -> Path:
    raw = yaml.safe_load(PRESENTATION_FILE.read_text(encoding="utf-8"))
    raw.update(changes)
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_shipped_templates_and_defaults() -> None:
    config = load_presentation()
    assert sorted(config.templates) == ["answer_only", "both", "reasoning_then_answer"]
    assert [row.name for row in config.templates["both"].rows] == ["answer", "reasoning"]
    assert config.templates["reasoning_then_answer"].rows[0].turn == "{rationale}\nThe answer is {answer}."
    assert config.choose("synth", "chart") == "answer_only"  # the demo model's short exact answers
    for source in ("scienceqa", "tabmwp", "arxivqa", "geoqa3", "geometry3k", "mathvision", "dvqa", "chartqa"):
        assert config.choose(source, "science") == "reasoning_then_answer", source
    assert config.label("both") == f"both@{config.version}"


def test_choice_order_source_task_then_source_then_task_then_default() -> None:
    config = load_presentation(
        overrides={
            "default": "answer_only",
            "sources": {"tqa": {"diagram": "both", "*": "reasoning_then_answer"}, "ai2d": {"diagram": "both"}},
            "tasks": {"table": "both"},
        }
    )
    assert config.choose("tqa", "diagram") == "both"
    assert config.choose("tqa", "science") == "reasoning_then_answer"  # "*"
    assert config.choose("ai2d", "science") == "answer_only"  # no "*": falls through to tasks, then default
    assert config.choose("dvqa", "table") == "both"  # tasks
    assert config.choose("dvqa", "chart") == "answer_only"  # default
    assert config.choose("scienceqa", "table") == "reasoning_then_answer"  # the file's source entry beats tasks


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sources": {"scienceqa": "long_form"}}, "sources.scienceqa: unknown template 'long_form'; known templates: "),
        ({"sources": {"sciencqa": "both"}}, "unknown source 'sciencqa'; known sources: "),
        ({"sources": {"tqa": {"diagrams": "both"}}}, "sources.tqa: unknown task 'diagrams'"),
        ({"tasks": {"table": "bothh"}}, "tasks.table: unknown template 'bothh'"),
        ({"default": "terse"}, "default: unknown template 'terse'"),
        ({"template": "both"}, "unknown key 'template'"),
    ],
)
def test_bad_step_parameters_are_one_line_errors(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match="^step 'present': ") as err:
        make_step("present", params, {})
    assert message in str(err.value) and "\n" not in str(err.value)


def only(*rows: dict) -> dict:
    """Changes that make the file hold one template ``x`` with ``rows``, used everywhere."""
    return {"templates": {"x": {"rows": list(rows)}}, "default": "x", "sources": {}}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (only({"name": "r", "turn": "{solution}"}), "unknown placeholder(s) ['solution']"),
        (only({"name": "r", "turn": "The answer."}), "uses neither {answer} nor {rationale}"),
        (only({"name": "a/b", "turn": "{answer}"}), "row name 'a/b' must be a plain name"),
        (only({"name": "r", "turn": "{answer}"}, {"name": "r", "turn": "{rationale}"}), "row names repeat"),
        (only(), "templates.x.rows: List should have at least 1 item"),
        ({"default": "x"}, "default: unknown template 'x'"),
        ({"colour": "red"}, "unknown key 'colour'"),
    ],
)
def test_bad_templates_file_names_the_file(tmp_path: Path, changes: dict, message: str) -> None:
    path = write_templates(tmp_path / "presentation.yaml", **changes)
    with pytest.raises(ValueError) as err:
        load_presentation(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value), str(err.value)


def test_own_templates_file_from_a_recipe(tmp_path: Path) -> None:
    path = write_templates(
        tmp_path / "mine.yaml",
        version="7",
        templates={"terse": {"rows": [{"name": "short", "turn": "{answer}."}]}},
        default="terse",
        sources={},
    )
    step = make_step("present", {"config": str(path)}, {})
    assert step.config.choose("scienceqa", "science") == "terse" and step.config.label("terse") == "terse@7"


def test_build_recipe_refuses_an_unknown_template_when_loaded(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "name: t\nsources: [{name: scienceqa}]\nsteps:\n  - step: cap\n  - step: present\n"
        "    sources: {scienceqa: reasoning_first}\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError) as err:
        load_recipe(recipe)
    text = str(err.value)
    assert text.startswith(f"{recipe}: ") and "unknown template 'reasoning_first'" in text and "\n" not in text


def test_build_recipe_wants_present_last(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "name: t\nsources: [{name: scienceqa}]\nsteps:\n  - step: present\n  - step: cap\n"
        "  - {step: group, enabled: false}\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="step 'present' must come last .*, not before cap$"):
        load_recipe(recipe)
    recipe.write_text(
        "name: t\nsources: [{name: scienceqa}]\nsteps:\n  - step: cap\n  - step: present\n"
        "  - {step: group, enabled: false}\n",
        encoding="utf-8",
    )
    assert [s.step for s in load_recipe(recipe)[0].step_specs("global")] == ["cap", "present"]
