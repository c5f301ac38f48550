"""What `slime-data` says when a name or a source is wrong, and what `sources` lists."""

from __future__ import annotations

import textwrap

from typer.testing import CliRunner

from slime_data.build.recipe import load_recipe
from slime_data.cli.main import app
from slime_data.paths import PIPELINES_DIR
from slime_data.sources import REGISTRY

runner = CliRunner()


def test_a_misspelt_build_suggests_build_recipes_only():
    result = runner.invoke(app, ["build", "sophisticatd"])
    assert result.exit_code == 2
    assert "did you mean sophisticated?" in result.output
    for not_a_build_recipe in ("mix-2m", "source_prompts", "teacher"):
        assert not_a_build_recipe not in result.output


def test_an_empty_root_lists_every_missing_source_before_any_work(tmp_path):
    empty, out = tmp_path / "empty", tmp_path / "out"
    empty.mkdir()
    result = runner.invoke(app, ["build", "sophisticated", "--root", str(empty), "--out", str(out)])
    assert result.exit_code == 2
    recipe, _ = load_recipe(PIPELINES_DIR / "sophisticated.yaml")
    required = [source.name for source in recipe.sources if not source.optional]
    assert f"error: {len(required)} sources are missing:" in result.output
    for name in required:
        assert f"  source {name!r}: {empty / name} does not exist" in result.output.splitlines()
    assert "per-record steps" not in result.output and not out.exists()


def test_sources_lists_every_layout_unwrapped_on_stdout():
    result = runner.invoke(app, ["sources"])
    assert result.exit_code == 0 and result.stderr == ""
    for name, adapter in REGISTRY.items():
        assert f"{name}  (default splits: " in result.stdout
        for line in textwrap.dedent(adapter.layout).strip("\n").splitlines():
            assert f"    {line}".rstrip() in result.stdout.splitlines()


def test_sources_shows_one_source_or_suggests_a_name():
    one = runner.invoke(app, ["sources", "ai2d"])
    assert one.exit_code == 0 and one.stdout.startswith("ai2d  (default splits: ")
    assert not any(f"{name}  (default splits" in one.stdout for name in REGISTRY if name != "ai2d")
    misspelt = runner.invoke(app, ["sources", "ai2x"])
    assert misspelt.exit_code == 2 and "did you mean ai2d?" in misspelt.output
