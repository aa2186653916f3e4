"""What keeps a bulk deletion in Kubernetes from wiping a registry: the CRD check and the breaker.

Kubernetes deletes objects in bulk on behalf of people who did not mean "delete my models": an
uninstall deletes the CRD (and with it every object), a namespace deletion, an Argo CD cascade or
a wrong label selector deletes hundreds of objects in seconds. Each object's finalizer would
delete its remote version. Two guards, both registry-neutral (the reconciler asks them before a
deletion pass calls the registry):

- `CrdState`: an object whose CRD is itself being deleted is released without touching the
  registry (ownership marks kept: a reinstall or an import takes the versions back). The answer
  must be fresh: `terminating(not_before=t)` answers from a CRD read that started at or after
  `t`. The API server marks the CRD terminating before it deletes a single object, so a read
  started after the deletion pass began sees it; concurrent passes share one read.
- `DeletionBreaker`: more remote deletions requested within a window than
  max(count, fraction x tracked objects) trips it; every further remote deletion waits
  (`DeletionHeld`) until a person confirms the batch (an annotation on the operator's Lease,
  `Confirmations`). Deletions below the threshold are never slowed. Tripped, it stays tripped:
  a breaker that let the held deletions trickle through once the window moved on would still
  wipe the registry, only more slowly.

No kopf and no Kubernetes client here: `kube.py` reads the CRD and the Lease.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from pai_operator import metrics

log = logging.getLogger(__name__)

CONFIRMATION_POLL: float = 3.0
"""Seconds between two reads of the confirmation while deletions are held (one read however many
objects wait)."""


class CrdReadError(Exception):
    """The CRD could not be read: whether it is being deleted is unknown."""


class CrdState(Protocol):
    async def terminating(self, *, not_before: float) -> bool:
        """Whether the resource's CRD is being deleted (or gone), from a read started at or after
        `not_before` (time.monotonic()). Raises CrdReadError when that cannot be told."""
        ...


class SharedFreshRead:
    """One read shared by every caller that can use it: a caller accepts a read that started at
    or after its `not_before`; otherwise it waits for the next one. A burst of N callers costs at
    most two reads (the one in flight when they arrive, and one more)."""

    def __init__(
        self, read: Callable[[], Awaitable[bool]], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._read = read
        self._clock = clock
        self._last: tuple[float, bool] | None = None  # (started at, answer) of the last good read
        self._pending: tuple[float, asyncio.Future[bool]] | None = None

    async def get(self, not_before: float) -> bool:
        while True:
            if self._last is not None and self._last[0] >= not_before:
                return self._last[1]
            pending = self._pending
            if pending is None or pending[0] < not_before:
                if pending is not None:
                    # Too old for this caller: let it finish, then read again.
                    with contextlib.suppress(Exception):
                        await asyncio.shield(pending[1])
                    continue
                started = self._clock()
                future = asyncio.ensure_future(self._run(started))
                pending = self._pending = (started, future)
            return await asyncio.shield(pending[1])

    async def _run(self, started: float) -> bool:
        try:
            answer = await self._read()
            if self._last is None or self._last[0] <= started:
                self._last = (started, answer)
            return answer
        finally:
            if self._pending is not None and self._pending[0] == started:
                self._pending = None


class Confirmations(Protocol):
    async def confirmed_batch(self) -> str | None:
        """The batch a person confirmed last (the annotation's value), None when none."""
        ...


@dataclass(frozen=True)
class Admission:
    admitted: bool
    batch: str = ""
    requested: int = 0  # remote deletions admitted within the window when this one was held
    limit: int = 0
    first_hold: bool = False  # this object was not held before (post the Event once)


class DeletionBreaker:
    """Counts remote deletions (one per object, however often its deletion is retried) in a
    sliding window; past the limit it holds every further one until the batch is confirmed."""

    def __init__(
        self,
        *,
        registry: str,
        threshold: int,
        fraction: float,
        window: float,
        tracked: Callable[[], int],
        confirmations: Confirmations,
        how_to_confirm: Callable[[str], str],
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        poll: float = CONFIRMATION_POLL,
    ) -> None:
        self.registry = registry
        self.threshold = threshold
        self.fraction = fraction
        self.window = window
        self._tracked = tracked
        self._confirmations = confirmations
        self.how_to_confirm = how_to_confirm
        self._clock = clock
        self._wall = wall
        self._poll = poll
        self._recent: collections.deque[float] = collections.deque()  # admission times
        self._peak = 0  # the most objects tracked within the window (deleted ones leave the count)
        self._admitted: set[str] = set()  # UIDs whose remote deletion may go on (retries too)
        self._held: set[str] = set()
        self.batch: str | None = None  # set while tripped
        self._released = asyncio.Event()
        self._check: SharedFreshRead | None = None
        self._checked_at = -math.inf
        self._publish()

    @property
    def enabled(self) -> bool:
        return self.threshold > 0

    @property
    def held(self) -> int:
        return len(self._held)

    def limit(self) -> int:
        return max(self.threshold, math.floor(self.fraction * self._peak))

    def admit(self, uid: str) -> Admission:
        """May this object's remote deletion go on now? Synchronous: no other pass can slip in
        between the count and the decision."""
        if not self.enabled or uid in self._admitted:
            return Admission(True)
        now = self._clock()
        while self._recent and self._recent[0] <= now - self.window:
            self._recent.popleft()
        if not self._recent:
            self._peak = 0
        self._peak = max(self._peak, self._tracked())
        limit = self.limit()
        if self.batch is None and len(self._recent) < limit:
            self._recent.append(now)
            self._admitted.add(uid)
            return Admission(True)
        if self.batch is None:
            # The time, for people; a random suffix, so that a restarted process tripping in the
            # same second never finds its new batch already confirmed.
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self._wall()))
            self.batch = f"{stamp}-{secrets.token_hex(3)}"
            self._released = asyncio.Event()
            log.error(
                "%s deletion breaker tripped: %d remote deletions within %.0fs (limit %d); further "
                "remote deletions are held until confirmed: %s",
                self.registry,
                len(self._recent),
                self.window,
                limit,
                self.how_to_confirm(self.batch),
            )
        first = uid not in self._held
        self._held.add(uid)
        self._publish()
        return Admission(False, batch=self.batch, requested=len(self._recent), limit=limit, first_hold=first)

    def settle(self, uid: str) -> None:
        """The object is gone or its deletion no longer needs the registry: forget it."""
        self._admitted.discard(uid)
        if uid in self._held:
            self._held.discard(uid)
            if not self._held and self.batch is not None:
                # Every held object went another way (Retain, finalizer removed): nothing is left
                # to confirm. The window still counts, so a bulk deletion still going on trips
                # the breaker again, with a new batch.
                log.warning("%s deletion batch %s: nothing held any more", self.registry, self.batch)
                self.batch = None
                self._check = None
                self._released.set()
            self._publish()

    async def wait_released(self, at_most: float) -> bool:
        """Wait (up to `at_most` seconds) for the held batch to be confirmed; True when it was. Every
        waiter shares one read of the confirmation per poll interval."""
        loop = asyncio.get_running_loop()  # real time: waiting is not what the window counts
        deadline = loop.time() + at_most
        while self.batch is not None:
            if await self._confirmed():
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), min(self._poll, remaining))
        return True

    async def _confirmed(self) -> bool:
        batch = self.batch
        if batch is None:
            return True
        loop = asyncio.get_running_loop()
        if self._check is None:
            self._check = SharedFreshRead(self._read_confirmation, loop.time)
        # A read at most once per poll interval, whoever asks.
        confirmed = await self._check.get(not_before=loop.time() - self._poll)
        if confirmed and self.batch == batch:
            self._release(batch)
        return self.batch is None

    async def _read_confirmation(self) -> bool:
        try:
            value = await self._confirmations.confirmed_batch()
        except Exception as exc:  # the API server unwell: still held, asked again next poll
            log.warning("cannot read the deletion confirmation: %s", exc)
            return False
        return value is not None and value.strip() == self.batch

    def _release(self, batch: str) -> None:
        log.warning(
            "%s deletion batch %s confirmed: %d held remote deletions go on",
            self.registry,
            batch,
            len(self._held),
        )
        self._admitted |= self._held
        self._held.clear()
        self._recent.clear()  # confirmed: counting starts afresh
        self._peak = 0
        self.batch = None
        self._check = None
        self._released.set()
        self._publish()

    def _publish(self) -> None:
        metrics.DELETIONS_HELD.labels(self.registry).set(len(self._held))


def held_message(admission: Admission, *, window: float, how_to_confirm: str, registry: str) -> str:
    """The DeletionHeld condition's message: why the remote version is still there, and both
    ways on."""
    return (
        f"remote deletion held by the deletion breaker: {admission.requested} {registry} versions "
        f"were deleted within {window:.0f}s (limit {admission.limit}), as a namespace deletion, a "
        f"label selector or an Argo CD cascade would. If the deletions are intended, confirm batch "
        f"{admission.batch}: {how_to_confirm}. To keep the remote version instead, set "
        "spec.deletionPolicy: Retain on this object."
    )
