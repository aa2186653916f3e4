"""When work is due: one earliest-first queue of keys, for any number of objects.

Nothing wakes for a key that is not due. Scheduling a key that is already queued keeps the
earlier of the two times (a watch event must never be delayed by a pending resync, and a resync
must never postpone a retry that is due sooner); `reschedule` replaces it outright. Entries are
never removed from the heap in place: a superseded entry stays until it surfaces and is skipped,
which keeps every operation O(log n).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class DueQueue(Generic[K]):
    """Keys with a due time; `pop_due(now)` hands out those due, earliest first."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K]] = []
        self._due: dict[K, tuple[float, int]] = {}
        self._seq = itertools.count()  # FIFO among equal due times

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, key: object) -> bool:
        return key in self._due

    def due_at(self, key: K) -> float | None:
        entry = self._due.get(key)
        return entry[0] if entry else None

    def schedule(self, key: K, at: float) -> bool:
        """Due at `at`, or earlier if it already was. True when the due time moved."""
        current = self._due.get(key)
        if current is not None and current[0] <= at:
            return False
        self._push(key, at)
        return True

    def reschedule(self, key: K, at: float) -> None:
        """Due at exactly `at`, whatever it was before."""
        self._push(key, at)

    def cancel(self, key: K) -> None:
        self._due.pop(key, None)

    def next_due(self) -> float | None:
        """The earliest due time, or None when nothing is queued."""
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float, limit: int | None = None) -> list[K]:
        """Remove and return the keys due at or before `now`, earliest first (at most `limit`)."""
        out: list[K] = []
        while self._heap and (limit is None or len(out) < limit):
            self._drop_stale()
            if not self._heap or self._heap[0][0] > now:
                break
            _, _, key = heapq.heappop(self._heap)
            del self._due[key]
            out.append(key)
        return out

    def _push(self, key: K, at: float) -> None:
        seq = next(self._seq)
        self._due[key] = (at, seq)
        heapq.heappush(self._heap, (at, seq, key))
        if len(self._heap) > 64 and len(self._heap) > 4 * len(self._due):
            self._compact()

    def _drop_stale(self) -> None:
        while self._heap:
            at, seq, key = self._heap[0]
            if self._due.get(key) == (at, seq):
                return
            heapq.heappop(self._heap)

    def _compact(self) -> None:
        # Superseded entries would otherwise pile up when one key is rescheduled over and over
        # (a retrying object, a chatty watch); memory stays O(keys).
        self._heap = [(at, seq, key) for key, (at, seq) in self._due.items()]
        heapq.heapify(self._heap)
