"""One way to spread independent jobs, used by every data command that has ``--workers``.

The jobs run on the active executor (``slime_data.executor``): spawned processes on this machine
by default (killed at once on Ctrl-C), Ray tasks under ``--executor ray``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from slime_data.executor import active_executor

Job = TypeVar("Job")
Result = TypeVar("Result")


def map_in_processes(function: Callable[[Job], Result], jobs: Iterable[Job], workers: int) -> Iterator[Result]:
    """``function(job)`` for every job, yielded in job order; in ``workers`` spawned processes when > 1.

    ``function`` must be a module-level function and jobs/results picklable. With one worker (or
    one job) everything runs here, in this process, which is what tests and small inputs want.
    A command that opened another executor (Ray) gets the jobs run there instead.
    """
    return active_executor(workers).map(function, jobs)
