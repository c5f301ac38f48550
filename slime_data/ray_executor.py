"""``--executor ray``: every job of a map is one Ray task (``pip install "slime[ray]"``).

A task gets the resources its function declares (``slime_data.executor.unit_of_work``) and is
submitted with paths, row ranges and small records only: jobs write their outputs and completion
markers to storage every node sees, so nothing large goes through Ray's object store and a rerun
skips what any earlier run finished. Ray retries a task only when its worker or node is lost
(``max_retries``); an exception raised by our code is not retried (``retry_exceptions=False``) and
reaches the user as one line naming the job (``TaskFailed``). Results come back in job order, at
most ``window`` tasks ahead of the one awaited, so a million jobs do not sit in the scheduler at once.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import ray
from ray.exceptions import RayError, RayTaskError, TaskCancelledError

from slime_data.executor import TaskFailed, unit_spec

Job = TypeVar("Job")
Result = TypeVar("Result")

GIB = 2**30
SYSTEM_RETRIES = 3  # a task whose worker or node dies is run again this many times


def _run_job(function: Callable[[Job], Result], cwd: str, job: Job) -> Result:
    """One job in a worker, from the driver's working directory: relative paths mean the same on every node."""
    with contextlib.suppress(OSError):  # a node without that folder: absolute paths still work
        os.chdir(cwd)
    return function(job)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


class RayExecutor:
    name = "ray"

    def __init__(self, *, max_retries: int = SYSTEM_RETRIES, owns_connection: bool = False) -> None:
        self.max_retries = max_retries
        self._owns_connection = owns_connection
        nodes = [node for node in ray.nodes() if node.get("Alive")]
        # The most memory one node offers: a declaration above it would leave a task unschedulable forever.
        self._node_memory = max((node["Resources"].get("memory", 0.0) for node in nodes), default=0.0)
        self._window = max(8, 4 * int(ray.cluster_resources().get("CPU", 1)))

    @classmethod
    def connect(cls, address: str = "auto", *, max_retries: int = SYSTEM_RETRIES) -> RayExecutor:
        """Join the cluster at ``address`` (``auto``: the one ``ray start`` runs here; ``local``: a private one).

        A Ray connection this process already holds (a notebook, a test) is used as it is and left open.
        """
        if ray.is_initialized():
            return cls(max_retries=max_retries)
        try:
            ray.init(address=address, log_to_driver=True)
        except ConnectionError as err:
            raise ValueError(
                f"no Ray cluster at --ray-address {address} ({err}); start one with `ray start --head` "
                "or use --ray-address local for a one-machine trial"
            ) from None
        return cls(max_retries=max_retries, owns_connection=True)

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._owns_connection:
            ray.shutdown()

    def _options(self, spec_memory_gib: float, num_cpus: float, label: str) -> dict[str, Any]:
        memory = spec_memory_gib * GIB
        if self._node_memory:
            memory = min(memory, self._node_memory)
        return {
            "num_cpus": num_cpus,
            "memory": int(memory),
            "max_retries": self.max_retries,
            "retry_exceptions": False,
            "name": label,  # what the dashboard lists
        }

    def map(self, function: Callable[[Job], Result], jobs: Iterable[Job]) -> Iterator[Result]:
        spec = unit_spec(function)
        remote, cwd = ray.remote(_run_job), os.getcwd()
        pending: deque[tuple[str, Any]] = deque()
        jobs = iter(jobs)

        def submit() -> None:
            for job in jobs:
                label = spec.label(function, job)
                options = self._options(spec.memory_gib, spec.num_cpus, label)
                pending.append((label, remote.options(**options).remote(function, cwd, job)))
                if len(pending) >= self._window:
                    return

        try:
            submit()
            while pending:
                label, ref = pending[0]
                result = self._get(label, ref)
                pending.popleft()
                submit()
                yield result
        finally:
            for _, ref in pending:  # a failure, or a caller that stopped early: nothing more should run
                ray.cancel(ref)

    def _get(self, label: str, ref: Any) -> Any:
        try:
            return ray.get(ref)
        except RayTaskError as err:
            cause = err.cause if isinstance(err.cause, BaseException) else err
            raise TaskFailed(f"{label} failed: {_first_line(cause)}", cause) from None
        except TaskCancelledError as err:
            raise TaskFailed(f"{label} was cancelled", err) from None
        except RayError as err:  # the worker or node died, and kept dying through max_retries runs
            raise TaskFailed(
                f"{label} failed: its Ray worker was lost ({_first_line(err)}) after {self.max_retries} retries; "
                "rerun the same command to resume from the finished units",
                err,
            ) from None
