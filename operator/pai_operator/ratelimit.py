"""Client-side rate limits per operation family, so a busy operator stays inside a registry's
quotas (every backend client holds one limiter per host it talks to).

Being throttled costs a round trip and a back-off, while waiting here costs only the wait. The
time spent waiting is reported through `on_wait` so the operator can export it as a metric.
Each client picks its own rates (PAI publishes its quotas; see each client's config).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
WaitHook = Callable[[str, float], None]


class OperationFamily(StrEnum):
    READ = "read"
    WRITE = "write"


def family_of(operation: str) -> OperationFamily:
    """Get*/List* are reads; everything else (Create, Update, Apply, Delete, labels, tags) is a
    write. Every client names its operations in this style (PAI's action names, TrueFoundry's
    operations named after them), so one rule serves both."""
    return OperationFamily.READ if operation.startswith(("Get", "List")) else OperationFamily.WRITE


class TokenBucket:
    """`rate` tokens per second, holding at most `burst`.

    Callers reserve a token immediately (the balance may go negative) and then sleep until it is
    theirs. Reserving before sleeping keeps the order fair (first come, first served) without a
    lock held across an await.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        if self.burst < 1:
            raise ValueError("burst must be at least 1")
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._updated = clock()

    async def acquire(self) -> float:
        """Take one token, waiting if needed; return the seconds waited."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        self._tokens -= 1
        if self._tokens >= 0:
            return 0.0
        wait = -self._tokens / self.rate
        try:
            await self._sleep(wait)
        except asyncio.CancelledError:
            # The caller gave up: hand its reservation back to those behind it.
            self._tokens += 1
            raise
        return wait


class RateLimiter:
    """One bucket per operation family; `None` as a rate means that family is not limited."""

    def __init__(
        self,
        read_rate: float | None,
        write_rate: float | None,
        *,
        read_burst: float | None = None,
        write_burst: float | None = None,
        on_wait: WaitHook | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._buckets: dict[OperationFamily, TokenBucket | None] = {
            OperationFamily.READ: _bucket(read_rate, read_burst, clock, sleep),
            OperationFamily.WRITE: _bucket(write_rate, write_burst, clock, sleep),
        }
        self._on_wait = on_wait
        self.waited_seconds: dict[OperationFamily, float] = dict.fromkeys(OperationFamily, 0.0)

    async def acquire(self, operation: str) -> float:
        family = family_of(operation)
        bucket = self._buckets[family]
        if bucket is None:
            return 0.0
        waited = await bucket.acquire()
        if waited > 0:
            self.waited_seconds[family] += waited
            if self._on_wait is not None:
                self._on_wait(family.value, waited)
        return waited


def _bucket(rate: float | None, burst: float | None, clock: Clock, sleep: Sleep) -> TokenBucket | None:
    return None if rate is None else TokenBucket(rate, burst, clock=clock, sleep=sleep)
