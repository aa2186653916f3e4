"""The operator as a real process against a real kube-apiserver and the PAI emulator over HTTP."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from pai_operator.pai import CreateModelVersionRequest, Label, UpdateModelVersionRequest
from tests.integration.conftest import Remote, one_remote
from tests.support.emulator import AdminClient
from tests.support.kube import Cluster
from tests.support.operator import ModelVersions, OperatorProcess, wait_for

pytestmark = pytest.mark.integration
# Tests marked min_kubernetes also run against KUBERNETES_MIN_VERSION (make test-min): the ones
# whose outcome depends on the API server (status and finalizer writes, no-op patches, namespace
# annotations, kubectl wait/diff). The PAI-side logic is the same at any Kubernetes version, and
# the slow, sleep-bound tests of it (paused, invalid spec, ...) run on the newest only.

OWNER = "pai.mlops.dev/owner-uid"
WRITES = {"CreateModelVersion", "UpdateModelVersion", "DeleteModelVersion", "CreateModelVersionLabels",
          "DeleteModelVersionLabels"}  # fmt: skip


def spec(model_id: str, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"modelId": model_id, "uri": "oss://bucket.oss-cn-hangzhou.aliyuncs.com/m/"}
    base.update(extra)
    return base


def ownership(obj: dict[str, Any]) -> dict[str, str]:
    """The two remote labels that mark a version as this object's: UID and namespace/name."""
    meta = obj["metadata"]
    return {OWNER: meta["uid"], "pai.mlops.dev/owner-ref": f"{meta['namespace']}/{meta['name']}"}


def labels_of(version: dict[str, Any]) -> dict[str, str]:
    return {label["Key"]: label["Value"] for label in version.get("Labels") or []}


def ops(pai: AdminClient, model_id: str) -> list[str]:
    return [e["Operation"] for e in pai.journal() if e.get("ModelId") == model_id]


@pytest.mark.min_kubernetes
def test_full_lifecycle(
    operator: OperatorProcess, mvs: ModelVersions, pai: AdminClient, model_id: str
) -> None:
    mvs.create(
        "mv",
        spec(
            model_id,
            versionName="1.0.0",
            formatType="SavedModel",
            frameworkType="PyTorch",
            approvalStatus="Pending",
            sourceType="TrainingService",
            sourceId="region=cn-hangzhou,workspaceId=1,kind=TrainingJob,id=job-1",
            labels={"k1": "vs1"},
            metrics={"Results": [{"Metrics": {"cer": 0.175}}]},
            inferenceSpec={"processor": "tensorflow_gpu_1.12", "nested": {"a": [1, 2]}},
            options={"b": 1, "a": {"x": True}},
        ),
    )
    obj = mvs.wait_condition("mv", "Ready")
    assert obj["status"]["id"] == f"{model_id}:1.0.0"
    assert obj["status"]["atProvider"]["approvalStatus"] == "Pending"
    remote = one_remote(pai, model_id)
    assert remote["VersionName"] == "1.0.0"
    assert labels_of(remote) == {"k1": "vs1", **ownership(obj)}
    assert remote["InferenceSpec"] == {"processor": "tensorflow_gpu_1.12", "nested": {"a": [1, 2]}}
    assert remote["FrameworkType"] == "PyTorch"
    # The operator (and kopf inside it) wrote only the finalizer and status: no annotations
    # (kopf keeps no diff-base; the engine compares generations), nothing under kopf's prefix.
    assert obj["metadata"]["finalizers"] == ["pai.mlops.dev/finalizer"]
    assert obj["metadata"].get("annotations", {}) == {}

    # Update fields, approval and labels: only what changed is written.
    pai.clear_journal()
    mvs.patch(
        "mv",
        {
            "spec": {
                "approvalStatus": "Approved",
                "versionDescription": "v1",
                "labels": {"k1": "vs2", "k2": "x"},
            }
        },
    )
    obj = mvs.wait_condition("mv", "Synced")
    wait_for("approval applied", lambda: one_remote(pai, model_id)["ApprovalStatus"] == "Approved")
    remote = one_remote(pai, model_id)
    assert remote["VersionDescription"] == "v1"
    assert labels_of(remote) == {"k1": "vs2", "k2": "x", **ownership(obj)}
    writes = [op for op in ops(pai, model_id) if op in WRITES]
    assert "CreateModelVersion" not in writes
    assert writes.count("UpdateModelVersion") == 1

    # Drift made behind the operator's back is repaired on the next resync.
    pai.clear_journal()
    Remote(operator.endpoint)(
        lambda c: c.update_model_version(
            model_id,
            "1.0.0",
            UpdateModelVersionRequest(approval_status="Rejected", version_description="hand"),
        )
    )
    wait_for(
        "drift repaired",
        lambda: (
            (r := one_remote(pai, model_id))["ApprovalStatus"] == "Approved"
            and r["VersionDescription"] == "v1"
        ),
        timeout=30,
    )

    # Delete removes the remote version, then the finalizer.
    mvs.delete("mv")
    mvs.wait_gone("mv")
    assert pai.versions(model_id) == []

    metrics = operator.metrics()
    for operation in ("CreateModelVersion", "DeleteModelVersion"):
        assert f'requests_total{{operation="{operation}",outcome="ok",registry="PAI"}} 1.0' in metrics
    assert 'pai_operator_reconciles_total{result="changed"}' in metrics
    assert "pai_operator_reconcile_duration_seconds_bucket" in metrics
    assert 'pai_operator_objects{condition="Ready",status="True"} 0.0' in metrics  # deleted: forgotten


@pytest.mark.min_kubernetes
def test_server_assigned_name(
    operator: OperatorProcess, mvs: ModelVersions, pai: AdminClient, model_id: str
) -> None:
    mvs.create("auto", spec(model_id, labels={"channel": "nightly"}))
    obj = mvs.wait_condition("auto", "Ready")
    assert obj["status"]["versionName"] == "0.1.0"
    assert obj["status"]["id"] == f"{model_id}:0.1.0"
    assert labels_of(one_remote(pai, model_id))[OWNER] == obj["metadata"]["uid"]
    mvs.create("auto2", spec(model_id))
    obj2 = mvs.wait_condition("auto2", "Ready")
    assert obj2["status"]["versionName"] == "0.2.0"


@pytest.mark.min_kubernetes
def test_immutable_field_change_is_rejected_by_the_api_server(
    control_plane: Cluster, mvs: ModelVersions, namespace: str, model_id: str
) -> None:
    mvs.create("imm", spec(model_id, versionName="1.0.0", formatType="SavedModel"))
    for field, value in [("uri", "oss://other/"), ("modelId", "model-x"), ("versionName", "2.0.0"),
                         ("formatType", "ONNX")]:  # fmt: skip
        result = control_plane.kubectl_run(
            "-n", namespace, "patch", "pmv", "imm", "--type", "merge",
            "-p", f'{{"spec":{{"{field}":"{value}"}}}}', check=False,
        )  # fmt: skip
        assert result.returncode != 0
        assert f"spec.{field} is immutable" in result.stderr
    assert mvs.get("imm")["spec"]["uri"] == "oss://bucket.oss-cn-hangzhou.aliyuncs.com/m/"  # type: ignore[index]


def test_invalid_spec_is_terminal_and_makes_no_call(
    operator: OperatorProcess, mvs: ModelVersions, pai: AdminClient, model_id: str
) -> None:
    mvs.create("big", spec(model_id, versionName="1.0.0", metrics={"blob": "x" * 9000}))
    obj = mvs.wait_condition("big", "Synced", "False", "InvalidSpec")
    cond = next(c for c in obj["status"]["conditions"] if c["type"] == "Synced")
    assert "8192" in cond["message"]
    rv = obj["metadata"]["resourceVersion"]
    time.sleep(3 * operator.resync_interval)
    assert ops(pai, model_id) == []  # not a single PAI call, not even a read
    assert mvs.get("big")["metadata"]["resourceVersion"] == rv  # type: ignore[index]  # no retry loop
    # Fixing the spec resumes at once.
    mvs.patch("big", {"spec": {"metrics": {"blob": None, "ok": 1}}})  # merge patch: drop the blob
    mvs.wait_condition("big", "Ready")


@pytest.mark.parametrize("version_name", ["1.0.0", None])
def test_lost_create_response_is_adopted_not_duplicated(
    operator: OperatorProcess, mvs: ModelVersions, pai: AdminClient, model_id: str, version_name: str | None
) -> None:
    pai.add_fault("CreateModelVersion", "commit_then_drop", count=1)
    extra = {"versionName": version_name} if version_name else {}
    mvs.create("lost", spec(model_id, **extra))
    obj = mvs.wait_condition("lost", "Ready")
    remote = one_remote(pai, model_id)
    assert labels_of(remote)[OWNER] == obj["metadata"]["uid"]
    assert obj["status"]["versionName"] == remote["VersionName"]
    creates = [e for e in pai.journal("CreateModelVersion") if e["ModelId"] == model_id]
    assert len(creates) == 1
    assert creates[0]["Fault"]  # the one create, whose response was dropped


def test_operator_killed_between_remote_create_and_status_write(
    start_operator: Any, mvs: ModelVersions, pai: AdminClient, model_id: str
) -> None:
    first = start_operator()
    # The pass after the create re-reads the version before writing status; hold that read so
    # the process can be killed with the version created and nothing recorded in Kubernetes.
    pai.add_fault("GetModelVersion", "latency", latency_ms=20000)
    mvs.create("crash", spec(model_id))  # server-assigned name: the hardest case to find again
    wait_for(
        "remote create", lambda: [e for e in pai.journal("CreateModelVersion") if e["ModelId"] == model_id]
    )
    first.kill()
    obj = mvs.get("crash")
    assert "versionName" not in (obj or {}).get("status", {})
    assert len(pai.versions(model_id)) == 1
    pai.clear_faults()
    start_operator()
    obj = mvs.wait_condition("crash", "Ready")
    remote = one_remote(pai, model_id)
    assert obj["status"]["versionName"] == remote["VersionName"] == "0.1.0"
    assert len([e for e in pai.journal("CreateModelVersion") if e["ModelId"] == model_id]) == 1


def test_adoption_never_then_if_exists(
    operator: OperatorProcess, mvs: ModelVersions, pai: AdminClient, model_id: str, remote: Remote
) -> None:
    remote(
        lambda c: c.create_model_version(
            model_id,
            CreateModelVersionRequest(
                uri="oss://bucket/pre/", version_name="3.0.0", labels=[Label(key="a", value="1")]
            ),
        )
    )
    mvs.create(
        "adopt", spec(model_id, uri="oss://bucket/pre/", versionName="3.0.0", approvalStatus="Approved")
    )
    obj = mvs.wait_condition("adopt", "Synced", "False", "AlreadyExists")
    assert (
        "adoptionPolicy" in next(c for c in obj["status"]["conditions"] if c["type"] == "Synced")["message"]
    )
    untouched = one_remote(pai, model_id)
    assert labels_of(untouched) == {"a": "1"}
    assert untouched["ApprovalStatus"] == "Pending"

    mvs.patch("adopt", {"spec": {"adoptionPolicy": "IfExists"}})
    obj = mvs.wait_condition("adopt", "Ready")
    mvs.wait_condition("adopt", "Synced")
    adopted = one_remote(pai, model_id)
    assert labels_of(adopted) == {"a": "1", **ownership(obj)}  # spec.labels unset: unmanaged
    assert adopted["ApprovalStatus"] == "Approved"


def test_two_objects_naming_one_version(
    operator: OperatorProcess, mvs: ModelVersions, pai: AdminClient, model_id: str
) -> None:
    mvs.create("first", spec(model_id, versionName="1.0.0", versionDescription="first"))
    first = mvs.wait_condition("first", "Ready")
    mvs.create(
        "second", spec(model_id, versionName="1.0.0", versionDescription="second", adoptionPolicy="IfExists")
    )
    obj = mvs.wait_condition("second", "Synced", "False", "Conflict")
    assert (
        first["metadata"]["uid"]
        in next(c for c in obj["status"]["conditions"] if c["type"] == "Synced")["message"]
    )
    time.sleep(2 * operator.resync_interval)
    remote = one_remote(pai, model_id)
    assert remote["VersionDescription"] == "first"
    assert labels_of(remote)[OWNER] == first["metadata"]["uid"]
    # Deleting the loser never deletes the winner's version.
    mvs.delete("second")
    mvs.wait_gone("second")
    assert len(pai.versions(model_id)) == 1


@pytest.mark.min_kubernetes
def test_retain_releases_the_remote_version(
    operator: OperatorProcess, mvs: ModelVersions, pai: AdminClient, model_id: str
) -> None:
    mvs.create("keep", spec(model_id, versionName="1.0.0", deletionPolicy="Retain", labels={"k": "v"}))
    mvs.wait_condition("keep", "Ready")
    mvs.delete("keep")
    mvs.wait_gone("keep")
    remote = one_remote(pai, model_id)
    assert labels_of(remote) == {"k": "v"}  # ownership mark removed, user labels kept


@pytest.mark.min_kubernetes
def test_namespace_annotation_sets_the_default_deletion_policy(
    operator: OperatorProcess,
    mvs: ModelVersions,
    pai: AdminClient,
    model_id: str,
    kube_api: Any,
    namespace: str,
) -> None:
    from kubernetes import client

    client.CoreV1Api(kube_api).patch_namespace(
        namespace, {"metadata": {"annotations": {"pai.mlops.dev/deletion-policy": "Retain"}}}
    )
    mvs.create("nsdefault", spec(model_id, versionName="1.0.0"))
    mvs.wait_condition("nsdefault", "Ready")
    mvs.delete("nsdefault")
    mvs.wait_gone("nsdefault")
    assert OWNER not in labels_of(one_remote(pai, model_id))


def test_remote_already_gone(
    operator: OperatorProcess, mvs: ModelVersions, pai: AdminClient, model_id: str, remote: Remote
) -> None:
    mvs.create("gone", spec(model_id, versionName="1.0.0"))
    mvs.wait_condition("gone", "Ready")
    # Deleted behind the operator's back: the next resync recreates it (drift repair)...
    remote(lambda c: c.delete_model_version(model_id, "1.0.0"))
    wait_for("recreated", lambda: len(pai.versions(model_id)) == 1, timeout=30)
    # ...and deleting the object when the version is already gone just releases it.
    remote(lambda c: c.delete_model_version(model_id, "1.0.0"))
    pai.add_fault("CreateModelVersion", "error", code="ServiceUnavailable", http_status=503)
    mvs.delete("gone")
    mvs.wait_gone("gone")
    assert pai.versions(model_id) == []


def test_paused_object_is_not_written(
    start_operator: Any, mvs: ModelVersions, pai: AdminClient, model_id: str
) -> None:
    # A long resync: pausing and resuming must take effect at once, not at the next drift check.
    start_operator(resync_interval=60)
    mvs.create("p", spec(model_id, versionName="1.0.0", approvalStatus="Pending"))
    mvs.wait_condition("p", "Ready")
    mvs.patch("p", {"metadata": {"annotations": {"pai.mlops.dev/paused": "true"}}})
    mvs.wait_condition("p", "Synced", "False", "ReconcilePaused", timeout=10)
    pai.clear_journal()
    mvs.patch("p", {"spec": {"approvalStatus": "Approved"}})
    obj = mvs.wait_condition("p", "Synced", "False", "ReconcilePaused", timeout=10)
    assert obj["status"]["drift"] == ["approvalStatus"]
    time.sleep(3)
    assert not [op for op in ops(pai, model_id) if op in WRITES]
    assert one_remote(pai, model_id)["ApprovalStatus"] == "Pending"
    mvs.patch("p", {"metadata": {"annotations": {"pai.mlops.dev/paused": None}}})
    mvs.wait_condition("p", "Synced", "True", "ReconcileSuccess", timeout=10)
    assert one_remote(pai, model_id)["ApprovalStatus"] == "Approved"
    # A paused object can still be deleted.
    mvs.patch("p", {"metadata": {"annotations": {"pai.mlops.dev/paused": "true"}}})
    mvs.delete("p")
    mvs.wait_gone("p", timeout=15)
    assert pai.versions(model_id) == []


def test_observe_only_reads(
    operator: OperatorProcess, mvs: ModelVersions, pai: AdminClient, model_id: str, remote: Remote
) -> None:
    remote(
        lambda c: c.create_model_version(
            model_id,
            CreateModelVersionRequest(
                uri="oss://bucket/obs/", version_name="2.0.0", approval_status="Pending"
            ),
        )
    )
    pai.clear_journal()
    mvs.create(
        "obs", spec(model_id, uri="oss://bucket/obs/", versionName="2.0.0", approvalStatus="Approved",
                    managementPolicy="Observe"),
    )  # fmt: skip
    obj = mvs.wait_condition("obs", "Ready")
    assert obj["status"]["drift"] == ["approvalStatus"]
    assert obj["status"]["atProvider"]["approvalStatus"] == "Pending"
    time.sleep(2 * operator.resync_interval)
    mvs.delete("obs")
    mvs.wait_gone("obs")
    seen = set(ops(pai, model_id))
    assert seen
    assert seen <= {"GetModelVersion", "ListModelVersions"}
    assert len(pai.versions(model_id)) == 1


@pytest.mark.parametrize(
    ("code", "status"), [("Throttling.User", 429), ("ServiceUnavailable", 503)], ids=["throttling", "5xx"]
)
def test_error_storm_converges_with_bounded_attempts(
    operator: OperatorProcess, mvs: ModelVersions, pai: AdminClient, model_id: str, code: str, status: int
) -> None:
    pai.add_fault("CreateModelVersion", "error", code=code, http_status=status, count=4)
    mvs.create("storm", spec(model_id, versionName="1.0.0"))
    obj = mvs.wait_condition("storm", "Ready", timeout=90)
    creates = [e for e in pai.journal("CreateModelVersion") if e["ModelId"] == model_id]
    assert len(creates) == 5  # 4 failures, then one success: no duplicate, no hot loop
    assert obj["status"]["conditions"][1]["reason"] == "ReconcileSuccess"
    one_remote(pai, model_id)


@pytest.mark.min_kubernetes
def test_in_sync_resync_writes_nothing(
    operator: OperatorProcess, mvs: ModelVersions, pai: AdminClient, model_id: str
) -> None:
    mvs.create("quiet", spec(model_id, versionName="1.0.0", labels={"a": "b"}, options={"z": 1, "a": 2.0}))
    mvs.wait_condition("quiet", "Ready")
    time.sleep(operator.resync_interval)  # let the post-create resync settle
    rv = mvs.get("quiet")["metadata"]["resourceVersion"]  # type: ignore[index]
    pai.clear_journal()
    time.sleep(3.5 * operator.resync_interval)
    reads = ops(pai, model_id)
    assert reads.count("GetModelVersion") >= 2  # the resyncs really ran...
    assert set(reads) == {"GetModelVersion"}  # ...with one GET each and no write
    assert mvs.get("quiet")["metadata"]["resourceVersion"] == rv  # type: ignore[index]  # no status write


@pytest.mark.min_kubernetes
def test_kubectl_wait_and_empty_diff(
    control_plane: Cluster, start_operator: Any, namespace: str, model_id: str, tmp_path: Any
) -> None:
    operator = start_operator(extra_args=("--log-format", "json"))
    manifest = tmp_path / "mv.yaml"
    manifest.write_text(
        f"""apiVersion: pai.mlops.dev/v1alpha1
kind: ModelVersion
metadata:
  name: applied
  namespace: {namespace}
spec:
  modelId: {model_id}
  versionName: "1.2.3"
  uri: oss://bucket/applied/
  approvalStatus: Approved
  labels: {{team: ml}}
  metrics: {{acc: 0.9}}
  options: {{a: 1}}
"""
    )
    control_plane.kubectl_run("apply", "-f", str(manifest))
    waited = control_plane.kubectl_run(
        "-n", namespace, "wait", "--for=condition=Ready", "pmv/applied", "--timeout=60s"
    )
    assert "condition met" in waited.stdout
    diff = control_plane.kubectl_run("diff", "-f", str(manifest), check=False)
    assert diff.returncode == 0, diff.stdout + diff.stderr
    assert diff.stdout == ""
    # --log-format json: one JSON object per line, for log pipelines.
    lines = [line for line in operator.log_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert any("pai-operator starting" in r["message"] for r in records)


def test_revoked_credentials_are_reported_without_leaking_and_retain_gets_out(
    start_operator: Any, mvs: ModelVersions, pai: AdminClient, model_id: str, kube_api: Any, namespace: str
) -> None:
    from kubernetes import client

    from tests.support.emulator import DEFAULT_CREDENTIAL, Credential

    good = start_operator()
    mvs.create("creds", spec(model_id, versionName="1.0.0"))
    mvs.wait_condition("creds", "Ready")
    good.stop()
    # The same key id with a secret PAI no longer accepts (rotated or revoked).
    revoked = Credential(DEFAULT_CREDENTIAL.access_key_id, "revoked-secret-0123456789")
    bad = start_operator(credential=revoked)
    mvs.patch("creds", {"spec": {"approvalStatus": "Approved"}})
    obj = mvs.wait_condition("creds", "Synced", "False", "AuthFailed")
    assert (
        "SignatureDoesNotMatch"
        in next(c for c in obj["status"]["conditions"] if c["type"] == "Synced")["message"]
    )

    # Deletion cannot proceed: the condition says why and how to get out.
    mvs.delete("creds")
    blocked = wait_for(
        "deletion blocked",
        lambda: (c := mvs.condition("creds", "Synced")) and c["reason"] == "DeletionBlocked" and c,
    )
    assert "deletionPolicy: Retain" in blocked["message"]
    assert len(pai.versions(model_id)) == 1
    mvs.patch("creds", {"spec": {"deletionPolicy": "Retain"}})
    mvs.wait_gone("creds")
    assert len(pai.versions(model_id)) == 1  # retained (its ownership label could not be removed)

    # The secret appears nowhere: not in the log (debug level), status, or events.
    secrets = [revoked.access_key_secret, DEFAULT_CREDENTIAL.access_key_secret]
    events = client.CoreV1Api(kube_api).list_namespaced_event(namespace).items
    texts = [bad.log_text(), good.log_text(), str(obj), *(f"{e.reason} {e.message}" for e in events)]
    assert {e.reason for e in events} >= {"AuthFailed", "DeletionBlocked"}
    for secret in secrets:
        assert not [t for t in texts if secret in t]
