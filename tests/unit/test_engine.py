"""The engine's scheduling with a fake clock: due order, backoff, coalesced observation, no
concurrent passes for one object, no stale status overwrite, restart without writes."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest

from pai_operator.engine import STARTUP_OBSERVE_DELAY, Engine, Tracked
from pai_operator.pai import AuthError, ListModelVersionsRequest, ModelVersion, PaiError
from pai_operator.pai.backend import PaiBackend
from pai_operator.reconciler import DeletionResult, Event, ObjectState, ObjectView, PassResult
from pai_operator.settings import OperatorSettings

RESYNC = 100.0
MODEL = "model-1"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakePasses:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int | None]] = []
        self.results: dict[str, PassResult] = {}
        self.drifted: set[str] = set()
        self.judged: list[str] = []
        self.gate: asyncio.Event | None = None
        self.in_flight: dict[str, int] = {}
        self.max_in_flight = 0
        self.finalized: list[str] = []

    async def reconcile(self, obj: ObjectView, state: ObjectState) -> PassResult:
        self.calls.append((obj.name, obj.generation))
        self.in_flight[obj.name] = self.in_flight.get(obj.name, 0) + 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight[obj.name])
        try:
            if self.gate is not None:
                await self.gate.wait()
            default = PassResult(
                outcome="in_sync",
                status_patch=None
                if obj.status.get("observedGeneration") == obj.generation
                else {"observedGeneration": obj.generation, "versionName": "1.0.0"},
                conditions={"Ready": "True", "Synced": "True"},
            )
            return self.results.get(obj.name, default)
        finally:
            self.in_flight[obj.name] -= 1

    def needs_pass(self, obj: ObjectView, state: ObjectState, listed: ModelVersion) -> bool:
        self.judged.append(obj.name)
        return obj.name in self.drifted

    async def finalize(self, obj: ObjectView, state: ObjectState) -> DeletionResult:
        self.finalized.append(obj.name)
        return DeletionResult(done=True, events=[Event("Normal", "Deleted", "gone")])

    def resync_delay(self) -> float:
        return RESYNC

    def backoff(self, failures: int, error: PaiError | None = None) -> float:
        return 2.0**failures


class FakeClient:
    def __init__(self) -> None:
        self.lists: list[str] = []
        self.versions: list[ModelVersion] = []
        self.error: PaiError | None = None

    async def iter_model_versions(
        self, model_id: str, request: ListModelVersionsRequest
    ) -> AsyncIterator[ModelVersion]:
        assert request.page_size == 100
        self.lists.append(model_id)
        if self.error is not None:
            raise self.error
        for version in self.versions:
            yield version


class FakeClients:
    """One client for the default identity; namespaces map to identities through `roles`."""

    def __init__(self) -> None:
        self.client = FakeClient()
        self.roles: dict[str, str] = {}
        self.unread: set[str] = set()  # namespaces whose identity is not known before a resolve
        self.identities: list[tuple[str, str]] = []  # (identity, region) of each client asked for

    def identity_key(self, namespace: str) -> str:
        if namespace in self.unread:
            return "?" + namespace
        return self.roles.get(namespace, "")

    async def resolve(self, namespace: str) -> str:
        self.unread.discard(namespace)
        return self.identity_key(namespace)

    def for_identity(self, identity: str, region_id: str) -> Any:
        self.identities.append((identity, region_id))
        return self.client


class FakeWriter:
    def __init__(self, versions: itertools.count[int]) -> None:
        self.writes: list[tuple[str, dict[str, Any]]] = []
        self.bodies: dict[str, dict[str, Any]] = {}
        self.versions = versions  # one resourceVersion sequence, like etcd's

    async def patch_status(
        self, namespace: str, name: str, uid: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        self.writes.append((name, dict(patch)))
        body = self.bodies[name]
        body["status"] = {**body.get("status", {}), **patch}
        body["metadata"]["resourceVersion"] = str(next(self.versions))
        return body


class FakeEvents:
    def __init__(self) -> None:
        self.posted: list[tuple[str, str]] = []

    def post(self, obj: ObjectView, event: Event) -> None:
        self.posted.append((obj.name, event.reason))


class World:
    def __init__(
        self,
        concurrency: int = 20,
        wall: Callable[[], float] = time.time,
        min_observation_interval: float = 10 * RESYNC,
    ) -> None:
        self.clock = Clock()
        self.passes = FakePasses()
        self.clients = FakeClients()
        self.versions = itertools.count(2)
        self.writer = FakeWriter(self.versions)
        self.events = FakeEvents()
        self.engine = Engine(
            # By default the minimum interval exceeds the resync interval, which then wins: most
            # tests here look at one observation per resync; the budget's own tests lower it.
            OperatorSettings(
                concurrency=concurrency,
                region="cn-hangzhou",
                min_observation_interval=min_observation_interval,
            ),
            PaiBackend(self.clients, "cn-hangzhou"),
            self.passes,
            self.writer,
            self.events,
            clock=self.clock,
            wall=wall,
        )

    def body(
        self,
        name: str,
        *,
        generation: int = 1,
        finalizer: bool = True,
        status: dict[str, Any] | None = None,
        annotations: dict[str, str] | None = None,
        deleting: bool = False,
        namespace: str = "ns",
    ) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "namespace": namespace,
            "name": name,
            "uid": f"uid-{name}",
            "generation": generation,
            "resourceVersion": str(next(self.versions)),
            "annotations": annotations or {},
            "finalizers": ["pai.mlops.dev/finalizer"] if finalizer else [],
        }
        if deleting:
            meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        body = {"metadata": meta, "spec": {"modelId": MODEL, "uri": "oss://b/m/"}, "status": status or {}}
        self.writer.bodies[name] = body
        return body

    def settled_status(self, generation: int = 1) -> dict[str, Any]:
        return {
            "observedGeneration": generation,
            "versionName": "1.0.0",
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "Available"},
                {"type": "Synced", "status": "True", "reason": "ReconcileSuccess"},
            ],
        }

    async def mid_pass(self, first: dict[str, Any], *events: dict[str, Any]) -> None:
        """A pass of `first` held open while `events` arrive as MODIFIED, the run loop turning
        after them (it must not join the running pass), then let finish."""
        self.passes.gate = asyncio.Event()
        self.engine.observe("MODIFIED" if self.passes.calls else "ADDED", first)
        self.engine.dispatch()
        await asyncio.sleep(0)
        for body in events:
            self.engine.observe("MODIFIED", body)
        assert self.engine.dispatch() == []  # the running pass is not joined by a second one
        self.passes.gate.set()
        await self.engine.drain()

    async def step(self, advance: float = 0.0) -> None:
        """Advance the clock, then run everything due until nothing more starts."""
        self.clock.now += advance
        await self.engine.drain()
        for _ in range(100):
            if not self.engine.dispatch():
                return
            await self.engine.drain()


async def test_a_new_object_is_passed_once_and_then_costs_nothing_until_its_group_is_due() -> None:
    w = World()
    w.engine.observe("ADDED", w.body("a"))
    await w.step()
    assert w.passes.calls == [("a", 1)]
    assert [name for name, _ in w.writer.writes] == ["a"]
    for _ in range(5):  # nothing due: nothing runs, however often the loop turns
        await w.step(advance=10.0)
    assert w.passes.calls == [("a", 1)]
    assert w.clients.client.lists == []


async def test_no_pass_before_the_finalizer_is_there() -> None:
    w = World()
    w.engine.observe("ADDED", w.body("a", finalizer=False))
    await w.step()
    assert w.passes.calls == []
    w.engine.observe("MODIFIED", w.body("a"))  # kopf added it
    await w.step()
    assert w.passes.calls == [("a", 1)]


async def test_passes_run_in_due_order_within_the_concurrency_limit() -> None:
    w = World(concurrency=2)
    w.passes.gate = asyncio.Event()
    for name in "abcde":
        w.engine.observe("ADDED", w.body(name))
    started = w.engine.dispatch()
    assert len(started) == 2
    await asyncio.sleep(0)
    assert [c[0] for c in w.passes.calls] == ["a", "b"]
    w.passes.gate.set()
    for _ in range(5):
        await w.step()
    assert [c[0] for c in w.passes.calls] == ["a", "b", "c", "d", "e"]


async def test_an_event_during_a_pass_runs_one_more_pass_afterwards_never_two_at_once() -> None:
    w = World()
    # The spec edited twice mid-pass.
    await w.mid_pass(w.body("a"), w.body("a", generation=2), w.body("a", generation=3))
    await w.step()
    assert w.passes.calls == [("a", 1), ("a", 3)]
    assert w.passes.max_in_flight == 1


async def test_the_passs_own_writes_coming_back_mid_pass_cost_no_second_pass() -> None:
    # The status a create pass writes (and kopf's finalizer) come back as watch events while the
    # pass still runs: same generation, nothing new. Once cost a second pass and a GET per create.
    w = World()
    await w.mid_pass(w.body("a"), w.body("a", status={"observedGeneration": 1}))
    for _ in range(3):
        await w.step()
    assert w.passes.calls == [("a", 1)]
    # A pause toggled mid-pass is not the pass's business: it passes again.
    edited = w.body("a", generation=2)
    paused = w.body("a", generation=2, annotations={"pai.mlops.dev/paused": "true"})  # newer
    await w.mid_pass(edited, paused)
    await w.step()
    assert w.passes.calls == [("a", 1), ("a", 2), ("a", 2)]


async def test_a_retry_waits_for_its_backoff() -> None:
    w = World()
    w.passes.results["a"] = PassResult(outcome="retry", retry_in=5.0, conditions={"Synced": "False"})
    w.engine.observe("ADDED", w.body("a"))
    await w.step()
    await w.step(advance=4.9)
    assert len(w.passes.calls) == 1
    await w.step(advance=0.2)
    assert len(w.passes.calls) == 2


async def test_a_watch_event_does_not_wait_for_a_pending_backoff() -> None:
    w = World()
    w.passes.results["a"] = PassResult(outcome="retry", retry_in=300.0)
    w.engine.observe("ADDED", w.body("a"))
    await w.step()
    w.engine.observe("MODIFIED", w.body("a", generation=2))
    await w.step(advance=1.0)
    assert w.passes.calls == [("a", 1), ("a", 2)]


async def test_settled_objects_of_one_model_are_observed_with_one_list_per_resync() -> None:
    w = World()
    names = [f"o{i}" for i in range(30)]
    w.clients.client.versions = [ModelVersion(version_name="1.0.0")]
    for name in names:
        w.engine.observe("ADDED", w.body(name))
    await w.step()
    assert len(w.passes.calls) == 30
    w.writer.writes.clear()
    await w.step(advance=RESYNC * 0.5)
    assert w.clients.client.lists == []  # not due yet
    await w.step(advance=RESYNC)
    assert w.clients.client.lists == [MODEL]  # one list for 30 objects
    assert sorted(w.passes.judged) == sorted(names)
    assert len(w.passes.calls) == 30  # nobody drifted: no pass, no GET
    assert w.writer.writes == []
    await w.step(advance=RESYNC * 1.01)
    assert w.clients.client.lists == [MODEL, MODEL]  # the next interval: one more


async def test_observation_lists_once_per_identity_never_across_accounts() -> None:
    w = World()
    w.clients.roles = {"team-a": "acs:ram::1:role/a", "team-b": "acs:ram::2:role/b"}
    w.clients.client.versions = [ModelVersion(version_name="1.0.0")]
    for namespace in ("team-a", "team-b"):
        for i in range(3):
            w.engine.observe("ADDED", w.body(f"{namespace}-{i}", namespace=namespace))
    # Even a ModelVersion annotation naming another team's role changes nothing.
    w.engine.observe(
        "ADDED",
        w.body("sneaky", namespace="team-b", annotations={"pai.mlops.dev/role-arn": "acs:ram::1:role/a"}),
    )
    await w.step()
    await w.step(advance=RESYNC * 1.01)
    # One list per (identity, region, model): same model id, two accounts, two lists.
    assert sorted(w.clients.identities) == [
        ("acs:ram::1:role/a", "cn-hangzhou"),
        ("acs:ram::2:role/b", "cn-hangzhou"),
    ]
    assert w.clients.client.lists == [MODEL, MODEL]
    assert len(w.passes.judged) == 7


async def test_objects_of_a_namespace_not_read_yet_join_their_identity_group_before_any_list() -> None:
    w = World()
    w.clients.roles = {"team-a": "acs:ram::1:role/a", "team-a2": "acs:ram::1:role/a"}
    w.clients.unread = {"team-a", "team-a2"}
    w.clients.client.versions = [ModelVersion(version_name="1.0.0")]
    for namespace in ("team-a", "team-a2"):
        for i in range(3):
            w.engine.observe(None, w.body(f"{namespace}-{i}", namespace=namespace, status=w.settled_status()))
    await w.step(advance=STARTUP_OBSERVE_DELAY)
    assert w.clients.identities == []  # an unknown namespace is never listed with a guess
    await w.step(advance=STARTUP_OBSERVE_DELAY)
    assert w.clients.identities == [("acs:ram::1:role/a", "cn-hangzhou")]  # one list for both
    assert w.clients.client.lists == [MODEL]
    assert w.passes.calls == []  # a restart still writes and GETs nothing
    assert w.engine.unobserved() == 0


async def test_only_drifted_or_missing_objects_get_a_full_pass() -> None:
    w = World()
    for name in ("a", "b", "c"):
        w.engine.observe("ADDED", w.body(name))
    await w.step()
    calls = len(w.passes.calls)
    w.passes.drifted = {"b"}
    w.clients.client.versions = [ModelVersion(version_name="1.0.0")]
    await w.step(advance=RESYNC * 1.01)
    assert [c[0] for c in w.passes.calls[calls:]] == ["b"]
    # A version the list does not show (deleted behind our back): every member gets a pass.
    w.passes.drifted = set()
    w.clients.client.versions = []
    await w.step(advance=RESYNC * 1.01)
    assert sorted(c[0] for c in w.passes.calls[calls + 1 :]) == ["a", "b", "c"]


async def test_get_path_when_the_list_is_refused_or_not_cheaper() -> None:
    w = World()
    for name in ("a", "b"):
        w.engine.observe("ADDED", w.body(name))
    await w.step()
    w.clients.client.error = AuthError("not allowed to list", status=403, code="Forbidden.RAM")
    await w.step(advance=RESYNC * 1.01)
    assert w.clients.client.lists == [MODEL]
    assert len(w.passes.calls) == 4  # each object's own pass (GET) instead
    await w.step(advance=RESYNC * 1.01)
    assert w.clients.client.lists == [MODEL]  # refused once: not asked again
    assert len(w.passes.calls) == 6

    single = World()
    single.engine.observe("ADDED", single.body("alone"))
    await single.step()
    await single.step(advance=RESYNC * 1.01)
    assert single.clients.client.lists == []  # one object: one GET beats a list
    assert len(single.passes.calls) == 2


async def test_a_pass_never_moves_observed_generation_backwards() -> None:
    w = World()
    w.passes.gate = asyncio.Event()
    w.engine.observe("ADDED", w.body("a"))
    w.engine.dispatch()
    await asyncio.sleep(0)
    # Meanwhile a newer view was written (another replica before a handover, say).
    w.engine.observe("MODIFIED", w.body("a", generation=2, status=w.settled_status(generation=2)))
    w.passes.gate.set()
    await w.engine.drain()
    assert w.writer.writes == []  # the generation-1 pass did not overwrite generation 2


async def test_restart_observes_settled_objects_by_list_with_no_writes() -> None:
    w = World()
    w.clients.client.versions = [ModelVersion(version_name="1.0.0")]
    for i in range(50):
        w.engine.observe(None, w.body(f"o{i}", status=w.settled_status()))
    w.engine.observe(None, w.body("pending", generation=2, status=w.settled_status(generation=1)))
    await w.step()
    assert w.passes.calls == [("pending", 2)]  # only the object whose spec moved
    assert w.engine.unobserved() == 50
    await w.step(advance=STARTUP_OBSERVE_DELAY)
    assert w.clients.client.lists == [MODEL]
    assert w.engine.unobserved() == 0
    assert [name for name, _ in w.writer.writes] == ["pending"]
    assert w.engine.condition_counts()[("Ready", "True")] == 51


def test_a_restart_takes_a_settled_object_in_without_decoding_json(monkeypatch: pytest.MonkeyPatch) -> None:
    # A restart takes in every object: the key, the "settled" check and the group are read from
    # the body the record was just made from (decoding both JSONs again, up to three times each,
    # was ~5 % of a 20,000-object restart's CPU).
    w = World()

    def decoded(self: Tracked) -> dict[str, Any]:
        raise AssertionError("decoded the record's JSON")

    monkeypatch.setattr(Tracked, "spec", property(decoded))
    monkeypatch.setattr(Tracked, "status", property(decoded))
    w.engine.observe(None, w.body("a", status=w.settled_status()))
    assert w.engine.unobserved() == 1  # tracked, settled, waiting for its group's list
    monkeypatch.undo()
    record = next(w.engine.records())
    assert record.group is not None
    assert record.handled_generation == 1
    assert record.remote_key(lambda spec, status: "decoded again") == "1.0.0"  # the key was kept


async def test_pause_toggle_is_a_reason_to_pass_at_once() -> None:
    w = World()
    w.engine.observe("ADDED", w.body("a"))
    await w.step()
    body = w.body("a", status=w.settled_status(), annotations={"pai.mlops.dev/paused": "true"})
    w.engine.observe("MODIFIED", body)
    await w.step()
    assert len(w.passes.calls) == 2


async def test_deletion_waits_for_the_running_pass_and_forgets_the_object() -> None:
    w = World()
    w.passes.gate = asyncio.Event()
    w.engine.observe("ADDED", w.body("a"))
    w.engine.dispatch()
    await asyncio.sleep(0)
    deleting = asyncio.ensure_future(w.engine.finalize(w.body("a", deleting=True)))
    await asyncio.sleep(0.01)
    assert not deleting.done()
    assert w.passes.finalized == []
    w.passes.gate.set()
    result = await deleting
    assert result.done
    assert w.passes.finalized == ["a"]
    assert ("a", "Deleted") in w.events.posted
    assert len(w.engine) == 0
    await w.step(advance=RESYNC * 2)
    assert len(w.passes.calls) == 1


async def test_deleted_event_forgets_an_object_whose_finalizer_was_removed_by_hand() -> None:
    w = World()
    w.engine.observe("ADDED", w.body("a"))
    await w.step()
    w.engine.observe("DELETED", w.body("a"))
    assert len(w.engine) == 0
    assert w.engine.condition_counts() == {}
    await w.step(advance=RESYNC * 2)
    assert w.clients.client.lists == []


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_run_loop_drives_everything_without_manual_dispatch(concurrency: int) -> None:
    w = World(concurrency=concurrency)
    task = asyncio.ensure_future(w.engine.run())
    try:
        for name in "abcd":
            w.engine.observe("ADDED", w.body(name))
        for _ in range(100):
            if len(w.passes.calls) == 4:
                break
            await asyncio.sleep(0.01)
        assert sorted(c[0] for c in w.passes.calls) == ["a", "b", "c", "d"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_is_live_answers_for_watched_objects_until_they_are_gone() -> None:
    """The reconciler's ownership succession asks this: a restored object may take a version over
    only from a UID that no longer exists. A terminating object still exists."""
    w = World()
    w.engine.observe("ADDED", w.body("a"))
    assert w.engine.is_live("uid-a")
    assert not w.engine.is_live("uid-never-seen")
    w.engine.observe("MODIFIED", w.body("a", deleting=True))
    assert w.engine.is_live("uid-a")
    w.engine.observe("DELETED", w.body("a"))
    assert not w.engine.is_live("uid-a")


# --- reconcile now (<group>/reconcile-requested-at) --------------------------------------------

REQUEST = "pai.mlops.dev/reconcile-requested-at"


async def test_a_reconcile_request_passes_a_settled_object_at_once() -> None:
    w = World()
    w.engine.observe("ADDED", w.body("a"))
    await w.step()
    assert w.passes.calls == [("a", 1)]
    # An annotation change: the generation stays 1, and the next resync is a whole interval away.
    w.engine.observe("MODIFIED", w.body("a", status=w.settled_status(), annotations={REQUEST: "t1"}))
    await w.step()
    assert w.passes.calls == [("a", 1), ("a", 1)]
    # The same value again (our own status write, any other event): handled, no second pass.
    w.engine.observe("MODIFIED", w.body("a", status=w.settled_status(), annotations={REQUEST: "t1"}))
    await w.step()
    assert len(w.passes.calls) == 2
    w.engine.observe("MODIFIED", w.body("a", status=w.settled_status(), annotations={REQUEST: "t2"}))
    await w.step()
    assert len(w.passes.calls) == 3


async def test_a_reconcile_request_handled_before_a_restart_is_not_repeated() -> None:
    w = World()
    handled = {**w.settled_status(), "lastHandledReconcileAt": "t1"}
    w.engine.observe(None, w.body("a", status=handled, annotations={REQUEST: "t1"}))
    await w.step()
    assert w.passes.calls == []  # settled: observed by its group's list, no pass
    w2 = World()
    w2.engine.observe(None, w2.body("a", status=handled, annotations={REQUEST: "t2"}))
    await w2.step()
    assert w2.passes.calls == [("a", 1)]  # requested while the operator was down


async def test_a_reconcile_request_during_a_pass_runs_one_more_pass() -> None:
    w = World()
    w.passes.gate = asyncio.Event()
    w.engine.observe("ADDED", w.body("a"))
    w.engine.dispatch()
    await asyncio.sleep(0)
    w.engine.observe("MODIFIED", w.body("a", annotations={REQUEST: "now"}))
    assert w.engine.dispatch() == []
    w.passes.gate.set()
    await w.engine.drain()
    await w.step()
    assert w.passes.calls == [("a", 1), ("a", 1)]
    assert w.passes.max_in_flight == 1


# --- observation paced by the read budget (default: 10 % of 50 reads/s = 5 calls/s per identity) --


def _in_model(w: World, name: str, model: str, **kwargs: Any) -> dict[str, Any]:
    body = w.body(name, **kwargs)
    body["spec"]["modelId"] = model
    return body


class ListLog(FakeClient):
    """Lists with the fake clock's time, so the pace of observation can be measured."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock
        self.at: list[float] = []

    async def iter_model_versions(
        self, model_id: str, request: ListModelVersionsRequest
    ) -> AsyncIterator[ModelVersion]:
        self.at.append(self.clock.now)
        async for version in super().iter_model_versions(model_id, request):
            yield version


async def test_a_small_fleet_is_observed_every_minimum_interval_not_every_resync() -> None:
    w = World(min_observation_interval=5.0)
    w.clients.client.versions = [ModelVersion(version_name="1.0.0")]
    for i in range(30):
        w.engine.observe("ADDED", w.body(f"o{i}"))
    await w.step()
    for _ in range(10):
        await w.step(advance=5.0)
    # 30 objects of one model: one page, far inside the budget, so the floor decides.
    assert len(w.clients.client.lists) == 10
    assert len(w.passes.calls) == 30  # nobody drifted: no pass, no GET


async def test_a_large_fleet_is_observed_as_often_as_the_budget_allows_spread_evenly() -> None:
    w = World(min_observation_interval=5.0)
    log = ListLog(w.clock)
    log.versions = [ModelVersion(version_name="1.0.0")]
    w.clients.client = log
    models = [f"model-{m}" for m in range(60)]
    for model in models:  # a restart: 60 groups of 2 settled objects, all due at once
        for i in range(2):
            w.engine.observe(None, _in_model(w, f"{model}-{i}", model, status=w.settled_status()))
    start = w.clock.now
    for _ in range(1200):  # two minutes of engine time in steps of 0.1 s
        await w.step(advance=0.1)
    rate = w.engine._pacer.rate
    assert rate == 5.0
    # 60 groups of one page at 5 calls/s: each group every 12 s.
    assert w.engine._pacer.interval(("", "cn-hangzhou"), 5.0, RESYNC) == pytest.approx(12.0)
    # The restart observes every group at once (promptly), and the budget pays for it: the next
    # observations wait until 60 / 5 = 12 s have passed, then come one every 0.2 s.
    first_round = start + STARTUP_OBSERVE_DELAY
    assert [t for t in log.at if t < first_round + 1] == [pytest.approx(first_round)] * 60
    paced = [t for t in log.at if t >= first_round + 1]
    assert min(paced) >= first_round + 60 / rate - 0.01
    span = w.clock.now - (first_round + 60 / rate)
    assert span * rate * 0.9 <= len(paced) <= span * rate + 1  # spends the budget, never more
    for second in range(int(span)):
        begin = first_round + 60 / rate + second
        window = [t for t in paced if begin <= t < begin + 1]
        assert len(window) <= rate + 1, (second, len(window))
    assert w.passes.calls == []  # observed, not passed


async def test_the_resync_interval_bounds_the_interval_of_a_fleet_too_large_for_the_budget() -> None:
    w = World(min_observation_interval=5.0)
    pacer = w.engine._pacer
    pacer.set_cost(("", "cn-hangzhou"), "elsewhere", 10_000)  # 10,000 pages: 2,000 s at 5/s
    assert w.engine._observation_interval(("", "cn-hangzhou", MODEL)) == RESYNC


async def test_event_passes_start_before_a_due_observation_and_it_waits_for_them() -> None:
    w = World(concurrency=1, min_observation_interval=5.0)
    w.clients.client.versions = [ModelVersion(version_name="1.0.0")]
    for i in range(3):
        w.engine.observe(None, w.body(f"settled-{i}", status=w.settled_status()))
    w.passes.gate = asyncio.Event()
    w.clock.now += STARTUP_OBSERVE_DELAY  # the group's first observation is due now...
    w.engine.observe("ADDED", w.body("new-1"))  # ...and so are two creates
    w.engine.observe("ADDED", w.body("new-2"))
    started = w.engine.dispatch()
    assert len(started) == 1  # the first create takes the only slot
    await asyncio.sleep(0)
    assert w.clients.client.lists == []  # a pass is due and waiting: no observation starts
    assert w.engine.dispatch() == []
    w.passes.gate.set()
    await w.step()
    assert [c[0] for c in w.passes.calls] == ["new-1", "new-2"]
    assert w.clients.client.lists == [MODEL]  # once the passes had their slots


async def test_an_unchanged_listed_item_is_not_compared_again_until_the_resync_interval() -> None:
    w = World(min_observation_interval=5.0)
    w.clients.client.versions = [ModelVersion(version_name="1.0.0", uri="oss://b/m/")]
    for name in ("a", "b"):
        w.engine.observe("ADDED", w.body(name))
    await w.step()
    await w.step(advance=5.0)
    assert sorted(w.passes.judged) == ["a", "b"]
    for _ in range(3):
        await w.step(advance=5.0)
    assert len(w.clients.client.lists) == 4
    assert sorted(w.passes.judged) == ["a", "b"]  # byte-identical items: no comparison
    # The item changes remotely (drift): compared again, and the drifted object passed.
    w.passes.drifted = {"b"}
    w.clients.client.versions = [ModelVersion(version_name="1.0.0", uri="oss://b/other/")]
    await w.step(advance=5.0)
    assert sorted(w.passes.judged) == ["a", "a", "b", "b"]
    assert w.passes.calls[-1] == ("b", 1)
    # The object changes (its resourceVersion moves): compared again even with the same item.
    w.passes.drifted = set()
    judged = len(w.passes.judged)
    await w.step(advance=5.0)  # settle the new item's digests
    w.engine.observe("MODIFIED", w.body("a", status=w.settled_status()))
    await w.step(advance=5.0)
    assert "a" in w.passes.judged[judged:]
    # And once per resync interval (600 s here) everything is compared, whatever the digest.
    judged = len(w.passes.judged)
    await w.step(advance=w.engine.settings.resync_interval)
    await w.step(advance=5.0)
    assert sorted(set(w.passes.judged[judged:])) == ["a", "b"]


def test_the_remote_key_is_derived_again_only_when_spec_or_status_changed() -> None:
    w = World()
    derived: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def key_of(spec: dict[str, Any], status: dict[str, Any]) -> str | None:
        derived.append((spec, status))
        return status.get("versionName") or spec.get("versionName")

    record = Tracked.from_body(w.engine.names, w.body("a"))
    assert record.remote_key(key_of) is None
    assert record.remote_key(key_of) is None
    assert len(derived) == 1  # an observation per listed item does not decode the JSONs again
    record.absorb(w.body("a", status=w.settled_status()))
    assert record.remote_key(key_of) == "1.0.0"
    assert len(derived) == 2
