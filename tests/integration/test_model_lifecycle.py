"""The Model kind and ModelVersion.spec.modelRef: the operator as a real process against a real
kube-apiserver and the PAI emulator over HTTP. The seed's Terraform example end to end."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from pai_operator.pai import CreateModelVersionRequest
from tests.integration.conftest import Remote, remote_models, seed_copy
from tests.support.emulator import AdminClient
from tests.support.kube import Cluster
from tests.support.operator import ModelVersions, OperatorProcess, wait_for

pytestmark = pytest.mark.integration

OWNER = "pai.mlops.dev/owner-uid"


def labels_of(item: dict[str, Any]) -> dict[str, str]:
    return {label["Key"]: label["Value"] for label in item.get("Labels") or []}


def kubectl(
    cluster: Cluster, namespace: str, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl_run("-n", namespace, *args, check=check)


def test_seed_example_converges_by_reference_diff_clean_and_deletes_cleanly(
    control_plane: Cluster,
    model_crd: str,
    operator: OperatorProcess,
    models: ModelVersions,
    mvs: ModelVersions,
    pai: AdminClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    workspace = f"ws-{namespace}"
    directory = seed_copy(tmp_path, workspace)
    kubectl(control_plane, namespace, "apply", "-f", str(directory))  # one go: both kinds

    model = models.wait_condition("terraform-example", "Ready", timeout=60)
    model_id = model["status"]["modelId"]
    version = mvs.wait_condition("terraform-example-1-0-0", "Ready", timeout=60)
    # The reference resolved into status, never into spec.
    assert version["status"]["modelId"] == model_id
    assert version["status"]["id"] == f"{model_id}:1.0.0"
    assert "modelId" not in version["spec"]

    (remote,) = remote_models(pai, workspace)
    assert remote["ModelId"] == model_id
    assert (remote["ModelName"], remote["Origin"], remote["Task"], remote["ModelType"]) == (
        "terraform_example",
        "Civitai",
        "text-to-image-synthesis",
        "Checkpoint",
    )
    assert (remote["OrderNumber"], remote["Domain"], remote["ExtraInfo"]) == (1, "aigc", {"test": "15"})
    assert labels_of(remote)["base_model"] == "SD 1.5"
    assert labels_of(remote)[OWNER] == model["metadata"]["uid"]
    assert [v["VersionName"] for v in pai.versions(model_id)] == ["1.0.0"]
    # The Model sees its latest version at its next observation.
    assert model["status"]["atProvider"].get("latestVersion") in (None, "1.0.0")

    # Converged means no diff: nothing the operator wrote is in spec.
    diff = kubectl(control_plane, namespace, "diff", "-f", str(directory), check=False)
    assert diff.returncode == 0, diff.stdout + diff.stderr

    # Deleting the directory: the version goes first (the model waits for it), then the model.
    kubectl(control_plane, namespace, "delete", "-f", str(directory), "--wait=false")
    models.wait_gone("terraform-example", timeout=90)
    mvs.wait_gone("terraform-example-1-0-0", timeout=30)
    assert remote_models(pai, workspace) == []
    deletes = [
        e["Operation"] for e in pai.journal() if e["Operation"] in ("DeleteModelVersion", "DeleteModel")
    ]
    assert deletes == ["DeleteModelVersion", "DeleteModel"]


def test_version_waits_for_its_model_then_starts_at_once(
    start_operator: Callable[..., OperatorProcess],
    models: ModelVersions,
    mvs: ModelVersions,
    pai: AdminClient,
    namespace: str,
) -> None:
    # Observation far beyond the test (the resync bounds it from above, the minimum interval from
    # below): only the Model becoming Ready can start the version in time.
    start_operator(resync_interval=120.0, extra_args=["--min-observation-interval", "120"])
    workspace = f"ws-{namespace}"
    mvs.create("v", {"modelRef": {"name": "later"}, "uri": "oss://b.e/m/", "versionName": "1.0.0"})
    waiting = mvs.wait_condition("v", "Synced", status="False", reason="ReferenceNotReady")
    synced = next(c for c in waiting["status"]["conditions"] if c["type"] == "Synced")
    assert "Model later" in synced["message"]
    assert not [e for e in pai.journal() if e["Operation"] == "CreateModelVersion"]

    models.create("later", {"modelName": "later", "workspaceId": workspace})
    model = models.wait_condition("later", "Ready")
    # Woken by the Model becoming Ready, not by the resync (two minutes in this test's operator).
    version = mvs.wait_condition("v", "Ready", timeout=20)
    assert version["status"]["modelId"] == model["status"]["modelId"]


def test_model_with_a_foreign_version_is_not_deleted(
    operator: OperatorProcess, models: ModelVersions, pai: AdminClient, remote: Remote, namespace: str
) -> None:
    workspace = f"ws-{namespace}"
    models.create("m", {"modelName": "m", "workspaceId": workspace})
    model_id = models.wait_condition("m", "Ready")["status"]["modelId"]
    # A version no object manages (made in the console, by a pipeline...).
    remote(
        lambda c: c.create_model_version(
            model_id, CreateModelVersionRequest(uri="oss://b.e/foreign/", version_name="9.9.9")
        )
    )
    models.delete("m")
    blocked = models.wait_condition("m", "Synced", status="False", reason="DeletionBlocked", timeout=30)
    message = next(c for c in blocked["status"]["conditions"] if c["type"] == "Synced")["message"]
    assert "9.9.9" in message
    assert "pai.mlops.dev/delete-versions" in message
    assert [m["ModelId"] for m in remote_models(pai, workspace)] == [model_id]
    assert "DeleteModel" not in [e["Operation"] for e in pai.journal()]

    # Saying so explicitly deletes the model with its version.
    models.patch("m", {"metadata": {"annotations": {"pai.mlops.dev/delete-versions": "true"}}})
    models.wait_gone("m", timeout=30)
    assert remote_models(pai, workspace) == []


def test_lost_create_model_response_gives_exactly_one_model(
    operator: OperatorProcess, models: ModelVersions, pai: AdminClient, namespace: str
) -> None:
    workspace = f"ws-{namespace}"
    pai.add_fault("CreateModel", "commit_then_drop", count=1)
    models.create("lost", {"modelName": "lost", "workspaceId": workspace})
    obj = models.wait_condition("lost", "Ready", timeout=60)
    (remote,) = remote_models(pai, workspace)
    assert remote["ModelId"] == obj["status"]["modelId"]
    assert labels_of(remote)[OWNER] == obj["metadata"]["uid"]
    creates = [e for e in pai.journal() if e["Operation"] == "CreateModel"]
    assert len(creates) == 1  # found by its ownership label, never sent again


def test_adoption_by_model_id(
    operator: OperatorProcess, models: ModelVersions, pai: AdminClient, namespace: str, remote: Remote
) -> None:
    from pai_operator.pai import CreateModelRequest

    workspace = f"ws-{namespace}"
    existing = remote(
        lambda c: c.create_model(
            CreateModelRequest(model_name="imported", workspace_id=workspace, task="nlp")
        )
    ).model_id
    models.create("never", {"modelName": "imported", "modelId": existing})
    models.wait_condition("never", "Synced", status="False", reason="AlreadyExists")
    models.delete("never")
    models.wait_gone("never")
    models.create(
        "import", {"modelName": "imported", "modelId": existing, "adoptionPolicy": "IfExists", "task": "cv"}
    )
    obj = models.wait_condition("import", "Ready")
    (adopted,) = remote_models(pai, workspace)
    assert (adopted["ModelId"], adopted["Task"]) == (existing, "cv")
    assert labels_of(adopted)[OWNER] == obj["metadata"]["uid"]
    wait_for("one model still", lambda: len(remote_models(pai, workspace)) == 1 or None)


def test_settled_models_are_observed_with_one_list_per_workspace(
    start_operator: Callable[..., OperatorProcess], models: ModelVersions, pai: AdminClient, namespace: str
) -> None:
    resync = 2.0
    start_operator(resync_interval=resync)
    workspace = f"ws-{namespace}"
    names = [f"m{i}" for i in range(6)]
    for name in names:
        models.create(name, {"modelName": name, "workspaceId": workspace})
    for name in names:
        models.wait_condition(name, "Ready")
    time.sleep(resync * 1.5)  # the settled objects join their group
    pai.clear_journal()
    time.sleep(resync * 4)
    reads = [e["Operation"] for e in pai.journal() if e["Operation"] in ("GetModel", "ListModels")]
    assert reads.count("GetModel") == 0, reads
    # One walk (one page: 6 models) per interval for the group, not one GET per Model.
    assert 2 <= reads.count("ListModels") <= 6, reads


def test_operator_killed_mid_create_gives_exactly_one_model(
    start_operator: Callable[..., OperatorProcess], models: ModelVersions, pai: AdminClient, namespace: str
) -> None:
    workspace = f"ws-{namespace}"
    first = start_operator()
    # Hold the re-read after the create: the process dies with the model created in PAI and its
    # ID recorded nowhere in Kubernetes.
    pai.add_fault("GetModel", "latency", latency_ms=20000)
    models.create("crash", {"modelName": "crash", "workspaceId": workspace})
    wait_for("remote create", lambda: pai.journal("CreateModel") or None)
    first.kill()
    assert "modelId" not in (models.get("crash") or {}).get("status", {})
    pai.clear_faults()
    start_operator()
    obj = models.wait_condition("crash", "Ready")
    (remote,) = remote_models(pai, workspace)
    assert obj["status"]["modelId"] == remote["ModelId"]
    assert len(pai.journal("CreateModel")) == 1


def test_admission_needs_exactly_one_of_model_id_and_model_ref(mvs: ModelVersions, model_crd: str) -> None:
    uri = "oss://b.e/m/"
    for spec in ({"uri": uri}, {"uri": uri, "modelId": "model-1", "modelRef": {"name": "m"}}):
        with pytest.raises(client.ApiException) as refused:
            mvs.create("bad", spec)
        assert "exactly one of spec.modelId and spec.modelRef" in str(refused.value.body)
    mvs.create("ref", {"uri": uri, "modelRef": {"name": "m"}})
    with pytest.raises(client.ApiException) as moved:
        mvs.patch("ref", {"spec": {"modelRef": {"name": "other"}}})
    assert "spec.modelRef is immutable" in str(moved.value.body)
    with pytest.raises(client.ApiException) as swapped:
        mvs.patch("ref", {"spec": {"modelRef": None, "modelId": "model-1"}})
    assert "immutable" in str(swapped.value.body)


def test_in_sync_cost_at_200_models_is_at_most_0_05_calls_per_model_per_resync(
    start_operator: Callable[..., OperatorProcess], models: ModelVersions, pai: AdminClient, namespace: str
) -> None:
    resync, count = 4.0, 200
    start_operator(resync_interval=resync, extra_args=("--write-rate", "200"))
    workspace = f"ws-{namespace}"
    names = [f"m{i:03d}" for i in range(count)]
    for name in names:
        models.create(name, {"modelName": name, "workspaceId": workspace})
    wait_for(
        "every Model Ready",
        lambda: all(models.condition(name, "Ready") for name in names) or None,
        timeout=300,
        interval=2.0,
    )
    time.sleep(resync * 2)  # settled: every Model in its workspace's group
    pai.clear_journal()
    intervals = 5
    time.sleep(resync * intervals)
    calls = [e["Operation"] for e in pai.journal()]
    per_model_per_resync = len(calls) / count / intervals
    print(f"PAI calls per Model per resync at {count} Models: {per_model_per_resync:.4f} ({Counter(calls)})")
    assert per_model_per_resync <= 0.05, Counter(calls)
