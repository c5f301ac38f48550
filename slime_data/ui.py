"""Console plumbing shared by every command (CLI and library alike): one-line errors for user mistakes, a rich console, progress bars."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)
DEFAULT_WORKERS = min(4, os.cpu_count() or 1)  # process-parallel commands; output never depends on it
F = TypeVar("F", bound=Callable[..., Any])


class UserError(Exception):
    """A mistake in the user's input (paths, names, recipes): shown as one line, exit code 2."""


def user_errors(fn: F) -> F:
    """Turn UserError (and missing files / bad values raised by our code) into one clean line."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (UserError, FileNotFoundError, ValueError) as err:
            console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def progress(transient: bool = False) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
    )
