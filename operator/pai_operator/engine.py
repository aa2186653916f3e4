"""The engine: one scheduler for every object, batched observation, and the status writes.

Knows no kopf and no registry: a backend (`pai_operator.backend.Backend`) names the resource,
groups objects and lists a group; one engine runs per backend. The kopf adapter feeds it watch
events (`observe`) and deletions (`finalize`).
The engine keeps a small record per object, decides when each object's next pass is due, runs
passes (never two at once for one object, at most `concurrency` in all, deletions first), writes
status, posts events, and counts conditions for the metrics at scrape time.

Cost follows work, not object count:
- an object with nothing due costs nothing per second: there are no per-object timers, only
  one due-time queue for passes (watch events, retries, backoff) and one for observations;
- an object in sync (a "settled" one) is not passed at resync: its group (PAI: identity, region,
  model) is observed with one list (all pages), as often as the observation budget allows
  (`observation.ObservationPacer`: a share of the identity's read quota, spread evenly; at least
  once per resync interval, at most once per minimum interval), and only objects whose listed
  version calls for it get a full pass (which re-reads before writing); a listed item
  byte-identical to the one last compared with its unchanged object is not compared again;
- passes come first: no observation starts while a pass is due and waiting for a slot;
- a restart observes settled objects through those lists and writes nothing to Kubernetes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import random
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol

from pai_operator import metrics
from pai_operator.backend import Backend, GroupKey, Resource
from pai_operator.core_settings import CoreSettings
from pai_operator.errors import AuthError, InvalidRequestError, ModelNotFoundError, RemoteError
from pai_operator.observation import QuotaKey, list_is_cheaper, listed_digest, pages_for
from pai_operator.reconciler import (
    LAST_HANDLED_RECONCILE_AT,
    DeletionResult,
    Event,
    ObjectState,
    ObjectView,
    PassResult,
)
from pai_operator.scheduling import DueQueue

log = logging.getLogger(__name__)

ObjectKey = tuple[str, str]
"""(namespace, name)"""

SETTLED_OUTCOMES: Final = frozenset({"in_sync", "changed", "observed"})
"""Outcomes after which an object is in sync (a change pass re-reads after its writes)."""
STARTUP_OBSERVE_DELAY: Final = 1.0
"""Seconds a group's first observation waits for more members (a restart's initial listing
arrives object by object); each new member pushes it back, so one list serves them all. A
streamed listing brings about a thousand objects a second (20,000 in 200 models: each model's
next member within a fraction of a second), so a second's quiet means the listing is over; each
second more is a second more of a restart (bench.scale)."""
MAX_CONCURRENT_OBSERVATIONS: Final = 8
"""Observations (a list and the comparison of its items) in flight at once. A restart's first
observations of every group are CPU-bound at 8 and waited on the registry at 4 (20,000 objects
in 200 models: 5.5 s against 7.5-10 s); the read rate limiter bounds the calls either way."""
PACING_SLACK: Final = 0.001
"""Seconds an observation may start before the budget's exact slot: a wake-up that lands a
rounding error early must not cost a whole extra sleep."""
STALLED: Final = "Stalled"
"""The condition type whose turns to True are counted (pai_operator_stalled_transitions_total)."""


class Passes(Protocol):
    """What the engine needs of the reconciler (`pai_operator.reconciler.Reconciler`)."""

    async def reconcile(self, obj: ObjectView, state: ObjectState) -> PassResult: ...
    def needs_pass(self, obj: ObjectView, state: ObjectState, listed: Any) -> bool: ...
    async def finalize(self, obj: ObjectView, state: ObjectState) -> DeletionResult: ...
    def resync_delay(self) -> float: ...
    def backoff(self, failures: int, error: RemoteError | None = None) -> float: ...


class StatusWriter(Protocol):
    async def patch_status(
        self, namespace: str, name: str, uid: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]: ...


class EventSink(Protocol):
    def post(self, obj: ObjectView, event: Event) -> None: ...


# Every distinct census row once: a fleet has a handful (Ready/Synced/... by reason), shared by
# all records that show it. Bounded by the condition types and reasons the reconciler writes.
_CENSUS_ROWS: dict[tuple[tuple[str, str, str], ...], tuple[tuple[str, str, str], ...]] = {}


@dataclass(slots=True)
class Tracked:
    """Per-object memory: only what scheduling and planning need (never the whole body)."""

    names: Resource  # the backend's: finalizer, annotation prefix, pause annotation
    uid: str
    namespace: str
    name: str
    generation: int | None
    resource_version: str
    # spec and status as compact JSON: a few hundred bytes instead of several KB of nested dicts
    # per object (measured at 5,000 objects). Decoded only when a pass or a list reads them.
    spec_json: bytes
    status_json: bytes
    annotations: dict[str, str]
    has_finalizer: bool
    deleting: bool
    state: ObjectState = field(default_factory=ObjectState)
    handled_generation: int | None = None
    handled_request: str | None = None  # the reconcile-requested-at value the last pass saw
    group: GroupKey | None = None
    observed: bool = False  # seen through a pass or a list since this process started
    why: str = "event"  # what made the next pass due (logs and the benchmark read it)
    conditions: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # condition type -> reason (metrics)
    # (generation, engine clock) of the watch event that showed a generation not yet Ready:
    # pai_operator_time_to_ready_seconds measures from there.
    ready_clock: tuple[int | None, float] | None = None
    # The digest of the listed item (salted with resourceVersion) last compared and found in
    # sync, and when: the same item for the same object needs no comparison until the resync
    # interval has passed (which re-reads what a list does not show: Namespace policies, referents).
    listed: bytes | None = None
    compared_at: float = 0.0
    # The registry key last derived from spec and status, and the two JSON values it came from
    # (the same objects, so no extra memory): every observation asks for it per listed item, and
    # decoding both JSONs each time was most of an in-sync item's cost (bench.profile_observation).
    key_value: str | None = None
    key_source: tuple[bytes, bytes] | None = None
    # The census's view of conditions and reasons, one shared tuple per distinct combination,
    # and the two dicts it was taken from (a scrape counts records, not conditions: at 20,000
    # objects counting each condition took ~40 ms per scrape in the metrics thread, GIL held).
    census_row: tuple[tuple[str, str, str], ...] = ()
    census_of: tuple[dict[str, str], dict[str, str]] | None = None

    @property
    def key(self) -> ObjectKey:
        return (self.namespace, self.name)

    @property
    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = json.loads(self.spec_json)
        return spec

    @property
    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = json.loads(self.status_json)
        return status

    def decoded(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Spec and status, decoded from the kept JSON."""
        return self.spec, self.status

    def remote_key(
        self,
        key_of: Callable[[dict[str, Any], dict[str, Any]], str | None],
        decoded: tuple[dict[str, Any], dict[str, Any]] | None = None,
    ) -> str | None:
        """`key_of(spec, status)`, decoded again only when the watch showed a new spec or status.
        `decoded`: the spec and status this record was just made from (no decoding at all)."""
        source = self.key_source
        if source is None or source[0] is not self.spec_json or source[1] is not self.status_json:
            self.key_value = key_of(*(decoded or self.decoded()))
            self.key_source = (self.spec_json, self.status_json)
        return self.key_value

    def census_signature(self) -> tuple[tuple[str, str, str], ...]:
        """(type, status, reason) of each condition; derived again only after a pass or an event
        replaced the conditions. Called from the metrics thread: a scrape between the two
        assignments of a pass takes a mixed view once and derives it again at the next."""
        conditions, reasons = self.conditions, self.reasons
        source = self.census_of
        if source is None or source[0] is not conditions or source[1] is not reasons:
            row = tuple((ctype, status, reasons.get(ctype, "")) for ctype, status in conditions.items())
            self.census_row = _CENSUS_ROWS.setdefault(row, row)
            self.census_of = (conditions, reasons)
        return self.census_row

    @property
    def paused(self) -> bool:
        return self.annotations.get(self.names.paused_annotation, "").strip().lower() == "true"

    @property
    def requested(self) -> str | None:
        return self.annotations.get(self.names.reconcile_request_annotation)

    def reconcile_requested(self) -> bool:
        """A reconcile-requested-at value no pass has handled yet (neither in this process nor, as
        status.lastHandledReconcileAt says, before a restart). An annotation change does not bump
        the generation, so this is the only thing that makes it due."""
        value = self.requested
        if value is None or value == self.handled_request:
            return False
        return value != self.status.get(LAST_HANDLED_RECONCILE_AT)

    def view(self) -> ObjectView:
        return ObjectView(
            uid=self.uid,
            namespace=self.namespace,
            name=self.name,
            generation=self.generation,
            spec=self.spec,
            status=self.status,
            annotations=self.annotations,
        )

    def absorb(self, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        self.generation = meta.get("generation")
        self.resource_version = str(meta.get("resourceVersion", ""))
        spec, status = _spec_and_status(body)
        self.spec_json = _encode(spec)
        self.status_json = _encode(status)
        # Only our own annotations matter to a pass (pause, deletion policy); kubectl's
        # last-applied-configuration alone would double the memory per object.
        prefix = self.names.annotation_prefix
        self.annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith(prefix)}
        self.has_finalizer = self.names.finalizer in (meta.get("finalizers") or ())
        self.deleting = bool(meta.get("deletionTimestamp"))
        conditions = [c for c in status.get("conditions") or [] if isinstance(c, Mapping)]
        self.conditions = {str(c.get("type")): str(c.get("status")) for c in conditions}
        # Interned: a handful of distinct reasons shared by thousands of records.
        self.reasons = {str(c.get("type")): sys.intern(str(c.get("reason", ""))) for c in conditions}

    @classmethod
    def from_body(cls, names: Resource, body: Mapping[str, Any]) -> Tracked:
        meta = body.get("metadata") or {}
        tracked = cls(
            names=names,
            uid=str(meta.get("uid", "")),
            namespace=str(meta.get("namespace", "")),
            name=str(meta.get("name", "")),
            generation=None,
            resource_version="",
            spec_json=b"{}",
            status_json=b"{}",
            annotations={},
            has_finalizer=False,
            deleting=False,
        )
        tracked.absorb(body)
        return tracked

    def settled_in_status(self, key: str | None, status: Mapping[str, Any]) -> bool:
        """In sync at its current generation as far as `status` (this record's, decoded) says
        (restart: observe by list); `key` is the version name the backend reads from this record."""
        if status.get("observedGeneration") != self.generation or key is None:
            return False
        synced = [c for c in status.get("conditions") or [] if c.get("type") == "Synced"]
        return bool(synced) and synced[0].get("status") == "True"


def _spec_and_status(body: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A watched body's spec and status, as `Tracked.absorb` encodes them."""
    return body.get("spec") or {}, body.get("status") or {}


def _encode(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _quota(key: GroupKey) -> QuotaKey:
    """Whose read quota observing a group spends: its identity's, at its location."""
    return (key[0], key[1])


def _newer(candidate: str, current: str) -> bool:
    """resourceVersions are opaque, but etcd's are integers; where both are, an older event
    (one our own status write has already superseded) must not roll the record back."""
    if candidate.isdigit() and current.isdigit():
        return int(candidate) > int(current)
    return candidate != current


@dataclass
class _Group:
    members: set[ObjectKey] = field(default_factory=set)
    last_total: int | None = None
    failures: int = 0
    list_refused: bool = False
    charged: int = 0  # read calls charged to the budget when the running observation started


class Engine:
    def __init__(
        self,
        settings: CoreSettings,
        backend: Backend[Any, Any, Any, Any],
        passes: Passes,
        writer: StatusWriter,
        events: EventSink,
        *,
        conflict: type[Exception] = LookupError,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._backend = backend
        self.names = backend.names
        self._passes = passes
        self._writer = writer
        self._events = events
        self._conflict = conflict
        self._clock = clock
        self._wall = wall
        self._rng = rng or random.Random()
        self._pacer = backend.observation_pacer
        self._objects: dict[ObjectKey, Tracked] = {}
        self._groups: dict[GroupKey, _Group] = {}
        self._due = DueQueue[ObjectKey]()
        self._observe_due = DueQueue[GroupKey]()
        self._running: dict[ObjectKey, asyncio.Task[None]] = {}
        self._rerun: set[ObjectKey] = set()
        self._passing: dict[ObjectKey, int | None] = {}  # the generation each running pass handles
        self._observing: set[GroupKey] = set()
        # Groups whose first observation in this process is due (a restart, a new identity): not
        # held back by the budget's spacing, so a restart observes every object promptly; charged
        # to it all the same, so the observations after it are spread.
        self._first_observations: set[GroupKey] = set()
        self._active = 0
        self._slot_waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        metrics.initialize(self.names.registry, self.names.kind)
        # A backend whose objects refer to another kind's (PAI versions to Models) is told how
        # to pass them when a referent changes.
        backend.bind(self.requeue)

    # --- inputs -----------------------------------------------------------------------------

    def is_live(self, uid: str) -> bool:
        """Whether an object with this UID exists as far as the watch has shown (a terminating one
        still does). Asked only when a version names this object's namespace/name under another
        UID, which within one cluster can only be a predecessor: O(objects) then is fine."""
        return any(record.uid == uid for record in self._objects.values())

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A watch event (None: the initial listing). Cheap: no I/O, at most one schedule."""
        meta = body.get("metadata") or {}
        key: ObjectKey = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        self._backend.watched(key[0], key[1], None if event_type == "DELETED" else body)
        if event_type == "DELETED":
            self._forget(key)
            return
        record = self._objects.get(key)
        if record is not None and record.uid != meta.get("uid"):
            self._forget(key)  # replaced under the same name: a new object
            record = None
        first_sight = record is None
        why = "create" if event_type == "ADDED" else "restart"
        if record is None:
            record = self._objects[key] = Tracked.from_body(self.names, body)
            if event_type == "ADDED":
                self._start_ready_clock(record)
        else:
            if not _newer(str(meta.get("resourceVersion", "")), record.resource_version):
                return
            was_paused = record.paused
            seen_generation = record.generation
            record.absorb(body)
            if record.generation != seen_generation:
                self._start_ready_clock(record)
            why = "create" if record.handled_generation is None else "update"
            if record.paused != was_paused:
                record.handled_generation = None  # pause/resume takes effect at once
                why = "pause" if record.paused else "resume"
        if record.deleting:
            self._due.cancel(key)
            self._leave_group(record)
            return
        if not record.has_finalizer:
            return  # kopf adds it first; no remote version may exist without it
        if record.reconcile_requested():
            self._schedule(key, self._clock(), "requested")  # sooner than a resync, whatever is due
        elif first_sight and self._settled_in_status(record, decoded := _spec_and_status(body)):
            record.handled_generation = record.generation
            self._join_group(record, first_observation=True, decoded=decoded)
        elif record.generation != record.handled_generation and not (
            # A pass of this very generation is running: the event is most often its own writes
            # coming back (kopf's finalizer, the status it wrote). It ends by taking the
            # generation as handled, and `_after_pass` passes again if the spec moved meanwhile;
            # a second pass now would only repeat the read (one more GET per create and update).
            why in ("create", "update") and self._passing.get(key) == record.generation
        ):
            self._schedule(key, self._clock(), why)

    def requeue(self, namespace: str, matches: Callable[[Mapping[str, Any]], bool]) -> int:
        """Pass now every live object of `namespace` whose spec `matches` (`backend.Requeue`):
        how objects waiting for a referent start as soon as it is ready. O(objects), and only
        when a referent changes."""
        now = self._clock()
        woken = 0
        for record in self._objects.values():
            if record.namespace != namespace or record.deleting or not record.has_finalizer:
                continue
            if matches(record.spec):
                self._leave_group(record)
                self._schedule(record.key, now, "reference")
                woken += 1
        return woken

    def _start_ready_clock(self, record: Tracked) -> None:
        """A generation this process sees arrive. One whose status already speaks of it (a
        re-listing, another replica's work) is not new: nothing to time."""
        if record.status.get("observedGeneration") != record.generation:
            record.ready_clock = (record.generation, self._clock())
        else:
            record.ready_clock = None

    async def finalize(self, body: Mapping[str, Any]) -> DeletionResult:
        """The deletion pass, after any running pass of the object; before queued passes."""
        self.observe("MODIFIED", body)
        meta = body.get("metadata") or {}
        key: ObjectKey = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        record = self._objects.get(key)
        if record is None or record.uid != meta.get("uid"):
            record = Tracked.from_body(self.names, body)
        record.deleting = True
        self._due.cancel(key)
        self._leave_group(record)
        while (running := self._running.get(key)) is not None:
            await asyncio.wait([running])
        await self._acquire_slot()
        try:
            result = await self._passes.finalize(record.view(), record.state)
        finally:
            self._release_slot()
        self._post(record, result.events)
        if result.done:
            self._forget(key)
            self._observe_deletion(meta.get("deletionTimestamp"))
        elif result.status_patch:
            stalled = record.conditions.get(STALLED)
            await self._write_status(record, result.status_patch)
            self._count_stalled(record, stalled)
        return result

    def _observe_deletion(self, deletion_timestamp: object) -> None:
        """How long the finalizer held the object: from its deletionTimestamp (the API server's
        clock, whole seconds) to now, so a restart in between does not hide the wait."""
        if not isinstance(deletion_timestamp, str):
            return
        try:
            requested = datetime.fromisoformat(deletion_timestamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return
        seconds = max(0.0, self._wall() - requested)
        metrics.DELETION_SECONDS.labels(self.names.registry, self.names.kind).observe(seconds)

    def _count_stalled(self, record: Tracked, before: str | None) -> None:
        """A Stalled condition that this process turned True (any reason). Only our own writes
        count: a watch event showing another replica's write is that replica's transition."""
        if record.conditions.get(STALLED) == "True" and before != "True":
            metrics.STALLED_TRANSITIONS.labels(self.names.registry, self.names.kind).inc()

    # --- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Dispatch due work until cancelled."""
        try:
            while True:
                self._wake.clear()
                self.dispatch()
                await self._sleep_until_due()
        finally:
            for task in list(self._tasks):
                task.cancel()

    async def _sleep_until_due(self) -> None:
        candidates = []
        if self._active < self.settings.concurrency:
            candidates.append(self._due.next_due())
        if len(self._observing) < MAX_CONCURRENT_OBSERVATIONS and not self._passes_waiting(self._clock()):
            candidates.append(self._observe_due.next_due())
        due = [c for c in candidates if c is not None]
        timeout = max(0.0, min(due) - self._clock()) if due else None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    def dispatch(self) -> list[asyncio.Task[None]]:
        """Start what is due now (tests drive this with a fake clock). Deletions waiting for a
        slot go first: a pass never takes the slot a finalizer is waiting for."""
        now = self._clock()
        started: list[asyncio.Task[None]] = []
        while self._active < self.settings.concurrency and not self._slot_waiters:
            keys = self._due.pop_due(now, limit=1)
            if not keys:
                break
            key = keys[0]
            record = self._objects.get(key)
            if record is None or record.deleting or not record.has_finalizer:
                continue
            if key in self._running:
                self._rerun.add(key)
                continue
            self._active += 1
            self._passing[key] = record.generation
            task = self._spawn(self._pass(record))
            self._running[key] = task
            started.append(task)
        # Passes first: while one is due and waiting for a slot, no observation starts (its list
        # would take read calls the pass needs); it starts once the passes have slots.
        while len(self._observing) < MAX_CONCURRENT_OBSERVATIONS and not self._passes_waiting(now):
            groups = self._observe_due.pop_due(now, limit=1)
            if not groups:
                break
            group_key = groups[0]
            group = self._groups.get(group_key)
            if group is None:
                continue
            quota = _quota(group_key)
            start = self._pacer.start_at(quota, now)
            first = group_key in self._first_observations
            if start > now + PACING_SLACK and not first:  # the budget is spent until then: spread
                self._observe_due.reschedule(group_key, start)
                continue
            self._first_observations.discard(group_key)
            group.charged = self._cost(group)
            self._pacer.spend(quota, group.charged, now)
            self._observing.add(group_key)
            started.append(self._spawn(self._observe_group(group_key)))
        return started

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Never silent: a pass that dies unexpectedly would otherwise leave its object
            # unscheduled with nothing in the log.
            log.error("engine task failed", exc_info=task.exception())

    async def drain(self) -> None:
        """Wait for every started task (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _schedule(self, key: ObjectKey, at: float, why: str) -> None:
        if self._due.schedule(key, at):
            record = self._objects.get(key)
            if record is not None:
                record.why = why
            self._wake.set()

    async def _acquire_slot(self) -> None:
        while self._active >= self.settings.concurrency:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._slot_waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._slot_waiters:
                    self._slot_waiters.remove(waiter)
        self._active += 1

    def _release_slot(self) -> None:
        self._active -= 1
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break
        self._wake.set()

    # --- one pass ---------------------------------------------------------------------------

    async def _pass(self, record: Tracked) -> None:
        key = record.key
        generation = record.generation
        requested = record.requested
        why = record.why
        repeat = generation == record.handled_generation  # nothing new in the spec since the last pass
        stalled = record.conditions.get(STALLED)
        started = time.monotonic()
        try:
            try:
                result = await self._passes.reconcile(record.view(), record.state)
            except Exception:
                # A bug, not a PAI error (those are results): keep the object alive, retry later.
                log.exception("reconcile of %s/%s raised", record.namespace, record.name)
                record.state.failures += 1
                self._leave_group(record)
                self._schedule(key, self._clock() + self._passes.backoff(record.state.failures), "retry")
                return
            elapsed = time.monotonic() - started
            metrics.RECONCILES.labels(result.outcome).inc()
            metrics.RECONCILE_SECONDS.labels(result.outcome).observe(elapsed)
            if self._objects.get(key) is not record:
                return  # deleted (or replaced) meanwhile: its status is nobody's now
            if result.status_patch and not await self._write_status(
                record, result.status_patch, generation=generation
            ):
                record.state.failures += 1
                self._schedule(key, self._clock() + self._passes.backoff(record.state.failures), "retry")
                return
            self._post(record, result.events)
            record.conditions = result.conditions
            record.reasons = {t: sys.intern(r) for t, r in result.reasons.items()}
            record.handled_generation = generation
            record.handled_request = requested
            self._count_pass(record, result, generation, repeat, stalled)
            record.observed = True
            self._after_pass(record, result)
            log.debug(
                "%s pass of %s/%s: %s; status write: %s",
                why,
                key[0],
                key[1],
                result.outcome,
                bool(result.status_patch),
            )
        finally:
            self._running.pop(key, None)
            self._passing.pop(key, None)
            self._release_slot()
            if key in self._rerun:
                self._rerun.discard(key)
                if self._objects.get(key) is record and not record.deleting:
                    self._schedule(key, self._clock(), "update")

    def _count_pass(
        self, record: Tracked, result: PassResult, generation: int | None, repeat: bool, stalled: str | None
    ) -> None:
        labels = (self.names.registry, self.names.kind)
        if repeat and result.outcome == "changed":
            metrics.DRIFT_REPAIRS.labels(*labels).inc()
        clock = record.ready_clock
        if clock is not None and clock[0] == generation and result.conditions.get("Ready") == "True":
            metrics.TIME_TO_READY.labels(*labels).observe(max(0.0, self._clock() - clock[1]))
            record.ready_clock = None
        self._count_stalled(record, stalled)

    def _after_pass(self, record: Tracked, result: PassResult) -> None:
        now = self._clock()
        if result.retry_in is not None:
            self._leave_group(record)
            self._due.reschedule(record.key, now + result.retry_in)
            record.why = "retry"
        elif result.outcome in SETTLED_OUTCOMES and self._key(record) and not record.paused:
            self._due.cancel(record.key)
            self._join_group(record, first_observation=False)
        else:
            # Paused, blocked or invalid: nothing a list would tell; look again at resync pace.
            self._leave_group(record)
            self._due.reschedule(record.key, now + self._passes.resync_delay())
            record.why = "resync"
        if record.generation != record.handled_generation:
            self._schedule(record.key, now, "update")  # the spec moved while the pass ran
        self._wake.set()

    def _post(self, record: Tracked, events: list[Event]) -> None:
        for event in events:
            try:
                self._events.post(record.view(), event)
            except Exception:  # an Event is information; losing one must not stop the object
                log.exception("posting %s for %s/%s failed", event.reason, record.namespace, record.name)

    async def _write_status(
        self, record: Tracked, patch: Mapping[str, Any], *, generation: int | None = None
    ) -> bool:
        """Write and absorb the answer. False when the write failed and must be retried."""
        written = record.status.get("observedGeneration")
        if (
            generation is not None
            and isinstance(written, int)
            and written > generation
            and "observedGeneration" in patch
        ):
            # A newer view has been written already (by a later pass, or by another replica
            # before a handover): an older one must never move status backwards.
            return True
        try:
            body = await self._writer.patch_status(record.namespace, record.name, record.uid, patch)
        except self._conflict:
            log.debug("%s/%s is gone or replaced; status dropped", record.namespace, record.name)
            return True
        except Exception as exc:
            log.warning("status write for %s/%s failed: %s", record.namespace, record.name, exc)
            return False
        meta = body.get("metadata") or {}
        if _newer(str(meta.get("resourceVersion", "")), record.resource_version):
            record.absorb(body)
        return True

    # --- groups and batched observation -----------------------------------------------------

    def _join_group(
        self,
        record: Tracked,
        *,
        first_observation: bool,
        decoded: tuple[dict[str, Any], dict[str, Any]] | None = None,
    ) -> None:
        spec, status = decoded or record.decoded()
        key = self._backend.group_of(spec, status, self._backend.identity_key(record.namespace))
        if key is None:
            return
        if record.group is not None and record.group != key:
            self._leave_group(record)
        group = self._groups.setdefault(key, _Group())
        group.members.add(record.key)
        record.group = key
        self._pacer.set_cost(_quota(key), self._budget_name(key), self._cost(group))
        now = self._clock()
        if first_observation:
            self._first_observations.add(key)
            self._observe_due.reschedule(key, now + STARTUP_OBSERVE_DELAY)
            self._wake.set()
        elif key not in self._observe_due and key not in self._observing:
            self._observe_due.schedule(key, now + self._observation_interval(key))
            self._wake.set()

    def _leave_group(self, record: Tracked) -> None:
        if record.group is None:
            return
        group = self._groups.get(record.group)
        if group is not None:
            group.members.discard(record.key)
            if not group.members:
                del self._groups[record.group]
                self._observe_due.cancel(record.group)
                self._first_observations.discard(record.group)
                self._pacer.forget(_quota(record.group), self._budget_name(record.group))
            else:
                self._pacer.set_cost(_quota(record.group), self._budget_name(record.group), self._cost(group))
        record.group = None

    # --- the observation budget -------------------------------------------------------------

    def _budget_name(self, key: GroupKey) -> tuple[str, GroupKey]:
        # One pacer may serve several engines (PAI's Models and versions): names carry the kind.
        return (self.names.kind, key)

    def _cost(self, group: _Group) -> int:
        """Read calls one observation of `group` makes: its list's pages, or one GET per member
        where that is cheaper (or the list is refused)."""
        members = len(group.members)
        page_size = self._backend.list_page_size
        if group.list_refused or not list_is_cheaper(members, group.last_total, page_size):
            return members
        return pages_for(group.last_total, page_size) if group.last_total is not None else 1

    def _observation_interval(self, key: GroupKey) -> float:
        """Until the group's next observation: as long as the budget needs to observe every group
        of its quota once, at least the minimum interval, at most the (jittered) resync interval."""
        return self._pacer.interval(
            _quota(key), self.settings.min_observation_interval, self._passes.resync_delay()
        )

    def _passes_waiting(self, now: float) -> bool:
        """A pass (event, retry, create) is due but has no slot: observation waits for it."""
        if self._slot_waiters:
            return True
        next_pass = self._due.next_due()
        return next_pass is not None and next_pass <= now

    def _idle_members(self, group: _Group) -> list[Tracked]:
        members = []
        for key in group.members:
            record = self._objects.get(key)
            if record is None or record.deleting or key in self._running or key in self._due:
                continue
            members.append(record)
        return members

    async def _observe_group(self, key: GroupKey) -> None:
        try:
            await self._observe(key)
        except Exception:
            log.exception("observation of %s %s in %s raised", self.names.registry, key[2], key[1])
        finally:
            self._observing.discard(key)
            if key in self._groups and key not in self._observe_due:
                group = self._groups[key]
                delay = (
                    self._passes.backoff(group.failures)
                    if group.failures
                    else self._observation_interval(key)
                )
                self._observe_due.schedule(key, self._clock() + delay)
            self._wake.set()

    async def _observe(self, key: GroupKey) -> None:
        group = self._groups.get(key)
        if group is None:
            return
        members = self._idle_members(group)
        if not members:
            return
        identity, _location, parent = key
        registry = self.names.registry
        try:
            for namespace in {record.namespace for record in members}:
                await self._backend.resolve_identity(namespace)
        except RemoteError as exc:
            group.failures += 1
            log.warning("identity of %s %s's objects unknown (%s); retrying", registry, parent, exc)
            return
        # A namespace read for the first time, or mapped to another role since: its objects move
        # to their identity's group (observed soon), never listed by the wrong identity.
        for record in [r for r in members if self._backend.identity_key(r.namespace) != identity]:
            members.remove(record)
            self._leave_group(record)
            self._join_group(record, first_observation=True)
        if not members:
            return
        if group.list_refused or not list_is_cheaper(
            len(members), group.last_total, self._backend.list_page_size
        ):
            self._pass_each(members, "get")
            return
        try:
            listed = await self._backend.list_group(key)
        except (ModelNotFoundError, AuthError, InvalidRequestError) as exc:
            # The list cannot answer (the model is gone, or RAM allows Get but not List): each
            # object's own pass finds out, with GETs, and reports it.
            if isinstance(exc, (AuthError, InvalidRequestError)):
                group.list_refused = True
                log.warning(
                    "%s list of %s refused (%s); drift checks read each version",
                    registry,
                    parent,
                    exc,
                )
            self._pass_each(members, "get")
            return
        except RemoteError as exc:
            group.failures += 1
            log.warning("%s list of %s failed (%s); retrying", registry, parent, exc)
            return
        group.failures = 0
        group.last_total = len(listed)
        cost = self._cost(group)
        self._pacer.set_cost(_quota(key), self._budget_name(key), cost)
        if cost > group.charged:  # the group grew a page since: the walk spent more than charged
            self._pacer.spend(_quota(key), cost - group.charged, self._clock())
        metrics.OBSERVATIONS.inc()
        by_name = {self._backend.planner.key(v): v for v in listed}
        needing: list[Tracked] = []
        now = self._clock()
        resync = self.settings.resync_interval
        for record in members:
            if record.deleting or record.key in self._running or record.key in self._due:
                continue  # something happened to it while we listed: its own pass decides
            name = self._key(record)
            item = by_name.get(name) if name else None
            record.observed = True
            if item is None:
                needing.append(record)
                continue
            digest = listed_digest(item, record.resource_version)
            if digest == record.listed and now - record.compared_at < resync:
                continue  # byte-identical to what was compared last, object unchanged: in sync
            if self._passes.needs_pass(record.view(), record.state, item):
                record.listed = None
                needing.append(record)
            else:
                record.listed, record.compared_at = digest, now
        if needing:
            self._pass_each(needing, "drift")
        log.debug("observed %s %s: %d members, %d need a pass", registry, parent, len(members), len(needing))

    def _pass_each(self, records: list[Tracked], why: str) -> None:
        now = self._clock()
        for record in records:
            self._schedule(record.key, now, why)

    # --- bookkeeping ------------------------------------------------------------------------

    def _key(self, record: Tracked) -> str | None:
        return record.remote_key(self._backend.key_of)

    def _settled_in_status(self, record: Tracked, decoded: tuple[dict[str, Any], dict[str, Any]]) -> bool:
        # A restart takes in every object this way: reading spec and status from the body the
        # record was just made from, not decoding its JSON again, saved 6 decodes per object
        # (py-spy of a restart at 20,000 objects: Tracked.status alone was 5 % of the CPU).
        return record.settled_in_status(record.remote_key(self._backend.key_of, decoded), decoded[1])

    def _forget(self, key: ObjectKey) -> None:
        record = self._objects.pop(key, None)
        self._due.cancel(key)
        self._rerun.discard(key)
        if record is not None:
            self._leave_group(record)

    def forget_all(self) -> None:
        """Drop every record: the resource's CRD was deleted (and every object with it), so the
        watch starts over once it is back; a stale record must never be passed again."""
        for key in list(self._objects):
            self._forget(key)

    def __len__(self) -> int:
        return len(self._objects)

    def records(self) -> Iterator[Tracked]:
        return iter(self._objects.values())

    def condition_counts(self) -> dict[tuple[str, str], int]:
        """Objects by (condition type, status), computed when metrics are scraped."""
        counts: dict[tuple[str, str], int] = collections.Counter()
        for record in self._scrape_view():
            for ctype, status in record.conditions.items():
                counts[(ctype, status)] += 1
        return counts

    @property
    def census_labels(self) -> tuple[str, str]:
        return (self.names.registry, self.names.kind)

    def census(self, by_namespace: bool) -> dict[metrics.CensusKey, int]:
        """Objects by (namespace or "", condition type, status, reason), at scrape time."""
        rows = collections.Counter(
            (record.namespace if by_namespace else "", record.census_signature())
            for record in self._scrape_view()
        )
        counts: dict[metrics.CensusKey, int] = collections.Counter()
        for (namespace, row), n in rows.items():
            for ctype, status, reason in row:
                counts[(namespace, ctype, status, reason)] += n
        return counts

    def unobserved(self) -> int:
        return sum(1 for record in self._scrape_view() if not record.observed)

    def _scrape_view(self) -> list[Tracked]:
        # Scrapes run in the metrics server's thread while the event loop adds and forgets
        # records: iterating the dict itself failed scrapes with "dictionary changed size during
        # iteration" (a restart's intake at 5,000 objects, bench/scale.py). list() copies it
        # under the GIL in one step.
        return list(self._objects.values())
