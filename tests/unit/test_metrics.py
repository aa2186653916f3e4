"""The metrics that say what is wrong and where: the census by registry, kind, condition, status
and reason (namespace only when asked), time to Ready, deletion time, drift repairs and Stalled
transitions, read back from the process registry as Prometheus would scrape them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from prometheus_client import generate_latest

from pai_operator import metrics
from pai_operator.reconciler import PassResult
from tests.unit.test_engine import World

LABELS = {"registry": "PAI", "kind": "ModelVersion"}
READY = {"Ready": "True", "Synced": "True"}
REASONS = {"Ready": "Available", "Synced": "ReconcileSuccess"}


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, {**LABELS, **labels}) or 0.0


async def test_time_to_ready_runs_from_the_event_that_showed_the_generation_to_its_ready_pass() -> None:
    w = World()
    count, total = (
        sample("pai_operator_time_to_ready_seconds_count"),
        sample("pai_operator_time_to_ready_seconds_sum"),
    )
    w.passes.results["a"] = PassResult(outcome="retry", conditions={"Ready": "False"}, retry_in=5.0)
    w.engine.observe("ADDED", w.body("a"))
    await w.step()
    assert sample("pai_operator_time_to_ready_seconds_count") == count  # not Ready yet
    del w.passes.results["a"]
    await w.step(advance=5.0)  # the retry, Ready now
    assert sample("pai_operator_time_to_ready_seconds_count") == count + 1
    assert sample("pai_operator_time_to_ready_seconds_sum") == total + 5.0
    # A pass at the same generation (a resync, a drift check) is not a new time to Ready.
    w.engine.observe("MODIFIED", w.body("a", annotations={"pai.mlops.dev/paused": "true"}))
    await w.step(advance=1.0)
    assert sample("pai_operator_time_to_ready_seconds_count") == count + 1
    # A new generation starts the clock again.
    w.engine.observe("MODIFIED", w.body("a", generation=2, status=w.settled_status(generation=1)))
    await w.step(advance=0.0)
    assert sample("pai_operator_time_to_ready_seconds_count") == count + 2


async def test_generations_first_seen_at_startup_are_not_timed() -> None:
    w = World()
    count = sample("pai_operator_time_to_ready_seconds_count")
    w.engine.observe(None, w.body("pending", generation=2, status=w.settled_status(generation=1)))
    await w.step(advance=30.0)
    assert w.passes.calls == [("pending", 2)]
    assert sample("pai_operator_time_to_ready_seconds_count") == count  # its start is unknown


async def test_a_change_at_an_unchanged_generation_is_a_drift_repair_a_new_generation_is_not() -> None:
    w = World()
    repairs = sample("pai_operator_drift_repairs_total")
    w.passes.results["a"] = PassResult(
        outcome="changed", status_patch={"observedGeneration": 1, "versionName": "1.0.0"}, conditions=READY
    )
    w.engine.observe("ADDED", w.body("a"))
    await w.step()  # created: the spec asked for it
    assert sample("pai_operator_drift_repairs_total") == repairs
    # The drift check (for one object a GET pass rather than a list) finds the remote version
    # changed by someone else and puts it back: outcome "changed" at an unchanged generation.
    await w.step(advance=200.0)
    assert len(w.passes.calls) == 2
    assert sample("pai_operator_drift_repairs_total") == repairs + 1


async def test_stalled_transitions_count_turns_to_true_not_passes_that_stay_stalled() -> None:
    w = World()
    before = sample("pai_operator_stalled_transitions_total")
    w.passes.results["a"] = PassResult(
        outcome="failed",
        conditions={**READY, "Stalled": "True"},
        reasons={**REASONS, "Stalled": "AuthFailed"},
        retry_in=10.0,
    )
    w.engine.observe("ADDED", w.body("a"))
    await w.step()
    await w.step(advance=10.0)
    await w.step(advance=10.0)
    assert len(w.passes.calls) == 3
    assert sample("pai_operator_stalled_transitions_total") == before + 1
    w.passes.results["a"] = PassResult(
        outcome="in_sync", conditions={**READY, "Stalled": "False"}, retry_in=10.0
    )
    await w.step(advance=10.0)
    w.passes.results["a"] = PassResult(
        outcome="failed", conditions={**READY, "Stalled": "True"}, retry_in=10.0
    )
    await w.step(advance=10.0)
    assert sample("pai_operator_stalled_transitions_total") == before + 2


async def test_deletion_time_runs_from_the_deletion_timestamp() -> None:
    requested = datetime.fromisoformat("2026-01-01T00:00:00+00:00").timestamp()
    w = World(wall=lambda: requested + 42.0)
    count, total = (
        sample("pai_operator_deletion_duration_seconds_count"),
        sample("pai_operator_deletion_duration_seconds_sum"),
    )
    w.engine.observe("ADDED", w.body("a"))
    await w.step()
    result = await w.engine.finalize(w.body("a", deleting=True))
    assert result.done
    assert sample("pai_operator_deletion_duration_seconds_count") == count + 1
    assert sample("pai_operator_deletion_duration_seconds_sum") == total + 42.0


async def test_census_by_reason_and_optionally_by_namespace() -> None:
    w = World()
    failing = PassResult(
        outcome="retry",
        conditions={"Ready": "False", "Synced": "False"},
        reasons={"Ready": "Creating", "Synced": "ReconcileError"},
        retry_in=100.0,
    )
    for name, namespace in (("a", "team-a"), ("b", "team-a"), ("c", "team-b")):
        w.passes.results[name] = failing
        w.engine.observe("ADDED", w.body(name, namespace=namespace))
    w.engine.observe(None, w.body("d", namespace="team-b", status=w.settled_status()))
    await w.step()
    assert w.engine.census(by_namespace=False) == {
        ("", "Ready", "False", "Creating"): 3,
        ("", "Synced", "False", "ReconcileError"): 3,
        ("", "Ready", "True", "Available"): 1,
        ("", "Synced", "True", "ReconcileSuccess"): 1,
    }
    by_namespace = w.engine.census(by_namespace=True)
    assert by_namespace[("team-a", "Synced", "False", "ReconcileError")] == 2
    assert by_namespace[("team-b", "Synced", "False", "ReconcileError")] == 1
    metrics.register_census(w.engine)
    assert sample("pai_operator_objects", condition="Synced", status="False", reason="ReconcileError") == 3
    assert sample("pai_operator_tracked_objects") == 4
    assert 'namespace="' not in generate_latest(metrics.REGISTRY).decode()
    metrics.register_census(w.engine, by_namespace=True)
    assert (
        sample(
            "pai_operator_objects",
            condition="Synced",
            status="False",
            reason="ReconcileError",
            namespace="team-a",
        )
        == 2
    )
    # A pass that changes an object's conditions moves it in the next census (each record's
    # row is kept between scrapes and taken again only when its conditions were replaced).
    del w.passes.results["a"]
    await w.step(advance=100.0)
    after = w.engine.census(by_namespace=False)
    assert after[("", "Synced", "False", "ReconcileError")] == 2
    assert after[("", "Ready", "False", "Creating")] == 2
    assert sum(n for (_, ctype, _, _), n in after.items() if ctype == "Ready") == 4


async def test_an_empty_fleet_still_has_ready_and_synced_series_at_zero() -> None:
    w = World()
    metrics.register_census(w.engine)
    for condition in ("Ready", "Synced"):
        labels = {"condition": condition, "status": "True", "reason": ""}
        assert metrics.REGISTRY.get_sample_value("pai_operator_objects", {**LABELS, **labels}) == 0.0
    assert sample("pai_operator_drift_repairs_total") >= 0.0  # initialised: present before any repair
    assert metrics.REGISTRY.get_sample_value("pai_operator_stalled_transitions_total", LABELS) is not None


class GrowingConditions(dict[str, str]):
    """A record's conditions that, when read, let the event loop add an object meanwhile: what
    the metrics server's thread meets while a restart's listing comes in."""

    def __init__(self, grow: Callable[[], None], conditions: dict[str, str]) -> None:
        super().__init__(conditions)
        self._grow = grow

    def items(self) -> Any:
        self._grow()
        return super().items()


async def test_a_scrape_while_objects_arrive_does_not_fail() -> None:
    w = World()
    w.engine.observe(None, w.body("a", status=w.settled_status()))
    arrivals = iter(range(3))

    def arrive() -> None:
        for i in arrivals:
            w.engine.observe(None, w.body(f"new-{i}", status=w.settled_status()))
            return

    (record,) = w.engine.records()
    record.conditions = GrowingConditions(arrive, record.conditions)
    assert w.engine.census(False)[("", "Ready", "True", "Available")] >= 1
    assert w.engine.condition_counts()[("Ready", "True")] >= 1
    assert w.engine.unobserved() == len(w.engine)
    assert len(w.engine) == 3  # objects did arrive during the scrapes
