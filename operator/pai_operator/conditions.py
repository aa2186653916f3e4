"""Ready/Synced conditions and the status patch. Pure functions; the caller supplies `now`.

Ready answers "does the remote version exist for this object?" (Available / Creating /
Deleting / Unavailable). Synced answers "did the last reconcile do what the spec asks?"
(ReconcileSuccess / ReconcileError / ReconcilePaused, or a specific terminal reason such as
InvalidSpec, AlreadyExists, Conflict, ImmutableFieldMismatch, ModelNotFound, AuthFailed).

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
from typing import Any

from pai_operator.plans import Action, Plan
from pai_operator.vocabulary import Condition, ConditionType, Reason

READY_MESSAGE = "remote version exists"
IN_SYNC_MESSAGE = "remote version matches spec"


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


def conditions_for_plan(
    plan: Plan[Any, Any], generation: int | None, previous: Sequence[Condition] = ()
) -> list[Condition]:
    """The conditions once every call of `plan` has succeeded (immediately for call-less plans)."""
    if plan.action in (Action.IN_SYNC, Action.CREATE, Action.ADOPT, Action.UPDATE):
        # The same text whether this pass created, adopted, updated or found nothing to do, so
        # the first resync after a change finds the status already right and writes nothing.
        # What was done goes into Events instead.
        return [
            _ready(True, Reason.AVAILABLE, READY_MESSAGE, generation),
            _synced(True, Reason.RECONCILE_SUCCESS, IN_SYNC_MESSAGE, generation),
        ]
    if plan.action is Action.OBSERVE:
        ready = (
            _ready(True, Reason.AVAILABLE, READY_MESSAGE, generation)
            if plan.observed is not None
            else _ready(False, Reason.UNAVAILABLE, plan.message, generation)
        )
        return [ready, _synced(True, Reason.RECONCILE_SUCCESS, plan.message, generation)]
    if plan.action is Action.PAUSED:
        ready = (
            _ready(True, Reason.AVAILABLE, READY_MESSAGE, generation)
            if plan.observed is not None and plan.ours
            else _ready(False, Reason.UNAVAILABLE, "paused before the remote version was created", generation)
        )
        return [ready, _synced(False, Reason.RECONCILE_PAUSED, plan.message, generation)]
    # BLOCKED
    assert plan.problem is not None  # invariant of Plan: BLOCKED always carries a problem
    synced = _synced(False, plan.problem.reason, plan.problem.message, generation)
    if plan.observed is None and plan.problem.reason is Reason.INVALID_SPEC:
        # Validation runs before any read, so the remote state is unknown: keep the last Ready.
        kept = _find(previous, ConditionType.READY)
        ready = kept or _ready(False, Reason.UNAVAILABLE, "not created: the spec is invalid", generation)
    elif plan.ours:
        ready = _ready(True, Reason.AVAILABLE, READY_MESSAGE, generation)
    else:
        ready = _ready(False, Reason.UNAVAILABLE, "no remote version owned by this object", generation)
    return [ready, synced]


def conditions_for_failure(
    reason: Reason,
    message: str,
    generation: int | None,
    *,
    remote_exists: bool | None,
    previous: Sequence[Condition] = (),
) -> list[Condition]:
    """A failed remote call. `remote_exists` False means a create is still pending (Ready
    Creating); None means unknown (the last Ready is kept)."""
    synced = _synced(False, reason, message, generation)
    if remote_exists is True:
        ready = _ready(True, Reason.AVAILABLE, READY_MESSAGE, generation)
    elif remote_exists is False:
        ready = _ready(False, Reason.CREATING, "the remote version is being created", generation)
    else:
        ready = _find(previous, ConditionType.READY) or _ready(
            False, Reason.UNAVAILABLE, "remote state unknown", generation
        )
    return [ready, synced]


def deletion_blocked_message(error: str, *, finalizer: str, registry: str) -> str:
    """How to get out when the remote version cannot be deleted (e.g. credentials revoked)."""
    return (
        f"cannot delete the remote version: {error}. To keep the remote version and let this object "
        f"go, set spec.deletionPolicy: Retain. Last resort (skips {registry} entirely): remove the "
        f"finalizer {finalizer} with kubectl patch --type=json "
        '-p \'[{"op":"remove","path":"/metadata/finalizers"}]\''
    )


def conditions_for_deletion_blocked(message: str, generation: int | None) -> list[Condition]:
    return [
        _ready(False, Reason.DELETING, "deletion is waiting for the remote version", generation),
        _synced(False, Reason.DELETION_BLOCKED, message, generation),
    ]


def conditions_for_deletion_held(message: str, generation: int | None) -> list[Condition]:
    """The deletion breaker holds the remote deletion until a person confirms the batch."""
    return [
        _ready(False, Reason.DELETING, "deletion is waiting for confirmation", generation),
        _synced(False, Reason.DELETION_HELD, message, generation),
    ]


def conditions_for_deletion_retrying(message: str, generation: int | None) -> list[Condition]:
    """A transient deletion failure: retried with backoff, no advice to remove the finalizer."""
    return [
        _ready(False, Reason.DELETING, "deletion is waiting for the remote version", generation),
        _synced(False, Reason.RECONCILE_ERROR, message, generation),
    ]


def merge_conditions(existing: Sequence[Condition], new: Sequence[Condition], now: str) -> list[Condition]:
    """Replace conditions by type; lastTransitionTime is kept unless `status` changed. Types not
    in `new` are kept as they are. Order: Ready, Synced, then others as they were."""
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
