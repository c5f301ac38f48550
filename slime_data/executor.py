"""Where the data commands' independent jobs run: processes on this machine, or tasks on a Ray cluster.

Every parallel map of the data pipelines (build and ingest units, mix shard jobs, dedup signatures,
decontamination scans, synthetic renders) goes through ``slime_data.parallel.map_in_processes``,
which hands it to the *active* executor:

- ``LocalExecutor(workers)`` (the default): spawned processes on this machine, exactly as before.
- ``RayExecutor`` (``--executor ray``, in ``slime_data.ray_executor``): one Ray task per job.

A command opens its executor with ``use_executor(...)``; library code never needs to know which
one runs it. Jobs are the same either way — paths, row ranges and small records, never image
bytes — and each job writes its own output and completion marker, so outputs do not depend on
the executor, and a rerun skips finished jobs wherever they ran.

A job function declares what one job needs with ``@unit_of_work(num_cpus=..., memory_gib=...,
describe=...)``: Ray schedules by it, and a failure names the job by ``describe(job)``.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

Job = TypeVar("Job")
Result = TypeVar("Result")


@dataclass(frozen=True)
class UnitOfWork:
    """What one job of a function needs (for a scheduler) and how to name it (for errors)."""

    num_cpus: float = 1.0
    memory_gib: float = 1.0
    describe: Callable[[Any], str] | None = None

    def label(self, function: Callable[..., Any], job: Any) -> str:
        return self.describe(job) if self.describe is not None else f"{function.__name__} job"


DEFAULT_UNIT = UnitOfWork()


def unit_of_work(
    *, num_cpus: float = 1.0, memory_gib: float = 1.0, describe: Callable[[Any], str] | None = None
) -> Callable[[Callable[..., Result]], Callable[..., Result]]:
    """Declare a job function's resources and job names; the function itself is unchanged (still picklable by name)."""

    def mark(function: Callable[..., Result]) -> Callable[..., Result]:
        function.__slime_unit__ = UnitOfWork(num_cpus, memory_gib, describe)  # type: ignore[attr-defined]
        return function

    return mark


def unit_spec(function: Callable[..., Any]) -> UnitOfWork:
    return getattr(function, "__slime_unit__", DEFAULT_UNIT)


class TaskFailed(RuntimeError):
    """A job failed on a worker: one line naming the job; the worker's exception is ``cause``."""

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause


class Executor(Protocol):
    name: str

    def map(self, function: Callable[[Job], Result], jobs: Iterable[Job]) -> Iterator[Result]:
        """``function(job)`` for every job, yielded in job order."""
        ...


class LocalExecutor:
    """Spawned processes on this machine, ``workers`` at most; with one worker (or job), this process.

    Workers are *spawned*, not forked: they start clean, without the caller's threads, locks or
    memory maps, and each imports only what its function needs. An executor, not a ``Pool``: a
    worker that dies (the OOM killer) fails the call with ``BrokenProcessPool`` instead of hanging it.
    On Ctrl-C (or any error) the workers are killed at once: every job is a resumable unit, and the
    rerun redoes only unfinished ones.
    """

    name = "local"

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers

    def map(self, function: Callable[[Job], Result], jobs: Iterable[Job]) -> Iterator[Result]:
        jobs = list(jobs)
        if self.workers <= 1 or len(jobs) <= 1:
            yield from map(function, jobs)
            return
        chunk = max(1, len(jobs) // (self.workers * 8))
        pool = ProcessPoolExecutor(max_workers=min(self.workers, len(jobs)), mp_context=mp.get_context("spawn"))
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


@contextlib.contextmanager
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


_ACTIVE: list[Executor] = []  # the executors commands opened, innermost last


@contextlib.contextmanager
def use_executor(executor: Executor) -> Iterator[Executor]:
    """Run every map inside the block on ``executor`` (a command opens it once, around its whole run)."""
    _ACTIVE.append(executor)
    try:
        yield executor
    finally:
        _ACTIVE.remove(executor)


def active_executor(workers: int = 1) -> Executor:
    """The executor a command opened, else processes on this machine (``workers`` of them)."""
    return _ACTIVE[-1] if _ACTIVE else LocalExecutor(workers)


def running_on_ray() -> bool:
    return active_executor().name == "ray"


def open_executor(kind: str, ray_address: str | None = None, **ray_options: Any) -> contextlib.AbstractContextManager:
    """The context for ``--executor KIND``: nothing to open for ``local``; for ``ray``, connect and activate."""
    if kind == "local":
        if ray_address is not None:
            raise ValueError("--ray-address needs --executor ray")
        return contextlib.nullcontext()
    if kind == "ray":
        return _on_ray(ray_address or "auto", ray_options)
    raise ValueError(f"unknown executor {kind!r}: use local or ray")


@contextlib.contextmanager
def _on_ray(address: str, options: dict[str, Any]) -> Iterator[Executor]:
    from slime_data.ray_executor import RayExecutor

    with RayExecutor.connect(address, **options) as executor, use_executor(executor):
        yield executor
