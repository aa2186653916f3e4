"""Test-side access to a Kubernetes control plane: the local one from hack/ or any kubeconfig."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "hack"))

import controlplane  # noqa: E402  (hack/ is a script directory, not a package)


@dataclass
class Cluster:
    """What a test needs to talk to the cluster: a kubeconfig plus the CLI tools that match it."""

    kubeconfig: Path
    kubectl: str
    helm: str
    expected_version: str | None  # None when PAI_TEST_KUBECONFIG points at a foreign cluster

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def api_client(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def kubectl_run(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.kubectl, *args], input=input, env=self.env, capture_output=True, text=True, check=check
        )


def local_binaries() -> controlplane.Binaries:
    return controlplane.Binaries.from_cache()


def external_cluster(kubeconfig: str) -> Cluster:
    binaries = local_binaries()
    kubectl = str(binaries.kubectl) if binaries.kubectl.exists() else (shutil.which("kubectl") or "kubectl")
    helm = str(binaries.helm) if binaries.helm.exists() else (shutil.which("helm") or "helm")
    return Cluster(Path(kubeconfig), kubectl, helm, expected_version=None)


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def service_account_kubeconfig(
    cluster: Cluster, api: client.ApiClient, namespace: str, name: str, directory: Path
) -> Path:
    """A kubeconfig that authenticates as ServiceAccount `namespace/name` via TokenRequest.

    The ServiceAccount is created when missing. The result carries exactly the RBAC that was
    granted to that account, which is how tests prove a manifest's permissions are sufficient.
    """
    core = client.CoreV1Api(api)
    try:
        core.read_namespaced_service_account(name, namespace)
    except client.ApiException as exc:
        if exc.status != 404:
            raise
        core.create_namespaced_service_account(namespace, client.V1ServiceAccount(metadata={"name": name}))
    token_request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    token = core.create_namespaced_service_account_token(name, namespace, token_request).status.token
    admin: dict[str, Any] = yaml.safe_load(cluster.kubeconfig.read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])["context"]
    cluster_entry = next(c for c in admin["clusters"] if c["name"] == context["cluster"])["cluster"]
    path = directory / f"kubeconfig-{namespace}-{name}"
    ca_data = cluster_entry.get("certificate-authority-data")
    if ca_data is None and cluster_entry.get("certificate-authority"):
        ca_data = base64.b64encode(Path(cluster_entry["certificate-authority"]).read_bytes()).decode()
    cluster_spec = {"server": cluster_entry["server"]}
    if ca_data:
        cluster_spec["certificate-authority-data"] = ca_data
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sa", "cluster": cluster_spec}],
        "users": [{"name": f"{namespace}-{name}", "user": {"token": token}}],
        "contexts": [
            {
                "name": "sa",
                "context": {"cluster": "sa", "user": f"{namespace}-{name}", "namespace": namespace},
            }
        ],
        "current-context": "sa",
    }
    path.write_text(yaml.safe_dump(kubeconfig))
    path.chmod(0o600)
    return path
