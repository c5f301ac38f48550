"""Run an async function over a stream with bounded lookahead, yielding results in input order.

Steps are plain iterators; the teacher is async. ``ordered_map`` runs an event loop in a
background thread, keeps at most ``window`` items in flight, and hands results back in the
order the items came in, so the output is deterministic whatever order the server answers in.
Requests keep flowing while the consumer is busy with earlier results.

If an item raises one of ``drain_on`` (a budget stop), nothing new is started, the items in
flight are allowed to finish (their answers are paid for: they land in the cache) and then
the exception is raised. Any other exception, or the consumer closing the generator, cancels
what is in flight.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")
S = TypeVar("S")


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="slime-teacher-loop", daemon=True)
        self._thread.start()

    def submit(self, coroutine: Awaitable[R]) -> concurrent.futures.Future[R]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def call(self, coroutine: Awaitable[R]) -> R:
        return self.submit(coroutine).result()

    def cancel_all(self) -> None:
        """Cancel every task on the loop and wait until they have unwound."""

        async def cancel() -> None:
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.call(cancel())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


def ordered_map(
    items: Iterable[T],
    work: Callable[[S, T], Awaitable[R]],
    session: Callable[[], AbstractAsyncContextManager[S]],
    *,
    window: int,
    drain_on: tuple[type[BaseException], ...] = (),
) -> Iterator[R]:
    """``work(session, item)`` for every item, at most ``window`` at once, results in order.

    ``session()`` is entered on the loop thread before the first item and exited after the last
    (e.g. an HTTP client and a SQLite connection, which must live on that thread).
    """
    if window < 1:
        raise ValueError("window must be at least 1")
    runner = _LoopThread()
    context = session()
    pending: deque[concurrent.futures.Future[R]] = deque()
    entered = False
    try:
        state = runner.call(context.__aenter__())
        entered = True
        source = iter(items)
        exhausted = False
        while True:
            while not exhausted and len(pending) < window:
                try:
                    item = next(source)
                except StopIteration:
                    exhausted = True
                    break
                pending.append(runner.submit(work(state, item)))
            if not pending:
                return
            head = pending.popleft()
            try:
                result = head.result()
            except drain_on:
                concurrent.futures.wait(pending)
                pending.clear()
                raise
            yield result
    finally:
        if pending:
            runner.cancel_all()
        if entered:
            runner.call(context.__aexit__(None, None, None))
        runner.close()
