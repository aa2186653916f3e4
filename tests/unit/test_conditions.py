"""Conditions and the status patch: real transitions move lastTransitionTime, in-sync writes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from pai_operator.conditions import (
    conditions_for_deletion_blocked,
    conditions_for_failure,
    conditions_for_plan,
    deletion_blocked_message,
    make_condition,
    merge_conditions,
    status_patch,
)
from pai_operator.pai.backend import PaiBackend
from pai_operator.pai.models import Label, ModelVersion
from pai_operator.pai.planning import Action, Plan, Problem
from pai_operator.pai.spec import FINALIZER, OWNER_LABEL_KEY, STATUS_KEYS, ModelVersionSpec
from pai_operator.pai.validation import Recorded
from pai_operator.plans import Policies
from pai_operator.vocabulary import Condition, ConditionType, Reason
from tests.unit.pai.pai_plans import plan_reconcile

UID = "uid-1"
T0, T1 = "2024-01-01T00:00:00Z", "2024-01-01T00:10:00Z"
MANAGE = Policies(deletion="Delete", management="Manage", adoption="Never", paused=False)
REMOTE = ModelVersion(
    version_name="1.0.0",
    uri="oss://b/p/",
    approval_status="Pending",
    gmt_create_time="2024-01-01T00:00:00.000Z",
    gmt_modified_time="2024-01-01T00:00:00.000Z",
    labels=[Label(key=OWNER_LABEL_KEY, value=UID), Label(key="k1", value="vs1")],
)
SPEC = ModelVersionSpec.model_validate(
    {"modelId": "m-1", "uri": "oss://b/p/", "versionName": "1.0.0", "labels": {"k1": "vs1"}}
)


def by_type(conditions: list[Condition]) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in conditions}


def _plan(
    action: Action,
    *,
    observed: ModelVersion | None = None,
    ours: bool = False,
    problem: Problem | None = None,
) -> Plan:
    return Plan(action=action, message="msg", observed=observed, ours=ours, problem=problem)


AVAILABLE, UNAVAILABLE = ("True", "Available"), ("False", "Unavailable")
SUCCESS, PAUSE = ("True", "ReconcileSuccess"), ("False", "ReconcilePaused")


def _problem(reason: Reason) -> Problem:
    return Problem(reason, "m")


@pytest.mark.parametrize(
    ("plan", "ready", "synced"),
    [
        (_plan(Action.IN_SYNC, observed=REMOTE, ours=True), AVAILABLE, SUCCESS),
        (_plan(Action.CREATE), AVAILABLE, SUCCESS),
        (_plan(Action.ADOPT, observed=REMOTE, ours=True), AVAILABLE, SUCCESS),
        (_plan(Action.UPDATE, observed=REMOTE, ours=True), AVAILABLE, SUCCESS),
        (_plan(Action.OBSERVE, observed=REMOTE), AVAILABLE, SUCCESS),
        (_plan(Action.OBSERVE), UNAVAILABLE, SUCCESS),
        (_plan(Action.PAUSED, observed=REMOTE, ours=True), AVAILABLE, PAUSE),
        (_plan(Action.PAUSED), UNAVAILABLE, PAUSE),
        (_plan(Action.BLOCKED, observed=REMOTE, problem=_problem(Reason.ALREADY_EXISTS)), UNAVAILABLE,
         ("False", "AlreadyExists")),
        (_plan(Action.BLOCKED, observed=REMOTE, problem=_problem(Reason.CONFLICT)), UNAVAILABLE,
         ("False", "Conflict")),
        (_plan(Action.BLOCKED, observed=REMOTE, ours=True, problem=_problem(Reason.IMMUTABLE_FIELD_MISMATCH)),
         AVAILABLE, ("False", "ImmutableFieldMismatch")),
        (_plan(Action.BLOCKED, problem=_problem(Reason.INVALID_SPEC)), UNAVAILABLE, ("False", "InvalidSpec")),
    ],
)  # fmt: skip
def test_conditions_for_plan(plan: Plan, ready: tuple[str, str], synced: tuple[str, str]) -> None:
    conditions = conditions_for_plan(plan, generation=4)
    assert by_type(conditions) == {"Ready": ready, "Synced": synced}
    assert all(c.observed_generation == 4 for c in conditions)


def test_invalid_spec_keeps_the_previous_ready_condition() -> None:
    previous = [make_condition(ConditionType.READY, True, Reason.AVAILABLE, "remote version exists", 1)]
    plan = _plan(Action.BLOCKED, problem=Problem(Reason.INVALID_SPEC, "spec.metrics too long"))
    conditions = conditions_for_plan(plan, generation=2, previous=previous)
    assert conditions[0] == previous[0]
    assert conditions[1].message == "spec.metrics too long"


@pytest.mark.parametrize(
    ("remote_exists", "ready"),
    [(True, ("True", "Available")), (False, ("False", "Creating")), (None, ("False", "Unavailable"))],
)
def test_conditions_for_failure(remote_exists: bool | None, ready: tuple[str, str]) -> None:
    conditions = conditions_for_failure(Reason.AUTH_FAILED, "bad key", 1, remote_exists=remote_exists)
    assert by_type(conditions) == {"Ready": ready, "Synced": ("False", "AuthFailed")}


def test_failure_with_unknown_remote_keeps_previous_ready() -> None:
    previous = [make_condition(ConditionType.READY, True, Reason.AVAILABLE, "x", 1)]
    conditions = conditions_for_failure(
        Reason.RECONCILE_ERROR, "503", 2, remote_exists=None, previous=previous
    )
    assert conditions[0] == previous[0]


def test_deletion_blocked_says_how_to_get_out() -> None:
    message = deletion_blocked_message(
        "InvalidAccessKeyId.NotFound: unknown access key", finalizer=FINALIZER, registry="PAI"
    )
    assert "spec.deletionPolicy: Retain" in message
    assert "pai.mlops.dev/finalizer" in message
    assert by_type(conditions_for_deletion_blocked(message, 3)) == {
        "Ready": ("False", "Deleting"),
        "Synced": ("False", "DeletionBlocked"),
    }


def test_merge_keeps_transition_time_when_status_unchanged() -> None:
    old = merge_conditions(
        [], [make_condition(ConditionType.SYNCED, False, Reason.RECONCILE_ERROR, "a", 1)], T0
    )
    new = merge_conditions(old, [make_condition(ConditionType.SYNCED, False, Reason.AUTH_FAILED, "b", 2)], T1)
    assert new[0].last_transition_time == T0
    assert (new[0].reason, new[0].message, new[0].observed_generation) == ("AuthFailed", "b", 2)


def test_merge_moves_transition_time_on_status_change() -> None:
    old = merge_conditions([], [make_condition(ConditionType.READY, False, Reason.CREATING, "", 1)], T0)
    new = merge_conditions(old, [make_condition(ConditionType.READY, True, Reason.AVAILABLE, "", 1)], T1)
    assert new[0].last_transition_time == T1


def test_merge_keeps_other_types_and_orders_ready_first() -> None:
    foreign = Condition(type="Custom", status="True", reason="X", last_transition_time=T0)
    merged = merge_conditions(
        [foreign],
        [
            make_condition(ConditionType.SYNCED, True, Reason.RECONCILE_SUCCESS, "", 1),
            make_condition(ConditionType.READY, True, Reason.AVAILABLE, "", 1),
        ],
        T1,
    )
    assert [c.type for c in merged] == ["Ready", "Synced", "Custom"]
    assert merged[2] == foreign


def _desired(
    *,
    generation: int | None,
    model_id: str,
    version_name: str | None,
    region_id: str | None,
    observed: ModelVersion | None,
    drift: list[str],
    conditions: list[Condition],
) -> dict[str, Any]:
    """PAI's wanted status, as the reconciler asks the backend for it."""
    return PaiBackend(clients=None, default_region="cn-hangzhou").status(  # type: ignore[arg-type]
        raw_spec={"modelId": model_id},
        previous={},
        generation=generation,
        key=version_name,
        location=region_id,
        observed=observed,
        keep_at_provider=False,
        drift=drift,
        conditions=conditions,
    )


def _reconcile_status(
    stored: dict[str, Any] | None, now: str, remote: ModelVersion = REMOTE
) -> dict[str, Any] | None:
    """One pass as the reconciler will do it, from plan to patch."""
    plan = plan_reconcile(SPEC, uid=UID, policies=MANAGE, recorded=Recorded(), observed=remote, owned=None)
    existing = [Condition.model_validate(c) for c in (stored or {}).get("conditions", [])]
    conditions = merge_conditions(existing, conditions_for_plan(plan, 1, existing), now)
    desired = _desired(
        generation=1,
        model_id=SPEC.model_id,
        version_name=plan.version_name,
        region_id="cn-hangzhou",
        observed=plan.observed,
        drift=plan.drift if plan.action is not Action.IN_SYNC else [],
        conditions=conditions,
    )
    return status_patch(stored, desired, STATUS_KEYS)


def test_in_sync_resyncs_write_nothing() -> None:
    first = _reconcile_status(None, T0)
    assert first is not None
    assert first["id"] == "m-1:1.0.0"
    assert first["versionName"] == "1.0.0"
    assert first["regionId"] == "cn-hangzhou"
    assert first["atProvider"]["labels"] == {OWNER_LABEL_KEY: UID, "k1": "vs1"}
    assert "drift" not in first
    assert _reconcile_status(first, T1) is None
    assert _reconcile_status(first, "2030-01-01T00:00:00Z") is None


def test_remote_change_patches_only_what_changed() -> None:
    stored = _reconcile_status(None, T0)
    assert stored is not None
    modified = REMOTE.model_copy(update={"approval_status": "Approved", "gmt_modified_time": "later"})
    patch = _reconcile_status(stored, T1, modified)
    assert patch is not None
    assert set(patch) == {"atProvider"}
    assert patch["atProvider"]["approvalStatus"] == "Approved"


def test_status_patch_nulls_vanished_keys_and_leaves_foreign_keys() -> None:
    current = {"drift": ["uri"], "versionName": "1.0.0", "somethingElse": 1}
    desired = _desired(
        generation=None,
        model_id="m",
        version_name="1.0.0",
        region_id=None,
        observed=None,
        drift=[],
        conditions=[],
    )
    assert status_patch(current, desired, STATUS_KEYS) == {"drift": None, "id": "m:1.0.0"}


def test_status_patch_none_when_equal() -> None:
    desired = _desired(
        generation=2,
        model_id="m",
        version_name=None,
        region_id="r",
        observed=None,
        drift=["uri"],
        conditions=[],
    )
    assert status_patch(desired, desired, STATUS_KEYS) is None
