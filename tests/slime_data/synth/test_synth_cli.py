"""`slime-data synth`: help with an example, a summary table, one-line errors with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from slime_data.cli import synth as synth_cli


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    synth_cli.register(app)
    app.command("noop", hidden=True)(lambda: None)  # two commands keep `synth` a subcommand
    return app


def run(app: typer.Typer, *args: str):
    return CliRunner().invoke(app, ["synth", *args])


def test_help_has_an_example(app: typer.Typer) -> None:
    result = run(app, "--help")
    assert result.exit_code == 0 and "Example: slime-data synth --out" in result.output


def test_writes_the_set_and_prints_a_summary(app: typer.Typer, tmp_path: Path) -> None:
    result = run(
        app,
        "--out",
        str(tmp_path / "set"),
        "--n",
        "3",
        "--kinds",
        "geometry,table",
        "--captions",
        "1",
        "--workers",
        "1",
    )
    assert result.exit_code == 0, result.output
    assert "geometry" in result.output and "captions" in result.output and "wrote 3 images" in result.output
    assert sorted(p.name for p in (tmp_path / "set" / "images").iterdir()) == ["geometry", "table"]
    assert (tmp_path / "set" / "LLaVA-Pretrain" / "blip_laion_cc_sbu_558k.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kinds", "chart,maps"], "unknown kind maps; choose from chart, table, document, geometry"),
        (["--kinds", "chart,chart"], "lists a kind twice"),
    ],
)
def test_user_mistakes_are_one_line(app: typer.Typer, tmp_path: Path, args: list[str], message: str) -> None:
    result = run(app, "--out", str(tmp_path / "set"), "--n", "1", *args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "set").exists()


def test_a_foreign_folder_is_refused(app: typer.Typer, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = run(app, "--out", str(tmp_path), "--n", "1")
    assert result.exit_code == 2 and "holds no earlier synth output" in result.output
    assert "Traceback" not in result.output
