"""Objects recreated under the same namespace/name with a new UID (Velero restore, cluster
migration, `kubectl replace --force`, Argo CD `Replace=true`), and a name set after a
server-assigned create: the real operator process, kube-apiserver and emulator."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import one_remote
from tests.support.emulator import AdminClient
from tests.support.operator import ModelVersions, wait_for

pytestmark = pytest.mark.integration

URI = "oss://bucket.oss-cn-hangzhou.aliyuncs.com/m/"
OWNER = "pai.mlops.dev/owner-uid"
OWNER_REF = "pai.mlops.dev/owner-ref"


def labels_of(version: dict[str, Any]) -> dict[str, str]:
    return {label["Key"]: label["Value"] for label in version.get("Labels") or []}


def creates(pai: AdminClient, model_id: str) -> int:
    return len([e for e in pai.journal("CreateModelVersion") if e["ModelId"] == model_id])


def test_restored_object_with_a_new_uid_takes_over_its_server_assigned_version(
    start_operator: Any, mvs: ModelVersions, pai: AdminClient, model_id: str, namespace: str
) -> None:
    operator = start_operator()
    spec = {"modelId": model_id, "uri": URI, "labels": {"team": "a"}}
    mvs.create("restored", spec)
    first = mvs.wait_condition("restored", "Ready")
    old_uid = first["metadata"]["uid"]
    version = one_remote(pai, model_id)
    assert labels_of(version)[OWNER] == old_uid
    assert labels_of(version)[OWNER_REF] == f"{namespace}/restored"

    # The cluster is lost (operator gone, object gone without its finalizer running), then the
    # object is restored from a backup: same namespace/name, a new UID, no status.
    operator.stop()
    mvs.delete("restored")
    mvs.patch("restored", {"metadata": {"finalizers": None}})
    mvs.wait_gone("restored")
    mvs.create("restored", spec)
    start_operator()

    obj = mvs.wait_condition("restored", "Ready")
    mvs.wait_condition("restored", "Synced", "True", "ReconcileSuccess")
    assert obj["metadata"]["uid"] != old_uid
    version = one_remote(pai, model_id)  # exactly one: nothing duplicated, nothing orphaned
    assert labels_of(version)[OWNER] == obj["metadata"]["uid"]
    assert obj["status"]["versionName"] == version["VersionName"]
    assert creates(pai, model_id) == 1

    mvs.delete("restored")
    mvs.wait_gone("restored")
    assert pai.versions(model_id) == []


def test_name_set_after_a_server_assigned_create_is_reported_and_nothing_is_orphaned(
    start_operator: Any, mvs: ModelVersions, pai: AdminClient, model_id: str
) -> None:
    first = start_operator()
    # Hold the re-read after the create so the process dies with the version created and its
    # assigned name recorded nowhere in Kubernetes.
    pai.add_fault("GetModelVersion", "latency", latency_ms=20000)
    mvs.create("late", {"modelId": model_id, "uri": URI})
    wait_for("remote create", lambda: creates(pai, model_id) or None)
    first.kill()
    pai.clear_faults()
    mvs.patch("late", {"spec": {"versionName": "1.0.0"}})
    start_operator()

    obj = mvs.wait_condition("late", "Synced", "False", "Conflict")
    message = next(c for c in obj["status"]["conditions"] if c["type"] == "Synced")["message"]
    assert "spec.versionName: 0.1.0" in message
    assert [v["VersionName"] for v in pai.versions(model_id)] == ["0.1.0"]
    assert creates(pai, model_id) == 1

    mvs.delete("late")
    mvs.wait_gone("late")
    assert pai.versions(model_id) == []  # the stray version was ours: deleted with the object
