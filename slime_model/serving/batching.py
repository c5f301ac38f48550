"""Dynamic batching: concurrent requests wait briefly in a queue and run as one padded batch.

The worker thread takes the oldest request, waits up to `max_wait_s` (counted from that request's
arrival) for up to `max_batch - 1` more, and runs them through `run_batch` (generate_batch: one
left-padded prefill, then decoding with the KV cache). Text deltas and the final result travel
back to each request's event loop as they appear. A request whose client went away is cancelled:
skipped while queued, dropped from its batch at the next decode step.

If a batch raises (a request the checks let through but the model refuses), each of its requests
that has not streamed text yet is rerun alone, so one bad request fails only itself.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from slime_model.generation import GenerationRequest, GenerationResult

log = logging.getLogger("slime_model.serving")

RunBatch = Callable[
    [Sequence[GenerationRequest], Callable[[int, str], None], Callable[[int], bool]], list[GenerationResult]
]


class QueueFull(Exception):
    """The server has more waiting requests than it accepts (or is shutting down)."""


@dataclass
class Job:
    """One request's trip through the queue; `events` yields str deltas, then a result or an exception."""

    request: GenerationRequest
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    enqueued: float = field(default_factory=time.monotonic)
    streamed: bool = False  # text already went out: a failure can no longer be retried

    def post(self, event: str | GenerationResult | BaseException) -> None:
        """Called from the worker thread: hand an event to the request's event loop."""
        self.streamed |= isinstance(event, str)
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, event)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            pass

    def cancel(self) -> None:
        self.cancelled.set()


@dataclass
class BatchStats:
    batches: int = 0
    requests: int = 0
    largest_batch: int = 0

    def add(self, size: int) -> None:
        self.batches += 1
        self.requests += size
        self.largest_batch = max(self.largest_batch, size)

    def as_dict(self) -> dict[str, float]:
        mean = self.requests / self.batches if self.batches else 0.0
        return {
            "batches": self.batches,
            "requests": self.requests,
            "largest_batch": self.largest_batch,
            "mean_batch": mean,
        }


class BatchQueue:
    def __init__(self, run_batch: RunBatch, max_batch: int, max_wait_s: float, max_queue: int) -> None:
        self.run_batch = run_batch
        self.max_batch, self.max_wait_s, self.max_queue = max_batch, max_wait_s, max_queue
        self.stats = BatchStats()
        self._pending: deque[Job] = deque()
        self._running: list[Job] = []  # the batch being decoded
        self._condition = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name="slime-batcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float) -> None:
        """Refuse new requests, finish the queued and running ones within `timeout_s`, then cancel the rest."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            with self._condition:
                for job in [*self._pending, *self._running]:
                    job.cancel()
            self._thread.join(timeout_s)

    def submit(self, request: GenerationRequest) -> Job:
        """Queue a request from the event loop; QueueFull when the queue is full or closed."""
        job = Job(request, asyncio.get_running_loop())
        with self._condition:
            if self._stopping:
                raise QueueFull("the server is shutting down")
            if len(self._pending) >= self.max_queue:
                raise QueueFull(f"{len(self._pending)} requests are already waiting")
            self._pending.append(job)
            self._condition.notify_all()
        return job

    def load(self) -> dict[str, int]:
        with self._condition:
            return {"queued": len(self._pending), "running": len(self._running)}

    # ---- worker thread ----------------------------------------------------------------------------
    def _next_batch(self) -> list[Job] | None:
        """Block until a batch is ready; None once stopping and nothing is left."""
        with self._condition:
            while True:
                while self._pending and self._pending[0].cancelled.is_set():
                    self._pending.popleft().post(asyncio.CancelledError())
                if self._pending:
                    deadline = self._pending[0].enqueued + self.max_wait_s
                    remaining = deadline - time.monotonic()
                    if len(self._pending) >= self.max_batch or remaining <= 0 or self._stopping:
                        batch = [self._pending.popleft() for _ in range(min(self.max_batch, len(self._pending)))]
                        batch = [job for job in batch if not job.cancelled.is_set()]
                        if batch:
                            self._running = batch
                            return batch
                        continue
                    self._condition.wait(remaining)
                elif self._stopping:
                    return None
                else:
                    self._condition.wait()

    def _run(self, jobs: list[Job]) -> None:
        results = self.run_batch(
            [job.request for job in jobs],
            lambda index, text: jobs[index].post(text),
            lambda index: jobs[index].cancelled.is_set(),
        )
        for job, result in zip(jobs, results, strict=True):
            job.post(result)

    def _work(self) -> None:
        while (jobs := self._next_batch()) is not None:
            self.stats.add(len(jobs))
            try:
                self._run(jobs)
            except Exception as err:  # noqa: BLE001 - every request must get an answer
                if len(jobs) == 1:
                    log.exception("generation failed")
                    jobs[0].post(err)
                else:
                    log.warning("a batch of %d failed (%s); running its requests one by one", len(jobs), err)
                    for job in jobs:
                        if job.streamed:
                            job.post(err)
                            continue
                        try:
                            self._run([job])
                        except Exception as single:  # noqa: BLE001
                            log.exception("generation failed")
                            job.post(single)
            finally:
                with self._condition:
                    self._running = []
