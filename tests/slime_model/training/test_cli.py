"""`slime-model train` / `generate`: help with examples, one-line errors (exit 2) for user mistakes."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from slime_model.cli import app
from tests.slime_model.training.training_helpers import write_recipe

runner = CliRunner()


@pytest.mark.parametrize("command", ["train", "generate"])
def test_help_shows_an_example(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Example" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--data", "nowhere/mix.json"], "--data nowhere/mix.json not found"),
        (["train", "--report-to", "mlflow"], "--report-to 'mlflow' is not one of none, tensorboard, wandb"),
        (["generate", "--model", "nowhere", "--prompt", "hi"], "--model nowhere is not a checkpoint folder"),
    ],
)
def test_user_mistakes_are_one_line_with_exit_code_2(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_a_bad_recipe_names_the_key(tiny_mix, tmp_path):
    recipe = write_recipe(tmp_path / "bad.yaml", epochs=3)
    result = runner.invoke(app, ["train", "--data", str(tiny_mix), "--recipe", str(recipe)])
    assert result.exit_code == 2 and "epochs: unknown key 'epochs'" in result.output


def test_generate_rejects_an_unreadable_image(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "img.png").write_bytes(b"not a png")
    result = runner.invoke(
        app, ["generate", "--model", str(tmp_path), "--image", str(tmp_path / "img.png"), "--prompt", "hi"]
    )
    assert result.exit_code == 2 and "--image" in result.output
