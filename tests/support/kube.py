"""Test-side access to a Kubernetes control plane: the local one from hack/ or any kubeconfig."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
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
    # The key kube-apiserver signs ServiceAccount tokens with (local control plane only).
    service_account_key: Path | None = None

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


@dataclass(frozen=True)
class KStatus:
    """What the kstatus library (sigs.k8s.io/cli-utils, the one Flux's health checks use) says."""

    status: str  # Current, InProgress, Failed, Terminating, NotFound, Unknown
    message: str


def kstatus(cluster: Cluster, resource: str, namespace: str, name: str) -> KStatus:
    """kstatus of the live object: `kubectl get -o json` fed to hack/kstatus (built on demand)."""
    live = cluster.kubectl_run("get", resource, name, "-n", namespace, "-o", "json").stdout
    binary = controlplane.ensure_kstatus()
    out = subprocess.run([str(binary)], input=live, capture_output=True, text=True, check=True).stdout
    parsed = yaml.safe_load(out)
    return KStatus(status=parsed["status"], message=parsed["message"])


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


# Who writes the built-in roles' rules: kube-controller-manager (server-side apply since 1.26,
# updates before), or the port below.
CONTROLLER_MANAGERS = frozenset({"clusterrole-aggregation-controller", "kube-controller-manager"})
TEST_AGGREGATION_MANAGER = "pai-operator-test-aggregation"


def cluster_role_aggregation_runs(api: client.ApiClient) -> bool:
    """Whether a clusterrole-aggregation controller (kube-controller-manager) serves this cluster.

    kube-apiserver creates the built-in `admin`, `edit` and `view` ClusterRoles with an
    aggregationRule and no rules; only the controller fills them in, within seconds of starting,
    and its field manager then owns `edit`'s rules (the port below writes under another name).
    """
    edit = client.RbacAuthorizationV1Api(api).read_cluster_role("edit")
    managers = {entry.manager for entry in edit.metadata.managed_fields or []}
    return bool(managers & CONTROLLER_MANAGERS)


def aggregate_cluster_roles(api: client.ApiClient) -> None:
    """Do what kube-controller-manager's clusterrole-aggregation controller does, for a control
    plane that has none (etcd + kube-apiserver only).

    A port of syncClusterRole (pkg/controller/clusterroleaggregation): for every ClusterRole with an
    aggregationRule, the rules of all ClusterRoles matching any of its selectors (sorted by name,
    the role itself skipped) are concatenated without duplicates and written as its rules. The
    controller re-syncs a role whenever a ClusterRole it selects changes (view is aggregated into
    edit, edit into admin), so this repeats until nothing changes.
    """
    rbac = client.RbacAuthorizationV1Api(api)
    for _ in range(10):
        changed = False
        for role in rbac.list_cluster_role().items:
            if not role.aggregation_rule or not role.aggregation_rule.cluster_role_selectors:
                continue
            rules: list[dict[str, Any]] = []
            for selector in role.aggregation_rule.cluster_role_selectors:
                if selector.match_expressions:
                    raise NotImplementedError("matchExpressions in an aggregationRule")
                match = ",".join(f"{k}={v}" for k, v in (selector.match_labels or {}).items())
                selected = rbac.list_cluster_role(label_selector=match).items
                for other in sorted(selected, key=lambda r: r.metadata.name):
                    if other.metadata.name == role.metadata.name:
                        continue
                    for rule in other.rules or []:
                        plain = api.sanitize_for_serialization(rule)
                        if plain not in rules:
                            rules.append(plain)
            current = [api.sanitize_for_serialization(r) for r in role.rules or []]
            if rules != current:
                rbac.patch_cluster_role(
                    role.metadata.name, {"rules": rules}, field_manager=TEST_AGGREGATION_MANAGER
                )
                changed = True
        if not changed:
            return
    raise AssertionError("ClusterRole aggregation did not settle")


def kube_controller_manager_binary() -> Path:
    """Where hack/build-tools.sh's opt-in `node` set puts kube-controller-manager."""
    return (
        controlplane.cache_root()
        / f"kubernetes-{controlplane.VERSIONS['KUBERNETES_VERSION']}"
        / ("kube-controller-manager")
    )


@contextlib.contextmanager
def namespace_controller(cluster: Cluster, log_dir: Path) -> Iterator[None]:
    """kube-controller-manager running only its namespace controller, for the local control plane
    (etcd + kube-apiserver, where a deleted namespace otherwise stays Terminating for ever).

    The controller does what it does in every cluster: it deletes each namespaced resource of the
    namespace (discovery of all groups, custom resources included), waits until none is left,
    then removes the `kubernetes` finalizer and the namespace goes. An external cluster
    (PAI_TEST_KUBECONFIG) runs its own, so nothing is started there.
    """
    if cluster.expected_version is None:
        yield
        return
    binary = kube_controller_manager_binary()
    log_path = log_dir / "kube-controller-manager.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                str(binary),
                f"--kubeconfig={cluster.kubeconfig}",
                "--controllers=namespace",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                "--secure-port=0",  # no serving endpoint: nothing probes it here
                # The default sync period is 5 min: a namespace whose content is still being
                # finalized is looked at again after this (the controller's own back-off
                # starts from its work queue anyway).
                "--namespace-sync-period=10s",
                "--v=2",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def our_kinds() -> list[tuple[str, str, str]]:
    """(group, served version, plural) of every CRD in crds/."""
    kinds = []
    for path in sorted((REPO_ROOT / "crds").glob("*_*.yaml")):
        crd = yaml.safe_load(path.read_text())
        version = next(v["name"] for v in crd["spec"]["versions"] if v.get("served", True))
        kinds.append((crd["spec"]["group"], version, crd["spec"]["names"]["plural"]))
    return kinds


def clear_namespace(api: client.ApiClient, namespace: str) -> None:
    """Remove every object of our CRDs from a finished test's namespace, finalizers first.

    The test control plane has no namespace controller, so a deleted namespace keeps its objects,
    and their finalizers (no operator runs any more to remove them) would hold any later deletion
    of their CRD (an uninstall test, `helm uninstall` of a chart with CRDs) for ever."""
    custom = client.CustomObjectsApi(api)
    for group, version, plural in our_kinds():
        try:
            items = custom.list_namespaced_custom_object(group, version, namespace, plural)["items"]
        except client.ApiException as exc:
            if exc.status == 404:  # the CRD is not installed
                continue
            raise
        for obj in items:
            name = obj["metadata"]["name"]
            try:
                if obj["metadata"].get("finalizers"):
                    custom.patch_namespaced_custom_object(
                        group, version, namespace, plural, name, {"metadata": {"finalizers": None}}
                    )
                custom.delete_namespaced_custom_object(group, version, namespace, plural, name)
            except client.ApiException as exc:
                if exc.status != 404:
                    raise
