"""Leader election without a cluster: the real election algorithm (kubernetes.leaderelection) and
our lock, against an in-memory Lease store with the API server's optimistic concurrency."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import signal
import socket
import threading
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from kubernetes import client

from pai_operator import metrics
from pai_operator.leadership import (
    ElectionSettings,
    LeaderElector,
    ReleasableLeaseLock,
    StandbyHealth,
    run_as_leader,
)
from pai_operator.settings import OperatorSettings

# About the smallest timings the package accepts.
FAST: dict[str, Any] = {"lease_duration": 2, "renew_deadline": 1.5, "retry_period": 1.0}


class FakeLeaseApi:
    """read/create/replace of Leases with resourceVersion checks (409) and JSON 404 bodies, like
    kube-apiserver; `down` makes every call fail like a refused connection."""

    def __init__(self) -> None:
        self._leases: dict[tuple[str, str], client.V1Lease] = {}
        self._version = 0
        self._mutex = threading.Lock()
        self.down = False
        self.timeouts: set[Any] = set()
        self.history: list[client.V1LeaseSpec] = []  # every spec written, in order

    def _check(self, kwargs: dict[str, Any]) -> None:
        self.timeouts.add(kwargs.get("_request_timeout"))
        if self.down:
            raise ConnectionRefusedError("connection refused")

    def read_namespaced_lease(self, name: str, namespace: str, **kwargs: Any) -> client.V1Lease:
        self._check(kwargs)
        with self._mutex:
            lease = self._leases.get((namespace, name))
            if lease is None:
                error = client.ApiException(status=404, reason="Not Found")
                error.body = json.dumps({"code": 404})
                raise error
            return copy.deepcopy(lease)

    def create_namespaced_lease(self, namespace: str, body: client.V1Lease, **kwargs: Any) -> client.V1Lease:
        self._check(kwargs)
        with self._mutex:
            name = body.metadata["name"] if isinstance(body.metadata, dict) else body.metadata.name
            if (namespace, name) in self._leases:
                raise client.ApiException(status=409, reason="AlreadyExists")
            self._version += 1
            stored = client.V1Lease(
                metadata=client.V1ObjectMeta(
                    name=name, namespace=namespace, resource_version=str(self._version)
                ),
                spec=copy.deepcopy(body.spec),
            )
            self._leases[(namespace, name)] = stored
            self.history.append(copy.deepcopy(stored.spec))
            return copy.deepcopy(stored)

    def replace_namespaced_lease(
        self, name: str, namespace: str, body: client.V1Lease, **kwargs: Any
    ) -> client.V1Lease:
        self._check(kwargs)
        with self._mutex:
            current = self._leases[(namespace, name)]
            if body.metadata.resource_version != current.metadata.resource_version:
                raise client.ApiException(status=409, reason="Conflict")
            self._version += 1
            stored = copy.deepcopy(body)
            stored.metadata.resource_version = str(self._version)
            self._leases[(namespace, name)] = stored
            self.history.append(copy.deepcopy(stored.spec))
            return copy.deepcopy(stored)

    def spec(self, name: str = "pai-operator", namespace: str = "ns") -> client.V1LeaseSpec:
        with self._mutex:
            return copy.deepcopy(self._leases[(namespace, name)].spec)

    def steal(self, thief: str, name: str = "pai-operator", namespace: str = "ns") -> None:
        """Another holder writes the lease (what a partitioned leader would find on return)."""
        with self._mutex:
            lease = self._leases[(namespace, name)]
            lease.spec.holder_identity = thief
            lease.spec.renew_time = datetime.now(UTC)
            self._version += 1
            lease.metadata.resource_version = str(self._version)


def election(identity: str, **timing: Any) -> ElectionSettings:
    return ElectionSettings(lease_name="pai-operator", namespace="ns", identity=identity, **(timing or FAST))


async def first(*events: asyncio.Event, within: float) -> None:
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        done, _ = await asyncio.wait(waits, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        assert done, f"nothing happened within {within}s"
    finally:
        for wait in waits:
            wait.cancel()


async def test_exactly_one_leads_and_release_hands_over_without_expiry() -> None:
    api = FakeLeaseApi()
    a, b = LeaderElector(election("a"), api), LeaderElector(election("b"), api)  # type: ignore[arg-type]
    a.start()
    await first(a.leading, within=5)
    b.start()
    await asyncio.sleep(3 * FAST["retry_period"])  # longer than the lease: renewals keep it
    assert not b.leading.is_set()
    assert api.spec().holder_identity == "a"
    assert api.spec().lease_transitions in (None, 0)

    written = len(api.history)
    assert await a.release()
    # The release's own write (the first after a's renewals), read from the history: b may take
    # the released lease at once, before the test could read the current one.
    released = next(spec for spec in api.history[written:] if spec.holder_identity != "a")
    assert released.holder_identity is None
    assert released.lease_duration_seconds == 1
    started = asyncio.get_running_loop().time()
    await first(b.leading, within=5)
    # At b's next attempt (one retry period), not after the 2 s lease duration counted from b's
    # last observation of a change.
    assert asyncio.get_running_loop().time() - started <= FAST["retry_period"] + 0.5
    taken = api.spec()
    assert taken.holder_identity == "b"
    assert taken.lease_transitions == 1
    assert taken.lease_duration_seconds == int(FAST["lease_duration"])
    await asyncio.sleep(2 * FAST["retry_period"])
    assert api.spec().holder_identity == "b"  # a, released, never renews or re-acquires
    assert await b.release()


async def test_a_leader_whose_lease_is_taken_stops_within_the_renew_deadline() -> None:
    api = FakeLeaseApi()
    a = LeaderElector(election("a"), api)  # type: ignore[arg-type]
    a.start()
    await first(a.leading, within=5)
    api.steal("thief")
    started = asyncio.get_running_loop().time()
    await first(a.stopped, within=FAST["renew_deadline"] + 3 * FAST["retry_period"])
    assert asyncio.get_running_loop().time() - started >= FAST["renew_deadline"] - FAST["retry_period"]
    assert api.spec().holder_identity == "thief"
    assert not await a.release()  # not the holder: nothing written
    assert api.spec().holder_identity == "thief"


async def test_a_failing_api_server_is_retried_not_fatal() -> None:
    api = FakeLeaseApi()
    api.down = True
    a = LeaderElector(election("a"), api)  # type: ignore[arg-type]
    a.start()
    await asyncio.sleep(2.5 * FAST["retry_period"])
    assert not a.leading.is_set()
    assert not a.stopped.is_set()  # the election thread survived the connection errors
    api.down = False
    await first(a.leading, within=5)
    assert api.spec().holder_identity == "a"
    assert api.timeouts == {election("a").request_timeout}  # never a call without a timeout
    assert await a.release()


def test_release_by_a_replica_that_never_led_changes_nothing() -> None:
    api = FakeLeaseApi()
    leader = ReleasableLeaseLock(election("a"), api)  # type: ignore[arg-type]
    other = ReleasableLeaseLock(election("b"), api)  # type: ignore[arg-type]
    from kubernetes.leaderelection.leaderelectionrecord import LeaderElectionRecord

    now = str(datetime.now())
    assert leader.create("pai-operator", "ns", LeaderElectionRecord("a", "15", now, now))
    assert not other.release()
    assert api.spec().holder_identity == "a"
    # After release() the lock refuses every further write, whatever the elector thread tries.
    assert not other.create("pai-operator", "ns", LeaderElectionRecord("b", "15", now, now))
    assert other.get("pai-operator", "ns")[0] is False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_standby_serves_healthz_then_frees_the_port() -> None:
    port = _free_port()
    async with httpx.AsyncClient() as http:
        async with StandbyHealth(port, "pod-a"):
            response = await http.get(f"http://127.0.0.1:{port}/healthz")
            assert response.status_code == 200
            assert response.json() == {"leader": False, "identity": "pod-a"}
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{port}/healthz")
    # The port is free again for kopf's liveness endpoint.
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))


def operator_settings(identity: str) -> OperatorSettings:
    return OperatorSettings(
        identity=identity,
        health_port=0,
        leader_elect_namespace="ns",
        leader_elect_lease_name="pai-operator",
        leader_elect_lease_duration=2,
        leader_elect_renew_deadline=1.5,
        leader_elect_retry_period=1.0,
    )


async def test_run_as_leader_leads_then_releases_when_the_operator_stops() -> None:
    api = FakeLeaseApi()
    gauge_while_leading: list[float] = []

    async def lead() -> None:  # stands in for kopf, which returns after SIGTERM
        gauge_while_leading.append(metrics.REGISTRY.get_sample_value("pai_operator_leader") or 0.0)
        assert api.spec().holder_identity == "a"

    await asyncio.wait_for(run_as_leader(operator_settings("a"), lead, api), 10)  # type: ignore[arg-type]
    assert gauge_while_leading == [1.0]
    assert metrics.REGISTRY.get_sample_value("pai_operator_leader") == 0.0
    assert api.spec().holder_identity is None  # released: a standby takes it at once


async def test_sigterm_on_standby_ends_the_wait_without_leading_or_writing() -> None:
    api = FakeLeaseApi()
    holder = ReleasableLeaseLock(election("other"), api)  # type: ignore[arg-type]
    from kubernetes.leaderelection.leaderelectionrecord import LeaderElectionRecord

    now = str(datetime.now())
    assert holder.create("pai-operator", "ns", LeaderElectionRecord("other", "3600", now, now))
    led: list[bool] = []

    async def lead() -> None:
        led.append(True)

    waiting = asyncio.ensure_future(run_as_leader(operator_settings("a"), lead, api))  # type: ignore[arg-type]
    await asyncio.sleep(1.5)
    assert not waiting.done()
    os.kill(os.getpid(), signal.SIGTERM)  # handled by the loop: ends the standby's wait
    await asyncio.wait_for(waiting, 5)
    assert led == []
    assert api.spec().holder_identity == "other"  # a standby never writes the lease on its way out


def test_an_empty_identity_is_refused_by_the_election() -> None:
    # "" is what a free Lease's holder reads as: a replica named "" would take every free Lease
    # for its own, and two such replicas would both lead.
    for empty in ("", "  "):
        with pytest.raises(ValueError, match="non-empty identity"):
            election(empty)


def test_without_pod_name_or_identity_a_replica_is_named_after_its_host_and_pid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("POD_NAME", raising=False)
    settings = OperatorSettings()
    assert settings.identity == f"{socket.gethostname()}-{os.getpid()}"
    assert ElectionSettings.from_operator(settings).identity == settings.identity
    assert settings.user_agent.endswith(f"({settings.identity})")
    assert "()" not in settings.user_agent
    for blank in ("", "   "):
        assert OperatorSettings(identity=blank).identity == settings.identity
    assert OperatorSettings(identity="pod-a").identity == "pod-a"
