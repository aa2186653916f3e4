"""Token buckets per operation family, driven by a fake clock (no real waiting)."""

from __future__ import annotations

import asyncio

import pytest

from pai_operator.ratelimit import OperationFamily, RateLimiter, TokenBucket, family_of
from tests.unit.http_fakes import FakeClock


@pytest.mark.parametrize(
    ("operation", "family"),
    [
        ("GetModelVersion", OperationFamily.READ),
        ("ListModelVersions", OperationFamily.READ),
        ("CreateModelVersion", OperationFamily.WRITE),
        ("UpdateModelVersion", OperationFamily.WRITE),
        ("DeleteModelVersion", OperationFamily.WRITE),
        ("CreateModelVersionLabels", OperationFamily.WRITE),
        ("DeleteModelVersionLabels", OperationFamily.WRITE),
        # TrueFoundry's operations follow the same naming.
        ("ListMlRepos", OperationFamily.READ),
        ("ApplyModelVersion", OperationFamily.WRITE),
        ("ApplyModelVersionTags", OperationFamily.WRITE),
    ],
)
def test_operation_families(operation: str, family: OperationFamily) -> None:
    assert family_of(operation) is family


async def test_sequential_calls_are_spaced_by_one_over_rate_after_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, burst=2, clock=clock, sleep=clock.sleep)
    waits = [await bucket.acquire() for _ in range(5)]
    assert waits == pytest.approx([0, 0, 0.1, 0.1, 0.1])
    assert clock.now == pytest.approx(1000.3)


async def test_concurrent_callers_queue_in_order() -> None:
    clock = FakeClock()
    slept: list[float] = []

    async def sleep_without_time_passing(seconds: float) -> None:
        slept.append(seconds)

    bucket = TokenBucket(20, burst=1, clock=clock, sleep=sleep_without_time_passing)
    waits = await asyncio.gather(*(bucket.acquire() for _ in range(4)))
    assert waits == pytest.approx([0, 0.05, 0.10, 0.15])
    assert slept == pytest.approx([0.05, 0.10, 0.15])


async def test_tokens_refill_with_time_up_to_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, burst=3, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        assert await bucket.acquire() == 0
    clock.now += 60  # a long idle period refills only up to the burst
    assert [await bucket.acquire() for _ in range(4)] == pytest.approx([0, 0, 0, 0.1])


async def test_a_cancelled_waiter_gives_its_token_back() -> None:
    clock = FakeClock()
    gate = asyncio.Event()

    async def blocking_sleep(seconds: float) -> None:
        await gate.wait()

    bucket = TokenBucket(10, burst=1, clock=clock, sleep=blocking_sleep)
    assert await bucket.acquire() == 0
    waiter = asyncio.create_task(bucket.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    clock.now += 0.1
    assert await bucket.acquire() == 0


async def test_families_are_independent_and_waits_are_reported() -> None:
    clock = FakeClock()
    reported: list[tuple[str, float]] = []
    limiter = RateLimiter(
        read_rate=50,
        write_rate=20,
        read_burst=1,
        write_burst=1,
        on_wait=lambda family, seconds: reported.append((family, seconds)),
        clock=clock,
        sleep=clock.sleep,
    )
    assert await limiter.acquire("CreateModelVersion") == 0
    assert await limiter.acquire("GetModelVersion") == 0  # a write does not use read tokens
    assert await limiter.acquire("UpdateModelVersion") == pytest.approx(0.05)
    assert await limiter.acquire("ListModelVersions") == pytest.approx(0.0)  # 0.05s passed, 1/50 due
    assert await limiter.acquire("ListModelVersions") == pytest.approx(0.02)
    assert [family for family, _ in reported] == ["write", "read"]
    assert [seconds for _, seconds in reported] == pytest.approx([0.05, 0.02])
    assert limiter.waited_seconds[OperationFamily.WRITE] == pytest.approx(0.05)
    assert limiter.waited_seconds[OperationFamily.READ] == pytest.approx(0.02)


async def test_none_disables_a_family() -> None:
    clock = FakeClock()
    limiter = RateLimiter(read_rate=None, write_rate=1, clock=clock, sleep=clock.sleep)
    assert [await limiter.acquire("GetModelVersion") for _ in range(100)] == [0.0] * 100
    assert clock.sleeps == []


def test_rejects_nonsense_rates() -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(0)
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(5, burst=0.5)
