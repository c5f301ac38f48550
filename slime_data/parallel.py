"""One way to spread independent jobs over processes, used by every data command that has ``--workers``.

Workers are *spawned*, not forked: they start clean, without the caller's threads, locks or
memory maps, and each imports only what its function needs. An executor, not a ``Pool``: a
worker that dies (the OOM killer) fails the call with ``BrokenProcessPool`` instead of hanging it.
On Ctrl-C (or any error) the workers are killed at once: every job is a resumable unit, and the
rerun redoes only unfinished ones.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
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
    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=mp.get_context("spawn"))
    finished = False
    try:
        with _workers_born_ignoring_ctrl_c():
            results = pool.map(function, jobs, chunksize=chunk)  # submits every job, starting the workers
        yield from results
        finished = True
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:  # Ctrl-C, an error, or the caller stopped reading: no job is worth waiting for
            _stop_now(pool)


@contextmanager
def _workers_born_ignoring_ctrl_c() -> Iterator[None]:
    """Processes started inside ignore SIGINT from birth (an ignored signal stays ignored across exec,
    and Python then installs no KeyboardInterrupt handler). A terminal's Ctrl-C reaches the whole
    process group: the parent alone decides, and stops the workers, instead of each worker dying
    mid-import with a traceback or carrying on with its queue. A Ctrl-C in these few milliseconds
    is lost; only the main thread may change signal handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)  # None: set outside Python


def _stop_now(pool: ProcessPoolExecutor) -> None:
    """Kill the workers and drop the queued jobs, without waiting for any of them.

    ``shutdown(cancel_futures=True)`` alone still waits for every job already handed to a worker
    (all of them, for ``map``), and the interpreter joins the workers at exit.
    """
    workers = list((pool._processes or {}).values())  # no public way to reach them before Python 3.14
    for process in workers:
        process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        process.join(timeout=5)
