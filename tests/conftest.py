"""Session-wide fixtures: one real control plane per run, a fresh namespace per test."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.support import kube as kube_support
from tests.support.kube import Cluster, controlplane, external_cluster, unique_name


@pytest.fixture(scope="session")
def control_plane() -> Iterator[Cluster]:
    """etcd + kube-apiserver built by hack/ (or the cluster named by PAI_TEST_KUBECONFIG)."""
    external = os.environ.get("PAI_TEST_KUBECONFIG")
    if external:
        yield external_cluster(external)
        return
    root = Path(tempfile.mkdtemp(prefix="pai-test-cp-"))
    plane = controlplane.ControlPlane(root)
    plane.start()
    try:
        yield Cluster(
            kubeconfig=plane.kubeconfig,
            kubectl=str(plane.binaries.kubectl),
            helm=str(plane.binaries.helm),
            expected_version=controlplane.VERSIONS["KUBERNETES_VERSION"],
            service_account_key=root / "pki" / "sa.key",
        )
    finally:
        plane.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def kube_api(control_plane: Cluster) -> Iterator[client.ApiClient]:
    api = control_plane.api_client()
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def namespace(kube_api: client.ApiClient) -> Iterator[str]:
    """A fresh namespace per test. Without a namespace controller it stays Terminating after
    deletion, which is harmless: every test uses a new random name."""
    name = unique_name("t")
    core = client.CoreV1Api(kube_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        kube_support.clear_namespace(kube_api, name)
        try:
            core.delete_namespace(name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise


@pytest.fixture
def service_account_kubeconfig_factory(
    control_plane: Cluster, kube_api: client.ApiClient, tmp_path: Path
) -> Callable[[str, str], Path]:
    def make(namespace: str, name: str) -> Path:
        return kube_support.service_account_kubeconfig(control_plane, kube_api, namespace, name, tmp_path)

    return make


# The name the packaging tests were promised.
@pytest.fixture
def service_account_kubeconfig(
    service_account_kubeconfig_factory: Callable[[str, str], Path],
) -> Callable[[str, str], Path]:
    return service_account_kubeconfig_factory
