"""Console plumbing shared by every command (CLI and library alike): one-line errors for user mistakes,
a rich console, progress bars, and what one Ctrl-C does.

The console never parses markup (messages quote paths, recipe text and library errors, whose ``[``
would be eaten) and never wraps a message: styled parts are passed as ``Text``, see ``styled``.
When stderr is not a terminal (a pipe, a log file, a test) the width is fixed and wide, so what
scripts read does not depend on the terminal's width or on the length of a path.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import sysconfig
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pydantic
import typer
from pydantic import ValidationError
from rich.console import Console, ConsoleDimensions
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from slime_data.recipes import validation_message

DEFAULT_WORKERS = min(4, os.cpu_count() or 1)  # process-parallel commands; output never depends on it
PIPED_WIDTH = 1000  # columns when not writing to a terminal: tables at their natural width, nothing wrapped
INTERRUPTED = "interrupted; rerun the same command to resume"
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a Ctrl-C
# Errors raised in these folders (or in the standard library called from them) are about the
# user's input; raised anywhere else (torch, pyarrow, DeepSpeed) they are bugs.
REPO = Path(__file__).resolve().parent.parent
OUR_PACKAGES = tuple(f"{REPO / name}{os.sep}" for name in ("slime_data", "slime_model"))
STDLIB = sysconfig.get_paths()["stdlib"] + os.sep
PYDANTIC = os.path.dirname(pydantic.__file__) + os.sep
F = TypeVar("F", bound=Callable[..., Any])


class _Console(Console):
    """A rich console whose width is fixed when it does not write to a terminal."""

    @property
    def size(self) -> ConsoleDimensions:
        if not self.is_terminal:
            return ConsoleDimensions(PIPED_WIDTH, 25)
        return Console.size.fget(self)  # type: ignore[attr-defined]

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


console = _Console(stderr=True, markup=False, highlight=False, soft_wrap=True)


class UserError(Exception):
    """A mistake in the user's input (paths, names, recipes): shown as one line, exit code 2."""


def styled(*parts: str | tuple[str, str]) -> Text:
    """A message with styled parts, none of them parsed as markup: ``styled(("error:", "bold red"), " ", text)``."""
    return Text.assemble(*parts)


def is_user_input_error(err: BaseException) -> bool:
    """UserError; or a ValueError/FileNotFoundError (pydantic's ValidationError among them) that slime's
    own code raised: the innermost frame outside the standard library and pydantic (which validates
    our typed configs) is ours. Raised inside torch, pyarrow, DeepSpeed or the openai client, it is not."""
    if isinstance(err, UserError):
        return True
    if not isinstance(err, (ValueError, FileNotFoundError)):
        return False
    frames = [frame.filename for frame in traceback.extract_tb(err.__traceback__)]
    raisers = [name for name in frames if not _in_stdlib(name) and not name.startswith(PYDANTIC)]
    return bool(raisers) and raisers[-1].startswith(OUR_PACKAGES)


def _in_stdlib(filename: str) -> bool:
    return filename.startswith("<") or (filename.startswith(STDLIB) and "site-packages" not in filename)


def _exit_interrupted() -> NoReturn:
    """Say so and leave at once. The stack has unwound (every ``finally`` ran: worker pools killed,
    partial files discarded); what ``os._exit`` skips is the interpreter's teardown, seconds of garbage
    collection after training, which holds nothing a rerun needs (outputs are written atomically: a
    kill -9 resumes byte-identically). A second Ctrl-C while unwinding lands here too."""
    console.print(styled((INTERRUPTED, "yellow")))
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    logging.shutdown()
    os._exit(EXIT_INTERRUPTED)


def user_errors(fn: F) -> F:
    """What a command shows when it does not finish: a user mistake as one line (exit 2); a Ctrl-C as
    one line (exit 130, at once); anything else as a traceback marked as a bug in slime (exit 1)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):  # a command's own way out
            raise
        except KeyboardInterrupt:
            _exit_interrupted()
        except Exception as err:
            if is_user_input_error(err):
                message = validation_message(err) if isinstance(err, ValidationError) else str(err)
                console.print(styled(("error:", "bold red"), " ", message))
                raise typer.Exit(2) from None
            traceback.print_exception(err, file=sys.stderr)
            console.print(
                styled(
                    ("error:", "bold red"),
                    f" this is a bug in slime, not a mistake in your input "
                    f"({type(err).__name__} above); please report it with the traceback",
                )
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def progress(transient: bool = False) -> Progress:
    return Progress(
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
    )
