"""RBAC proven, not assumed: the operator runs with the Helm chart's own ServiceAccount token and
must complete a full ModelVersion lifecycle with exactly the rules the chart grants."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from kubernetes import client

from tests.integration.conftest import one_remote
from tests.support.emulator import AdminClient
from tests.support.kube import REPO_ROOT, Cluster, unique_name
from tests.support.operator import ModelVersions, OperatorProcess, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.min_kubernetes]

CHART = REPO_ROOT / "charts" / "pai-operator"


def helm(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([cluster.helm, *args], env=cluster.env, capture_output=True, text=True, check=True)


@pytest.mark.parametrize("scope", ["cluster-wide", "single-namespace"])
def test_operator_runs_with_exactly_the_charts_rbac(
    control_plane: Cluster,
    kube_api: client.ApiClient,
    namespace: str,
    crd: str,
    service_account_kubeconfig: Callable[[str, str], Path],
    start_operator: Callable[..., OperatorProcess],
    pai: AdminClient,
    model_id: str,
    scope: str,
) -> None:
    release = unique_name("rbac")
    extra = ["--set", f"watchNamespaces={{{namespace}}}"] if scope == "single-namespace" else []
    helm(control_plane, "install", release, str(CHART), "-n", namespace, *extra)
    try:
        sa_kubeconfig = service_account_kubeconfig(namespace, f"{release}-pai-operator")
        # The Lease the chart grants (its full name, in the release namespace): leader election
        # runs with the chart's Role too.
        lease_name = f"{release}-pai-operator"
        operator = start_operator(
            kubeconfig=sa_kubeconfig, namespaces=(namespace,), lease_name=lease_name, identity="rbac-replica"
        )
        wait_for("leading", operator.is_leader, timeout=30)
        lease = client.CoordinationV1Api(kube_api).read_namespaced_lease(lease_name, namespace)
        assert lease.spec.holder_identity == "rbac-replica"
        mvs = ModelVersions(kube_api, namespace)
        mvs.create(
            "rbac",
            {"modelId": model_id, "uri": "oss://b/rbac/", "versionName": "1.0.0", "labels": {"a": "1"}},
        )
        obj = mvs.wait_condition("rbac", "Ready")
        assert obj["metadata"]["finalizers"] == ["pai.mlops.dev/finalizer"]  # patch on the object
        mvs.patch("rbac", {"spec": {"approvalStatus": "Approved"}})
        mvs.wait_condition("rbac", "Synced")
        assert one_remote(pai, model_id)["ApprovalStatus"] == "Approved"
        mvs.delete("rbac")
        mvs.wait_gone("rbac")
        assert pai.versions(model_id) == []

        events = client.CoreV1Api(kube_api).list_namespaced_event(namespace).items
        reasons = {e.reason for e in events if e.involved_object.name == "rbac"}
        assert {"Created", "Deleted"} <= reasons  # events: create is granted and used
        log = operator.log_text()
        assert "Forbidden" not in log, log[-3000:]
        assert " 403" not in log, log[-3000:]

        # The same identity is refused what it must not do.
        as_sa = client.CoreV1Api(
            Cluster(sa_kubeconfig, control_plane.kubectl, control_plane.helm, None).api_client()
        )
        for forbidden in (
            lambda: as_sa.list_namespaced_secret(namespace),
            lambda: as_sa.list_namespaced_secret("default"),
            lambda: client.ApiextensionsV1Api(as_sa.api_client).list_custom_resource_definition(),
            # CRDs: its own two by name only (the uninstall check), never another one.
            lambda: client.ApiextensionsV1Api(as_sa.api_client).read_custom_resource_definition(
                "leases.example.com"
            ),
            lambda: as_sa.list_namespaced_config_map(namespace),
            # Leases: its own only, in its own namespace only.
            lambda: client.CoordinationV1Api(as_sa.api_client).list_namespaced_lease(namespace),
            lambda: client.CoordinationV1Api(as_sa.api_client).read_namespaced_lease("other", namespace),
            lambda: client.CoordinationV1Api(as_sa.api_client).delete_namespaced_lease(lease_name, namespace),
            lambda: client.CoordinationV1Api(as_sa.api_client).create_namespaced_lease(
                "default", client.V1Lease(metadata=client.V1ObjectMeta(name=lease_name))
            ),
        ):
            with pytest.raises(client.ApiException) as caught:
                forbidden()
            assert caught.value.status == 403
        extensions = client.ApiextensionsV1Api(as_sa.api_client)
        assert extensions.read_custom_resource_definition(crd).metadata.name == crd
        assert "cannot read CustomResourceDefinition" not in log  # the deletion read its CRD
        if scope == "single-namespace":
            with pytest.raises(client.ApiException) as caught:
                client.CustomObjectsApi(as_sa.api_client).list_namespaced_custom_object(
                    "pai.mlops.dev", "v1alpha1", "default", "modelversions"
                )
            assert caught.value.status == 403
    finally:
        subprocess.run(
            [control_plane.helm, "uninstall", release, "-n", namespace, "--wait=false"],
            env=control_plane.env,
            capture_output=True,
            check=False,
        )
