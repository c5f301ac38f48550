"""Token buckets for requests per minute and tokens per minute.

Each bucket refills continuously at ``per_minute / 60`` per second and holds at most one
second's worth (at least one unit), so a limit of 600 RPM means 10 requests per second, never a
burst of 600 — providers enforce per-minute limits over shorter windows too. Waiters are served
first come, first served. A request's tokens are estimated before it is sent and settled with
the real usage afterwards (``settle``), which may leave the bucket in debt.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute <= 0:
            raise ValueError("a rate limit must be positive")
        self.rate = per_minute / 60.0  # units per second
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self._clock = clock
        self._updated = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._updated) * self.rate)
        self._updated = now

    async def take(self, amount: float = 1.0) -> None:
        """Wait until ``amount`` units (capped at the capacity) are available, then take them."""
        amount = min(amount, self.capacity)
        async with self._lock:  # FIFO: the lock queues waiters in arrival order
            self._refill()
            while self.level < amount:
                await asyncio.sleep((amount - self.level) / self.rate)
                self._refill()
            self.level -= amount

    def settle(self, estimated: float, actual: float) -> None:
        """Correct an earlier ``take(estimated)`` once the real amount is known."""
        self._refill()
        self.level = min(self.capacity, self.level + min(estimated, self.capacity) - actual)


class RateLimiter:
    """Requests-per-minute and tokens-per-minute buckets together; either may be off (None)."""

    def __init__(self, rpm: float | None, tpm: float | None) -> None:
        self.requests = TokenBucket(rpm) if rpm else None
        self.tokens = TokenBucket(tpm) if tpm else None

    async def acquire(self, estimated_tokens: int) -> None:
        if self.requests is not None:
            await self.requests.take(1)
        if self.tokens is not None:
            await self.tokens.take(estimated_tokens)

    def settle(self, estimated_tokens: int, actual_tokens: int) -> None:
        if self.tokens is not None:
            self.tokens.settle(estimated_tokens, actual_tokens)
