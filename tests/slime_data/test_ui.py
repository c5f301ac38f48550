"""What commands print when they stop: unwrapped, unmangled messages; user mistakes as one line, bugs
with their traceback."""

from __future__ import annotations

from pathlib import Path

import pyarrow.ipc
import pytest
import typer
from typer.testing import CliRunner

from slime_data.cli.main import app
from slime_data.shards import write_shard_set
from slime_data.ui import UserError, console, user_errors


@pytest.fixture
def narrow_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")


def long_folder(tmp_path: Path) -> Path:
    folder = tmp_path / ("a-rather-long-folder-name-" * 4) / "shards"
    folder.parent.mkdir(parents=True)
    return folder


def one_command_app(command) -> typer.Typer:
    single = typer.Typer()
    single.command()(user_errors(command))
    return single


def test_messages_are_never_wrapped_whatever_the_width_and_path_length(tmp_path, narrow_terminal):
    folder = long_folder(tmp_path)
    write_shard_set(folder, [], command="test")
    result = CliRunner().invoke(app, ["validate", str(folder)])
    assert result.exit_code == 0, result.output
    assert f"✓ {folder}: schema, row counts and sha256 check out" in result.output.splitlines()


def test_markup_in_user_data_and_library_text_is_printed_as_is(tmp_path, narrow_terminal):
    recipe = long_folder(tmp_path).with_suffix(".yaml")
    recipe.write_text("name: x\nsources: [oops\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["build", "x", "--config", str(recipe)])
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert f"error: {recipe} is not valid YAML: while parsing a flow sequence" in lines
    assert f'  in "{recipe}", line 2, column 10:' in lines  # the real file, not "<unicode string>"
    assert "    sources: [oops" in lines and "             ^" in lines  # the line and its caret
    assert "expected ',' or ']', but got '<stream end>'" in lines


def test_a_user_error_is_one_line_with_exit_2():
    def command() -> None:
        raise UserError("no recipe pipelines/[nope].yaml")

    result = CliRunner().invoke(one_command_app(command), [])
    assert result.exit_code == 2
    assert result.output == "error: no recipe pipelines/[nope].yaml\n"


def test_our_own_validation_error_is_one_line(tmp_path):
    from slime_data.recipes import read_yaml_mapping

    def command() -> None:
        read_yaml_mapping(tmp_path / "missing.yaml", "recipe")

    result = CliRunner().invoke(one_command_app(command), [])
    assert result.exit_code == 2
    assert result.output == f"error: recipe {tmp_path / 'missing.yaml'} not found\n"


@pytest.mark.parametrize("library", ["pyarrow", "torch"])
def test_a_value_error_inside_a_library_is_a_bug_with_its_traceback(tmp_path, library):
    def command() -> None:
        if library == "pyarrow":
            pyarrow.ipc.open_file(b"not an arrow file")  # pyarrow.ArrowInvalid, a ValueError
        else:
            import torch

            torch.nn.functional.pad(torch.zeros(2), (1, 1), mode="nonsense")  # ValueError inside torch

    result = CliRunner().invoke(one_command_app(command), [])
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.output
    assert "this is a bug in slime, not a mistake in your input" in result.output


def test_console_width_is_fixed_when_not_a_terminal(narrow_terminal):
    assert not console.is_terminal and console.width > 200


def test_a_validation_error_inside_a_library_is_a_bug():
    def inside_a_library() -> None:  # the openai client validating a malformed server reply
        from openai.types.chat import ChatCompletion

        ChatCompletion.model_validate({"id": "x", "choices": "not a list"})

    result = CliRunner().invoke(one_command_app(inside_a_library), [])
    assert result.exit_code == 1 and "this is a bug in slime" in result.output
