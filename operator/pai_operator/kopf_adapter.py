"""The kopf adapter: the only module that knows kopf.

kopf does three things here, for each registry's resource (one kopf operator per controller):
it watches ModelVersions (every event goes to `Engine.observe`),
it owns the finalizer (added on first sight, removed when `Engine.finalize` says the remote side
is done), and it posts Events. Everything else, when passes run and what they write, is the
engine's: there are no kopf timers and no create/update handlers, so an object with nothing due
costs nothing, and kopf writes nothing but the finalizer (and deletion retry progress).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ctypes
import ctypes.util
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import kopf
from kopf._cogs.clients.errors import APINotFoundError  # a watch of a resource that is gone
from kopf._core.engines.peering import Identity  # kopf's NewType for operator(identity=)

from pai_operator import leadership, metrics
from pai_operator.backend import Backend, Resource
from pai_operator.deletion_safety import DeletionBreaker
from pai_operator.engine import Engine
from pai_operator.kube import (
    CrdReader,
    KubeStatusWriter,
    LeaseConfirmations,
    NamespaceAnnotationCache,
    StatusConflict,
    release_all,
)
from pai_operator.reconciler import Event, ObjectView, Reconciler
from pai_operator.registry import PLUGINS, OperatorSettings

log = logging.getLogger(__name__)

NAMESPACE_CACHE_TTL = 60.0
"""Seconds a Namespace's annotations are trusted: an admin's change of its role takes effect
within this time."""


CRD_RETURN_POLL = 2.0
"""Seconds between two reads of a deleted CRD while the controller waits for it to come back."""

HOLD_WAIT = 60.0
"""Seconds a held deletion waits inside its kopf handler for the confirmation before kopf retries
it: a confirmed batch goes on at once, and a held object costs kopf one write a minute."""


LIST_CHUNK_SIZE = 200
"""Objects per page of any list kopf makes (the initial listing is streamed instead): bounds the
memory peak of parsing it (100 and 500 were within 2.5 MiB of 200 at 5,000 objects; 1,000 was
8 MiB over it; one page of all 5,000 stayed 50 MiB over for the process lifetime)."""


class _NoDiffBase(kopf.AnnotationsDiffBaseStorage):
    """kopf's "last handled configuration" drives create/update handlers, which we do not use:
    the engine compares generations itself. Storing it would be one more write per change."""

    def build(self, *, body: Any, extra_fields: Any = None) -> Any:
        # kopf builds the "essence" of every event's body (a deep copy) to diff it against the
        # stored one. With nothing stored the diff is empty anyway: measured with py-spy on a
        # restart at 20,000 objects, the copy was 11.7 % of the operator's CPU.
        return None

    def fetch(self, *, body: Any) -> Any:
        return None

    def store(self, *, body: Any, patch: Any, essence: Any) -> None:
        return None


class _DeletionRetryLogFilter(logging.Filter):
    """Drops kopf's "Handler 'deleted' failed temporarily" line. kopf logs every TemporaryError
    at ERROR, once per retry; the reconciler logs a failed deletion itself, at WARNING and
    rate-limited while it is transient, at ERROR with the way out once it persists."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not ("'deleted'" in text and "failed temporarily" in text)


DELETION_RETRY_LOG_FILTER = _DeletionRetryLogFilter()


class KopfEvents:
    """Posts Events through kopf's queue (batched by kopf, never blocking a pass).

    kopf finds its event queue through context variables that it sets only inside its own
    per-object tasks; the engine's passes run in tasks of their own, so the context of the
    first watch handler call is captured and every post runs inside it."""

    def __init__(self, names: Resource) -> None:
        self._context: contextvars.Context | None = None
        self._names = names

    def capture(self) -> None:
        if self._context is None:
            self._context = contextvars.copy_context()

    def post(self, obj: ObjectView, event: Event) -> None:
        ref: kopf.RawBody = {
            "apiVersion": self._names.api_version,
            "kind": self._names.kind,
            "metadata": {"namespace": obj.namespace, "name": obj.name, "uid": obj.uid},
        }
        if self._context is None:
            log.warning(
                "event %s for %s/%s dropped: no kopf context yet", event.reason, obj.namespace, obj.name
            )
            return
        self._context.run(
            kopf.event, kopf.Body(ref), type=event.type, reason=event.reason, message=event.message
        )


class Controller:
    """One backend's resource: its reconciler, its engine and the kopf registry that feeds it.

    Each controller runs as a kopf operator of its own, because kopf keeps one finalizer per
    operator and every resource has its own (`<group>/finalizer`)."""

    def __init__(
        self,
        settings: OperatorSettings,
        backend: Backend[Any, Any, Any, Any],
        namespaces: NamespaceAnnotationCache,
        closers: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        self.settings = settings
        self.names = backend.names
        self.reconciler: Reconciler[Any, Any, Any, Any] = Reconciler(settings, backend, namespaces)
        self.events = KopfEvents(self.names)
        self.engine = Engine(
            settings,
            backend,
            self.reconciler,
            KubeStatusWriter(resource=(self.names.group, self.names.version, self.names.plural)),
            self.events,
            conflict=StatusConflict,
        )
        # Ownership succession (a restored object taking over its version) needs to know
        # whether the recorded owner still exists; the engine sees every live object.
        self.reconciler.owner_alive = self.engine.is_live
        # Deletion safety: an uninstall never deletes remote data, a bulk deletion waits for a
        # person (deletion_safety.py). The confirmation is an annotation on the operator's Lease.
        self.crd_reader = CrdReader(f"{self.names.plural}.{self.names.group}")
        self.reconciler.crd = self.crd_reader
        self.use_breaker(
            deletion_breaker(settings, self.names.group, self.names.registry, self.engine.__len__)
        )
        self._closers = tuple(closers)
        self.registry = kopf.OperatorRegistry()
        self._engine_task: asyncio.Task[None] | None = None
        self._register()

    def use_breaker(self, breaker: DeletionBreaker) -> None:
        self.breaker = breaker
        self.reconciler.breaker = breaker

    def kopf_settings(self) -> kopf.OperatorSettings:
        s = kopf.OperatorSettings()
        s.persistence.finalizer = self.names.finalizer
        # Everything kopf writes lives under our prefix, never under kopf's default one (a fixed name).
        s.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=self.names.group)
        s.persistence.diffbase_storage = _NoDiffBase(
            prefix=self.names.group, key="last-handled-configuration"
        )
        # kopf posts its own log lines as Events at or above this level ("failed temporarily",
        # one per deletion retry). Ours (Created, Updated, DeletionBlocked once per streak, ...)
        # go through kopf.event(), which this does not filter.
        s.posting.level = logging.CRITICAL
        s.posting.reporting_component = "pai-model-operator"
        s.posting.event_name_prefix = "pai-operator-"
        # Explicit watch timeouts: the server ends each watch within ~5 min and the client gives up
        # on a silent connection, so a half-open TCP connection can never stall the operator.
        s.watching.server_timeout = 270
        s.watching.client_timeout = 300
        s.watching.connect_timeout = 30
        # The initial listing (a restart) as a watch stream (sendInitialEvents; Kubernetes 1.34,
        # our minimum): the API server sends every object from its watch cache as one event and
        # ends with a bookmark. Paged lists (limit/continue) were served page by page, each one
        # asked for after the one before: measured at 20,000 objects, the API server spent 16 s
        # of CPU on the 100 pages of 200 (11-12 s for the list alone, against 2.4 s from its
        # cache), and a restart took 38-40 s to observe every object against 27-29 s streamed
        # (bench.scale). Memory stays bounded as with pages: kopf parses one object at a time.
        s.watching.initial_streaming = True
        # Pages still bound the lists kopf makes otherwise (none of ours with streaming on).
        s.watching.chunk_size = LIST_CHUNK_SIZE
        s.networking.request_timeout = 60
        # kopf's workers only hand events to the engine (microseconds each); the engine's own
        # concurrency bounds passes. A worker holds its slot for idle_timeout after its last
        # event, so slots / idle_timeout bounds how fast a restart's initial listing is taken in:
        # 20 slots x 0.5 s was 40 objects/s (128 s for 5,000 objects, measured).
        s.queueing.worker_limit = max(self.settings.concurrency, 200)
        s.queueing.idle_timeout = 0.1
        s.peering.standalone = True
        # Our resources are known up front; without this kopf would watch CRDs (and Namespaces)
        # to discover resources, which least-privilege RBAC rightly forbids.
        s.scanning.disabled = True
        s.execution.max_workers = 4
        return s

    def _register(self) -> None:
        registry = self.registry
        names = self.names
        resource = (names.group, names.version, names.plural)
        engine = self.engine
        prefix = names.annotation_prefix

        # A registry of our own has none of kopf's default login handlers; the kubernetes client
        # resolves the in-cluster service account or KUBECONFIG like kubectl does.
        @kopf.on.login(registry=registry)
        def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
            return kopf.login_via_client(**kwargs)

        @kopf.on.startup(registry=registry)
        async def startup(**_: Any) -> None:
            # Started from a kopf handler so that the engine's tasks inherit kopf's context
            # (kopf.event() needs its posting queue). A restart after the CRD came back finds the
            # previous engine task over (cleanup), or ends it here: never two.
            if self._engine_task is not None:
                self._engine_task.cancel()
                await asyncio.gather(self._engine_task, return_exceptions=True)
            self._engine_task = asyncio.create_task(engine.run(), name=f"{names.group} engine")

        # Every event, the initial listing included: the engine decides whether a pass is due.
        @kopf.on.event(*resource, registry=registry)
        async def watched(type: str | None, body: kopf.Body, **_: Any) -> None:
            self.events.capture()
            if type == "DELETED":  # gone, whoever removed the finalizer: nothing left to hold
                self.breaker.settle(str(body.get("metadata", {}).get("uid", "")))
            engine.observe(type, _plain(body, prefix))

        @kopf.on.delete(*resource, registry=registry)
        async def deleted(body: kopf.Body, **_: Any) -> None:
            result = await engine.finalize(_plain(body, prefix))
            if result.held:
                # Wait here rather than retry every second: a confirmation releases every waiter
                # at once, and no kopf progress write happens meanwhile.
                released = await self.breaker.wait_released(HOLD_WAIT)
                raise kopf.TemporaryError(result.message, delay=0 if released else 1)
            if not result.done:
                raise kopf.TemporaryError(result.message, delay=result.retry_in)

        @kopf.on.cleanup(registry=registry)
        async def cleanup(**_: Any) -> None:
            if self._engine_task is not None:
                self._engine_task.cancel()
                await asyncio.gather(self._engine_task, return_exceptions=True)
                self._engine_task = None

    async def close(self) -> None:
        """The registry clients: once, when the controller stops for good (kopf may restart
        within one run, after its CRD came back)."""
        for close in self._closers:
            await close()

    async def release_if_uninstalling(self, *, quiet: bool = False) -> bool:
        """Started while the CRD is being deleted (the operator was gone when the uninstall began):
        release every object without touching the registry, so that the CRD deletion completes.
        kopf could not: discovery no longer offers `patch` for a terminating CRD's resource.
        True when the CRD is being deleted or gone."""
        crd = self.reconciler.crd
        try:
            if crd is None or not await crd.terminating(not_before=time.monotonic()):
                return False
        except Exception as exc:  # kopf's own start will tell more; nothing is deleted either way
            log.warning("cannot tell whether the %s CRD is being deleted: %s", self.names.registry, exc)
            return False
        names = self.names
        try:
            released = await asyncio.to_thread(
                release_all,
                (names.group, names.version, names.plural),
                names.finalizer,
                self.settings.namespaces,
                self.crd_reader.api_client(),  # kept: this repeats every 2 s while the CRD is gone
            )
        except Exception as exc:  # gone already (404), or the API server unwell: asked again
            (log.debug if quiet else log.warning)(
                "%s: releasing the objects of a CRD being deleted: %s", names.registry, exc
            )
            return True
        if released or not quiet:
            metrics.CRD_DELETION_RELEASES.labels(names.registry).inc(released)
            log.warning(
                "%s: the CRD %s.%s is being deleted (an uninstall): %d objects released without "
                "touching the registry",
                names.registry,
                names.plural,
                names.group,
                released,
            )
        return True

    async def wait_for_crd(self, stop: asyncio.Event) -> bool:
        """After the CRD was deleted (an uninstall): wait until it is back and served again (a
        reinstall), so that the same process manages new objects without a restart. False when
        the operator stops meanwhile."""
        crd = self.reconciler.crd
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CRD_RETURN_POLL)
                return False
            try:
                if crd is not None and not await crd.terminating(not_before=time.monotonic()):
                    return True
            except Exception as exc:  # still unreadable: keep waiting
                log.debug("CRD of %s not readable yet: %s", self.names.registry, exc)
                continue
            # Still being deleted (or gone): release whatever still carries our finalizer.
            await self.release_if_uninstalling(quiet=True)
        return False


def deletion_breaker(
    settings: OperatorSettings, group: str, registry: str, tracked: Callable[[], int]
) -> DeletionBreaker:
    """The deletion breaker of an API group: its confirmation is the `<group>/confirm-deletions`
    annotation on the operator's Lease."""
    confirmations = LeaseConfirmations(
        settings.lease_namespace, settings.leader_elect_lease_name, f"{group}/confirm-deletions"
    )
    return DeletionBreaker(
        registry=registry,
        threshold=settings.deletion_breaker_threshold,
        fraction=settings.deletion_breaker_fraction,
        window=settings.deletion_breaker_window,
        tracked=tracked,
        confirmations=confirmations,
        how_to_confirm=confirmations.how_to_confirm,
    )


def share_deletion_breakers(settings: OperatorSettings, controllers: Sequence[Controller]) -> None:
    """One breaker for all the kinds of an API group (PAI's ModelVersion and Model): they share
    the confirmation annotation, and a bulk deletion (a namespace holding Models and their
    versions) is one batch to confirm. With a breaker each, two batches would be named at once
    and confirming one would overwrite the other's confirmation: it stayed held for ever (seen
    by bench/chaos_models.py at 200 Models x 10 versions)."""
    groups: dict[str, list[Controller]] = {}
    for controller in controllers:
        groups.setdefault(controller.names.group, []).append(controller)
    for group, members in groups.items():
        if len(members) < 2:
            continue
        engines = [c.engine for c in members]

        def tracked(engines: list[Engine] = engines) -> int:
            return sum(len(engine) for engine in engines)

        shared = deletion_breaker(settings, group, members[0].names.registry, tracked)
        for controller in members:
            controller.use_breaker(shared)


class Operator:
    """Holds the long-lived parts: one controller per backend of each registered plug-in
    (`registry.PLUGINS`; a plug-in that is not configured contributes none)."""

    def __init__(self, settings: OperatorSettings) -> None:
        self.settings = settings
        # One Namespace read per namespace per minute serves the deletion-policy default and the
        # identity mapping, however many objects the namespace holds.
        namespaces = NamespaceAnnotationCache(ttl=NAMESPACE_CACHE_TTL)
        self.controllers = [
            Controller(settings, built.backend, namespaces, closers=built.closers)
            for plugin in PLUGINS
            for built in plugin.build(settings, namespaces)
        ]
        share_deletion_breakers(settings, self.controllers)
        metrics.register_census(
            *(c.engine for c in self.controllers), by_namespace=settings.metrics_namespace_label
        )
        # kopf's per-object logger; adding the same filter object twice is a no-op.
        logging.getLogger("kopf.objects").addFilter(DELETION_RETRY_LOG_FILTER)

    def controller(self, registry: str) -> Controller:
        """The controller of a registry's (first) resource, by `Resource.registry` (tools, tests)."""
        return next(c for c in self.controllers if c.names.registry == registry)


TRIM_DELAYS = (15.0, 30.0)
"""Seconds before the first trims (a start's initial listing is the largest burst)."""
TRIM_INTERVAL = 60.0


async def _return_freed_memory() -> None:
    """Give memory freed by bursts back to the OS. A restart's initial listing parses every
    object at once (tens of MB of transient dicts at 5,000 objects); CPython's allocator keeps
    those pages, so the resident size would stay at the burst's peak for the process lifetime.
    glibc's malloc_trim releases them; once a minute it costs a few milliseconds."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return
    delays = iter(TRIM_DELAYS)
    while True:
        await asyncio.sleep(next(delays, TRIM_INTERVAL))
        gc.collect()
        trim(0)


_METADATA_READ = (
    "name",
    "namespace",
    "uid",
    "generation",
    "resourceVersion",
    "finalizers",
    "deletionTimestamp",
)


def _plain(body: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """kopf's Body is a live view that later events overwrite; the engine keeps plain copies
    of the parts it reads, never managedFields or kubectl's last-applied-configuration."""
    meta = body.get("metadata") or {}
    metadata = {key: _compact(meta[key]) for key in _METADATA_READ if key in meta}
    metadata["annotations"] = {
        sys.intern(k): v for k, v in (meta.get("annotations") or {}).items() if k.startswith(prefix)
    }
    return {
        "metadata": metadata,
        "spec": _compact(body.get("spec") or {}),
        "status": _compact(body.get("status") or {}),
    }


def _compact(value: Any) -> Any:
    """A deep copy whose dict keys are interned: thousands of objects share one copy of
    "modelId", "conditions", "lastTransitionTime"... instead of one each."""
    if isinstance(value, Mapping):
        return {sys.intern(str(k)): _compact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_compact(v) for v in value]
    return value


async def run_operator(settings: OperatorSettings) -> None:
    operator = Operator(settings)
    metrics.serve(settings.metrics_port, settings.bind_address)
    host = f"[{settings.bind_address}]" if ":" in settings.bind_address else settings.bind_address
    liveness = f"http://{host}:{settings.health_port}/healthz" if settings.health_port else None
    log.info(
        "pai-operator starting: %s, resync %ss; %s",
        "all namespaces" if settings.all_namespaces else f"namespaces {', '.join(settings.namespaces)}",
        settings.resync_interval,
        "; ".join(plugin.describe(settings) for plugin in PLUGINS),
    )

    lost_crds: list[Controller] = []

    async def run_kopf() -> None:
        # One kopf operator per controller, stopped together: a signal reaches the last one to
        # install its handlers, and whichever stops first stops the others through the flag.
        stop = asyncio.Event()

        async def wait_for_crd(controller: Controller, liveness: str | None) -> bool:
            # kopf (and its /healthz) is not running meanwhile: stay alive for the kubelet.
            port = settings.health_port if liveness else 0
            state = {"leader": True, "waitingForCrd": f"{controller.names.plural}.{controller.names.group}"}
            # kopf's signal handlers may have ended with it: a SIGTERM meanwhile must still stop
            # the operator, gracefully (the stop flag stops every kopf operator still running, and
            # kopf installs its own handlers again when it restarts).
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            async with leadership.StandbyHealth(port, settings.identity, settings.bind_address, state):
                return await controller.wait_for_crd(stop)

        async def run_one(controller: Controller, liveness: str | None) -> None:
            try:
                while True:
                    if await controller.release_if_uninstalling():
                        if not await wait_for_crd(controller, liveness):
                            return
                        continue
                    try:
                        await kopf.operator(
                            registry=controller.registry,
                            settings=controller.kopf_settings(),
                            clusterwide=settings.all_namespaces,
                            namespaces=list(settings.namespaces),
                            liveness_endpoint=liveness,
                            # Without it kopf derives one from getpass.getuser(), which raises
                            # KeyError in the image: uid 65532 has no /etc/passwd entry (found by
                            # the kubelet e2e).
                            identity=Identity(settings.identity),
                            standalone=True,  # kopf's peering is not leader election: the Lease decides
                            stop_flag=stop,
                        )
                        return
                    except APINotFoundError:
                        # kopf's watch ends with a 404 once the CRD is gone (it watches no CRDs
                        # itself, with scanning off). kopf cannot be restarted beside the other
                        # controllers' operators: an operator that exits cancels every task
                        # started after it started, theirs included. So everything stops, and
                        # the process starts again in place once the CRD is back (a reinstall).
                        if not stop.is_set():
                            log.warning(
                                "%s: the CRD %s.%s is gone (an uninstall?); the operator stops and "
                                "starts again in place once it is back",
                                controller.names.registry,
                                controller.names.plural,
                                controller.names.group,
                            )
                            lost_crds.append(controller)
                    return
            finally:
                stop.set()
                await controller.close()

        trim = asyncio.create_task(_return_freed_memory(), name="pai-operator memory")
        try:
            await asyncio.gather(
                *(
                    run_one(controller, liveness if i == 0 else None)
                    for i, controller in enumerate(operator.controllers)
                )
            )
        finally:
            trim.cancel()

    if settings.leader_elect:
        await leadership.run_as_leader(settings, run_kopf)
    else:
        metrics.LEADER.set(1)
        await run_kopf()
    if lost_crds:
        # Every controller, not only the one that saw the 404: kopf may have ended the others
        # before they released their own objects, whose CRD deletion would then wait forever.
        await _restart_in_place_when_back(operator.controllers, settings)


async def _restart_in_place_when_back(lost: Sequence[Controller], settings: OperatorSettings) -> None:
    """After an uninstall deleted a CRD under a running operator: wait (healthy, and stopping on
    SIGTERM) until every lost CRD is back, then replace this process with a fresh one (same
    PID, arguments and environment), so that a reinstall is managed without a restart from
    outside. The Lease was released already: a standby may act meanwhile."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    state = {"leader": False, "waitingForCrd": ", ".join(f"{c.names.plural}.{c.names.group}" for c in lost)}
    async with leadership.StandbyHealth(
        settings.health_port, settings.identity, settings.bind_address, state
    ):
        for controller in lost:
            if not await controller.wait_for_crd(stop):
                return
    log.info("the CRDs are back; the operator starts again in place")
    logging.shutdown()
    os.execv(sys.executable, sys.orig_argv)  # noqa: S606 (this very program, as it was started)
