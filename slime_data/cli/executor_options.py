"""``--executor local|ray`` and ``--ray-address``: the options every scale-out command shares.

A command takes ``executor: ExecutorOption = ExecutorKind.local`` and ``ray_address:
RayAddressOption = None`` and is decorated with ``@runs_on_executor`` (under ``@user_errors``):
its whole run then happens inside the chosen executor, and a job that failed on a worker is
reported as one line naming the job.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import Enum
from typing import Annotated, Any, TypeVar

import typer

from slime_data.executor import TaskFailed, open_executor
from slime_data.ui import UserError

F = TypeVar("F", bound=Callable[..., Any])


class ExecutorKind(str, Enum):
    local = "local"
    ray = "ray"


ExecutorOption = Annotated[
    ExecutorKind,
    typer.Option(
        "--executor",
        help="local: processes on this machine (--workers). ray: one Ray task per unit of work on a Ray cluster "
        "(needs the ray extra); outputs must be on a filesystem every node sees. The output is the same.",
    ),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="With --executor ray: the cluster (default auto: the one `ray start` runs here; HOST:6379; "
        "local: a private one-machine Ray).",
    ),
]


def runs_on_executor(fn: F) -> F:
    """Run the command inside its ``--executor``; a failed job becomes one line (exit 2)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kind = kwargs.get("executor", ExecutorKind.local)
        try:
            with open_executor(ExecutorKind(kind).value, kwargs.get("ray_address")):
                return fn(*args, **kwargs)
        except TaskFailed as err:
            raise UserError(str(err)) from None

    return wrapper  # type: ignore[return-value]
