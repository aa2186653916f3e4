"""Per-operation token buckets: the emulators' stand-in for a registry's API quotas (PAI publishes
its per-action quotas; TrueFoundry publishes none, so its emulator starts with none)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping


class TokenBucket:
    """`rate` tokens per second with a burst of one second's worth (at least one token)."""

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self._clock = clock
        self._capacity = max(1.0, rate)
        self._tokens = self._capacity
        self._updated = clock()

    def take(self) -> float:
        """Take one token: 0.0 when granted, otherwise the seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate


class Quotas:
    def __init__(self, rates: Mapping[str, float], clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self.configure(rates)

    def configure(self, rates: Mapping[str, float]) -> None:
        """Set some operations' rates (others keep theirs); a new rate starts with a full bucket."""
        for operation, rate in rates.items():
            if rate < 0:
                raise ValueError(f"quota for {operation} must be >= 0 (0 = unlimited), got {rate}")
        for operation, rate in rates.items():
            self._buckets[operation] = TokenBucket(float(rate), self._clock)

    def rates(self) -> dict[str, float]:
        return {operation: bucket.rate for operation, bucket in self._buckets.items()}

    def retry_after(self, operation: str) -> int | None:
        """None when the request may proceed, else whole seconds to wait (>= 1): the official SDK
        reads `Retry-After` as whole seconds and ignores 0."""
        bucket = self._buckets.get(operation)
        if bucket is None:
            return None
        wait = bucket.take()
        return None if wait == 0.0 else max(1, math.ceil(wait))
