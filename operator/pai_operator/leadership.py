"""Leader election on a `coordination.k8s.io/v1` Lease, bridged to asyncio.

The election algorithm is the `kubernetes` package's own (`kubernetes.leaderelection`: the
client-go algorithm, with its `LeaseLock`). It is synchronous and never returns while it holds
or seeks the lease, so it runs in a daemon thread of its own; its callbacks reach the event loop
through `loop.call_soon_threadsafe` and nothing else is shared.

What the package lacks, and `ReleasableLeaseLock` adds on the same lock interface:

- an API client of our choosing (its `LeaseLock` uses the process-wide default configuration,
  which kopf's login never fills) and a timeout on every call: a call hanging on a half-open
  connection would otherwise stall renewals past the renew deadline without anyone noticing;
- errors other than `client.ApiException` (connection refused, timeouts) count as a failed attempt
  instead of killing the elector thread silently;
- `release()`, client-go's ReleaseOnCancel: on shutdown the leader clears `holderIdentity`, so
  the standby takes over at its next retry instead of waiting for the lease to expire;
- `leaseTransitions` counted as client-go does, so `kubectl get lease -o yaml` tells how often
  leadership moved.

Process model (see `run_as_leader`): a replica waits as a standby, serving /healthz itself so
that it stays Ready; once it leads it runs kopf. If it loses the lease it exits at once with
`LOST_EXIT_CODE` (the Deployment restarts it as a standby): the simplest way to guarantee that
nothing it started keeps writing. On SIGTERM it stops kopf, then releases the lease.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from kubernetes import client
from kubernetes.leaderelection import electionconfig
from kubernetes.leaderelection.leaderelection import LeaderElection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

from pai_operator import metrics
from pai_operator.core_settings import CoreSettings

log = logging.getLogger(__name__)

LOST_EXIT_CODE = 3
"""Exit status after losing the lease (distinct from 1, a crash, to read in `kubectl describe`)."""


@dataclass(frozen=True)
class ElectionSettings:
    lease_name: str
    namespace: str
    identity: str
    lease_duration: int = 15
    """Whole seconds (the package writes it as `leaseDurationSeconds` with int(str(...)))."""
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        # An empty holder is what a released (or never held) Lease carries: a replica named ""
        # would read every free Lease as its own, and two of them would both lead.
        if not self.identity.strip():
            raise ValueError("leader election needs a non-empty identity (POD_NAME or --identity)")

    @classmethod
    def from_operator(cls, settings: CoreSettings) -> ElectionSettings:
        return cls(
            lease_name=settings.leader_elect_lease_name,
            namespace=settings.lease_namespace,
            identity=settings.identity,
            lease_duration=settings.leader_elect_lease_duration,
            renew_deadline=settings.leader_elect_renew_deadline,
            retry_period=settings.leader_elect_retry_period,
        )

    @property
    def request_timeout(self) -> float:
        # Several attempts must fit in the renew deadline, and one attempt is a GET plus a PUT.
        return max(1.0, min(5.0, self.renew_deadline / 4))


class _TimeoutApi:
    """CoordinationV1Api with a `_request_timeout` on every call."""

    def __init__(self, api: Any, timeout: float) -> None:
        self._api = api
        self._timeout = timeout

    def __getattr__(self, name: str) -> Any:
        return partial(getattr(self._api, name), _request_timeout=self._timeout)


class ReleasableLeaseLock(LeaseLock):
    """The package's LeaseLock with our API client, call timeouts, robust errors and release()."""

    def __init__(self, election: ElectionSettings, api: client.CoordinationV1Api) -> None:
        super().__init__(election.lease_name, election.namespace, election.identity)  # type: ignore[no-untyped-call]
        self.api_instance: Any = _TimeoutApi(api, election.request_timeout)
        # Serialises the elector thread's get/create/update with release() from the event loop.
        self._mutex = threading.Lock()
        self._released = False

    def get(self, name: str, namespace: str) -> tuple[bool, Any]:
        with self._mutex:
            if self._released:
                return False, client.ApiException(status=0, reason="lease released by this replica")
            try:
                return super().get(name, namespace)  # type: ignore[no-untyped-call,no-any-return]
            except client.ApiException:
                raise
            except Exception as exc:  # connection refused, timeout: one failed attempt, not a dead thread
                log.warning("cannot read Lease %s/%s: %s", namespace, name, exc)
                return False, client.ApiException(status=0, reason=str(exc))

    def create(self, name: str, namespace: str, election_record: Any) -> bool:
        with self._mutex:
            if self._released:
                return False
            try:
                return bool(super().create(name, namespace, election_record))  # type: ignore[no-untyped-call]
            except Exception as exc:
                log.warning("cannot create Lease %s/%s: %s", namespace, name, exc)
                return False

    def update(self, name: str, namespace: str, updated_record: Any) -> bool:
        with self._mutex:
            if self._released:
                return False
            spec = self.lease_reference.spec if self.lease_reference is not None else None
            previous = spec.holder_identity if spec is not None else None
            transitions = (spec.lease_transitions or 0) if spec is not None else 0
            try:
                if spec is not None and previous != updated_record.holder_identity:
                    spec.lease_transitions = transitions + 1
                return bool(super().update(name, namespace, updated_record))  # type: ignore[no-untyped-call]
            except Exception as exc:
                log.warning("cannot update Lease %s/%s: %s", namespace, name, exc)
                return False

    def release(self) -> bool:
        """Give the lease up if this replica holds it; no renewal or acquisition happens after.

        Like client-go's ReleaseOnCancel: an empty holder and a 1 s duration, written with the
        resourceVersion just read (a concurrent writer makes this fail, never overwrite)."""
        with self._mutex:
            self._released = True
            try:
                lease = self.api_instance.read_namespaced_lease(self.name, self.namespace)
                if lease.spec is None or lease.spec.holder_identity != self.identity:
                    return False
                now = datetime.now(UTC)
                lease.spec.holder_identity = None
                lease.spec.lease_duration_seconds = 1
                lease.spec.acquire_time = now
                lease.spec.renew_time = now
                self.api_instance.replace_namespaced_lease(self.name, self.namespace, lease)
                return True
            except Exception as exc:
                log.warning("cannot release Lease %s/%s (it will expire): %s", self.namespace, self.name, exc)
                return False


class LeaderElector:
    """Runs the election in a daemon thread; `leading` and `stopped` are set on the event loop.

    `stopped` means the elector is over: the lease was lost (renewals failed for the renew
    deadline) or the election thread died. Either way this replica must not (or no longer) act.
    """

    def __init__(self, election: ElectionSettings, api: client.CoordinationV1Api) -> None:
        # The timings were validated with the settings (electionconfig.Config would sys.exit()).
        self.election = election
        self.lock = ReleasableLeaseLock(election, api)
        self.leading = asyncio.Event()
        self.stopped = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        config = electionconfig.Config(  # type: ignore[no-untyped-call]
            self.lock,
            lease_duration=self.election.lease_duration,
            renew_deadline=self.election.renew_deadline,
            retry_period=self.election.retry_period,
            onstarted_leading=partial(self._signal, self.leading),
            onstopped_leading=partial(self._signal, self.stopped),
        )
        # A daemon thread, not asyncio.to_thread: the election never returns while the process
        # lives, and asyncio.run() would wait for a default-executor thread at shutdown.
        election = LeaderElection(config)  # type: ignore[no-untyped-call]
        self._thread = threading.Thread(
            target=self._run, args=(election,), name="leader-election", daemon=True
        )
        self._thread.start()

    def _run(self, election: LeaderElection) -> None:
        try:
            election.run()  # type: ignore[no-untyped-call]
        except BaseException:
            log.exception("leader election failed")
        finally:
            self._signal(self.stopped)

    def _signal(self, event: asyncio.Event) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(event.set)

    async def release(self) -> bool:
        return await asyncio.to_thread(self.lock.release)


class StandbyHealth:
    """/healthz while this replica waits: kopf's own endpoint exists only once kopf runs, and a
    healthy standby must stay Ready (and alive) without leading."""

    def __init__(
        self, port: int, identity: str, host: str = "0.0.0.0", state: dict[str, Any] | None = None
    ) -> None:
        self._port = port
        self._identity = identity
        self._host = host
        self._state = state if state is not None else {"leader": False}
        self._runner: Any = None

    async def __aenter__(self) -> StandbyHealth:
        if self._port:
            from aiohttp import web  # kopf's own dependency

            async def healthz(_: web.Request) -> web.Response:
                return web.json_response({**self._state, "identity": self._identity})

            app = web.Application()
            app.router.add_get("/healthz", healthz)
            self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await self._runner.setup()
            await web.TCPSite(self._runner, self._host, self._port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Frees the port for kopf's liveness endpoint, which takes over once this replica leads.
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def kubernetes_api_client() -> client.ApiClient:
    """An API client of its own (in-cluster service account, else KUBECONFIG): the election must
    not share a connection pool or configuration with anything else."""
    from kubernetes import config

    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return client.ApiClient(configuration)


def _exit_lost(identity: str, election: ElectionSettings) -> None:
    metrics.LEADER.set(0)
    log.error(
        "leadership lost: %s no longer holds Lease %s/%s; exiting so that nothing keeps writing",
        identity,
        election.namespace,
        election.lease_name,
    )
    for handler in logging.getLogger().handlers:
        handler.flush()
    # Not a graceful stop: handlers in flight would go on writing while another replica leads.
    # Creates are crash-safe (the ownership label), so an abrupt exit never leaves a duplicate.
    os._exit(LOST_EXIT_CODE)


async def _release(elector: LeaderElector) -> None:
    if await elector.release():
        e = elector.election
        log.info("leader election: %s released Lease %s/%s", e.identity, e.namespace, e.lease_name)


async def run_as_leader(
    settings: CoreSettings,
    lead: Callable[[], Awaitable[None]],
    api: client.CoordinationV1Api | None = None,
) -> None:
    """Wait for the lease (as a Ready standby), then run `lead()` (kopf) while holding it.

    `lead()` returns when kopf stops (SIGTERM/SIGINT: kopf handles both); the lease is then
    released. Losing the lease ends the process (`LOST_EXIT_CODE`).
    """
    election = ElectionSettings.from_operator(settings)
    elector = LeaderElector(election, api or client.CoordinationV1Api(kubernetes_api_client()))
    identity = election.identity
    if not settings.verbose:
        # The package logs every attempt ("yet to finish lease_duration ...") at INFO.
        logging.getLogger("leaderelection").setLevel(logging.WARNING)

    loop = asyncio.get_running_loop()
    terminated = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        # Replaced by kopf's own handlers once kopf starts; until then a signal ends the wait.
        loop.add_signal_handler(signum, terminated.set)

    metrics.LEADER.set(0)
    log.info(
        "leader election: %s waits for Lease %s/%s (duration %ss, renew deadline %ss, retry %ss)",
        identity,
        election.namespace,
        election.lease_name,
        election.lease_duration,
        election.renew_deadline,
        election.retry_period,
    )
    elector.start()
    async with StandbyHealth(settings.health_port, identity, settings.bind_address):
        waits = [asyncio.ensure_future(e.wait()) for e in (elector.leading, elector.stopped, terminated)]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()
    if terminated.is_set():
        # The lease may have been won in the same instant: give it back rather than let it expire.
        await _release(elector)
        log.info("leader election: stopped while on standby")
        return
    if elector.stopped.is_set() and not elector.leading.is_set():
        raise RuntimeError("leader election stopped before this replica could lead")

    metrics.LEADER.set(1)
    log.info(
        "leader election: %s became the leader (Lease %s/%s); starting the operator",
        identity,
        election.namespace,
        election.lease_name,
    )
    leading = asyncio.ensure_future(lead())
    lost = asyncio.ensure_future(elector.stopped.wait())
    try:
        await asyncio.wait([leading, lost], return_when=asyncio.FIRST_COMPLETED)
        if lost.done() and not leading.done():
            _exit_lost(identity, election)
        await leading  # kopf stopped on its own (signal) or failed: re-raise its error, if any
    finally:
        lost.cancel()
        metrics.LEADER.set(0)
        await _release(elector)
