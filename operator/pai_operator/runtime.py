"""The kopf wiring: the only module that knows kopf.

Handlers are thin: they turn kopf's callback arguments into an `ObjectView`, call the
`Reconciler`, and apply its result (status patch through kopf's `patch`, events through kopf).

Scheduling. create/update/resume reconcile at once. Drift checks and retries run from one
per-object timer that ticks every `settings.tick` seconds and acts only when the object's
next attempt is due (resync interval with jitter, or the backoff of the last failure), so a
tick costs no API call. Handlers and the timer of one object share a lock: kopf runs them as
separate tasks, and two concurrent passes could both decide to create.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import kopf

from pai_operator import leadership, metrics
from pai_operator.pai import PaiClient, PaiClientConfig
from pai_operator.reconciler import (
    DeletionResult,
    Event,
    ObjectState,
    ObjectView,
    PassResult,
    Reconciler,
)
from pai_operator.settings import OperatorSettings
from pai_operator.spec import FINALIZER, GROUP, PAUSED_ANNOTATION, PLURAL, VERSION

log = logging.getLogger(__name__)


class ClientPool:
    """One PAI client per region (quotas and endpoints are per region), created on first use."""

    def __init__(self, settings: OperatorSettings) -> None:
        self._settings = settings
        self._clients: dict[str, PaiClient] = {}

    def for_region(self, region_id: str) -> PaiClient:
        key = "" if self._settings.endpoint else region_id  # an override serves every region
        client = self._clients.get(key)
        if client is None:
            config = PaiClientConfig(
                region_id=region_id,
                endpoint=self._settings.endpoint,
                use_vpc=self._settings.use_vpc_endpoint,
                read_rate=self._settings.read_rate,
                write_rate=self._settings.write_rate,
                user_agent=self._settings.user_agent,
            )
            client = PaiClient(
                config,
                on_request=metrics.observe_pai_request,
                on_rate_limit_wait=metrics.observe_rate_limit_wait,
            )
            self._clients[key] = client
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


class NamespaceAnnotationCache:
    """Namespace annotations (for the deletion-policy default), read only when deleting.

    Uses the synchronous `kubernetes` client in a worker thread: one GET per deletion does not
    justify a second asynchronous Kubernetes stack next to kopf's.
    """

    def __init__(self, ttl: float = 30.0) -> None:
        self._ttl = ttl
        self._cache: dict[str, tuple[float, Mapping[str, str]]] = {}
        self._pending: dict[str, asyncio.Future[Mapping[str, str]]] = {}
        self._api: Any = None

    def _core(self) -> Any:
        if self._api is None:
            from kubernetes import client, config

            try:
                config.load_incluster_config()  # type: ignore[no-untyped-call]
            except config.ConfigException:
                config.load_kube_config()  # type: ignore[no-untyped-call]
            self._api = client.CoreV1Api()
        return self._api

    async def get(self, namespace: str) -> Mapping[str, str]:
        cached = self._cache.get(namespace)
        if cached and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        # Deleting many objects of one namespace at once must cost one read, not one each.
        pending = self._pending.get(namespace)
        if pending is None:
            pending = self._pending[namespace] = asyncio.ensure_future(self._read(namespace))
            pending.add_done_callback(lambda _: self._pending.pop(namespace, None))
        return await asyncio.shield(pending)

    async def _read(self, namespace: str) -> Mapping[str, str]:
        try:
            ns = await asyncio.to_thread(self._core().read_namespace, namespace)
            annotations: Mapping[str, str] = dict(ns.metadata.annotations or {})
        except Exception as exc:  # RBAC may forbid it (single-namespace installs): use the default
            log.warning(
                "cannot read namespace %s annotations (%s); using the operator default", namespace, exc
            )
            annotations = {}
        self._cache[namespace] = (time.monotonic(), annotations)
        return annotations


def _state(memo: Any) -> ObjectState:
    state = memo.get("state")
    if state is None:
        state = memo["state"] = ObjectState()
    return state  # type: ignore[no-any-return]


def _lock(memo: Any) -> asyncio.Lock:
    lock = memo.get("lock")
    if lock is None:
        lock = memo["lock"] = asyncio.Lock()
    return lock  # type: ignore[no-any-return]


def _post(body: kopf.Body, events: list[Event]) -> None:
    for event in events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)


def _apply_status(patch: kopf.Patch, status_patch: Mapping[str, Any] | None) -> None:
    if status_patch:
        for key, value in status_patch.items():
            patch.status[key] = value


class Operator:
    """Holds the long-lived parts (clients, caches, reconciler) and registers the handlers."""

    def __init__(self, settings: OperatorSettings) -> None:
        self.settings = settings
        self.clients = ClientPool(settings)
        self.reconciler = Reconciler(settings, self.clients, NamespaceAnnotationCache())
        self.census = metrics.ConditionCensus()
        self.registry = kopf.OperatorRegistry()
        self._register()

    def kopf_settings(self) -> kopf.OperatorSettings:
        s = kopf.OperatorSettings()
        s.persistence.finalizer = FINALIZER
        # Everything kopf writes lives under our prefix, never under kopf's default one (design.md).
        s.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        s.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=GROUP, key="last-handled-configuration"
        )
        # kopf posts its own log lines as Events at or above this level: "Handler succeeded" (one
        # per timer tick) and "failed temporarily" (one per deletion retry). Ours (Created,
        # Updated, DeletionBlocked once per streak, ...) go through kopf.event(), which this does
        # not filter; unexpected exceptions still reach the log with their traceback.
        s.posting.level = logging.CRITICAL
        s.posting.reporting_component = "pai-model-operator"
        s.posting.event_name_prefix = "pai-operator-"
        # Explicit watch timeouts: the server ends each watch within ~5 min and the client gives up
        # on a silent connection, so a half-open TCP connection can never stall the operator.
        s.watching.server_timeout = 270
        s.watching.client_timeout = 300
        s.watching.connect_timeout = 30
        s.networking.request_timeout = 60
        s.queueing.worker_limit = self.settings.concurrency
        # kopf keeps an object's worker (and its slot in worker_limit) alive for idle_timeout
        # after the last event; at kopf's 5 s, a burst of new objects went through 20 at a time
        # with 5 s pauses (4 objects/s measured). Slots are cheap to re-create.
        s.queueing.idle_timeout = 0.5
        # On deletion kopf stops the object's timer before the deletion handler may run; if the
        # timer is mid-pass it re-checks only every cancellation_polling (60 s by default).
        s.background.instant_exit_timeout = 1.0
        s.background.cancellation_polling = 1.0
        s.peering.standalone = True
        # Our one resource is known up front; without this kopf would watch CRDs (and Namespaces)
        # to discover resources, which least-privilege RBAC rightly forbids.
        s.scanning.disabled = True
        s.execution.max_workers = 4
        return s

    async def reconcile(self, body: kopf.Body, memo: Any, patch: kopf.Patch, trigger: str) -> None:
        state = _state(memo)
        async with _lock(memo):
            started = time.monotonic()
            result: PassResult = await self.reconciler.reconcile(ObjectView.from_body(body), state)
            elapsed = time.monotonic() - started
        metrics.RECONCILES.labels(result.outcome).inc()
        metrics.RECONCILE_SECONDS.labels(result.outcome).observe(elapsed)
        delay = result.retry_in if result.retry_in is not None else self.reconciler.resync_delay()
        memo["next_attempt_at"] = time.monotonic() + delay
        _apply_status(patch, result.status_patch)
        _post(body, result.events)
        self.census.record(str(body.metadata.uid), result.conditions)
        log.debug(
            "%s pass of %s/%s: %s; status write: %s; next in %.1fs",
            trigger,
            body.metadata.namespace,
            body.metadata.name,
            result.outcome,
            bool(result.status_patch),
            delay,
        )

    async def finalize(self, body: kopf.Body, memo: Any, patch: kopf.Patch) -> None:
        state = _state(memo)
        async with _lock(memo):
            result: DeletionResult = await self.reconciler.finalize(ObjectView.from_body(body), state)
        _post(body, result.events)
        if not result.done:
            _apply_status(patch, result.status_patch)
            raise kopf.TemporaryError(result.message, delay=result.retry_in)
        self.census.forget(str(body.metadata.uid))

    def _register(self) -> None:
        registry = self.registry
        resource = (GROUP, VERSION, PLURAL)

        # A registry of our own has none of kopf's default login handlers; the kubernetes client
        # resolves the in-cluster service account or KUBECONFIG like kubectl does.
        @kopf.on.login(registry=registry)
        def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
            return kopf.login_via_client(**kwargs)

        @kopf.on.resume(*resource, registry=registry)
        async def resumed(body: kopf.Body, memo: Any, patch: kopf.Patch, **_: Any) -> None:
            await self.reconcile(body, memo, patch, "resume")

        @kopf.on.create(*resource, registry=registry)
        async def created(body: kopf.Body, memo: Any, patch: kopf.Patch, **_: Any) -> None:
            await self.reconcile(body, memo, patch, "create")

        # Any change of spec, labels or annotations (pause) is a reason to look again.
        @kopf.on.update(*resource, registry=registry)
        async def updated(body: kopf.Body, memo: Any, patch: kopf.Patch, **_: Any) -> None:
            await self.reconcile(body, memo, patch, "update")

        # kopf treats every annotation under its storage prefix (ours: pai.mlops.dev/) as its own
        # and leaves it out of the diff that drives on.update, so toggling the pause annotation
        # would wait for the next resync. Watch it directly and make the next tick due now.
        @kopf.on.event(*resource, registry=registry)
        async def watched(body: kopf.Body, memo: Any, type: str, **_: Any) -> None:
            paused = body.metadata.annotations.get(PAUSED_ANNOTATION)
            if "paused_seen" in memo and memo["paused_seen"] != paused and "next_attempt_at" in memo:
                memo["next_attempt_at"] = 0.0
            memo["paused_seen"] = paused

        @kopf.timer(*resource, interval=self.settings.tick, registry=registry)
        async def tick(body: kopf.Body, memo: Any, patch: kopf.Patch, **_: Any) -> None:
            due = memo.get("next_attempt_at")
            # The first pass belongs to create/resume: kopf starts timers before it has added
            # the finalizer and run the creation handler, and a timer pass then would make the
            # creation handler's pass a redundant second one.
            if due is None or time.monotonic() < due:
                return
            await self.reconcile(body, memo, patch, "resync")

        @kopf.on.delete(*resource, registry=registry)
        async def deleted(body: kopf.Body, memo: Any, patch: kopf.Patch, **_: Any) -> None:
            await self.finalize(body, memo, patch)

        @kopf.on.cleanup(registry=registry)
        async def cleanup(**_: Any) -> None:
            await self.clients.aclose()


async def run_operator(settings: OperatorSettings) -> None:
    operator = Operator(settings)
    metrics.serve(settings.metrics_port)
    liveness = f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
    log.info(
        "pai-operator starting: %s, region %s, endpoint %s, resync %ss",
        "all namespaces" if settings.all_namespaces else f"namespaces {', '.join(settings.namespaces)}",
        settings.region,
        settings.endpoint or "(from region)",
        settings.resync_interval,
    )

    async def run_kopf() -> None:
        await kopf.operator(
            registry=operator.registry,
            settings=operator.kopf_settings(),
            clusterwide=settings.all_namespaces,
            namespaces=list(settings.namespaces),
            liveness_endpoint=liveness,
            standalone=True,  # kopf's peering is not leader election: the Lease decides who acts
        )

    if settings.leader_elect:
        await leadership.run_as_leader(settings, run_kopf)
    else:
        metrics.LEADER.set(1)
        await run_kopf()
