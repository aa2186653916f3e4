"""One reconcile pass and one deletion pass: reads, the pure plan, the calls, the new status.

The same for every registry: a backend (`pai_operator.backend.Backend`) supplies the spec, the
reads and writes, the planner and the status shape; this module owns the rest (policies,
conditions, failure classification and backoff, deletion, events). Plain asyncio; nothing here
knows kopf or Kubernetes. The engine (`pai_operator.engine`) decides when a pass runs and writes
what it returns (a status patch, events, when to come back); `needs_pass` lets the engine's
batched observation decide from a listed version, with no call at all, whether an object needs
a full pass.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, Generic, Literal, Protocol, TypeVar

from pai_operator import metrics
from pai_operator.backend import Backend, Waiting
from pai_operator.conditions import (
    conditions_for_deletion_blocked,
    conditions_for_deletion_held,
    conditions_for_deletion_retrying,
    conditions_for_failure,
    conditions_for_plan,
    deletion_blocked_message,
    merge_conditions,
    status_patch,
)
from pai_operator.core_settings import CoreSettings
from pai_operator.deletion_safety import Admission, CrdReadError, CrdState, DeletionBreaker, held_message
from pai_operator.errors import (
    AuthError,
    InvalidRequestError,
    ModelNotFoundError,
    NetworkError,
    NoCredentialsError,
    NotFoundError,
    RemoteError,
    ThrottledError,
)
from pai_operator.plans import (
    Action,
    DeletionAction,
    Owner,
    Plan,
    Policies,
    object_ref,
    plan_deletion,
    plan_reconcile,
)
from pai_operator.vocabulary import Condition, Reason

log = logging.getLogger(__name__)

# Consecutive failed deletion passes after which a transient error counts as persistent
# (DeletionBlocked, with the way out). With the default backoff (2 s doubling) that is about two
# minutes of failing, long enough to ride out a PAI hiccup or a throttling burst.
DELETION_BLOCKED_AFTER = 6

# Seconds between looks while a deletion waits for what blocks it (DeletionResult.retry_in).
DELETION_WAIT_POLL = 5.0

EventType = Literal["Normal", "Warning"]

LAST_HANDLED_RECONCILE_AT: Final = "lastHandledReconcileAt"
"""The status key (every backend's status model declares it) recording the reconcile-requested-at
value a pass handled."""


S = TypeVar("S")
R = TypeVar("R")
C = TypeVar("C")
K = TypeVar("K")


@dataclass(frozen=True)
class Event:
    type: EventType
    reason: str
    message: str


@dataclass
class PassResult:
    """What one pass decided; the adapter writes it."""

    outcome: str  # metric label: in_sync, changed, paused, observed, blocked, invalid, retry
    status_patch: dict[str, Any] | None = None
    events: list[Event] = field(default_factory=list)
    retry_in: float | None = None  # seconds until the next attempt; None: the normal resync
    conditions: dict[str, str] = field(default_factory=dict)  # type -> status, for the census
    reasons: dict[str, str] = field(default_factory=dict)  # type -> reason, for the census


@dataclass
class DeletionResult:
    done: bool
    status_patch: dict[str, Any] | None = None
    events: list[Event] = field(default_factory=list)
    retry_in: float = 0.0
    message: str = ""
    blocked: bool = False  # True: a persistent failure (DeletionBlocked), not a routine retry
    held: bool = False  # True: the deletion breaker holds it (DeletionHeld) until confirmed


@dataclass
class ObjectState:
    """Per-object memory between passes (never persisted: everything here is re-derivable)."""

    failures: int = 0
    last_failure: str | None = None
    version_name: str | None = None
    deletion_failures: int = 0  # consecutive failed deletion passes (a streak of their own)


@dataclass(frozen=True)
class ObjectView:
    """The parts of a ModelVersion object a pass reads."""

    uid: str
    namespace: str
    name: str
    generation: int | None
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    annotations: Mapping[str, str]

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ObjectView:
        meta = body.get("metadata", {})
        return cls(
            uid=meta["uid"],
            namespace=meta.get("namespace", ""),
            name=meta["name"],
            generation=meta.get("generation"),
            spec=dict(body.get("spec") or {}),
            status=dict(body.get("status") or {}),
            annotations=dict(meta.get("annotations") or {}),
        )


@dataclass(frozen=True)
class Prepared(Generic[S]):
    """A pass's inputs before any remote call (`Reconciler.prepare`)."""

    obj: ObjectView  # its spec with references resolved
    spec: S
    policies: Policies
    recorded_key: str | None
    problems: list[str]  # validation: any makes the pass InvalidSpec without a remote call
    location: str
    owner: Owner


class NamespaceAnnotations(Protocol):
    async def get(self, namespace: str) -> Mapping[str, str]: ...


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _conditions(status: Mapping[str, Any]) -> list[Condition]:
    return [Condition.model_validate(c) for c in status.get("conditions") or [] if isinstance(c, Mapping)]


def _summary(conditions: Sequence[Condition]) -> dict[str, str]:
    return {c.type: c.status for c in conditions}


_VOLATILE = re.compile(r"[\s.:;,]*\b(server )?string to sign\b.*$", re.IGNORECASE | re.DOTALL)


def describe_error(error: RemoteError) -> str:
    """A stable description for status. What changes on every attempt stays out, or each retry
    would be a status write: the request ID, and the string-to-sign PAI echoes in signature
    errors (it contains the request's nonce and date). Both go to events and logs."""
    return f"{error.code or error.kind}: {_VOLATILE.sub('', error.message)}"


class Reconciler(Generic[S, R, C, K]):
    def __init__(
        self,
        settings: CoreSettings,
        backend: Backend[S, R, C, K],
        namespaces: NamespaceAnnotations,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.namespaces = namespaces
        self._rng = rng or random.Random()
        # "Does an object with this UID exist?", from the engine (which sees every live object).
        # Lets a restored object (same namespace/name, new UID) take over its version; until it is
        # set every UID counts as alive, which never transfers anything.
        self.owner_alive: Callable[[str], bool] | None = None
        # Deletion safety (deletion_safety.py), set by the kopf side: whether the CRD is being
        # deleted (an uninstall: release, never delete remotely), and the deletion breaker.
        self.crd: CrdState | None = None
        self.breaker: DeletionBreaker | None = None

    def _owner(self, obj: ObjectView) -> Owner:
        ref = object_ref(obj.namespace, obj.name)
        return Owner(obj.uid, ref, self.owner_alive) if self.owner_alive is not None else Owner(obj.uid, ref)

    # --- timing -----------------------------------------------------------------------------

    def resync_delay(self) -> float:
        """The drift-check interval, jittered +-10% so objects created together spread out."""
        return self.settings.resync_interval * self._rng.uniform(0.9, 1.1)

    def backoff(self, failures: int, error: RemoteError | None = None) -> float:
        """Capped exponential backoff with full jitter, never shorter than the registry's retry-after."""
        ceiling = min(self.settings.backoff_cap, self.settings.backoff_base * 2 ** max(failures - 1, 0))
        delay = self._rng.uniform(ceiling / 2, ceiling)
        if isinstance(error, ThrottledError) and error.retry_after:
            delay = max(delay, error.retry_after)
        return delay

    # --- reconcile --------------------------------------------------------------------------

    def _recorded_key(self, obj: ObjectView, state: ObjectState, spec: S) -> str | None:
        key = self.backend.recorded_key(obj.status)
        if key is None and state.version_name and self.backend.planner.spec_key(spec) is None:
            # A create whose status write has not landed yet: memory knows the name already.
            key = state.version_name
        return key

    def _inputs(self, obj: ObjectView, state: ObjectState, spec: S) -> tuple[Policies, str | None, list[str]]:
        """Policies in effect, the recorded version name and spec problems: what every pass
        starts from. The namespace's deletion-policy default only matters when deleting; reading
        it on every pass would cost a Kubernetes call per resync for nothing."""
        policies = self.backend.policies(
            spec,
            annotations=obj.annotations,
            namespace_annotations=None,
            default_deletion=self.settings.default_deletion_policy,
        )
        key = self._recorded_key(obj, state, spec)
        return policies, key, self.backend.validate(spec, policies, obj.status, key)

    def _waiting(self, obj: ObjectView, waiting: Waiting, previous: list[Condition]) -> PassResult:
        """A referent is not ready: no remote call, no error streak; the engine passes the object
        again when the referent changes (`Backend.bind`), else at the resync pace."""
        # Nothing recorded: still to be created (Ready False, Creating: Argo CD shows it
        # Progressing, not Degraded, while a sync creates the referent too).
        exists = self.backend.recorded_key(obj.status) is not None
        conditions = conditions_for_failure(
            Reason.REFERENCE_NOT_READY,
            waiting.message,
            obj.generation,
            remote_exists=exists,
            previous=previous,
        )
        return self._finish(obj, "waiting", conditions, previous, keep_at_provider=True)

    def prepare(self, obj: ObjectView, state: ObjectState) -> Prepared[S] | Waiting | list[str]:
        """A pass's inputs, with no I/O: the spec with its references resolved (Waiting while a
        referent is not ready), parsed (a list of InvalidSpec messages when it does not match the
        schema), its policies, recorded version name, validation problems and location."""
        resolved = self.backend.resolve(obj.namespace, obj.spec, obj.status, deleting=False)
        if isinstance(resolved, Waiting):
            return resolved
        # From here on the spec carries its references resolved (status records them; spec never).
        obj = replace(obj, spec=resolved)
        parsed = self.backend.parse(obj.spec)
        if isinstance(parsed, list):
            return parsed
        policies, recorded_key, problems = self._inputs(obj, state, parsed)
        location = self.backend.location(parsed, obj.status)
        return Prepared(obj, parsed, policies, recorded_key, problems, location, self._owner(obj))

    async def read(self, client: K, prepared: Prepared[S]) -> tuple[R | None, list[R] | None]:
        """The reads a pass starts with (none for an invalid spec: terminal without a call)."""
        if prepared.problems:
            return None, None
        return await self.backend.read(
            client,
            prepared.spec,
            prepared.recorded_key,
            prepared.obj.status,
            prepared.owner,
            generation=prepared.obj.generation,
        )

    def plan(self, prepared: Prepared[S], observed: R | None, owned: list[R] | None) -> Plan[R, C]:
        """The plan a pass runs, from its reads. Pure: `pai-operator plan` calls exactly this."""
        return plan_reconcile(
            self.backend.planner,
            prepared.spec,
            owner=prepared.owner,
            policies=prepared.policies,
            recorded_key=prepared.recorded_key,
            observed=observed,
            owned=owned,
            problems=prepared.problems,
            paused_annotation=self.backend.names.paused_annotation,
            generation=prepared.obj.generation,
        )

    async def reconcile(self, obj: ObjectView, state: ObjectState) -> PassResult:
        previous = _conditions(obj.status)
        prepared = self.prepare(obj, state)
        if isinstance(prepared, Waiting):
            return self._waiting(obj, prepared, previous)
        if isinstance(prepared, list):
            message = "; ".join(prepared)
            conditions = conditions_for_failure(
                Reason.INVALID_SPEC, message, obj.generation, remote_exists=None, previous=previous
            )
            return self._finish(obj, "invalid", conditions, previous)
        obj, spec, location = prepared.obj, prepared.spec, prepared.location
        observed: R | None = None
        plan: Plan[R, C] | None = None
        try:
            client = await self.backend.client(obj.namespace, location)
            observed, owned = await self.read(client, prepared)
            plan = self.plan(prepared, observed, owned)
            events, version_name, after = await self._execute(client, spec, plan)
        except RemoteError as error:
            return self._failed(obj, state, location, error, previous, observed, plan)
        return self._succeeded(obj, state, location, plan, previous, events, version_name, after)

    def needs_pass(self, obj: ObjectView, state: ObjectState, listed: R) -> bool:
        """Whether a settled object needs a full pass, judged from its version as a list returned
        it (no call): True when the plan would write or the status would change. The full pass
        then confirms with a read before anything is written."""
        prepared = self.prepare(obj, state)
        if isinstance(prepared, (Waiting, list)) or prepared.problems:
            return True
        observed = self.backend.complete_listed(listed, prepared.spec, prepared.owner, prepared.obj.status)
        plan = self.plan(prepared, observed, None)
        if plan.calls or plan.action is Action.BLOCKED:
            return True
        # A copy: judging must not reset the failure streak or the last Warning of the real state.
        trial = ObjectState(state.failures, state.last_failure, state.version_name)
        result = self._succeeded(
            prepared.obj,
            trial,
            prepared.location,
            plan,
            _conditions(obj.status),
            [],
            plan.version_name,
            observed,
        )
        return result.status_patch is not None or bool(result.events)

    def _succeeded(
        self,
        obj: ObjectView,
        state: ObjectState,
        location: str,
        plan: Plan[R, C],
        previous: list[Condition],
        events: list[Event],
        version_name: str | None,
        after: R | None,
    ) -> PassResult:
        state.failures = 0
        if plan.action is not Action.BLOCKED:
            # A blocked plan keeps the streak: resetting it here would repeat its Warning on
            # every resync (the check below compares against it).
            state.last_failure = None
        if version_name:
            state.version_name = version_name
        conditions = conditions_for_plan(plan, obj.generation, previous)
        outcome = {
            Action.IN_SYNC: "in_sync",
            Action.CREATE: "changed",
            Action.ADOPT: "changed",
            Action.UPDATE: "changed",
            Action.OBSERVE: "observed",
            Action.PAUSED: "paused",
            Action.BLOCKED: "invalid" if plan.reason is Reason.INVALID_SPEC else "blocked",
        }[plan.action]
        if plan.action is Action.BLOCKED and state.last_failure != plan.message:
            events.append(Event("Warning", plan.reason.value, plan.message))
            state.last_failure = plan.message
        drift = plan.drift if plan.action in (Action.OBSERVE, Action.PAUSED) else []
        return self._finish(
            obj,
            outcome,
            conditions,
            previous,
            version_name=version_name,
            location=location if (after is not None or version_name) else None,
            observed=after,
            drift=drift,
            events=events,
        )

    async def _execute(
        self, client: K, spec: S, plan: Plan[R, C]
    ) -> tuple[list[Event], str | None, R | None]:
        """Run the plan's calls in order. Returns events, the version name and the remote
        version as it now is (re-read after writes so status.atProvider is exact)."""
        events: list[Event] = []
        name = plan.version_name
        for call in plan.calls:
            name = await self.backend.run(client, spec, call) or name
        if plan.action is Action.CREATE:
            ident = self.backend.planner.ident(spec, name)
            events.append(Event("Normal", "Created", f"created remote version {ident}"))
        elif plan.action is Action.ADOPT:
            events.append(Event("Normal", "Adopted", plan.message))
        elif plan.action is Action.UPDATE:
            events.append(Event("Normal", "Updated", plan.message))
        after = plan.observed
        if plan.calls and name:
            after = await self.backend.reread(client, spec, name)
        return events, name, after

    def _failed(
        self,
        obj: ObjectView,
        state: ObjectState,
        location: str,
        error: RemoteError,
        previous: list[Condition],
        observed: R | None,
        plan: Plan[R, C] | None,
    ) -> PassResult:
        state.failures += 1
        reason, retry_in = self.classify(error, state.failures)
        creating = plan is not None and plan.action is Action.CREATE
        remote_exists: bool | None = True if (observed is not None or (plan and plan.ours)) else None
        if creating:
            remote_exists = False
        message = describe_error(error)
        if reason is Reason.RECONCILE_ERROR:
            # No attempt count: like a request ID it would make every retry a status write. The
            # count is in the log line below.
            message += " (retrying)"
        conditions = conditions_for_failure(
            reason, message, obj.generation, remote_exists=remote_exists, previous=previous
        )
        events: list[Event] = []
        # One Warning per streak of the same error, not one per retry.
        signature = f"{reason.value}:{error.code or error.kind}"
        if state.last_failure != signature:
            events.append(Event("Warning", reason.value, str(error)))
            state.last_failure = signature
        # A write whose answer was lost may have been carried out: say so, since the next pass
        # reads before it writes (this is what keeps a lost create from becoming a duplicate).
        unknown = (
            isinstance(error, NetworkError) and error.outcome_unknown and plan is not None and plan.calls
        )
        log.warning(
            "reconcile of %s/%s failed (attempt %d): %s%s; next attempt in %.1fs",
            obj.namespace,
            obj.name,
            state.failures,
            error,
            f"; the write may have reached {self.backend.names.registry}, the next pass looks before "
            "repeating it"
            if unknown
            else "",
            retry_in,
        )
        # Keep the names we already know in status; a failed pass must not erase them.
        name = (plan.version_name if plan else None) or self.backend.recorded_key(obj.status)
        name = name or state.version_name
        return self._finish(
            obj,
            "retry" if reason is Reason.RECONCILE_ERROR else "failed",
            conditions,
            previous,
            version_name=name,
            location=location if name else None,
            observed=observed,
            keep_at_provider=observed is None,
            events=events,
            retry_in=retry_in,
        )

    def classify(self, error: RemoteError, failures: int) -> tuple[Reason, float]:
        """The condition reason a failed pass ends in, and when it is tried again."""
        if isinstance(error, NoCredentialsError):
            # Only an admin can provide credentials; look again at the resync pace, no hot loop.
            return Reason.NO_CREDENTIALS, self.resync_delay()
        if isinstance(error, ModelNotFoundError):
            return Reason.MODEL_NOT_FOUND, self.settings.model_missing_retry
        if isinstance(error, AuthError):
            # Credentials may be fixed outside Kubernetes; check again at the resync pace.
            return Reason.AUTH_FAILED, self.resync_delay()
        if isinstance(error, InvalidRequestError):
            # The registry rejected what the spec asks for; nothing changes until the spec does.
            return Reason.INVALID_SPEC, self.resync_delay()
        # Everything else is transient: throttling, 5xx, network, stale signatures, a credential
        # source that did not answer, or the remote changing between our read and our write
        # (ConflictError / NotFoundError): re-read after a backoff.
        return Reason.RECONCILE_ERROR, self.backoff(failures, error)

    def _finish(
        self,
        obj: ObjectView,
        outcome: str,
        conditions: list[Condition],
        previous: list[Condition],
        *,
        version_name: str | None = None,
        location: str | None = None,
        observed: R | None = None,
        keep_at_provider: bool = False,
        drift: Sequence[str] = (),
        events: list[Event] | None = None,
        retry_in: float | None = None,
    ) -> PassResult:
        merged = merge_conditions(previous, conditions, _now())
        wanted = self.backend.status(
            raw_spec=obj.spec,
            previous=obj.status,
            generation=obj.generation,
            key=version_name,
            location=location,
            observed=observed,
            keep_at_provider=keep_at_provider,
            drift=drift,
            conditions=merged,
        )
        # Every pass reads the registry, so any pass handles a pending request, failed or not;
        # the last value handled stays when the annotation is removed (as Flux does).
        handled = obj.annotations.get(self.backend.names.reconcile_request_annotation)
        if handled is None:
            handled = obj.status.get(LAST_HANDLED_RECONCILE_AT)
        if isinstance(handled, str):
            wanted[LAST_HANDLED_RECONCILE_AT] = handled
        return PassResult(
            outcome=outcome,
            status_patch=status_patch(obj.status, wanted, self.backend.status_keys),
            events=events or [],
            retry_in=retry_in,
            conditions=_summary(merged),
            reasons={c.type: c.reason for c in merged},
        )

    # --- deletion ---------------------------------------------------------------------------

    async def finalize(self, obj: ObjectView, state: ObjectState) -> DeletionResult:
        """Delete or release the remote version. `done` False means: keep the finalizer."""
        result = await self._finalize(obj, state)
        if result.done and self.breaker is not None:
            self.breaker.settle(obj.uid)
        return result

    async def _uninstalling(self, obj: ObjectView, since: float) -> DeletionResult | None:
        """Released at once when the CRD itself is being deleted (an uninstall); None otherwise."""
        if self.crd is None:
            return None
        try:
            terminating = await self.crd.terminating(not_before=since)
        except CrdReadError as error:
            # Unknown is not "no": deleting remotely now could be the uninstall wiping the registry.
            log.warning("deletion of %s/%s waits: %s", obj.namespace, obj.name, error)
            return DeletionResult(done=False, retry_in=self.backoff(1), message=str(error))
        if not terminating:
            return None
        names = self.backend.names
        metrics.CRD_DELETION_RELEASES.labels(names.registry).inc()
        log.info(
            "%s/%s released without touching %s: its CRD is being deleted (an uninstall); the remote "
            "version keeps its ownership mark",
            obj.namespace,
            obj.name,
            names.registry,
        )
        return DeletionResult(done=True, message="the CRD is being deleted: the remote version is kept")

    def _held(self, obj: ObjectView, admission: Admission) -> DeletionResult:
        assert self.breaker is not None
        message = held_message(
            admission,
            window=self.breaker.window,
            how_to_confirm=self.breaker.how_to_confirm(admission.batch),
            registry=self.backend.names.registry,
        )
        previous = _conditions(obj.status)
        merged = merge_conditions(previous, conditions_for_deletion_held(message, obj.generation), _now())
        patch = None
        if [c.model_dump() for c in merged] != [c.model_dump() for c in previous]:
            patch = {"conditions": [c.model_dump(by_alias=True, exclude_none=True) for c in merged]}
        events = [Event("Warning", "DeletionHeld", message)] if admission.first_hold else []
        return DeletionResult(
            done=False, status_patch=patch, events=events, retry_in=1.0, message=message, held=True
        )

    async def _finalize(self, obj: ObjectView, state: ObjectState) -> DeletionResult:
        since = time.monotonic()
        uninstall = await self._uninstalling(obj, since)
        if uninstall is not None:
            return uninstall
        resolved = self.backend.resolve(obj.namespace, obj.spec, obj.status, deleting=True)
        if isinstance(resolved, Waiting):
            return DeletionResult(done=True, message=resolved.message)
        obj = replace(obj, spec=resolved)
        parsed = self.backend.parse(obj.spec)
        if isinstance(parsed, list):
            # Without a valid spec there is nothing to address; the ownership mark still
            # protects the remote version, so letting the object go is safe.
            return DeletionResult(done=True, message="invalid spec; nothing to delete remotely")
        spec = parsed
        namespace_annotations = await self.namespaces.get(obj.namespace)
        policies = self.backend.policies(
            spec,
            annotations=obj.annotations,
            namespace_annotations=namespace_annotations,
            default_deletion=self.settings.default_deletion_policy,
        )
        if policies.management == "Observe":
            return DeletionResult(done=True, message="Observe mode never deletes the remote version")
        recorded_key = self._recorded_key(obj, state, spec)
        plan = None
        owner = self._owner(obj)
        location = self.backend.location(spec, obj.status)
        try:
            client = await self.backend.client(obj.namespace, location)
            observed, owned = await self.backend.read(
                client, spec, recorded_key, obj.status, owner, generation=None
            )
            plan = plan_deletion(
                self.backend.planner, spec, owner=owner, policies=policies, observed=observed, owned=owned
            )
            if plan.action is DeletionAction.DELETE:
                # What must go first (a model's versions) before the breaker counts this deletion.
                blocker = await self.backend.deletion_blockers(client, spec, plan.calls, obj.annotations)
                if blocker is not None:
                    return self._deletion_waits(obj, state, blocker)
            if plan.action is DeletionAction.DELETE and plan.calls and self.breaker is not None:
                admission = self.breaker.admit(obj.uid)
                if not admission.admitted:
                    return self._held(obj, admission)
            for call in plan.calls:
                try:
                    await self.backend.run(client, spec, call)
                except NotFoundError:
                    continue  # already gone: that is what we wanted
        except ModelNotFoundError:
            # The parent is gone, and every version with it: nothing left to delete or release.
            parent = self.backend.planner.parent(spec)
            return DeletionResult(done=True, message=f"{parent} no longer exists")
        except RemoteError as error:
            # Retain keeps the remote version whatever happens; removing our ownership mark is
            # a courtesy (the UID in it can never match another object), so no failure, not even
            # of the read before it (revoked credentials), may hold the object.
            # A namespace without identity whose object never recorded a remote version never
            # created one (refused before any call): nothing to delete, nothing to hold it for.
            unmapped = isinstance(error, NoCredentialsError) and recorded_key is None
            if (plan is not None and plan.best_effort) or policies.deletion == "Retain" or unmapped:
                message = plan.message if plan is not None else "retaining the remote version"
                if unmapped:
                    message = "no remote version was recorded"
                log.warning("releasing %s/%s despite: %s", obj.namespace, obj.name, error)
                return DeletionResult(
                    done=True,
                    events=[Event("Warning", "ReleaseIncomplete", f"{message}; {error}")],
                    message=message,
                )
            return self._deletion_failed(obj, state, error)
        state.deletion_failures = 0
        events = []
        if plan.action is DeletionAction.DELETE:
            events.append(Event("Normal", "Deleted", plan.message))
        elif plan.action is DeletionAction.RELEASE:
            events.append(Event("Normal", "Released", plan.message))
        return DeletionResult(done=True, events=events, message=plan.message)

    def _deletion_waits(self, obj: ObjectView, state: ObjectState, blocker: str) -> DeletionResult:
        """Deleting must wait for something the user can see (e.g. a PAI model's versions):
        DeletionBlocked naming it, one Warning per distinct message, and a look again soon
        (what blocks it is usually going away too: a namespace deletion deletes the versions)."""
        events: list[Event] = []
        if state.last_failure != f"blocked:{blocker}":
            events.append(Event("Warning", Reason.DELETION_BLOCKED.value, blocker))
            state.last_failure = f"blocked:{blocker}"
        previous = _conditions(obj.status)
        merged = merge_conditions(previous, conditions_for_deletion_blocked(blocker, obj.generation), _now())
        patch = None
        if [c.model_dump() for c in merged] != [c.model_dump() for c in previous]:
            patch = {"conditions": [c.model_dump(by_alias=True, exclude_none=True) for c in merged]}
        return DeletionResult(
            done=False,
            status_patch=patch,
            events=events,
            retry_in=min(self.settings.backoff_cap, DELETION_WAIT_POLL),
            message=blocker,
            blocked=True,
        )

    def _deletion_failed(self, obj: ObjectView, state: ObjectState, error: RemoteError) -> DeletionResult:
        """Keep the finalizer. A transient failure (5xx, throttling, network) is routine: WARNING,
        logged on attempts 1, 2, 4, 8, ..., and a ReconcileError condition. The DeletionBlocked
        condition and event, the ERROR log and the "last resort: remove the finalizer" advice are
        for failures that persist: auth or permission, a request PAI calls invalid, or
        DELETION_BLOCKED_AFTER failures in a row."""
        state.deletion_failures += 1
        failures = state.deletion_failures
        permanent = isinstance(error, (AuthError, InvalidRequestError))
        blocked = permanent or failures >= DELETION_BLOCKED_AFTER
        retry_in = self.backoff(failures, error)
        if permanent:
            # Credentials may be fixed outside Kubernetes; check again at the resync pace.
            retry_in = max(retry_in, min(self.settings.resync_interval, 60.0))
        described = describe_error(error)
        events: list[Event] = []
        if blocked:
            names = self.backend.names
            message = deletion_blocked_message(described, finalizer=names.finalizer, registry=names.registry)
            new = conditions_for_deletion_blocked(message, obj.generation)
            signature = f"delete:{error.code or error.kind}"
            if state.last_failure != signature:
                events.append(Event("Warning", "DeletionBlocked", message))
                state.last_failure = signature
            if events or _power_of_two(failures):
                where = f"{obj.namespace}/{obj.name}"
                log.error("deletion of %s is blocked (attempt %d): %s", where, failures, message)
        else:
            message = f"cannot delete the remote version yet: {described} (retrying)"
            new = conditions_for_deletion_retrying(message, obj.generation)
            if _power_of_two(failures):
                log.warning(
                    "deletion of %s/%s failed (attempt %d): %s; next attempt in %.1fs",
                    obj.namespace,
                    obj.name,
                    failures,
                    error,
                    retry_in,
                )
        previous = _conditions(obj.status)
        merged = merge_conditions(previous, new, _now())
        patch = None
        if [c.model_dump() for c in merged] != [c.model_dump() for c in previous]:
            patch = {"conditions": [c.model_dump(by_alias=True, exclude_none=True) for c in merged]}
        return DeletionResult(
            done=False, status_patch=patch, events=events, retry_in=retry_in, message=message, blocked=blocked
        )


def _power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


__all__ = [
    "DELETION_BLOCKED_AFTER",
    "LAST_HANDLED_RECONCILE_AT",
    "DeletionResult",
    "Event",
    "ObjectState",
    "ObjectView",
    "PassResult",
    "Prepared",
    "Reconciler",
]
