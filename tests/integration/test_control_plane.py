"""The local control plane is a real Kubernetes API server, not a mock.

Each test exercises one server-side behaviour the operator relies on and that a fake client could
not show: version pinning, CEL transition rules, the status subresource, watches, finalizers, RBAC
and server-side dry-run.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, watch

from tests.support.kube import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.min_kubernetes]

GROUP, VERSION, PLURAL = "cpcheck.pai.mlops.dev", "v1", "gadgets"


def gadget_crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": PLURAL, "singular": "gadget", "kind": "Gadget"},
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "fixed": {
                                            "type": "string",
                                            "x-kubernetes-validations": [
                                                {"rule": "self == oldSelf", "message": "fixed is immutable"}
                                            ],
                                        },
                                        "free": {"type": "string"},
                                    },
                                },
                                "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
                            },
                        }
                    },
                }
            ],
        },
    }


@pytest.fixture(scope="module")
def gadgets(kube_api: client.ApiClient) -> Iterator[client.CustomObjectsApi]:
    ext = client.ApiextensionsV1Api(kube_api)
    body = gadget_crd()
    try:
        ext.create_custom_resource_definition(body)
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        crd = ext.read_custom_resource_definition(body["metadata"]["name"])
        if any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or []):
            break
        time.sleep(0.2)
    else:
        pytest.fail("throwaway CRD never became Established")
    yield client.CustomObjectsApi(kube_api)
    ext.delete_custom_resource_definition(body["metadata"]["name"])


def new_gadget(name: str, **spec: str) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Gadget", "metadata": {"name": name}, "spec": spec}


def test_server_version_is_the_pinned_release(control_plane: Cluster, kube_api: client.ApiClient) -> None:
    info = client.VersionApi(kube_api).get_code()
    if control_plane.expected_version is None:
        assert info.git_version.startswith("v1.")
    else:
        assert info.git_version == control_plane.expected_version
        client_version = control_plane.kubectl_run("version", "--client", "-o", "yaml").stdout
        assert yaml.safe_load(client_version)["clientVersion"]["gitVersion"] == control_plane.expected_version


def test_cel_transition_rule_rejects_an_update(gadgets: client.CustomObjectsApi, namespace: str) -> None:
    gadgets.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, new_gadget("g1", fixed="a", free="x")
    )
    # A change to another field is allowed...
    gadgets.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "g1", {"spec": {"free": "y"}})
    # ...a change to the immutable one is refused by the API server itself.
    with pytest.raises(client.ApiException) as caught:
        gadgets.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "g1", {"spec": {"fixed": "b"}}
        )
    assert caught.value.status == 422
    assert "fixed is immutable" in caught.value.body
    current = gadgets.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "g1")
    assert current["spec"] == {"fixed": "a", "free": "y"}


def test_status_subresource_ignores_status_in_main_update(
    gadgets: client.CustomObjectsApi, namespace: str
) -> None:
    gadgets.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, new_gadget("g2", free="x"))
    gadgets.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "g2", {"spec": {"free": "z"}, "status": {"phase": "Ignored"}}
    )
    obj = gadgets.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "g2")
    assert obj["spec"]["free"] == "z"
    assert "status" not in obj or obj["status"].get("phase") != "Ignored"
    gadgets.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "g2", {"status": {"phase": "Set"}}
    )
    obj = gadgets.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "g2")
    assert obj["status"]["phase"] == "Set"


def test_watch_sees_added_modified_deleted(gadgets: client.CustomObjectsApi, namespace: str) -> None:
    seen: list[tuple[str, str]] = []
    ready = threading.Event()
    w = watch.Watch()

    def consume() -> None:
        stream = w.stream(
            gadgets.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, timeout_seconds=20
        )
        ready.set()
        for event in stream:
            seen.append((event["type"], event["object"]["metadata"]["name"]))
            if event["type"] == "DELETED":
                w.stop()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    ready.wait(5)
    time.sleep(0.5)  # let the watch request reach the server before the first write
    gadgets.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, new_gadget("g3", free="1"))
    gadgets.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "g3", {"spec": {"free": "2"}})
    gadgets.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "g3")
    thread.join(25)
    assert [t for t, n in seen if n == "g3"] == ["ADDED", "MODIFIED", "DELETED"]


def test_finalizer_holds_deletion_until_removed(gadgets: client.CustomObjectsApi, namespace: str) -> None:
    body = new_gadget("g4", free="x")
    body["metadata"]["finalizers"] = ["pai.mlops.dev/finalizer"]
    gadgets.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    gadgets.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "g4")
    held = gadgets.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "g4")
    assert held["metadata"]["deletionTimestamp"]
    gadgets.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "g4", {"metadata": {"finalizers": None}}
    )
    with pytest.raises(client.ApiException) as caught:
        gadgets.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "g4")
    assert caught.value.status == 404


def test_rbac_denies_then_allows_a_service_account(
    control_plane: Cluster, kube_api: client.ApiClient, namespace: str, service_account_kubeconfig: Any
) -> None:
    kubeconfig: Path = service_account_kubeconfig(namespace, "reader")
    sa_api = client.CoreV1Api(
        Cluster(kubeconfig, control_plane.kubectl, control_plane.helm, None).api_client()
    )
    with pytest.raises(client.ApiException) as caught:
        sa_api.list_namespaced_config_map(namespace)
    assert caught.value.status == 403

    rbac = client.RbacAuthorizationV1Api(kube_api)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "cm-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "cm-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )
    deadline = time.monotonic() + 10  # the RBAC authorizer's informer catches up asynchronously
    while True:
        try:
            sa_api.list_namespaced_config_map(namespace)
            break
        except client.ApiException as exc:
            if exc.status != 403 or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    # Still denied for what the role does not name.
    with pytest.raises(client.ApiException) as caught:
        sa_api.list_namespaced_secret(namespace)
    assert caught.value.status == 403


def test_kubectl_server_side_dry_run_and_helm_from_cache(
    control_plane: Cluster, kube_api: client.ApiClient, namespace: str
) -> None:
    manifest = yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "dry", "namespace": namespace},
            "data": {"a": "b"},
        }
    )
    result = control_plane.kubectl_run("apply", "--dry-run=server", "-f", "-", input=manifest)
    assert "configmap/dry created (server dry run)" in result.stdout
    with pytest.raises(client.ApiException) as caught:
        client.CoreV1Api(kube_api).read_namespaced_config_map("dry", namespace)
    assert caught.value.status == 404
    helm = subprocess.run(
        [control_plane.helm, "version", "--short"], capture_output=True, text=True, check=True
    )
    if control_plane.expected_version is not None:
        from tests.support.kube import controlplane

        assert helm.stdout.strip().startswith(controlplane.VERSIONS["HELM_VERSION"])
        assert control_plane.helm.startswith(str(controlplane.cache_root()))
