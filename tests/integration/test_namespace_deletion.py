"""Deleting a namespace that holds a Model and its versions (issue 23, "versions go first"): a
real namespace controller (kube-controller-manager, the binary every cluster runs) deletes the
seed example's objects all at once, as it does for Argo CD's or a user's `kubectl delete ns`,
with the operator running as a process. PAI must end empty, and the namespace must go.

The local control plane has no controller-manager, so the test starts one with only its
namespace controller (tests/support/kube.py). It is built by `bash hack/build-tools.sh node`
(`make node-tools`, part of `make test` where root and apt-get exist); without it the test skips
and says so. The `kubectl delete -f samples/seed-example/` path is test_model_lifecycle's
test_seed_example_converges_by_reference_diff_clean_and_deletes_cleanly.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from alibabacloud_aiworkspace20210204 import models as sdk_models
from alibabacloud_aiworkspace20210204.client import Client
from kubernetes import client

from tests.integration.conftest import seed_copy
from tests.support.emulator import AdminClient
from tests.support.kube import Cluster, kube_controller_manager_binary, namespace_controller
from tests.support.operator import ModelVersions, OperatorProcess, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not os.environ.get("PAI_TEST_KUBECONFIG")
        and not os.access(kube_controller_manager_binary(), os.X_OK),
        reason=f"{kube_controller_manager_binary()} not built (bash hack/build-tools.sh node): "
        "no namespace controller to delete a namespace with",
    ),
]


def sdk_models_in(sdk: Client, workspace: str) -> list[str]:
    body = sdk.list_models(sdk_models.ListModelsRequest(workspace_id=workspace, page_size=100)).body
    return [m.model_id for m in body.models or []]


def sdk_version_names(sdk: Client, model_id: str) -> list[str]:
    body = sdk.list_model_versions(model_id, sdk_models.ListModelVersionsRequest(page_size=100)).body
    return [v.version_name for v in body.versions or []]


def test_deleting_the_namespace_deletes_versions_then_the_model_and_nothing_sticks(
    control_plane: Cluster,
    kube_api: client.ApiClient,
    start_operator: Callable[..., OperatorProcess],
    models: ModelVersions,
    mvs: ModelVersions,
    sdk: Client,
    pai: AdminClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    # The Lease lives where the operator does in a cluster, not in the namespace being deleted.
    start_operator(lease_namespace="default")
    workspace = f"ws-{namespace}"
    control_plane.kubectl_run("-n", namespace, "apply", "-f", str(seed_copy(tmp_path, workspace)))
    # A second version by reference: "its versions", plural.
    second = {
        "modelRef": {"name": "terraform-example"},
        "versionName": "2.0.0",
        "uri": "oss://hz-example.oss-cn-hangzhou-internal.aliyuncs.com/v2/",
    }
    mvs.create("terraform-example-2-0-0", second)
    model_id = models.wait_condition("terraform-example", "Ready", timeout=60)["status"]["modelId"]
    for name in ("terraform-example-1-0-0", "terraform-example-2-0-0"):
        mvs.wait_condition(name, "Ready", timeout=60)
    assert sdk_models_in(sdk, workspace) == [model_id]
    assert sorted(sdk_version_names(sdk, model_id)) == ["1.0.0", "2.0.0"]
    pai.clear_journal()

    core = client.CoreV1Api(kube_api)

    def namespace_gone() -> bool:
        try:
            core.read_namespace(namespace)
        except client.ApiException as exc:
            if exc.status == 404:
                return True
            raise
        return False

    with namespace_controller(control_plane, tmp_path):
        start = time.monotonic()
        core.delete_namespace(namespace)
        wait_for(f"namespace {namespace} gone", namespace_gone, timeout=120, interval=0.5)
        took = time.monotonic() - start
    print(f"namespace with a Model and 2 versions deleted in {took:.1f}s")

    # Nothing left in PAI, by the official SDK: no model in the workspace, and the model is gone.
    assert sdk_models_in(sdk, workspace) == []
    assert [m for m in pai.models() if m.get("ModelId") == model_id] == []
    # Versions first (each by its own object), then the model: nothing went by DeleteModel's
    # cascade, and nothing was blocked on the way (the namespace is gone, so nothing stuck).
    deletes = [
        (e["Operation"], e.get("VersionName")) for e in pai.journal()
        if e["Operation"] in ("DeleteModelVersion", "DeleteModel") and e["Status"] == 200
    ]  # fmt: skip
    assert sorted(deletes[:2]) == [("DeleteModelVersion", "1.0.0"), ("DeleteModelVersion", "2.0.0")], deletes
    assert [op for op, _ in deletes[2:]] == ["DeleteModel"], deletes
