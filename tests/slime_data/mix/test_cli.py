"""`slime-data mix`, and `inspect` / `validate` given a mix manifest: help, one-line errors, summary, plot."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from slime_data.cli.main import app
from tests.slime_data.mix.mixdata import write_recipe

runner = CliRunner()


def test_help_has_an_example() -> None:
    result = runner.invoke(app, ["mix", "--help"])
    assert result.exit_code == 0
    assert "slime-data mix --target 2M" in result.output and "--workers" in result.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--target", "2G"], "--target must be a whole number of rows like 2M"),
        (["--target", "2M", "--config", "no/such.yaml"], "mix recipe no/such.yaml not found"),
        (["--target", "400"], "--target 400 cannot be met"),
        (["--target", "10", "--broken-input"], "make it with: slime-data ingest qa_b"),
    ],
)
def test_user_mistakes_are_one_line(tmp_path: Path, mix_inputs: dict[str, Path], args: list[str], needle: str) -> None:
    inputs = {**mix_inputs, "qa_b": tmp_path / "missing"} if "--broken-input" in args else mix_inputs
    args = [a for a in args if a != "--broken-input"]
    if "--config" not in args:
        args += ["--config", str(write_recipe(tmp_path / "recipe.yaml", inputs))]
    result = runner.invoke(
        app, ["mix", *args, "--out", str(tmp_path / "out"), "--manifest", str(tmp_path / "mix.json")]
    )
    assert result.exit_code == 2, result.output
    assert needle in " ".join(result.output.split())
    assert "Traceback" not in result.output and result.output.count("error:") == 1
    assert not (tmp_path / "mix.json").exists()


def test_mix_then_inspect_and_validate(tmp_path: Path, mix_inputs: dict[str, Path]) -> None:
    manifest = tmp_path / "manifests" / "mix.json"
    recipe = write_recipe(tmp_path / "recipe.yaml", mix_inputs)
    result = runner.invoke(
        app,
        [
            "mix",
            "--config",
            str(recipe),
            "--target",
            "0.1k",
            "--out",
            str(tmp_path / "mix"),
            "--manifest",
            str(manifest),
            "--seed",
            "3",
            "--workers",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "qa_a" in result.output and "exact_duplicate" in result.output and "wrote 100 rows" in result.output

    result = runner.invoke(app, ["validate", str(manifest)])
    assert result.exit_code == 0, result.output
    assert "schema, shard files, row counts and sha256 check out" in result.output

    result = runner.invoke(app, ["inspect", str(manifest)])
    assert result.exit_code == 0, result.output
    assert "qa_a" in result.output and "qa_b" in result.output and "composition plot" in result.output
    with Image.open(manifest.with_suffix(".png")) as plot:
        assert plot.width > 300

    next((tmp_path / "mix" / "sft").glob("data-*.arrow")).write_bytes(b"not arrow")
    result = runner.invoke(app, ["validate", str(manifest)])
    assert result.exit_code == 1 and "bytes, manifest says" in result.output
