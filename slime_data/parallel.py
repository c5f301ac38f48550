"""One way to spread independent jobs over processes, used by every data command that has ``--workers``.

Workers are *spawned*, not forked: they start clean, without the caller's threads, locks or
memory maps, and each imports only what its function needs. An executor, not a ``Pool``: a
worker that dies (the OOM killer) fails the call with ``BrokenProcessPool`` instead of hanging it.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

Job = TypeVar("Job")
Result = TypeVar("Result")


def map_in_processes(function: Callable[[Job], Result], jobs: Iterable[Job], workers: int) -> Iterator[Result]:
    """``function(job)`` for every job, yielded in job order; in ``workers`` spawned processes when > 1.

    ``function`` must be a module-level function and jobs/results picklable. With one worker (or
    one job) everything runs here, in this process, which is what tests and small inputs want.
    """
    jobs = list(jobs)
    if workers <= 1 or len(jobs) <= 1:
        yield from map(function, jobs)
        return
    chunk = max(1, len(jobs) // (workers * 8))
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=mp.get_context("spawn")) as pool:
        yield from pool.map(function, jobs, chunksize=chunk)
