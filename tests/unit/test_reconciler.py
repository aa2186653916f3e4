"""Reconciler passes against the real PAI emulator (in-process, over HTTP) through the real
PaiClient: which calls a pass makes, in what order, and what status, events and retry timing it
hands back."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pai_operator.pai import Credentials
from pai_operator.pai.spec import (
    DELETION_POLICY_ANNOTATION,
    FINALIZER,
    MAX_METRICS_CHARS,
    OWNER_LABEL_KEY,
    OWNER_REF_LABEL_KEY,
    PAUSED_ANNOTATION,
)
from pai_operator.reconciler import DELETION_BLOCKED_AFTER, DeletionResult, ObjectState, PassResult
from pai_operator.settings import OperatorSettings
from tests.unit.reconciler_harness import (
    ACCESS_KEY_ID,
    MODEL,
    NAMESPACE,
    OBJECT_REF,
    OTHER_UID,
    REGION,
    SECRET,
    UID,
    URI,
    Harness,
    HarnessFactory,
    harness_factory,
    label_map,
)

FIXED: dict[str, Any] = {"modelId": MODEL, "uri": URI, "versionName": "1.0.0"}
ASSIGNED: dict[str, Any] = {"modelId": MODEL, "uri": URI}


@pytest.fixture
async def make_harness() -> AsyncIterator[HarnessFactory]:
    """Harnesses with non-default settings, credentials or namespace annotations."""
    async with harness_factory() as make:
        yield make


@pytest.fixture
async def h(make_harness: HarnessFactory) -> Harness:
    return await make_harness()


def cond(status: dict[str, Any], type_: str) -> dict[str, Any]:
    found = [c for c in status.get("conditions", []) if c["type"] == type_]
    assert len(found) == 1, status
    result: dict[str, Any] = found[0]
    return result


def synced(status: dict[str, Any]) -> tuple[str, str]:
    c = cond(status, "Synced")
    return c["status"], c["reason"]


def event_reasons(result: PassResult | DeletionResult) -> list[tuple[str, str]]:
    return [(e.type, e.reason) for e in result.events]


# --- create -----------------------------------------------------------------------------------


async def test_create_with_fixed_name(h: Harness) -> None:
    result = await h.reconcile({**FIXED, "labels": {"team": "a"}})

    # Generation 1: the name was in the spec from the start, so no server-assigned create can
    # have preceded it and no ownership search is needed (see the late-name test below, where
    # the spec changed and the search runs).
    assert await h.pai.actions() == ["GetModelVersion", "CreateModelVersion", "GetModelVersion"]
    body = json.loads(h.pai.requests[1].content)
    assert body["VersionName"] == "1.0.0"
    assert {"Key": OWNER_LABEL_KEY, "Value": UID} in body["Labels"]
    assert {"Key": "team", "Value": "a"} in body["Labels"]

    patch = result.status_patch
    assert patch is not None
    assert patch["id"] == f"{MODEL}:1.0.0"
    assert patch["versionName"] == "1.0.0"
    assert patch["regionId"] == REGION
    assert patch["observedGeneration"] == 1
    assert patch["atProvider"]["uri"] == URI
    assert patch["atProvider"]["labels"] == {
        OWNER_LABEL_KEY: UID,
        OWNER_REF_LABEL_KEY: OBJECT_REF,
        "team": "a",
    }
    assert patch["atProvider"]["gmtCreateTime"]  # taken from the re-read, not from spec
    assert (cond(patch, "Ready")["status"], cond(patch, "Ready")["reason"]) == ("True", "Available")
    assert (cond(patch, "Synced")["status"], cond(patch, "Synced")["reason"]) == ("True", "ReconcileSuccess")
    assert ("Normal", "Created") in event_reasons(result)
    assert result.outcome == "changed"
    assert result.retry_in is None
    assert result.conditions == {
        "Ready": "True",
        "Synced": "True",
        "Reconciling": "False",
        "Stalled": "False",
    }
    assert h.clients.regions == [REGION]
    assert h.namespaces.calls == []  # the namespace default matters only when deleting


async def test_create_with_server_assigned_name_then_in_sync_pass_writes_nothing(h: Harness) -> None:
    first = await h.reconcile(ASSIGNED)

    assert await h.pai.actions() == [
        "ListModelVersions",
        "ListModelVersions",
        "CreateModelVersion",
        "GetModelVersion",
    ]
    assert [r.url.params["Label"] for r in h.pai.requests[:2]] == [UID, OBJECT_REF]

    assert h.state.version_name == "0.1.0"
    assert h.status["versionName"] == "0.1.0"
    assert h.status["id"] == f"{MODEL}:0.1.0"
    assert first.outcome == "changed"
    assert ("Normal", "Created") in event_reasons(first)

    await h.pai.clear()
    second = await h.reconcile(ASSIGNED)
    assert await h.pai.actions() == ["GetModelVersion"]
    assert h.pai.requests[0].url.path.endswith("/versions/0.1.0")
    assert second.outcome == "in_sync"
    assert second.status_patch is None
    assert second.events == []
    assert await h.pai.names() == ["0.1.0"]


async def test_status_write_lost_after_create_uses_the_name_in_memory(h: Harness) -> None:
    await h.reconcile(ASSIGNED)
    h.status = {}  # the status patch never landed; the object's memory still has the name
    await h.pai.clear()

    result = await h.reconcile(ASSIGNED)

    assert await h.pai.actions() == ["GetModelVersion"]
    assert result.status_patch is not None
    assert result.status_patch["versionName"] == "0.1.0"
    assert await h.pai.names() == ["0.1.0"]


async def test_server_assigned_name_is_the_one_pai_answers(h: Harness) -> None:
    # PAI numbers after the highest existing minor; it does not fill gaps. The pass must take
    # the name from the create answer, never predict it.
    await h.pai.seed("0.1.0", owner=OTHER_UID)
    await h.pai.seed("0.3.0", owner=None)

    result = await h.reconcile(ASSIGNED)

    assert await h.pai.actions() == [
        "ListModelVersions",
        "ListModelVersions",
        "CreateModelVersion",
        "GetModelVersion",
    ]
    assert await h.pai.names() == ["0.1.0", "0.3.0", "0.4.0"]
    assert h.status["versionName"] == "0.4.0"
    assert h.state.version_name == "0.4.0"
    assert label_map(await h.pai.version("0.4.0"))[OWNER_LABEL_KEY] == UID
    assert result.outcome == "changed"


@pytest.mark.parametrize("spec", [FIXED, ASSIGNED], ids=["fixed-name", "server-assigned"])
async def test_lost_create_response_is_retried_then_found_without_a_second_create(
    h: Harness, spec: dict[str, Any]
) -> None:
    await h.pai.lose_response("CreateModelVersion")

    first = await h.reconcile(spec)

    assert await h.pai.writes() == ["CreateModelVersion"]
    assert len(await h.pai.names()) == 1  # the create was committed
    [create] = [e for e in await h.pai.journal() if e["Operation"] == "CreateModelVersion"]
    assert (create["Status"], create["Fault"]) == (200, "commit_then_drop")
    assert first.outcome == "retry"
    assert first.retry_in is not None
    assert first.retry_in > 0
    assert synced(h.status) == ("False", "ReconcileError")
    assert (cond(h.status, "Ready")["status"], cond(h.status, "Ready")["reason"]) == ("False", "Creating")
    assert SECRET not in json.dumps(h.status)

    await h.pai.clear()
    second = await h.reconcile(spec)

    assert "CreateModelVersion" not in (await h.pai.actions())
    assert await h.pai.writes() == []  # the version already carries our label: nothing to repair
    assert len(await h.pai.names()) == 1
    [name] = await h.pai.names()
    assert h.status["versionName"] == name
    assert synced(h.status) == ("True", "ReconcileSuccess")
    assert cond(h.status, "Ready")["status"] == "True"
    assert second.retry_in is None
    assert h.state.failures == 0


# --- restores and late names (ownership succession) ------------------------------------------

OLD_UID = "5e6f7a8b-uid-before-restore"


@pytest.mark.parametrize("spec", [FIXED, ASSIGNED], ids=["fixed-name", "server-assigned"])
async def test_restored_object_with_a_new_uid_takes_over_its_version(
    h: Harness, spec: dict[str, Any]
) -> None:
    """Velero restore / kubectl replace --force / Argo CD Replace=true: same namespace/name, new
    UID, no status. The version recorded for this namespace/name by a UID that no longer exists
    is taken over with one label upsert: no Conflict, no second version."""
    name = spec.get("versionName", "0.1.0")
    await h.pai.seed(name, owner=OLD_UID, ref=OBJECT_REF)
    h.reconciler.owner_alive = {UID}.__contains__  # the engine's live objects: OLD_UID is gone

    result = await h.reconcile(spec)

    assert await h.pai.writes() == ["CreateModelVersionLabels"]
    assert await h.pai.names() == [name]
    assert label_map(await h.pai.version(name))[OWNER_LABEL_KEY] == UID
    assert synced(h.status) == ("True", "ReconcileSuccess")
    assert h.status["versionName"] == name
    assert ("Normal", "Adopted") in event_reasons(result)


async def test_a_version_whose_recorded_owner_is_alive_is_never_shared(h: Harness) -> None:
    await h.pai.seed("1.0.0", owner=OLD_UID, ref=OBJECT_REF)
    h.reconciler.owner_alive = {UID, OLD_UID}.__contains__

    await h.reconcile(FIXED)

    assert await h.pai.writes() == []
    assert synced(h.status) == ("False", "Conflict")
    assert label_map(await h.pai.version("1.0.0"))[OWNER_LABEL_KEY] == OLD_UID


async def test_name_set_after_a_server_assigned_create_reports_the_stray_and_orphans_nothing(
    h: Harness,
) -> None:
    """The operator created 0.1.0 (server-assigned), then died before the name reached status;
    the user then set spec.versionName. Creating 1.0.0 would orphan 0.1.0: it is reported
    instead, and deleting the object deletes it."""
    await h.reconcile(ASSIGNED)
    assert await h.pai.names() == ["0.1.0"]
    h.status, h.state = {}, ObjectState()  # status patch lost, operator restarted
    await h.pai.clear()
    named = {**ASSIGNED, "versionName": "1.0.0"}

    await h.reconcile(named, generation=2)  # adding the name is a spec change

    assert await h.pai.writes() == []
    assert await h.pai.names() == ["0.1.0"]
    condition = cond(h.status, "Synced")
    assert (condition["status"], condition["reason"]) == ("False", "Conflict")
    assert "spec.versionName: 0.1.0" in condition["message"]

    deleted = await finalize(h, named)

    assert deleted.done
    assert await h.pai.names() == []


# --- update -----------------------------------------------------------------------------------


async def test_label_value_change_is_one_upsert_and_a_failed_upsert_keeps_the_old_value(h: Harness) -> None:
    """A changed value is never deleted first: CreateModelVersionLabels replaces an existing key's
    value, so there is no window where the label is missing, and a failed upsert leaves the old
    value (not no value) until the retry."""
    await h.pai.seed("1.0.0", labels={"stage": "dev", "team": "a"})
    spec = {**FIXED, "labels": {"stage": "prod", "team": "a"}}
    await h.pai.fail("CreateModelVersionLabels", 503, "ServiceUnavailable")

    failed = await h.reconcile(spec)

    assert failed.outcome == "retry"
    assert "DeleteModelVersionLabels" not in await h.pai.actions()
    assert label_map(await h.pai.version("1.0.0"))["stage"] == "dev"

    await h.pai.clear()
    await h.reconcile(spec)

    assert await h.pai.writes() == ["CreateModelVersionLabels"]
    assert label_map(await h.pai.version("1.0.0")) == {
        OWNER_LABEL_KEY: UID,
        OWNER_REF_LABEL_KEY: OBJECT_REF,
        "stage": "prod",
        "team": "a",
    }


async def test_update_sends_only_changed_fields_and_the_label_difference(h: Harness) -> None:
    await h.pai.seed(
        "1.0.0",
        labels={"team": "a", "stage": "dev", "old": "x"},
        VersionDescription="before",
        ApprovalStatus="Pending",
        Metrics={"acc": 0.9},
        SourceType="Custom",
    )
    spec = {
        **FIXED,
        "labels": {"team": "a", "stage": "prod", "new": "y"},
        "versionDescription": "after",
        "approvalStatus": "Pending",
        "metrics": {"acc": 0.9},
        "sourceType": "Custom",
    }

    result = await h.reconcile(spec)

    assert await h.pai.actions() == [
        "GetModelVersion",
        "DeleteModelVersionLabels",
        "CreateModelVersionLabels",
        "UpdateModelVersion",
        "GetModelVersion",
    ]
    deleted, added, updated = h.pai.requests[1:4]
    assert deleted.url.params["LabelKeys"] == "old"  # stage changes value: upserted, not deleted
    assert json.loads(added.content) == {
        "Labels": [{"Key": "new", "Value": "y"}, {"Key": "stage", "Value": "prod"}]
    }
    assert set(json.loads(updated.content)) == {"VersionDescription"}
    assert label_map(await h.pai.version("1.0.0")) == {
        OWNER_LABEL_KEY: UID,
        OWNER_REF_LABEL_KEY: OBJECT_REF,
        "team": "a",
        "stage": "prod",
        "new": "y",
    }
    assert result.outcome == "changed"
    assert ("Normal", "Updated") in event_reasons(result)
    assert h.status["atProvider"]["labels"]["stage"] == "prod"

    await h.pai.clear()
    again = await h.reconcile(spec)
    assert await h.pai.actions() == ["GetModelVersion"]
    assert again.outcome == "in_sync"


async def test_unset_spec_fields_are_not_managed(h: Harness) -> None:
    await h.pai.seed("1.0.0", labels={"mine": "not-yours"}, VersionDescription="set in the console")

    result = await h.reconcile(FIXED)

    assert await h.pai.actions() == ["GetModelVersion"]
    assert result.outcome == "in_sync"
    assert label_map(await h.pai.version("1.0.0"))["mine"] == "not-yours"


async def test_existing_unowned_version_needs_adoption_policy(h: Harness) -> None:
    await h.pai.seed("1.0.0", owner=None)

    blocked = await h.reconcile(FIXED)
    assert await h.pai.writes() == []
    assert synced(h.status) == ("False", "AlreadyExists")
    assert blocked.outcome == "blocked"
    assert event_reasons(blocked) == [("Warning", "AlreadyExists")]

    await h.pai.clear()
    adopted = await h.reconcile({**FIXED, "adoptionPolicy": "IfExists"})
    assert await h.pai.actions() == ["GetModelVersion", "CreateModelVersionLabels", "GetModelVersion"]
    assert label_map(await h.pai.version("1.0.0")) == {OWNER_LABEL_KEY: UID, OWNER_REF_LABEL_KEY: OBJECT_REF}
    assert synced(h.status) == ("True", "ReconcileSuccess")
    assert ("Normal", "Adopted") in event_reasons(adopted)


async def test_version_owned_by_another_object_is_never_written(h: Harness) -> None:
    await h.pai.seed("1.0.0", owner=OTHER_UID, VersionDescription="theirs")

    result = await h.reconcile({**FIXED, "versionDescription": "mine", "adoptionPolicy": "IfExists"})

    assert await h.pai.writes() == []
    assert result.outcome == "blocked"
    assert synced(h.status) == ("False", "Conflict")
    assert OTHER_UID in cond(h.status, "Synced")["message"]


# --- invalid spec -----------------------------------------------------------------------------


async def test_oversized_metrics_is_invalid_without_any_request(h: Harness) -> None:
    metrics = {"blob": "x" * MAX_METRICS_CHARS}
    assert len(json.dumps(metrics, separators=(",", ":"))) > MAX_METRICS_CHARS

    result = await h.reconcile({**FIXED, "metrics": metrics})

    assert h.pai.requests == []
    assert synced(h.status) == ("False", "InvalidSpec")
    assert "spec.metrics" in cond(h.status, "Synced")["message"]
    assert result.outcome == "invalid"
    assert result.retry_in is None  # terminal: nothing changes until the spec does
    assert event_reasons(result) == [("Warning", "InvalidSpec")]

    again = await h.reconcile({**FIXED, "metrics": metrics})
    assert h.pai.requests == []
    assert again.events == []  # one Warning, not one per resync
    assert again.status_patch is None


async def test_spec_that_fails_the_schema_is_invalid_without_any_request(h: Harness) -> None:
    result = await h.reconcile({"modelId": MODEL, "versionName": "not a version"})

    assert h.pai.requests == []
    assert synced(h.status) == ("False", "InvalidSpec")
    assert "spec.uri" in cond(h.status, "Synced")["message"]
    assert result.outcome == "invalid"


# --- failures ---------------------------------------------------------------------------------


async def test_missing_model_is_retried_slowly(h: Harness) -> None:
    spec = {**FIXED, "modelId": "model-gone"}

    result = await h.reconcile(spec)

    assert await h.pai.actions() == ["GetModelVersion"]
    assert synced(h.status) == ("False", "ModelNotFound")
    assert result.retry_in == h.settings.model_missing_retry
    assert event_reasons(result) == [("Warning", "ModelNotFound")]


WRONG_SECRET = "wrong-secret-never-shown"


@pytest.mark.parametrize(
    ("credentials", "status", "code"),
    [
        # The emulator's own signature checks: a key it does not know, a secret that does not match.
        (Credentials("LTAI-unknown-id", SECRET), 404, "InvalidAccessKeyId.NotFound"),
        (Credentials(ACCESS_KEY_ID, WRONG_SECRET), 400, "SignatureDoesNotMatch"),
        # RAM policies are not emulated: this one is injected.
        (None, 403, "Forbidden.RAM"),
    ],
    ids=["unknown-key", "wrong-secret", "ram-denied"],
)
async def test_auth_errors_are_auth_failed(
    make_harness: HarnessFactory, credentials: Credentials | None, status: int, code: str
) -> None:
    h = await make_harness(credentials=credentials)
    if credentials is None:
        await h.pai.fail("GetModelVersion", status, code)

    result = await h.reconcile(FIXED)

    journal = await h.pai.journal()
    assert [(e["Operation"], e["Status"], e["Code"]) for e in journal] == [("GetModelVersion", status, code)]
    assert await h.pai.writes() == []  # in particular: a 404 auth error is not "version missing"
    assert synced(h.status) == ("False", "AuthFailed")
    assert result.retry_in is not None
    assert result.retry_in >= 0.9 * h.settings.resync_interval
    assert SECRET not in json.dumps(h.status)
    assert WRONG_SECRET not in json.dumps(h.status)


async def test_throttling_honours_retry_after(h: Harness) -> None:
    # The emulator's own quota, not an injected error: it is what sends x-acs-retry-after.
    await h.pai.exhaust_quota("GetModelVersion", retry_after=7)

    result = await h.reconcile(FIXED)

    [entry] = await h.pai.journal()
    assert (entry["Operation"], entry["Status"], entry["Code"]) == ("GetModelVersion", 429, "Throttling.User")

    assert synced(h.status) == ("False", "ReconcileError")
    assert result.retry_in is not None
    assert result.retry_in >= 7
    assert result.outcome == "retry"


async def test_server_errors_back_off_exponentially_with_one_warning_and_one_status_write(
    h: Harness,
) -> None:
    await h.pai.seed("1.0.0")
    await h.pai.fail("GetModelVersion", 503, "ServiceUnavailable", times=None)
    base, cap = h.settings.backoff_base, h.settings.backoff_cap

    results = [await h.reconcile(FIXED) for _ in range(7)]

    for failures, result in enumerate(results, start=1):
        ceiling = min(cap, base * 2 ** (failures - 1))
        assert result.retry_in is not None
        assert ceiling / 2 <= result.retry_in <= ceiling <= cap
        assert result.outcome == "retry"
    assert [r.retry_in for r in results[:4]] == sorted(r.retry_in or 0 for r in results[:4])
    assert results[-1].retry_in is not None
    assert results[-1].retry_in >= cap / 2
    assert event_reasons(results[0]) == [("Warning", "ReconcileError")]
    assert all(r.events == [] for r in results[1:])
    # The first failure writes Synced=False; the retries find status already right. The
    # request IDs differ on every answer, so this also proves none reaches status.
    assert results[0].status_patch is not None
    assert [r.status_patch for r in results[1:]] == [None] * 6
    assert len(set(h.pai.request_ids)) == 7
    assert not any(request_id in json.dumps(h.status) for request_id in h.pai.request_ids)
    assert h.pai.request_ids[0] in results[0].events[0].message  # events may carry it
    assert h.state.failures == 7

    await h.pai.clear_faults()
    recovered = await h.reconcile(FIXED)
    assert synced(h.status) == ("True", "ReconcileSuccess")
    assert h.state.failures == 0
    assert recovered.retry_in is None


async def test_a_different_error_starts_a_new_warning_streak(h: Harness) -> None:
    await h.pai.fail("GetModelVersion", 503, "ServiceUnavailable", times=2)
    await h.pai.fail("GetModelVersion", 429, "Throttling.User", times=1)

    results = [await h.reconcile(FIXED) for _ in range(3)]

    assert [event_reasons(r) for r in results] == [
        [("Warning", "ReconcileError")],
        [],
        [("Warning", "ReconcileError")],
    ]


async def test_failed_pass_keeps_previous_status(h: Harness) -> None:
    await h.reconcile({**FIXED, "labels": {"team": "a"}})
    before = dict(h.status)
    await h.pai.fail("GetModelVersion", 500, "InternalError")

    result = await h.reconcile({**FIXED, "labels": {"team": "a"}})

    patch = result.status_patch
    assert patch is not None
    assert set(patch) == {"conditions"}  # no key of the earlier status is erased or rewritten
    for key in ("id", "versionName", "regionId", "atProvider", "observedGeneration"):
        assert h.status[key] == before[key]
    # Ready: the last known answer is kept (the version existed); Synced tells of the failure.
    assert cond(h.status, "Ready") == cond(before, "Ready")
    assert synced(h.status) == ("False", "ReconcileError")


async def test_failed_write_reports_the_observed_version(h: Harness) -> None:
    await h.pai.seed("1.0.0", VersionDescription="before")
    await h.pai.fail("UpdateModelVersion", 503, "ServiceUnavailable")

    result = await h.reconcile({**FIXED, "versionDescription": "after"})

    assert await h.pai.actions() == ["GetModelVersion", "UpdateModelVersion"]
    assert result.outcome == "retry"
    assert synced(h.status) == ("False", "ReconcileError")
    # Not Ready: the spec asks for "after" and PAI still holds "before". The version exists (the
    # message says so, and status.atProvider shows it as it is), and the pass is retried.
    ready = cond(h.status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "UpdateFailed")
    assert "still exists" in ready["message"]
    assert (cond(h.status, "Reconciling")["status"], cond(h.status, "Stalled")["status"]) == ("True", "False")
    assert h.status["versionName"] == "1.0.0"
    assert h.status["atProvider"]["uri"] == URI


# --- paused and Observe -----------------------------------------------------------------------


async def test_paused_object_only_reads(h: Harness) -> None:
    await h.pai.seed("1.0.0", VersionDescription="remote")
    paused = {PAUSED_ANNOTATION: "true"}

    result = await h.reconcile({**FIXED, "versionDescription": "spec"}, annotations=paused)

    assert await h.pai.writes() == []
    assert {r.method for r in h.pai.requests} == {"GET"}
    assert result.outcome == "paused"
    assert synced(h.status) == ("False", "ReconcilePaused")
    assert h.status["drift"] == ["versionDescription"]
    remote = await h.pai.version("1.0.0")
    assert remote is not None
    assert remote.version_description == "remote"


async def test_paused_object_does_not_create(h: Harness) -> None:
    result = await h.reconcile(ASSIGNED, annotations={PAUSED_ANNOTATION: "true"})

    assert await h.pai.actions() == ["ListModelVersions", "ListModelVersions"]
    assert await h.pai.names() == []
    assert result.outcome == "paused"
    assert cond(h.status, "Ready")["status"] == "False"


async def test_observe_only_reads_and_reports_drift(h: Harness) -> None:
    await h.pai.seed(
        "1.0.0", owner=None, labels={"team": "b"}, VersionDescription="remote", ApprovalStatus="Pending"
    )
    spec = {
        **FIXED,
        "managementPolicy": "Observe",
        "versionDescription": "spec",
        "approvalStatus": "Approved",
        "labels": {"team": "b"},
    }

    result = await h.reconcile(spec)

    assert await h.pai.actions() == ["GetModelVersion"]
    assert result.outcome == "observed"
    assert h.status["drift"] == ["versionDescription", "approvalStatus"]
    assert synced(h.status) == ("True", "ReconcileSuccess")
    assert "drift in versionDescription, approvalStatus" in cond(h.status, "Synced")["message"]
    assert OWNER_LABEL_KEY not in label_map(await h.pai.version("1.0.0"))  # not even adopted

    await h.pai.clear()
    again = await h.reconcile(spec)
    assert await h.pai.actions() == ["GetModelVersion"]
    assert again.status_patch is None


# --- finalize ---------------------------------------------------------------------------------


async def finalize(h: Harness, spec: dict[str, Any], **view: Any) -> DeletionResult:
    result = await h.reconciler.finalize(h.view(spec, **view), h.state)
    if result.status_patch:
        h.status = {**h.status, **result.status_patch}
    return result


async def test_delete_policy_deletes_only_the_owned_version(h: Harness) -> None:
    await h.pai.seed("1.0.0")
    await h.pai.seed("2.0.0", owner=OTHER_UID)
    await h.pai.seed("3.0.0", owner=None)

    result = await finalize(h, FIXED)

    assert result.done
    assert await h.pai.writes() == ["DeleteModelVersion"]
    assert sorted(await h.pai.names()) == ["2.0.0", "3.0.0"]
    assert event_reasons(result) == [("Normal", "Deleted")]
    assert h.namespaces.calls == [NAMESPACE]


async def test_delete_finds_a_server_assigned_version_by_its_label(h: Harness) -> None:
    await h.pai.seed("0.1.0", owner=OTHER_UID)
    await h.pai.seed("0.2.0")

    result = await finalize(h, ASSIGNED)

    assert result.done
    assert await h.pai.actions() == ["ListModelVersions", "ListModelVersions", "DeleteModelVersion"]
    assert await h.pai.names() == ["0.1.0"]


async def test_delete_answered_404_is_done(h: Harness) -> None:
    await h.pai.seed("1.0.0")
    await h.pai.fail("DeleteModelVersion", 404, "InvalidModelVersion.NotFound")

    result = await finalize(h, FIXED)

    assert result.done
    assert await h.pai.writes() == ["DeleteModelVersion"]


async def test_already_gone_is_done(h: Harness) -> None:
    result = await finalize(h, FIXED)

    assert result.done
    assert await h.pai.actions() == ["GetModelVersion", "ListModelVersions", "ListModelVersions"]


async def test_retain_removes_only_the_ownership_label(h: Harness) -> None:
    await h.pai.seed("1.0.0", labels={"team": "a"})

    result = await finalize(h, {**FIXED, "deletionPolicy": "Retain"})

    assert result.done
    assert await h.pai.writes() == ["DeleteModelVersionLabels"]
    assert h.pai.requests[-1].url.params["LabelKeys"] == f"{OWNER_LABEL_KEY},{OWNER_REF_LABEL_KEY}"
    assert label_map(await h.pai.version("1.0.0")) == {"team": "a"}
    assert event_reasons(result) == [("Normal", "Released")]


async def test_retain_lets_go_even_when_the_label_cannot_be_removed(h: Harness) -> None:
    await h.pai.seed("1.0.0")
    await h.pai.fail("DeleteModelVersionLabels", 503, "ServiceUnavailable")

    result = await finalize(h, {**FIXED, "deletionPolicy": "Retain"})

    assert result.done
    assert event_reasons(result) == [("Warning", "ReleaseIncomplete")]
    assert await h.pai.version("1.0.0") is not None


async def test_namespace_annotation_retain_applies_when_spec_is_unset(make_harness: HarnessFactory) -> None:
    h = await make_harness(namespace_annotations={NAMESPACE: {DELETION_POLICY_ANNOTATION: "Retain"}})
    await h.pai.seed("1.0.0")
    await h.pai.seed("2.0.0")

    kept = await finalize(h, FIXED)
    assert kept.done
    assert await h.pai.writes() == ["DeleteModelVersionLabels"]
    assert OWNER_LABEL_KEY not in label_map(await h.pai.version("1.0.0"))

    await h.pai.clear()
    explicit = await finalize(h, {**FIXED, "versionName": "2.0.0", "deletionPolicy": "Delete"})
    assert explicit.done
    assert await h.pai.writes() == ["DeleteModelVersion"]
    assert await h.pai.version("2.0.0") is None


async def test_observe_finalize_does_nothing_remotely(h: Harness) -> None:
    await h.pai.seed("1.0.0")

    result = await finalize(h, {**FIXED, "managementPolicy": "Observe"})

    assert result.done
    assert h.pai.requests == []
    assert await h.pai.version("1.0.0") is not None


async def test_version_owned_by_another_object_is_never_deleted(h: Harness) -> None:
    await h.pai.seed("1.0.0", owner=OTHER_UID)

    result = await finalize(h, FIXED)

    assert result.done
    assert await h.pai.writes() == []
    assert await h.pai.version("1.0.0") is not None
    assert OTHER_UID in result.message


async def test_auth_failure_keeps_the_finalizer_and_explains_the_way_out(
    make_harness: HarnessFactory,
) -> None:
    # A real signature mismatch: the emulator's message carries its string to sign (nonce and
    # date of that request), which must not make every retry a new status write.
    h = await make_harness(credentials=Credentials(ACCESS_KEY_ID, WRONG_SECRET))
    await h.pai.seed("1.0.0")

    first = await finalize(h, FIXED)

    assert not first.done
    assert [(e["Status"], e["Code"]) for e in await h.pai.journal()] == [(400, "SignatureDoesNotMatch")]
    assert await h.pai.writes() == []
    assert first.retry_in >= min(h.settings.resync_interval, 60.0)
    assert first.status_patch is not None
    synced_condition = cond(h.status, "Synced")
    assert (synced_condition["status"], synced_condition["reason"]) == ("False", "DeletionBlocked")
    assert "deletionPolicy: Retain" in synced_condition["message"]
    assert FINALIZER in synced_condition["message"]
    assert "remove" in synced_condition["message"]
    assert (cond(h.status, "Ready")["status"], cond(h.status, "Ready")["reason"]) == ("False", "Deleting")
    assert event_reasons(first) == [("Warning", "DeletionBlocked")]
    assert WRONG_SECRET not in json.dumps(h.status)

    second = await finalize(h, FIXED)
    assert not second.done
    assert second.events == []
    assert second.status_patch is None  # same message: no status write per retry
    assert await h.pai.version("1.0.0") is not None


async def test_transient_delete_failure_keeps_the_finalizer(h: Harness) -> None:
    await h.pai.seed("1.0.0")
    await h.pai.fail("DeleteModelVersion", 503, "ServiceUnavailable")

    first = await finalize(h, FIXED)
    assert not first.done
    assert 0 < first.retry_in <= h.settings.backoff_cap

    second = await finalize(h, FIXED)
    assert second.done
    assert await h.pai.version("1.0.0") is None


async def test_transient_delete_failures_warn_rate_limited_without_the_last_resort_advice(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """A 503 on delete is routine: a WARNING (on attempts 1, 2, 4, 8, ...), no DeletionBlocked
    condition or event and no "remove the finalizer" advice. Only once the failures persist past
    DELETION_BLOCKED_AFTER attempts does the object say DeletionBlocked, with the way out."""
    await h.pai.seed("1.0.0")
    await h.pai.fail("DeleteModelVersion", 503, "ServiceUnavailable", times=None)
    caplog.set_level(logging.DEBUG, logger="pai_operator")

    results = []
    for _ in range(DELETION_BLOCKED_AFTER - 1):
        results.append(await finalize(h, FIXED))

    assert not any(r.done for r in results)
    assert all(r.events == [] for r in results)
    synced_condition = cond(h.status, "Synced")
    assert synced_condition["reason"] == "ReconcileError"
    assert "ServiceUnavailable" in synced_condition["message"]
    assert FINALIZER not in synced_condition["message"]
    assert (cond(h.status, "Ready")["reason"]) == "Deleting"
    ours = [r for r in caplog.records if r.name.startswith("pai_operator") and "delet" in r.getMessage()]
    assert ours
    assert all(r.levelno == logging.WARNING for r in ours)
    assert all(FINALIZER not in r.getMessage() and "last resort" not in r.getMessage().lower() for r in ours)
    logged_attempts = [n for n in range(1, DELETION_BLOCKED_AFTER) if n & (n - 1) == 0]
    assert len(ours) == len(logged_attempts)  # rate-limited: not one line per retry

    caplog.clear()
    persisted = await finalize(h, FIXED)

    assert not persisted.done
    assert persisted.blocked
    assert event_reasons(persisted) == [("Warning", "DeletionBlocked")]
    synced_condition = cond(h.status, "Synced")
    assert synced_condition["reason"] == "DeletionBlocked"
    assert FINALIZER in synced_condition["message"]
    assert any(r.levelno == logging.ERROR and FINALIZER in r.getMessage() for r in caplog.records)

    await h.pai.clear_faults()
    assert (await finalize(h, FIXED)).done
    assert await h.pai.version("1.0.0") is None


async def test_model_gone_lets_the_object_go(h: Harness) -> None:
    result = await finalize(h, {**FIXED, "modelId": "model-gone"})

    assert result.done
    assert "model-gone" in result.message


async def test_invalid_spec_lets_the_object_go_without_requests(h: Harness) -> None:
    result = await finalize(h, {"modelId": MODEL})

    assert result.done
    assert h.pai.requests == []


async def test_settings_default_retain_is_used_without_namespace_annotation(
    make_harness: HarnessFactory,
) -> None:
    h = await make_harness(OperatorSettings(region=REGION, default_deletion_policy="Retain"))
    await h.pai.seed("1.0.0")
    result = await finalize(h, FIXED)
    assert result.done
    assert await h.pai.writes() == ["DeleteModelVersionLabels"]
    assert await h.pai.version("1.0.0") is not None


def test_status_description_of_a_signature_error_is_stable_across_attempts() -> None:
    from pai_operator.pai import AuthError
    from pai_operator.reconciler import describe_error

    texts = {
        describe_error(
            AuthError(
                f"The request signature does not match. Server string to sign is: 'ACS3-HMAC-SHA256\\n{n}'",
                code="SignatureDoesNotMatch",
                request_id=f"REQ-{n}",
            )
        )
        for n in ("3ae9", "710e")
    }
    assert texts == {"SignatureDoesNotMatch: The request signature does not match"}


# --- reconcile now --------------------------------------------------------------------------


async def test_a_pass_records_the_reconcile_request_it_handled(h: Harness) -> None:
    request = {"pai.mlops.dev/reconcile-requested-at": "2026-12-05T13:00:00Z"}
    await h.reconcile(FIXED)
    assert "lastHandledReconcileAt" not in h.status
    result = await h.reconcile(FIXED, annotations=request)
    assert result.status_patch == {"lastHandledReconcileAt": "2026-12-05T13:00:00Z"}
    # Handled: the next pass writes nothing, and removing the annotation keeps the value.
    assert (await h.reconcile(FIXED, annotations=request)).status_patch is None
    assert (await h.reconcile(FIXED)).status_patch is None
    assert h.status["lastHandledReconcileAt"] == "2026-12-05T13:00:00Z"


async def test_a_failed_pass_still_records_the_reconcile_request(h: Harness) -> None:
    await h.reconcile(FIXED)
    await h.pai.fail("GetModelVersion", 503, "ServiceUnavailable")
    await h.reconcile(FIXED, annotations={"pai.mlops.dev/reconcile-requested-at": "x"})
    assert h.status["lastHandledReconcileAt"] == "x"
    assert synced(h.status) == ("False", "ReconcileError")
