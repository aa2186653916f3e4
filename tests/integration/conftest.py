"""Fixtures for tests that run the operator for real: CRD installed in the control plane, the PAI
emulator as a process, and the operator as a process watching the test's namespace."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from alibabacloud_aiworkspace20210204.client import Client
from alibabacloud_tea_openapi.models import Config
from kubernetes import client

from pai_operator.pai import PaiClient, PaiClientConfig, StaticCredentialsProvider
from pai_operator.pai.credentials import Credentials
from tests.support.emulator import DEFAULT_CREDENTIAL, AdminClient, EmulatorProcess
from tests.support.kube import REPO_ROOT, Cluster
from tests.support.operator import ModelVersions, OperatorProcess, wait_for

T = TypeVar("T")
CRD_FILE = REPO_ROOT / "crds" / "pai.mlops.dev_modelversions.yaml"
MODEL_CRD_FILE = REPO_ROOT / "crds" / "pai.mlops.dev_models.yaml"


@pytest.fixture
def crd(control_plane: Cluster, kube_api: client.ApiClient) -> str:
    """The ModelVersion CRD, installed when missing. Checked per test (one GET) rather than once
    per session: test_install's kustomize teardown deletes everything deploy/ holds, the CRD
    included, and tests that ran before it may already have installed it."""
    name = "modelversions.pai.mlops.dev"
    extensions = client.ApiextensionsV1Api(kube_api)

    def current() -> Any:
        try:
            return extensions.read_custom_resource_definition(name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            return None

    existing = current()
    if existing is not None and existing.metadata.deletion_timestamp is None:
        return name
    if existing is not None:  # being deleted: its objects go first, then it can be created again
        # Objects an earlier test left behind its operator's finalizer would hold the CRD in
        # Terminating for ever: no operator runs between tests to let them go.
        custom = client.CustomObjectsApi(kube_api)
        for obj in custom.list_cluster_custom_object("pai.mlops.dev", "v1alpha1", "modelversions")["items"]:
            if obj["metadata"].get("finalizers"):
                meta = obj["metadata"]
                with contextlib.suppress(client.ApiException):  # gone meanwhile
                    custom.patch_namespaced_custom_object(
                        "pai.mlops.dev", "v1alpha1", meta["namespace"], "modelversions", meta["name"],
                        {"metadata": {"finalizers": None}},
                    )  # fmt: skip
        wait_for(f"crd/{name} deleted", lambda: current() is None, timeout=60)
    control_plane.kubectl_run("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    control_plane.kubectl_run("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    return name


@pytest.fixture
def model_crd(control_plane: Cluster, crd: str) -> str:
    """The Model CRD next to the ModelVersion one (`crd` installs that, freshly generated)."""
    control_plane.kubectl_run("apply", "--server-side", "--force-conflicts", "-f", str(MODEL_CRD_FILE))
    control_plane.kubectl_run(
        "wait", "--for=condition=Established", "crd/models.pai.mlops.dev", "--timeout=60s"
    )
    return "models.pai.mlops.dev"


@pytest.fixture(scope="session")
def emulator_service() -> Iterator[EmulatorProcess]:
    with EmulatorProcess(models=()) as emulator:
        yield emulator


@pytest.fixture
def official_sdk(emulator_service: EmulatorProcess) -> Client:
    """The official Alibaba Cloud SDK against the emulator: remote state made by a second,
    independent client, as a person, Terraform or the console would have made it."""
    return Client(
        Config(
            access_key_id=DEFAULT_CREDENTIAL.access_key_id,
            access_key_secret=DEFAULT_CREDENTIAL.access_key_secret,
            endpoint=emulator_service.endpoint,
            protocol="http",
            read_timeout=10_000,
            connect_timeout=5_000,
        )
    )


@pytest.fixture
def pai(emulator_service: EmulatorProcess) -> AdminClient:
    """The emulator's admin API, with faults and the journal cleared for this test."""
    admin = emulator_service.admin
    admin.clear_faults()
    admin.clear_journal()
    return admin


@pytest.fixture
def model_id(pai: AdminClient) -> str:
    """A model of this test's own, so journals and version lists never mix between tests."""
    model = f"model-{uuid.uuid4().hex[:10]}"
    pai.add_model(model)
    return model


@pytest.fixture
def mvs(kube_api: client.ApiClient, namespace: str, crd: str) -> ModelVersions:
    return ModelVersions(kube_api, namespace)


@pytest.fixture
def start_operator(
    control_plane: Cluster, emulator_service: EmulatorProcess, namespace: str, crd: str, tmp_path: Path
) -> Iterator[Callable[..., OperatorProcess]]:
    started: list[OperatorProcess] = []

    def start(
        *, kubeconfig: Path | None = None, namespaces: tuple[str, ...] | None = None, **kwargs: Any
    ) -> OperatorProcess:
        proc = OperatorProcess(
            kubeconfig or control_plane.kubeconfig,
            emulator_service.url,
            kwargs.pop("credential", DEFAULT_CREDENTIAL),
            namespaces=namespaces if namespaces is not None else (namespace,),
            log_dir=tmp_path,
            **kwargs,
        )
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def operator(start_operator: Callable[..., OperatorProcess]) -> OperatorProcess:
    return start_operator()


class Remote:
    """Our own PAI client, used synchronously by tests to arrange remote state (pre-existing
    versions, drift made behind the operator's back)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self, action: Callable[[PaiClient], Awaitable[T]]) -> T:
        async def run() -> T:
            creds = StaticCredentialsProvider(
                Credentials(DEFAULT_CREDENTIAL.access_key_id, DEFAULT_CREDENTIAL.access_key_secret)
            )
            async with PaiClient(PaiClientConfig(endpoint=self.url), creds) as pai_client:
                return await action(pai_client)

        return asyncio.run(run())


@pytest.fixture
def remote(emulator_service: EmulatorProcess) -> Remote:
    return Remote(emulator_service.url)


def one_remote(pai: AdminClient, model_id: str) -> dict[str, Any]:
    versions = wait_for("exactly one remote version", lambda: pai.versions(model_id) or None, timeout=30)
    assert len(versions) == 1, versions
    return versions[0]
