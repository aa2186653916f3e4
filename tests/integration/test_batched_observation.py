"""Batched drift observation on the real API server with the emulator as a process: in-sync
objects are checked with one ListModelVersions per model, drift made through the official SDK
is repaired, a version deleted behind the operator's back is recreated, and the GET path takes
over when the list cannot answer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from alibabacloud_aiworkspace20210204 import models as sdk_models
from alibabacloud_aiworkspace20210204.client import Client

from tests.support.emulator import AdminClient
from tests.support.operator import ModelVersions, OperatorProcess, wait_for

pytestmark = pytest.mark.integration

N = 6
RESYNC = 3.0


def _spec(model_id: str, i: int) -> dict[str, Any]:
    return {
        "modelId": model_id,
        "uri": f"oss://bucket/models/{i}/",
        "versionName": f"1.{i}.0",
        "approvalStatus": "Pending",
        "versionDescription": f"version {i}",
        "labels": {"team": "a"},
    }


@pytest.fixture
def converged(
    start_operator: Callable[..., OperatorProcess], mvs: ModelVersions, model_id: str
) -> Iterator[None]:
    """N Ready objects of one model; deleted again while the operator still runs, so that no
    object is left behind its finalizer (it would hold up deleting the CRD in later tests)."""
    start_operator(resync_interval=RESYNC)
    for i in range(N):
        mvs.create(f"mv-{i}", _spec(model_id, i))
    for i in range(N):
        mvs.wait_condition(f"mv-{i}", "Ready")
    yield
    for i in range(N):
        mvs.delete(f"mv-{i}")
    for i in range(N):
        mvs.wait_gone(f"mv-{i}")


def _reads(pai: AdminClient) -> tuple[int, int]:
    return len(pai.journal("ListModelVersions")), len(pai.journal("GetModelVersion"))


@pytest.mark.usefixtures("converged")
def test_in_sync_objects_cost_one_list_per_model_and_sdk_drift_is_repaired(
    mvs: ModelVersions,
    pai: AdminClient,
    model_id: str,
    official_sdk: Client,
) -> None:
    before = {f"mv-{i}": mvs.get(f"mv-{i}")["metadata"]["resourceVersion"] for i in range(N)}  # type: ignore[index]
    pai.clear_journal()
    wait_for("two resync intervals of lists", lambda: _reads(pai)[0] >= 2, timeout=4 * RESYNC)
    _, gets = _reads(pai)
    # N objects, 2+ intervals: lists only (one per model per interval), no per-object GET.
    assert gets == 0, pai.journal()
    assert all(e["ModelId"] == model_id for e in pai.journal("ListModelVersions"))
    assert not [e for e in pai.journal() if e["Operation"] not in ("ListModelVersions",)]
    after = {f"mv-{i}": mvs.get(f"mv-{i}")["metadata"]["resourceVersion"] for i in range(N)}  # type: ignore[index]
    assert after == before  # no Kubernetes write while in sync

    # Drift through the official SDK: the next list sees it, one GET confirms, one update repairs.
    official_sdk.update_model_version(
        model_id, "1.2.0", sdk_models.UpdateModelVersionRequest(version_description="changed by hand")
    )
    pai.clear_journal()

    def repaired() -> bool:
        versions = {v["VersionName"]: v for v in pai.versions(model_id)}
        return versions["1.2.0"].get("VersionDescription") == "version 2"

    wait_for("drift repaired", repaired, timeout=3 * RESYNC + 5)
    updates = pai.journal("UpdateModelVersion")
    assert [(e["VersionName"]) for e in updates] == ["1.2.0"]
    gets = pai.journal("GetModelVersion")
    assert {e["VersionName"] for e in gets} == {"1.2.0"}  # only the drifted object was re-read
    assert len(pai.journal("ListModelVersions")) >= 1


@pytest.mark.usefixtures("converged")
def test_a_version_deleted_behind_the_operators_back_is_recreated(
    mvs: ModelVersions,
    pai: AdminClient,
    model_id: str,
    official_sdk: Client,
) -> None:
    uid = mvs.get("mv-4")["metadata"]["uid"]  # type: ignore[index]
    official_sdk.delete_model_version(model_id, "1.4.0", sdk_models.DeleteModelVersionRequest())
    pai.clear_journal()

    def recreated() -> dict[str, Any] | None:
        return next((v for v in pai.versions(model_id) if v["VersionName"] == "1.4.0"), None)

    version = wait_for("version recreated", recreated, timeout=3 * RESYNC + 5)
    labels = {label["Key"]: label["Value"] for label in version.get("Labels", [])}
    assert labels["pai.mlops.dev/owner-uid"] == uid
    creates = pai.journal("CreateModelVersion")
    assert [e["VersionName"] for e in creates] == ["1.4.0"]
    assert len(pai.versions(model_id)) == N


@pytest.mark.usefixtures("converged")
def test_get_path_when_the_list_cannot_answer(
    pai: AdminClient,
    model_id: str,
    official_sdk: Client,
) -> None:
    # A RAM policy that allows GetModelVersion but not ListModelVersions.
    pai.add_fault("ListModelVersions", "error", code="Forbidden.RAM", http_status=403)
    pai.clear_journal()
    wait_for("a refused list", lambda: pai.journal("ListModelVersions"), timeout=3 * RESYNC)
    assert len(pai.journal("ListModelVersions")) == 1
    # The GET round the refusal started ends before the drift is made: on a loaded machine a GET
    # of that round could otherwise see the drift and leave the next round's GETs unneeded.
    wait_for("the GET round", lambda: len(pai.journal("GetModelVersion")) >= N, timeout=3 * RESYNC)
    official_sdk.update_model_version(
        model_id, "1.1.0", sdk_models.UpdateModelVersionRequest(approval_status="Rejected")
    )
    pai.clear_journal()

    def repaired() -> bool:
        versions = {v["VersionName"]: v for v in pai.versions(model_id)}
        return versions["1.1.0"].get("ApprovalStatus") == "Pending"

    wait_for("drift repaired through GETs", repaired, timeout=4 * RESYNC + 5)
    gets = {e["VersionName"] for e in pai.journal("GetModelVersion")}
    assert gets == {f"1.{i}.0" for i in range(N)}  # every object checked on its own
    assert pai.journal("ListModelVersions") == []  # refused once, not asked again
    assert [e["VersionName"] for e in pai.journal("UpdateModelVersion")] == ["1.1.0"]
