"""`slime-model serve`: help with an example, one-line errors (exit 2) for user mistakes."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from slime_model.cli import app

runner = CliRunner()


def test_help_shows_an_example():
    result = runner.invoke(app, ["serve", "--help"])
    assert result.exit_code == 0 and "Example" in result.output and "--allow-remote-images" in result.output


def test_user_mistakes_are_one_line_with_exit_code_2(tiny_checkpoint: Path, tmp_path: Path):
    missing = runner.invoke(app, ["serve", "--model", "nowhere", "--allow-remote-images"])
    assert missing.exit_code == 2 and "--model nowhere is not a checkpoint folder" in missing.output
    no_dir = runner.invoke(app, ["serve", "--model", str(tiny_checkpoint), "--allow-image-dir", str(tmp_path / "x")])
    assert no_dir.exit_code == 2 and "is not a folder" in no_dir.output
    assert "Traceback" not in missing.output + no_dir.output
