"""Conditions and the status patch: real transitions move lastTransitionTime, in-sync writes nothing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from pai_operator.conditions import (
    TERMINAL_REASONS,
    conditions_for_deletion_blocked,
    conditions_for_deletion_retrying,
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

REPO = Path(__file__).resolve().parents[2]
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


Expected = tuple[tuple[str, str], tuple[str, str], tuple[str, str], tuple[str, str]]
"""(status, reason) of Ready, Synced, Reconciling, Stalled."""

AVAILABLE, UNAVAILABLE = ("True", "Available"), ("False", "Unavailable")
NOT_APPLIED, UPDATE_FAILED, CREATING = (
    ("False", "NotApplied"),
    ("False", "UpdateFailed"),
    ("False", "Creating"),
)
SUCCESS, PAUSE = ("True", "ReconcileSuccess"), ("False", "ReconcilePaused")
APPLIED, CALM = ("False", "Applied"), ("False", "ReconcileSuccess")
STOPPED = ("False", "Stalled")


def _problem(reason: Reason) -> Problem:
    return Problem(reason, "m")


def by_type4(conditions: list[Condition]) -> Expected:
    found = by_type(conditions)
    assert list(found) == ["Ready", "Synced", "Reconciling", "Stalled"]
    return (found["Ready"], found["Synced"], found["Reconciling"], found["Stalled"])


def _stalled(reason: str) -> tuple[str, str]:
    return ("True", reason)


# Every plan outcome, after its calls (if any) succeeded.
PLAN_TABLE: list[tuple[str, Plan, Expected]] = [
    ("in-sync", _plan(Action.IN_SYNC, observed=REMOTE, ours=True), (AVAILABLE, SUCCESS, APPLIED, CALM)),
    ("created", _plan(Action.CREATE), (AVAILABLE, SUCCESS, APPLIED, CALM)),
    ("adopted", _plan(Action.ADOPT, observed=REMOTE, ours=True), (AVAILABLE, SUCCESS, APPLIED, CALM)),
    ("updated", _plan(Action.UPDATE, observed=REMOTE, ours=True), (AVAILABLE, SUCCESS, APPLIED, CALM)),
    ("observed", _plan(Action.OBSERVE, observed=REMOTE), (AVAILABLE, SUCCESS, APPLIED, CALM)),
    ("observe-missing", _plan(Action.OBSERVE),
     (UNAVAILABLE, SUCCESS, ("False", "ReconcileSuccess"), CALM)),
    ("paused-in-sync", _plan(Action.PAUSED, observed=REMOTE, ours=True),
     (AVAILABLE, PAUSE, APPLIED, ("False", "ReconcilePaused"))),
    ("paused-drift", Plan(action=Action.PAUSED, message="m", observed=REMOTE, ours=True, drift=["labels"]),
     (NOT_APPLIED, PAUSE, ("False", "ReconcilePaused"), ("False", "ReconcilePaused"))),
    ("paused-before-create", _plan(Action.PAUSED),
     (UNAVAILABLE, PAUSE, ("False", "ReconcilePaused"), ("False", "ReconcilePaused"))),
    ("already-exists", _plan(Action.BLOCKED, observed=REMOTE, problem=_problem(Reason.ALREADY_EXISTS)),
     (UNAVAILABLE, ("False", "AlreadyExists"), STOPPED, _stalled("AlreadyExists"))),
    ("conflict", _plan(Action.BLOCKED, observed=REMOTE, problem=_problem(Reason.CONFLICT)),
     (UNAVAILABLE, ("False", "Conflict"), STOPPED, _stalled("Conflict"))),
    ("conflict-ours", _plan(Action.BLOCKED, observed=REMOTE, ours=True, problem=_problem(Reason.CONFLICT)),
     (NOT_APPLIED, ("False", "Conflict"), STOPPED, _stalled("Conflict"))),
    ("immutable", _plan(Action.BLOCKED, observed=REMOTE, ours=True,
                        problem=_problem(Reason.IMMUTABLE_FIELD_MISMATCH)),
     (NOT_APPLIED, ("False", "ImmutableFieldMismatch"), STOPPED, _stalled("ImmutableFieldMismatch"))),
    ("invalid", _plan(Action.BLOCKED, problem=_problem(Reason.INVALID_SPEC)),
     (UNAVAILABLE, ("False", "InvalidSpec"), STOPPED, _stalled("InvalidSpec"))),
]  # fmt: skip


@pytest.mark.parametrize(("plan", "expected"), [r[1:] for r in PLAN_TABLE], ids=[r[0] for r in PLAN_TABLE])
def test_conditions_for_plan(plan: Plan, expected: Expected) -> None:
    conditions = conditions_for_plan(plan, generation=4)
    assert by_type4(conditions) == expected
    assert all(c.observed_generation == 4 for c in conditions)


def test_each_plan_outcome_is_in_the_table() -> None:
    assert {r[1].action for r in PLAN_TABLE} == set(Action)


def test_invalid_spec_of_a_new_generation_is_not_applied_on_the_existing_version() -> None:
    previous = [make_condition(ConditionType.READY, True, Reason.AVAILABLE, "remote version exists", 1)]
    plan = _plan(Action.BLOCKED, problem=Problem(Reason.INVALID_SPEC, "spec.metrics too long"))
    conditions = conditions_for_plan(plan, generation=2, previous=previous)
    assert by_type4(conditions) == (NOT_APPLIED, ("False", "InvalidSpec"), STOPPED, _stalled("InvalidSpec"))
    assert "exists" in conditions[0].message
    assert conditions[3].message == "spec.metrics too long"


TERMINAL = [Reason.AUTH_FAILED, Reason.NO_CREDENTIALS, Reason.MODEL_NOT_FOUND, Reason.INVALID_SPEC]
# Every failure class the reconciler classifies (`Reconciler._classify`) x what is known of the
# remote version: a write to it failed (True), a create failed (False), nothing was read (None).
FAILURE_TABLE: list[tuple[Reason, bool | None, Expected]] = [
    (Reason.RECONCILE_ERROR, True,
     (UPDATE_FAILED, ("False", "ReconcileError"), ("True", "UpdateFailed"), ("False", "ReconcileError"))),
    (Reason.RECONCILE_ERROR, False,
     (CREATING, ("False", "ReconcileError"), ("True", "Creating"), ("False", "ReconcileError"))),
    (Reason.RECONCILE_ERROR, None,
     (UNAVAILABLE, ("False", "ReconcileError"), ("True", "Unavailable"), ("False", "ReconcileError"))),
    *[(reason, True, (UPDATE_FAILED, ("False", reason.value), STOPPED, _stalled(reason.value)))
      for reason in TERMINAL],
    *[(reason, False, (CREATING, ("False", reason.value), STOPPED, _stalled(reason.value)))
      for reason in TERMINAL],
    *[(reason, None, (UNAVAILABLE, ("False", reason.value), STOPPED, _stalled(reason.value)))
      for reason in TERMINAL],
]  # fmt: skip


@pytest.mark.parametrize(
    ("reason", "remote_exists", "expected"),
    FAILURE_TABLE,
    ids=[f"{r.value}-{e}" for r, e, _ in FAILURE_TABLE],
)
def test_conditions_for_failure(reason: Reason, remote_exists: bool | None, expected: Expected) -> None:
    conditions = conditions_for_failure(reason, "boom", 3, remote_exists=remote_exists)
    assert by_type4(conditions) == expected
    assert all(c.observed_generation == 3 for c in conditions)


def test_a_refused_update_says_the_remote_version_still_exists() -> None:
    ready = conditions_for_failure(Reason.RECONCILE_ERROR, "503 (retrying)", 2, remote_exists=True)[0]
    assert (ready.status, ready.reason) == UPDATE_FAILED
    assert "still exists" in ready.message
    assert "status.atProvider" in ready.message


def test_failed_read_keeps_ready_of_this_generation_and_is_not_reconciling() -> None:
    # A resync whose read fails (a 503) does not un-apply a generation that was applied.
    previous = [make_condition(ConditionType.READY, True, Reason.AVAILABLE, "x", 2)]
    conditions = conditions_for_failure(
        Reason.RECONCILE_ERROR, "503", 2, remote_exists=None, previous=previous
    )
    assert conditions[0] == previous[0]
    assert by_type4(conditions)[2:] == (APPLIED, ("False", "ReconcileError"))


def test_failed_read_after_a_spec_change_is_not_ready() -> None:
    previous = [make_condition(ConditionType.READY, True, Reason.AVAILABLE, "x", 1)]
    conditions = conditions_for_failure(
        Reason.RECONCILE_ERROR, "503", 2, remote_exists=None, previous=previous
    )
    assert by_type4(conditions) == (
        NOT_APPLIED,
        ("False", "ReconcileError"),
        ("True", "NotApplied"),
        ("False", "ReconcileError"),
    )


def test_failed_read_of_a_pending_create_stays_creating() -> None:
    previous = [make_condition(ConditionType.READY, False, Reason.CREATING, "being created", 1)]
    conditions = conditions_for_failure(
        Reason.RECONCILE_ERROR, "503", 2, remote_exists=None, previous=previous
    )
    assert (conditions[0].reason, conditions[0].observed_generation) == ("Creating", 2)


def test_terminal_failure_of_an_applied_generation_is_stalled_but_still_ready() -> None:
    # Credentials revoked after the version was applied: it is still there as the spec says, but
    # nothing more can be done without a human (Argo CD: Degraded, kstatus: Failed).
    previous = [make_condition(ConditionType.READY, True, Reason.AVAILABLE, "x", 2)]
    conditions = conditions_for_failure(
        Reason.AUTH_FAILED, "denied", 2, remote_exists=None, previous=previous
    )
    assert by_type4(conditions) == (AVAILABLE, ("False", "AuthFailed"), STOPPED, _stalled("AuthFailed"))


def test_stalled_reasons_are_the_argocd_terminal_reasons() -> None:
    lua = (REPO / "deploy/argocd/resource_customizations/pai.mlops.dev/ModelVersion/health.lua").read_text()
    block = lua[lua.index("local terminal = {") : lua.index("}", lua.index("local terminal = {"))]
    assert set(re.findall(r"(\w+) = true", block)) == {r.value for r in TERMINAL_REASONS}


def test_deletion_blocked_says_how_to_get_out() -> None:
    message = deletion_blocked_message(
        "InvalidAccessKeyId.NotFound: unknown access key", finalizer=FINALIZER, registry="PAI"
    )
    assert "spec.deletionPolicy: Retain" in message
    assert "pai.mlops.dev/finalizer" in message
    assert by_type(conditions_for_deletion_blocked(message, 3)) == {
        "Ready": ("False", "Deleting"),
        "Synced": ("False", "DeletionBlocked"),
        # Still trying (the finalizer retries); kstatus reads a deleting object as Terminating.
        "Reconciling": ("True", "Deleting"),
        "Stalled": ("False", "DeletionBlocked"),
    }


def test_deletion_retrying_is_reconciling() -> None:
    assert by_type(conditions_for_deletion_retrying("503 (retrying)", 3)) == {
        "Ready": ("False", "Deleting"),
        "Synced": ("False", "ReconcileError"),
        "Reconciling": ("True", "Deleting"),
        "Stalled": ("False", "ReconcileError"),
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
