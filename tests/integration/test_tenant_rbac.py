"""Tenant RBAC on a real kube-apiserver: the ClusterRoles in deploy/rbac/tenant (the chart renders the
same rules; tests/unit/test_chart_static.py compares them) extend the built-in view / edit / admin
roles to ModelVersions, so a user granted `edit` in one namespace manages ModelVersions there and
nowhere else. Every request is made with the ServiceAccount's own token.

How the rules reach `edit`: kube-apiserver creates the built-in roles with an aggregationRule and
*no rules*; kube-controller-manager's clusterrole-aggregation controller fills them in. The local
control plane is etcd + kube-apiserver only, so there the test runs a port of that controller's
sync (tests/support/kube.py `aggregate_cluster_roles`) after each change; on a cluster with a
controller (PAI_TEST_KUBECONFIG, e.g. kind) it waits for the real one instead. What is proven
either way: the labels select our roles into the built-in ones, and the API server's authorizer
then allows exactly what the aggregated rules say.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from tests.support.kube import (
    REPO_ROOT,
    Cluster,
    aggregate_cluster_roles,
    cluster_role_aggregation_runs,
    unique_name,
)
from tests.support.operator import GROUP, PLURAL, VERSION, wait_for

pytestmark = pytest.mark.integration

TENANT_ROLES = REPO_ROOT / "deploy" / "rbac" / "tenant"
EDITOR = "pai-operator-modelversion-editor"


def _spec() -> dict[str, Any]:
    return {
        "modelId": "model-tenant",
        "versionName": "1.0.0",
        "uri": "oss://bucket.oss-cn-hangzhou.aliyuncs.com/m/",
    }


def _body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": {"name": name},
        "spec": _spec(),
    }


def _settle(kube_api: client.ApiClient, *, expect_editor_in_edit: bool) -> None:
    """Bring the built-in roles up to date with the installed ClusterRoles."""
    if cluster_role_aggregation_runs(kube_api):
        rbac = client.RbacAuthorizationV1Api(kube_api)

        def done() -> bool:
            rules = rbac.read_cluster_role("edit").rules or []
            has = any("modelversions" in (r.resources or []) and "create" in r.verbs for r in rules)
            return has == expect_editor_in_edit

        wait_for("the clusterrole-aggregation controller", done, timeout=60)
    else:
        aggregate_cluster_roles(kube_api)


def _remove_tenant_roles(cluster: Cluster, kube_api: client.ApiClient) -> None:
    cluster.kubectl_run("delete", "-k", str(TENANT_ROLES), "--ignore-not-found")
    _settle(kube_api, expect_editor_in_edit=False)


@pytest.fixture
def tenant_roles(control_plane: Cluster, kube_api: client.ApiClient, crd: str) -> Iterator[None]:
    control_plane.kubectl_run("apply", "-k", str(TENANT_ROLES))
    _settle(kube_api, expect_editor_in_edit=True)
    yield
    # The shared control plane goes back to built-in roles without ModelVersion rules.
    _remove_tenant_roles(control_plane, kube_api)


@pytest.fixture
def other_namespace(kube_api: client.ApiClient) -> Iterator[str]:
    name = unique_name("t-other")
    core = client.CoreV1Api(kube_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


@pytest.fixture
def as_user(
    kube_api: client.ApiClient, service_account_kubeconfig: Callable[[str, str], Path]
) -> Iterator[Callable[[str, str], client.ApiClient]]:
    """A ServiceAccount bound by a RoleBinding in `namespace` to one built-in ClusterRole, and an
    API client that authenticates with its own token."""
    opened: list[client.ApiClient] = []

    def make(namespace: str, cluster_role: str) -> client.ApiClient:
        account = f"tenant-{cluster_role}"
        kubeconfig = service_account_kubeconfig(namespace, account)
        client.RbacAuthorizationV1Api(kube_api).create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": account},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": cluster_role,
                },
                "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
            },
        )
        api = config.new_client_from_config(config_file=str(kubeconfig))
        opened.append(api)
        return api

    yield make
    for api in opened:
        api.close()


def _status(call: Callable[[], object]) -> int:
    try:
        call()
    except client.ApiException as exc:
        return int(exc.status)
    return 200


def test_edit_in_a_namespace_manages_model_versions_there_and_nowhere_else(
    tenant_roles: None,
    namespace: str,
    other_namespace: str,
    as_user: Callable[[str, str], client.ApiClient],
    kube_api: client.ApiClient,
) -> None:
    mv = client.CustomObjectsApi(as_user(namespace, "edit"))
    created = mv.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, _body("tenant-mv"))
    assert created["metadata"]["namespace"] == namespace
    listed = mv.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    assert [o["metadata"]["name"] for o in listed["items"]] == ["tenant-mv"]
    patched = mv.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "tenant-mv", {"spec": {"approvalStatus": "Approved"}}
    )
    assert patched["spec"]["approvalStatus"] == "Approved"
    # Status is the operator's record of PAI: a tenant reads it but cannot forge it.
    assert (
        _status(
            lambda: mv.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, "tenant-mv", {"status": {"versionName": "9.9.9"}}
            )
        )
        == 403
    )
    mv.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "tenant-mv")
    # No operator runs here, so no finalizer holds the object: it is gone at once.
    admin = client.CustomObjectsApi(kube_api)
    assert (
        _status(lambda: admin.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "tenant-mv"))
        == 404
    )

    # The other namespace, and the cluster as a whole, stay closed.
    other = [
        lambda: mv.create_namespaced_custom_object(
            GROUP, VERSION, other_namespace, PLURAL, _body("intruder")
        ),
        lambda: mv.list_namespaced_custom_object(GROUP, VERSION, other_namespace, PLURAL),
        lambda: mv.list_cluster_custom_object(GROUP, VERSION, PLURAL),
    ]
    assert [_status(call) for call in other] == [403, 403, 403]
    admin.create_namespaced_custom_object(GROUP, VERSION, other_namespace, PLURAL, _body("theirs"))
    assert (
        _status(lambda: mv.delete_namespaced_custom_object(GROUP, VERSION, other_namespace, PLURAL, "theirs"))
        == 403
    )
    assert admin.get_namespaced_custom_object(GROUP, VERSION, other_namespace, PLURAL, "theirs")


def test_view_reads_and_admin_writes(
    tenant_roles: None,
    namespace: str,
    as_user: Callable[[str, str], client.ApiClient],
    kube_api: client.ApiClient,
) -> None:
    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, _body("shared")
    )
    viewer = client.CustomObjectsApi(as_user(namespace, "view"))
    assert viewer.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "shared")
    assert viewer.get_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, "shared")
    assert (
        _status(lambda: viewer.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, _body("v")))
        == 403
    )
    assert (
        _status(lambda: viewer.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "shared"))
        == 403
    )

    owner = client.CustomObjectsApi(as_user(namespace, "admin"))
    owner.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, _body("by-admin"))
    owner.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "by-admin")
    owner.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "shared")


def test_without_the_tenant_roles_edit_grants_nothing_on_model_versions(
    control_plane: Cluster,
    kube_api: client.ApiClient,
    crd: str,
    namespace: str,
    as_user: Callable[[str, str], client.ApiClient],
) -> None:
    # The control for the tests above: the same binding, with the built-in roles aggregated but
    # without our ClusterRoles, gives everything `edit` means except ModelVersions.
    _remove_tenant_roles(control_plane, kube_api)
    user = as_user(namespace, "edit")
    client.CoreV1Api(user).create_namespaced_config_map(namespace, {"metadata": {"name": "edit-works"}})
    mv = client.CustomObjectsApi(user)
    assert (
        _status(lambda: mv.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, _body("x")))
        == 403
    )
    assert _status(lambda: mv.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)) == 403


@pytest.mark.parametrize("cluster_role", ["edit", "admin"])
def test_tenants_cannot_pick_their_namespace_identity(
    tenant_roles: None,
    namespace: str,
    as_user: Callable[[str, str], client.ApiClient],
    cluster_role: str,
) -> None:
    """The namespace -> RAM role mapping (annotation pai.mlops.dev/role-arn on the Namespace) is
    admin-owned: `edit` and `admin` in a namespace may read their Namespace but not annotate it."""
    core = client.CoreV1Api(as_user(namespace, cluster_role))
    annotate = {"metadata": {"annotations": {"pai.mlops.dev/role-arn": "acs:ram::1:role/other-team"}}}
    assert _status(lambda: core.patch_namespace(namespace, annotate)) == 403
    body = core.read_namespace(namespace)
    assert "pai.mlops.dev/role-arn" not in (body.metadata.annotations or {})


def test_edit_manages_models_and_view_reads_them(
    tenant_roles: None,
    control_plane: Cluster,
    namespace: str,
    as_user: Callable[[str, str], client.ApiClient],
) -> None:
    model_crd = REPO_ROOT / "crds" / "pai.mlops.dev_models.yaml"
    control_plane.kubectl_run("apply", "--server-side", "--force-conflicts", "-f", str(model_crd))
    control_plane.kubectl_run(
        "wait", "--for=condition=Established", "crd/models.pai.mlops.dev", "--timeout=60s"
    )
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Model",
        "metadata": {"name": "m"},
        "spec": {"modelName": "m"},
    }
    editor = client.CustomObjectsApi(as_user(namespace, "edit"))
    wait_for(  # the aggregated rules reach `edit` once the Model CRD's resource exists
        "edit creates Models",
        lambda: (
            _status(lambda: editor.create_namespaced_custom_object(GROUP, VERSION, namespace, "models", body))
            in (200, 409)
            or None
        ),
        timeout=30,
    )
    status_patch = {"status": {"modelId": "model-forged"}}
    forged = _status(
        lambda: editor.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, "models", "m", status_patch
        )
    )
    assert forged == 403
    viewer = client.CustomObjectsApi(as_user(namespace, "view"))
    assert viewer.get_namespaced_custom_object(GROUP, VERSION, namespace, "models", "m")
    assert (
        _status(lambda: viewer.delete_namespaced_custom_object(GROUP, VERSION, namespace, "models", "m"))
        == 403
    )
    editor.delete_namespaced_custom_object(GROUP, VERSION, namespace, "models", "m")
