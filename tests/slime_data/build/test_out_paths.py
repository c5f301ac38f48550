"""`build --out X` writes only X and, beside it, the inputs the recipe generates: nothing in the working directory."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from slime_data.build.recipe import load_recipe
from slime_data.cli.main import app
from slime_data.paths import PIPELINES_DIR

MINI = {  # the demo's shape (synthetic source, its caption set as a companion) at a few images
    "name": "mini",
    "chunk_size": 8,
    "synth": {"out": "{data}/.synth", "n": 4, "captions": 2},
    "companions": [{"source": "llava_pretrain", "root": "{data}/.synth", "out": "{data}/synth_captions"}],
    "sources": [{"name": "synth", "root": "{data}/.synth"}],
    "steps": [{"step": "load_image"}, {"step": "exact_dedup"}],
}


def files_under(folder: Path) -> list[Path]:
    return sorted(p.relative_to(folder) for p in folder.rglob("*"))


def test_build_with_out_writes_nothing_in_the_working_directory(tmp_path, monkeypatch):
    cwd, elsewhere = tmp_path / "cwd", tmp_path / "elsewhere"
    cwd.mkdir()
    recipe = tmp_path / "mini.yaml"
    recipe.write_text(yaml.safe_dump(MINI))
    monkeypatch.chdir(cwd)
    args = ["build", "mini", "--config", str(recipe), "--out", str(elsewhere / "mini"), "--workers", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert files_under(cwd) == []
    assert sorted(p.name for p in elsewhere.iterdir()) == [".synth", "mini", "synth_captions"]
    assert all((elsewhere / name / "manifest.json").is_file() for name in ("mini", "synth_captions"))


def test_the_demo_recipe_generates_its_inputs_beside_the_output():
    demo, _ = load_recipe(PIPELINES_DIR / "sophisticated-demo.yaml")
    generated = [demo.synth.out, *(c.root for c in demo.companions), *(c.out for c in demo.companions)]
    generated += [s.root for s in demo.sources if s.name == "synth"]
    assert all(path.startswith("{data}/") for path in generated), generated
