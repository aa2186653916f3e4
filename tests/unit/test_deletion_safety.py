"""Deletion safety: the breaker's counting and confirmation, the shared fresh CRD read, and the
deletion pass with both guards, against the real PAI emulator and client (reconciler_harness)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pai_operator import metrics
from pai_operator.deletion_safety import CrdReadError, DeletionBreaker, SharedFreshRead
from pai_operator.pai.spec import OWNER_LABEL_KEY
from pai_operator.reconciler import DeletionResult
from tests.unit.reconciler_harness import MODEL, UID, URI, Harness, harness_factory, label_map

FIXED: dict[str, Any] = {"modelId": MODEL, "uri": URI, "versionName": "1.0.0"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Lease:
    """The confirmation as the Lease annotation would hold it."""

    def __init__(self) -> None:
        self.value: str | None = None
        self.reads = 0

    async def confirmed_batch(self) -> str | None:
        self.reads += 1
        return self.value


def breaker(
    clock: Clock, lease: Lease, *, threshold: int = 3, fraction: float = 0.0, tracked: int = 10
) -> DeletionBreaker:
    return DeletionBreaker(
        registry="pai",
        threshold=threshold,
        fraction=fraction,
        window=300.0,
        tracked=lambda: tracked,
        confirmations=lease,
        how_to_confirm=lambda batch: f"kubectl annotate lease x confirm={batch}",
        clock=clock,
        wall=lambda: 0.0,
        poll=0.01,
    )


def held_gauge() -> float:
    value = metrics.REGISTRY.get_sample_value("pai_operator_deletions_held", {"registry": "pai"})
    return value or 0.0


async def test_below_the_threshold_nothing_is_held_and_retries_count_once() -> None:
    clock, lease = Clock(), Lease()
    b = breaker(clock, lease)
    assert all(b.admit(f"u{i}").admitted for i in range(3))
    assert b.admit("u0").admitted  # a retry of an admitted deletion is not a new one
    clock.now += 301  # the window moved on: three more are routine
    assert all(b.admit(f"v{i}").admitted for i in range(3))
    assert (b.batch, b.held) == (None, 0)


async def test_past_the_threshold_every_further_deletion_waits_even_after_the_window() -> None:
    clock, lease = Clock(), Lease()
    b = breaker(clock, lease)
    for i in range(3):
        assert b.admit(f"u{i}").admitted
    first = b.admit("u3")
    assert (first.admitted, first.first_hold) == (False, True)
    assert first.batch.startswith("19700101T000000Z-")
    assert (first.requested, first.limit) == (3, 3)
    assert not b.admit("u3").first_hold  # the Event is posted once per object
    clock.now += 3600  # tripped stays tripped: no trickle once the window has moved on
    assert not b.admit("u4").admitted
    assert (b.held, held_gauge()) == (2, 2)
    b.settle("u4")  # gone (finalizer removed by hand): no longer held
    assert (b.held, held_gauge()) == (1, 1)
    b.settle("u3")  # set to Retain: nothing left to confirm, the breaker closes
    assert (b.held, held_gauge(), b.batch) == (0, 0, None)
    assert b.admit("u5").admitted  # and the window has long moved on


async def test_closed_because_nothing_is_held_it_trips_again_while_the_window_is_full() -> None:
    b = breaker(Clock(), Lease(), threshold=2)
    for i in range(3):
        b.admit(f"u{i}")
    first = b.batch
    b.settle("u2")
    assert b.batch is None
    again = b.admit("u3")
    assert not again.admitted
    assert again.batch != first


async def test_the_fraction_of_tracked_objects_raises_the_limit() -> None:
    b = breaker(Clock(), Lease(), threshold=3, fraction=0.1, tracked=100)
    assert all(b.admit(f"u{i}").admitted for i in range(10))  # 10 % of 100 > 3
    assert not b.admit("u10").admitted


async def test_zero_disables_the_breaker() -> None:
    b = breaker(Clock(), Lease(), threshold=0)
    assert all(b.admit(f"u{i}").admitted for i in range(1000))


async def test_a_confirmation_of_the_batch_releases_every_held_deletion_and_counting_restarts() -> None:
    clock, lease = Clock(), Lease()
    b = breaker(clock, lease)
    for i in range(6):
        b.admit(f"u{i}")
    assert b.held == 3
    lease.value = "an older batch"
    assert not await b.wait_released(0.05)
    assert lease.reads >= 1
    waiters = [asyncio.ensure_future(b.wait_released(5)) for _ in range(20)]
    await asyncio.sleep(0.05)
    reads = lease.reads
    assert b.batch is not None
    lease.value = f" {b.batch} "
    assert all(await asyncio.gather(*waiters))
    assert lease.reads - reads <= 3  # twenty waiters share one read per poll
    assert (b.held, held_gauge()) == (0, 0)
    assert all(b.admit(f"u{i}").admitted for i in range(3, 6))  # the held ones go on
    assert b.admit("single").admitted  # a single delete right after: not held


async def test_an_unreadable_confirmation_keeps_holding() -> None:
    class Broken:
        async def confirmed_batch(self) -> str | None:
            raise ConnectionError("refused")

    b = breaker(Clock(), Lease())
    b._confirmations = Broken()
    for i in range(4):
        b.admit(f"u{i}")
    assert not await b.wait_released(0.05)
    assert b.held == 1


async def test_a_burst_shares_reads_and_never_uses_one_started_before_it_asked() -> None:
    clock = Clock()
    started: list[float] = []
    gate = asyncio.Event()

    async def read() -> bool:
        started.append(clock.now)
        await gate.wait()
        return len(started) > 1

    shared = SharedFreshRead(read, clock)
    early = asyncio.ensure_future(shared.get(not_before=clock.now))
    await asyncio.sleep(0)
    clock.now += 1
    late = [asyncio.ensure_future(shared.get(not_before=clock.now)) for _ in range(50)]
    await asyncio.sleep(0)
    gate.set()
    assert await early is False
    assert await asyncio.gather(*late) == [True] * 50  # all from the second read
    assert len(started) == 2


# --- the deletion pass ------------------------------------------------------------------------


class Crd:
    def __init__(self, terminating: bool | Exception) -> None:
        self.answer = terminating
        self.asked: list[float] = []

    async def terminating(self, *, not_before: float) -> bool:
        self.asked.append(not_before)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    async with harness_factory() as make:
        yield await make()


async def finalize(h: Harness, spec: dict[str, Any]) -> DeletionResult:
    result = await h.reconciler.finalize(h.view(spec), h.state)
    if result.status_patch:
        h.status = {**h.status, **result.status_patch}
    return result


async def test_an_object_whose_crd_is_being_deleted_is_released_without_a_call(h: Harness) -> None:
    await h.pai.seed("1.0.0")
    await h.pai.clear()
    h.reconciler.crd = Crd(True)
    result = await finalize(h, FIXED)
    assert result.done
    assert await h.pai.actions() == []  # not even a read
    assert label_map(await h.pai.version("1.0.0"))[OWNER_LABEL_KEY] == UID  # a reinstall takes it back


async def test_when_the_crd_cannot_be_read_nothing_is_deleted(h: Harness) -> None:
    await h.pai.seed("1.0.0")
    await h.pai.clear()
    h.reconciler.crd = Crd(CrdReadError("forbidden"))
    result = await finalize(h, FIXED)
    assert not result.done
    assert result.retry_in > 0
    assert await h.pai.actions() == []
    h.reconciler.crd = Crd(False)
    assert (await finalize(h, FIXED)).done
    assert await h.pai.writes() == ["DeleteModelVersion"]


async def test_a_held_deletion_keeps_the_version_and_says_why_and_how_to_continue(h: Harness) -> None:
    clock, lease = Clock(), Lease()
    h.reconciler.breaker = b = breaker(clock, lease, threshold=1)
    b.admit("someone-else")  # the window is full
    await h.pai.seed("1.0.0")
    await h.pai.clear()

    held = await finalize(h, FIXED)
    assert (held.done, held.held) == (False, True)
    assert await h.pai.writes() == []
    synced = next(c for c in h.status["conditions"] if c["type"] == "Synced")
    assert (synced["status"], synced["reason"]) == ("False", "DeletionHeld")
    assert f"kubectl annotate lease x confirm={b.batch}" in synced["message"]
    assert "deletionPolicy: Retain" in synced["message"]
    assert [(e.type, e.reason) for e in held.events] == [("Warning", "DeletionHeld")]
    again = await finalize(h, FIXED)
    assert (again.held, again.events, again.status_patch) == (True, [], None)  # no write per retry

    retained = await finalize(h, {**FIXED, "deletionPolicy": "Retain"})  # Retain is never held
    assert retained.done
    assert await h.pai.writes() == ["DeleteModelVersionLabels"]
