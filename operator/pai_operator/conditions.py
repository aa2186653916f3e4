"""The conditions and the status patch. Pure functions; the caller supplies `now`.

Four conditions, each with the generation it describes (`observedGeneration`):

- Ready: "is this generation done?" True only when the remote version exists and the current
  generation's spec is applied to it (Observe: the version was observed). False reasons:
  Creating, UpdateFailed (the version exists, the update to this generation failed),
  NotApplied (it exists, but this generation is not and cannot yet be on it: paused with drift,
  a terminal problem, an invalid spec), Unavailable, Deleting.
- Synced: "did the last pass succeed?" ReconcileSuccess / ReconcileError / ReconcilePaused, or a
  terminal reason (InvalidSpec, AlreadyExists, Conflict, ImmutableFieldMismatch, ModelNotFound,
  AuthFailed, NoCredentials), or DeletionBlocked.
- Reconciling (kstatus InProgress): True while the current generation is being applied and the
  operator keeps trying (a create or update retrying a transient error, a deletion in progress).
- Stalled (kstatus Failed): True when Synced carries a terminal reason: a human must act (the same
  reasons Argo CD's health check calls Degraded, `TERMINAL_REASONS`).

Both kstatus conditions are derived from Ready and Synced (`_progress`), so the four never
disagree. A pass that is pending (spec changed, no pass yet) needs no condition: the stale
`status.observedGeneration` already reads InProgress for kstatus and Argo CD.

Drift with an unchanged generation (someone changed the remote version in the registry): a pass
that repairs it in one go writes nothing new; a repair that fails makes Ready False
(UpdateFailed), exactly as a failed update of a new generation does, because the registry then
no longer holds what the spec asks, and that is what every reader of Ready is asking.

Public API (tests/unit/test_docs_drift.py keeps this list equal to the code):
    make_condition(type_, ok, reason, message, generation) -> Condition
    conditions_for_plan(plan, generation, previous=()) -> list[Condition]   after the plan's calls succeeded
    conditions_for_failure(reason, message, generation, *, remote_exists, previous=()) -> list[Condition]
    conditions_for_deletion_blocked(message, generation) -> list[Condition]   a persistent deletion failure
    conditions_for_deletion_retrying(message, generation) -> list[Condition]  a transient one, retried
    conditions_for_deletion_held(message, generation) -> list[Condition]      held by the deletion breaker
    deletion_blocked_message(error, ...) -> str    the way out, for that condition's message
    merge_conditions(existing, new, now) -> list[Condition]   lastTransitionTime moves on status change only
    status_patch(current, wanted, keys) -> dict | None          None: nothing to write

Messages must be deterministic (no timestamps, no request IDs): an in-sync pass has to produce
a status identical to the stored one, so that it writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from pai_operator.plans import Action, Plan
from pai_operator.vocabulary import Condition, ConditionType, Reason

READY_MESSAGE = "remote version exists"
IN_SYNC_MESSAGE = "remote version matches spec"
UPDATE_FAILED_MESSAGE = (
    "the remote version still exists, with the values in status.atProvider; updating it to this "
    "generation failed (see Synced)"
)
NOT_APPLIED_MESSAGE = "the remote version exists, but this generation is not applied to it (see Synced)"

TERMINAL_REASONS: Final = frozenset(
    {
        Reason.INVALID_SPEC,
        Reason.ALREADY_EXISTS,
        Reason.MODEL_NOT_FOUND,
        Reason.AUTH_FAILED,
        Reason.NO_CREDENTIALS,
        Reason.CONFLICT,
        Reason.IMMUTABLE_FIELD_MISMATCH,
    }
)
"""Synced reasons no retry can fix: a human must change the spec, the registry or the credentials
(Stalled; Argo CD's health check keeps the same list)."""
_RETRYING: Final = frozenset(
    {Reason.RECONCILE_ERROR.value, Reason.DELETION_BLOCKED.value, Reason.DELETION_HELD.value}
)
# Ready reasons that say a remote version exists.
_REMOTE_EXISTS: Final = frozenset(
    {Reason.AVAILABLE.value, Reason.UPDATE_FAILED.value, Reason.NOT_APPLIED.value}
)


def make_condition(
    type_: ConditionType, ok: bool, reason: Reason, message: str, generation: int | None
) -> Condition:
    return Condition(
        type=type_.value,
        status="True" if ok else "False",
        reason=reason.value,
        message=message,
        observed_generation=generation,
    )


def _ready(ok: bool, reason: Reason, message: str, generation: int | None) -> Condition:
    return make_condition(ConditionType.READY, ok, reason, message, generation)


def _synced(ok: bool, reason: Reason, message: str, generation: int | None) -> Condition:
    return make_condition(ConditionType.SYNCED, ok, reason, message, generation)


def _find(conditions: Sequence[Condition], type_: ConditionType) -> Condition | None:
    return next((c for c in conditions if c.type == type_.value), None)


def _progress(ready: Condition, synced: Condition, generation: int | None) -> list[Condition]:
    """[Ready, Synced, Reconciling, Stalled]: the kstatus pair derived from the other two."""
    stalled = synced.status == "False" and synced.reason in TERMINAL_REASONS
    applied = ready.status == "True" and ready.observed_generation == generation
    reconciling = not stalled and not applied and synced.reason in _RETRYING
    if reconciling:
        progress = Condition(
            type=ConditionType.RECONCILING.value,
            status="True",
            reason=ready.reason,
            message=synced.message,
            observed_generation=generation,
        )
    elif stalled:
        progress = make_condition(
            ConditionType.RECONCILING,
            False,
            Reason.STALLED,
            "stopped until the Stalled problem is fixed",
            generation,
        )
    elif applied:
        progress = make_condition(ConditionType.RECONCILING, False, Reason.APPLIED, ready.message, generation)
    else:  # paused, or Observe waiting for a version that does not exist: nothing in progress
        progress = Condition(
            type=ConditionType.RECONCILING.value,
            status="False",
            reason=synced.reason,
            message=ready.message,
            observed_generation=generation,
        )
    stall = Condition(
        type=ConditionType.STALLED.value,
        status="True" if stalled else "False",
        reason=synced.reason,
        message=synced.message if stalled else "",
        observed_generation=generation,
    )
    return [ready, synced, progress, stall]


def _ready_unknown(previous: Sequence[Condition], generation: int | None, *, invalid: bool) -> Condition:
    """Ready when this pass learnt nothing of the remote version (a read failed, or the spec is
    invalid so nothing was read): the last Ready if it is about this generation; otherwise what
    the last one said about existence, with this generation not applied."""
    kept = _find(previous, ConditionType.READY)
    if kept is not None and kept.observed_generation == generation and not invalid:
        return kept
    if kept is not None and kept.reason in _REMOTE_EXISTS:
        why = (
            "the remote version exists, but this generation's spec is invalid (see Synced)"
            if invalid
            else "the remote version existed at the last read; this generation is not applied (see Synced)"
        )
        return _ready(False, Reason.NOT_APPLIED, why, generation)
    if invalid:
        return _ready(False, Reason.UNAVAILABLE, "not created: the spec is invalid", generation)
    if kept is not None:  # Creating, Unavailable: still true, now said of this generation
        return kept.model_copy(update={"observed_generation": generation})
    return _ready(False, Reason.UNAVAILABLE, "remote state unknown", generation)


def conditions_for_plan(
    plan: Plan[Any, Any], generation: int | None, previous: Sequence[Condition] = ()
) -> list[Condition]:
    """The conditions once every call of `plan` has succeeded (immediately for call-less plans)."""
    if plan.action in (Action.IN_SYNC, Action.CREATE, Action.ADOPT, Action.UPDATE):
        # The same text whether this pass created, adopted, updated or found nothing to do, so
        # the first resync after a change finds the status already right and writes nothing.
        # What was done goes into Events instead.
        return _progress(
            _ready(True, Reason.AVAILABLE, READY_MESSAGE, generation),
            _synced(True, Reason.RECONCILE_SUCCESS, IN_SYNC_MESSAGE, generation),
            generation,
        )
    if plan.action is Action.OBSERVE:
        ready = (
            _ready(True, Reason.AVAILABLE, READY_MESSAGE, generation)
            if plan.observed is not None
            else _ready(False, Reason.UNAVAILABLE, plan.message, generation)
        )
        return _progress(ready, _synced(True, Reason.RECONCILE_SUCCESS, plan.message, generation), generation)
    if plan.action is Action.PAUSED:
        if plan.observed is not None and plan.ours and not plan.drift:
            ready = _ready(True, Reason.AVAILABLE, READY_MESSAGE, generation)
        elif plan.observed is not None and plan.ours:
            why = "the remote version exists, but differs from spec (status.drift): paused, not repaired"
            ready = _ready(False, Reason.NOT_APPLIED, why, generation)
        else:
            ready = _ready(
                False, Reason.UNAVAILABLE, "paused before the remote version was created", generation
            )
        return _progress(ready, _synced(False, Reason.RECONCILE_PAUSED, plan.message, generation), generation)
    # BLOCKED
    assert plan.problem is not None  # invariant of Plan: BLOCKED always carries a problem
    synced = _synced(False, plan.problem.reason, plan.problem.message, generation)
    if plan.observed is None and plan.problem.reason is Reason.INVALID_SPEC:
        # Validation runs before any read, so the remote state is only known from the last pass.
        ready = _ready_unknown(previous, generation, invalid=True)
    elif plan.ours:
        ready = _ready(False, Reason.NOT_APPLIED, NOT_APPLIED_MESSAGE, generation)
    else:
        ready = _ready(False, Reason.UNAVAILABLE, "no remote version owned by this object", generation)
    return _progress(ready, synced, generation)


def conditions_for_failure(
    reason: Reason,
    message: str,
    generation: int | None,
    *,
    remote_exists: bool | None,
    previous: Sequence[Condition] = (),
) -> list[Condition]:
    """A failed pass. `remote_exists` True: a write to an existing version failed (UpdateFailed);
    False: a create is still pending (Creating); None: nothing was learnt of the remote version
    (see `_ready_unknown`; an InvalidSpec reason means the spec did not parse)."""
    synced = _synced(False, reason, message, generation)
    if remote_exists is True:
        ready = _ready(False, Reason.UPDATE_FAILED, UPDATE_FAILED_MESSAGE, generation)
    elif remote_exists is False:
        ready = _ready(False, Reason.CREATING, "the remote version is being created", generation)
    else:
        ready = _ready_unknown(previous, generation, invalid=reason is Reason.INVALID_SPEC)
    return _progress(ready, synced, generation)


def deletion_blocked_message(error: str, *, finalizer: str, registry: str) -> str:
    """How to get out when the remote version cannot be deleted (e.g. credentials revoked)."""
    return (
        f"cannot delete the remote version: {error}. To keep the remote version and let this object "
        f"go, set spec.deletionPolicy: Retain. Last resort (skips {registry} entirely): remove the "
        f"finalizer {finalizer} with kubectl patch --type=json "
        '-p \'[{"op":"remove","path":"/metadata/finalizers"}]\''
    )


def conditions_for_deletion_blocked(message: str, generation: int | None) -> list[Condition]:
    """Still Reconciling, not Stalled: the finalizer keeps retrying, and kstatus reads a deleting
    object as Terminating whatever its conditions say."""
    return _progress(
        _ready(False, Reason.DELETING, "deletion is waiting for the remote version", generation),
        _synced(False, Reason.DELETION_BLOCKED, message, generation),
        generation,
    )


def conditions_for_deletion_held(message: str, generation: int | None) -> list[Condition]:
    """The deletion breaker holds the remote deletion until a person confirms the batch: still
    Reconciling (the deletion goes on once confirmed, like DeletionBlocked), not Stalled (that is
    for terminal reasons, which Argo CD calls Degraded)."""
    return _progress(
        _ready(False, Reason.DELETING, "deletion is waiting for confirmation", generation),
        _synced(False, Reason.DELETION_HELD, message, generation),
        generation,
    )


def conditions_for_deletion_retrying(message: str, generation: int | None) -> list[Condition]:
    """A transient deletion failure: retried with backoff, no advice to remove the finalizer."""
    return _progress(
        _ready(False, Reason.DELETING, "deletion is waiting for the remote version", generation),
        _synced(False, Reason.RECONCILE_ERROR, message, generation),
        generation,
    )


def merge_conditions(existing: Sequence[Condition], new: Sequence[Condition], now: str) -> list[Condition]:
    """Replace conditions by type; lastTransitionTime is kept unless `status` changed. Types not
    in `new` are kept as they are. Order: Ready, Synced, Reconciling, Stalled, then others as they were."""
    old = {c.type: c for c in existing}
    merged = dict(old)
    for condition in new:
        before = old.get(condition.type)
        if before is not None and before.status == condition.status and before.last_transition_time:
            stamp = before.last_transition_time
        else:
            stamp = now
        merged[condition.type] = condition.model_copy(update={"last_transition_time": stamp})
    first = [t.value for t in ConditionType if t.value in merged]
    return [merged[t] for t in first] + [c for t, c in merged.items() if t not in first]


def status_patch(
    current: Mapping[str, Any] | None, wanted: Mapping[str, Any], keys: Sequence[str]
) -> dict[str, Any] | None:
    """A merge patch for `status` that turns `current` into `wanted` (as stored in Kubernetes),
    or None if equal.

    Keys this operator owns (`keys`) that vanish from `wanted` are sent as null (merge-patch
    deletion); keys written by others are left alone. Values are compared whole, so a nested
    change (e.g. one condition) resends that top-level key."""
    current = current or {}
    patch: dict[str, Any] = {}
    for key in keys:
        if key in wanted:
            if current.get(key) != wanted[key]:
                patch[key] = wanted[key]
        elif current.get(key) is not None:
            patch[key] = None
    return patch or None
