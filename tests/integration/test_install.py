"""The three install paths against a real kube-apiserver: kustomize (deploy/), Helm
(charts/pai-operator) and what Argo CD would apply. There is no controller-manager, so
Deployments never start pods; what is proven here is that the API server accepts every object
and that the RBAC they create is exactly the operator's, checked with real ServiceAccount tokens."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.kube import Cluster, controlplane, unique_name

# Every install path also runs against KUBERNETES_MIN_VERSION (make test-min).
pytestmark = [pytest.mark.integration, pytest.mark.min_kubernetes]

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "pai-operator"
RRSA = [
    "--set",
    "credentials.mode=rrsa",
    "--set",
    "credentials.rrsa.roleArn=acs:ram::1234567890:role/pai-operator",
    "--set",
    "credentials.rrsa.oidcProviderArn=acs:ram::1234567890:oidc-provider/ack-rrsa-c0ffee",
    "--set",
    "credentials.rrsa.roleName=pai-operator",
]


def run(
    cluster: Cluster, *args: str, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(args), input=input, env=cluster.env, capture_output=True, text=True, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def kube_version(cluster: Cluster) -> list[str]:
    """`--kube-version` of the cluster under test: `helm template`/`lint` then check the chart's
    kubeVersion and capabilities against the server the output is applied to, not helm's default."""
    version = json.loads(run(cluster, cluster.kubectl, "version", "-o", "json").stdout)
    return ["--kube-version", version["serverVersion"]["gitVersion"]]


def helm_template(cluster: Cluster, *args: str, namespace: str = "pai-operator-system") -> str:
    return run(
        cluster,
        cluster.helm,
        "template",
        "pai-operator",
        str(CHART),
        "-n",
        namespace,
        *kube_version(cluster),
        *args,
    ).stdout


def docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def can_i(cluster: Cluster, sa: str, verb: str, resource: str, *scope: str) -> bool:
    """`kubectl auth can-i` as the ServiceAccount (impersonated by the admin)."""
    result = run(cluster, cluster.kubectl, "auth", "can-i", verb, resource, "--as", sa, *scope, check=False)
    assert result.stdout.strip() in {"yes", "no"}, result.stderr
    return result.stdout.strip() == "yes"


# Both registries' ModelVersions get the same grants, always (the TrueFoundry CRD always ships).
MODELVERSIONS = ("modelversions.pai.mlops.dev", "modelversions.truefoundry.mlops.dev")


def assert_operator_rights(cluster: Cluster, sa: str, scope: tuple[str, ...]) -> None:
    for verb, resource in [
        *((verb, mv) for mv in MODELVERSIONS for verb in ("list", "watch", "patch")),
        *(("patch", f"{mv}/status") for mv in MODELVERSIONS),
        ("create", "events"),
    ]:
        assert can_i(cluster, sa, verb, resource, *scope), f"{sa} cannot {verb} {resource} {scope}"
    # Things the operator never does: a wider grant would only widen the blast radius.
    for verb, resource in [
        *((verb, mv) for mv in MODELVERSIONS for verb in ("create", "delete", "update")),
        ("get", "secrets"),
        ("list", "secrets"),
        ("list", "configmaps"),
        ("create", "pods"),
        ("patch", "events"),
    ]:
        assert not can_i(cluster, sa, verb, resource, *scope), f"{sa} may {verb} {resource} {scope}"


def assert_lease_rights(cluster: Cluster, sa: str, namespace: str, lease: str) -> None:
    """Leader election: its own Lease in its own namespace, nothing more."""
    assert can_i(cluster, sa, "get", f"leases.coordination.k8s.io/{lease}", "-n", namespace)
    assert can_i(cluster, sa, "update", f"leases.coordination.k8s.io/{lease}", "-n", namespace)
    assert can_i(cluster, sa, "create", "leases.coordination.k8s.io", "-n", namespace)
    for verb, resource, ns in [
        ("get", "leases.coordination.k8s.io/someone-elses", namespace),
        ("update", "leases.coordination.k8s.io/someone-elses", namespace),
        ("delete", f"leases.coordination.k8s.io/{lease}", namespace),
        ("list", "leases.coordination.k8s.io", namespace),
        ("watch", "leases.coordination.k8s.io", namespace),
        ("create", "leases.coordination.k8s.io", "default"),
        ("get", f"leases.coordination.k8s.io/{lease}", "default"),
    ]:
        assert not can_i(cluster, sa, verb, resource, "-n", ns), f"{sa} may {verb} {resource} in {ns}"


def assert_nothing_cluster_level(cluster: Cluster, sa: str) -> None:
    # Its own two CRDs by name (is one being deleted?), and nothing else of CRDs.
    for crd in ("modelversions.pai.mlops.dev", "modelversions.truefoundry.mlops.dev"):
        assert can_i(cluster, sa, "get", f"customresourcedefinitions.apiextensions.k8s.io/{crd}")
    for verb, resource in [
        ("get", "customresourcedefinitions.apiextensions.k8s.io/someone-elses.example.com"),
        ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
        ("delete", "customresourcedefinitions.apiextensions.k8s.io/modelversions.pai.mlops.dev"),
        ("update", "customresourcedefinitions.apiextensions.k8s.io/modelversions.pai.mlops.dev"),
        ("list", "customresourcedefinitions.apiextensions.k8s.io"),
        ("create", "customresourcedefinitions.apiextensions.k8s.io"),
        ("list", "namespaces"),
        ("list", "nodes"),
        ("create", "clusterroles.rbac.authorization.k8s.io"),
        ("list", "leases.coordination.k8s.io"),
        ("list", "kopfpeerings.kopf.dev"),
        ("list", "clusterkopfpeerings.kopf.dev"),
    ]:
        assert not can_i(cluster, sa, verb, resource, "--all-namespaces"), f"{sa} may {verb} {resource}"


# --- kustomize -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kustomize_default(control_plane: Cluster) -> Iterator[str]:
    # A real apply: a server-side dry run cannot create objects in a namespace it only pretends to create.
    # Through `make deploy`, the documented entry point (kubectl apply -k deploy/ on the current KUBECONFIG).
    out = subprocess.run(
        ["make", "-s", "deploy"], cwd=REPO, env=control_plane.env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr
    yield "pai-operator-system"
    run(
        control_plane,
        control_plane.kubectl,
        "delete",
        "-k",
        str(REPO / "deploy"),
        "--wait=false",
        "--ignore-not-found",
        check=False,
    )


def test_kubectl_apply_k_deploy_creates_everything(control_plane: Cluster, kustomize_default: str) -> None:
    ns = kustomize_default
    got = run(
        control_plane,
        control_plane.kubectl,
        "get",
        "-n",
        ns,
        "deployment/pai-operator",
        "serviceaccount/pai-operator",
        "service/pai-operator-metrics",
        "-o",
        "name",
    ).stdout.split()
    assert got == [
        "deployment.apps/pai-operator",
        "serviceaccount/pai-operator",
        "service/pai-operator-metrics",
    ]
    run(control_plane, control_plane.kubectl, "get", "crd", *MODELVERSIONS)
    run(
        control_plane,
        control_plane.kubectl,
        "get",
        "clusterrole/pai-operator",
        "clusterrolebinding/pai-operator",
    )
    # Re-applying is a no-op the server accepts (what a GitOps loop does every few minutes).
    again = run(
        control_plane, control_plane.kubectl, "apply", "-k", str(REPO / "deploy"), "--dry-run=server"
    ).stdout
    assert "deployment.apps/pai-operator unchanged" in again


def test_kubectl_apply_f_crds_works(control_plane: Cluster) -> None:
    """The first command many users type; crds/ must hold nothing kubectl cannot apply."""
    out = run(
        control_plane, control_plane.kubectl, "apply", "-f", str(REPO / "crds"), "--dry-run=server"
    ).stdout
    lines = sorted(out.strip().splitlines())
    assert [line.split()[0] for line in lines] == [
        "customresourcedefinition.apiextensions.k8s.io/modelversions.pai.mlops.dev",
        "customresourcedefinition.apiextensions.k8s.io/modelversions.truefoundry.mlops.dev",
    ], out


def test_kustomize_cluster_wide_rbac(control_plane: Cluster, kustomize_default: str) -> None:
    sa = f"system:serviceaccount:{kustomize_default}:pai-operator"
    assert_operator_rights(control_plane, sa, ("--all-namespaces",))
    assert can_i(control_plane, sa, "get", "namespaces", "--all-namespaces")
    assert_lease_rights(control_plane, sa, kustomize_default, "pai-operator")
    assert_nothing_cluster_level(control_plane, sa)


def test_kustomize_single_namespace_overlay(control_plane: Cluster) -> None:
    overlay = REPO / "deploy" / "overlays" / "single-namespace"
    run(control_plane, control_plane.kubectl, "apply", "-k", str(overlay))
    try:
        deployment = docs(
            run(
                control_plane,
                control_plane.kubectl,
                "get",
                "-n",
                "pai-models",
                "deployment/pai-operator",
                "-o",
                "yaml",
            ).stdout
        )[0]
        env = {
            e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert env["PAI_OPERATOR_NAMESPACES"] == "pai-models"
        sa = "system:serviceaccount:pai-models:pai-operator"
        assert_operator_rights(control_plane, sa, ("-n", "pai-models"))
        assert not can_i(control_plane, sa, "list", "modelversions.pai.mlops.dev", "-n", "default")
        assert not can_i(control_plane, sa, "list", "modelversions.pai.mlops.dev", "--all-namespaces")
        assert can_i(control_plane, sa, "get", "namespaces/pai-models")
        assert not can_i(control_plane, sa, "get", "namespaces/default")
        assert_lease_rights(control_plane, sa, "pai-models", "pai-operator")
        assert_nothing_cluster_level(control_plane, sa)
    finally:
        run(
            control_plane,
            control_plane.kubectl,
            "delete",
            "-k",
            str(overlay),
            "--wait=false",
            "--ignore-not-found",
            check=False,
        )


def test_kustomize_rrsa_component_renders_without_access_keys(control_plane: Cluster, tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                # kustomize only accepts relative paths to other kustomizations.
                "resources": [os.path.relpath(REPO / "deploy", tmp_path)],
                "components": [os.path.relpath(REPO / "deploy" / "components" / "rrsa", tmp_path)],
            }
        )
    )
    rendered = docs(run(control_plane, control_plane.kubectl, "kustomize", str(tmp_path)).stdout)
    (deployment,) = [d for d in rendered if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    env = {e["name"] for e in pod["containers"][0]["env"]}
    assert {
        "ALIBABA_CLOUD_ROLE_ARN",
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
    } <= env
    assert not {"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"} & env
    (token,) = [v for v in pod["volumes"] if v["name"] == "rrsa-oidc-token"]
    assert token["projected"]["sources"][0]["serviceAccountToken"]["audience"] == "sts.aliyuncs.com"


def test_kustomize_truefoundry_component_adds_host_and_key(control_plane: Cluster, tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": [os.path.relpath(REPO / "deploy", tmp_path)],
                "components": [os.path.relpath(REPO / "deploy" / "components" / "truefoundry", tmp_path)],
            }
        )
    )
    rendered = docs(run(control_plane, control_plane.kubectl, "kustomize", str(tmp_path)).stdout)
    (deployment,) = [d for d in rendered if d["kind"] == "Deployment"]
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PAI_OPERATOR_TRUEFOUNDRY_HOST"]["value"].startswith("https://")
    assert env["TFY_API_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "pai-operator-truefoundry",
        "key": "TFY_API_KEY",
    }
    assert "ALIBABA_CLOUD_ACCESS_KEY_ID" in env  # PAI stays as it was
    crds = {d["metadata"]["name"] for d in rendered if d["kind"] == "CustomResourceDefinition"}
    assert crds == {"modelversions.pai.mlops.dev", "modelversions.truefoundry.mlops.dev"}


# --- Helm ----------------------------------------------------------------------------------------


def test_helm_lint_strict(control_plane: Cluster) -> None:
    for extra in (
        [],
        RRSA,
        ["--set", "watchNamespaces={a,b}", "--set", "metrics.serviceMonitor.enabled=true"],
    ):
        out = run(
            control_plane,
            control_plane.helm,
            "lint",
            "--strict",
            str(CHART),
            *kube_version(control_plane),
            *extra,
        ).stdout
        assert "0 chart(s) failed" in out


@pytest.mark.parametrize(
    "values",
    [
        [],
        RRSA,
        [
            "--set",
            "credentials.mode=none",
            "--set",
            "verbose=true",
            "--set",
            "endpoint=http://pai-emulator:8080",
        ],
    ],
    ids=["access-key", "rrsa", "no-credentials"],
)
def test_helm_template_is_accepted_by_the_api_server(
    control_plane: Cluster, namespace: str, values: list[str]
) -> None:
    manifests = helm_template(control_plane, "--include-crds", *values, namespace=namespace)
    out = run(
        control_plane,
        control_plane.kubectl,
        "apply",
        "--dry-run=server",
        "-n",
        namespace,
        "-f",
        "-",
        input=manifests,
    ).stdout
    assert "deployment.apps/pai-operator created (server dry run)" in out


def test_helm_template_single_namespace_is_accepted(control_plane: Cluster, namespace: str) -> None:
    manifests = helm_template(control_plane, "--set", f"watchNamespaces={{{namespace}}}", namespace=namespace)
    kinds = sorted(d["kind"] for d in docs(manifests))
    assert kinds == [
        "ClusterRole",  # get on the watched Namespace objects
        "ClusterRole",  # tenant viewer (aggregated into view)
        "ClusterRole",  # tenant editor (aggregated into edit and admin)
        "ClusterRoleBinding",
        "Deployment",
        "PodDisruptionBudget",
        "Role",  # leader election (the Lease), in the release namespace
        "Role",  # the watched namespace
        "RoleBinding",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ]
    run(control_plane, control_plane.kubectl, "apply", "--dry-run=server", "-f", "-", input=manifests)


def test_tenant_roles_are_on_by_default_and_can_be_turned_off(control_plane: Cluster) -> None:
    def tenant_roles(*values: str) -> list[str]:
        rendered = docs(helm_template(control_plane, *values))
        return sorted(d["metadata"]["name"] for d in rendered if "-modelversion-" in d["metadata"]["name"])

    assert tenant_roles() == ["pai-operator-modelversion-editor", "pai-operator-modelversion-viewer"]
    assert tenant_roles("--set", "rbac.aggregateToDefaultRoles=false") == []
    assert tenant_roles("--set", "rbac.create=false") == []


def test_rendered_manifests_carry_no_credentials(control_plane: Cluster) -> None:
    for values in ([], RRSA):
        rendered = docs(helm_template(control_plane, *values))
        assert not [d for d in rendered if d["kind"] in {"Secret", "ConfigMap"}]
        (deployment,) = [d for d in rendered if d["kind"] == "Deployment"]
        for env in deployment["spec"]["template"]["spec"]["containers"][0]["env"]:
            if (
                env["name"].startswith("ALIBABA_CLOUD_ACCESS_KEY")
                or "SECRET" in env["name"]
                or env["name"][-5:] == "TOKEN"
            ):
                assert "value" not in env, env
                assert set(env["valueFrom"]) == {"secretKeyRef"}


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--set", "logFormat=xml"], "/logFormat"),
        (["--set", "defaultDeletionPolicy=Orphan"], "/defaultDeletionPolicy"),
        (["--set", "credentials.mode=iam"], "/credentials/mode"),
        (["--set", "credentials.mode=rrsa"], "/credentials/rrsa/roleArn"),
        (["--set", "credentials.existingSecret.name="], "/credentials/existingSecret/name"),
        (["--set", "credentials.existingSecret.accessKeySecret=LTAIxxxxxxxx"], "accessKeySecret"),
        (["--set", "credentials.rrsa.roleArn=arn:aws:iam::1:role/x"], "/credentials/rrsa/roleArn"),
        (["--set", "replicaCount=11"], "/replicaCount"),
        (["--set", "leaderElection.retryPeriod=0"], "/leaderElection/retryPeriod"),
        (["--set", "podAntiAffinity=always"], "/podAntiAffinity"),
        (
            ["--set", "leaderElection.enabled=false"],
            "replicaCount > 1 needs leaderElection.enabled",
        ),
        (["--set", "leaderElection.renewDeadline=15"], "leaseDuration must be longer than"),
        (["--set", "image.tag=latest"], "/image/tag"),
        (["--set", "watchNamespaces={Not_A_Namespace}"], "/watchNamespaces/0"),
        (["--set", "region=Hangzhou"], "/region"),
        (["--set", "endpoint=pai.example.com"], "/endpoint"),
        (["--set", "resyncInterval=0"], "/resyncInterval"),
        (["--set", "concurrency=0"], "/concurrency"),
        (["--set", "rateLimits.write=0"], "/rateLimits/write"),
        (["--set", "metrics.port=70000"], "/metrics/port"),
        (
            ["--set", "securityContext.readOnlyRootFilesystem=false"],
            "/securityContext/readOnlyRootFilesystem",
        ),
        (
            ["--set", "securityContext.allowPrivilegeEscalation=true"],
            "/securityContext/allowPrivilegeEscalation",
        ),
        (["--set", "podSecurityContext.runAsNonRoot=false"], "/podSecurityContext/runAsNonRoot"),
        (
            ["--set", "podSecurityContext.seccompProfile.type=Unconfined"],
            "/podSecurityContext/seccompProfile/type",
        ),
        (["--set", "securityContext.capabilities.add={NET_ADMIN}"], "/securityContext/capabilities/add"),
        (["--set", "metrics.serviceMonitor.interval=often"], "/metrics/serviceMonitor/interval"),
        (["--set", "unknownKey=1"], "unknownKey"),
        (["--set", "truefoundry.apiPrefix=/api/v2"], "/truefoundry/apiPrefix"),
        (["--set", "truefoundry.host=myorg.truefoundry.cloud"], "/truefoundry/host"),
        (
            [
                "--set",
                "truefoundry.host=https://myorg.truefoundry.cloud",
                "--set",
                "truefoundry.apiKeySecret=",
            ],
            "/truefoundry/apiKeySecret",
        ),
        (["--set", "health.port=8080"], "metrics.port and health.port must differ"),
    ],
    ids=lambda v: v if isinstance(v, str) else v[1].split("=")[0],
)
def test_values_schema_rejects(control_plane: Cluster, args: list[str], complaint: str) -> None:
    # helm lint reports a template `fail` only as [INFO]; schema violations fail both commands.
    commands = [["template", "pai-operator"]]
    if "/" in complaint or complaint == "unknownKey":
        commands.append(["lint", "--strict"])
    for command in commands:
        result = run(
            control_plane,
            control_plane.helm,
            *command,
            str(CHART),
            *kube_version(control_plane),
            *args,
            check=False,
        )
        assert result.returncode != 0, f"helm {command[0]} accepted {args}"
        assert complaint in result.stderr + result.stdout


def test_chart_kube_version_admits_the_supported_range_only(control_plane: Cluster) -> None:
    # ACK reports versions like v1.34.4-aliyun.1, a semver pre-release: the "-0" in kubeVersion
    # is what admits them. Anything older than KUBERNETES_MIN_VERSION is refused by helm itself.
    floor = controlplane.VERSIONS["KUBERNETES_MIN_VERSION"]
    major, minor, _ = floor.removeprefix("v").split(".")
    for accepted in (floor, f"v{major}.{minor}.0-aliyun.1", controlplane.VERSIONS["KUBERNETES_VERSION"]):
        run(control_plane, control_plane.helm, "template", "x", str(CHART), "--kube-version", accepted)
    older = f"v{major}.{int(minor) - 1}.99"
    for refused in (older, f"{older}-aliyun.1"):
        result = run(
            control_plane,
            control_plane.helm,
            "template",
            "x",
            str(CHART),
            "--kube-version",
            refused,
            check=False,
        )
        assert result.returncode != 0, f"the chart installs on {refused}"
        assert "chart requires kubeVersion" in result.stderr


@pytest.fixture
def no_cluster_wide_kustomize_install(control_plane: Cluster) -> None:
    """deploy/ (kustomize_default) watches all namespaces: every Helm release would overlap it and
    be refused (see test_overlapping_releases_are_refused). Its Deployment goes; the rest stays
    for the module's teardown."""
    run(control_plane, control_plane.kubectl, "delete", "-n", "pai-operator-system",
        "deployment/pai-operator", "--ignore-not-found", "--wait=false")  # fmt: skip


def _helm_install(cluster: Cluster, release: str, namespace: str, *args: str) -> None:
    run(cluster, cluster.helm, "install", release, str(CHART), "-n", namespace, *args)


def _helm_uninstall(cluster: Cluster, release: str, namespace: str) -> None:
    run(cluster, cluster.helm, "uninstall", release, "-n", namespace, "--wait=false", check=False)


@pytest.mark.usefixtures("no_cluster_wide_kustomize_install")
def test_make_install_uses_the_chart_and_the_current_kubeconfig(
    control_plane: Cluster, namespace: str
) -> None:
    release = unique_name("mk")
    env = {
        **control_plane.env,
        "NAMESPACE": namespace,
        "RELEASE": release,
        "HELM_ARGS": "--set region=cn-beijing",
    }
    out = subprocess.run(
        ["make", "-s", "install"], cwd=REPO, env=env, capture_output=True, text=True, timeout=180
    )
    try:
        assert out.returncode == 0, out.stdout + out.stderr
        values = run(
            control_plane, control_plane.helm, "get", "values", release, "-n", namespace, "-o", "json"
        )
        assert '"region":"cn-beijing"' in values.stdout.replace(" ", "")
        run(control_plane, control_plane.kubectl, "get", "crd", "modelversions.pai.mlops.dev")
    finally:
        _helm_uninstall(control_plane, release, namespace)


@pytest.mark.usefixtures("no_cluster_wide_kustomize_install")
def test_helm_install_cluster_wide(
    control_plane: Cluster, namespace: str, service_account_kubeconfig: Callable[[str, str], Path]
) -> None:
    release = unique_name("op")
    _helm_install(control_plane, release, namespace)
    try:
        status = run(
            control_plane, control_plane.helm, "status", release, "-n", namespace, "-o", "json"
        ).stdout
        assert '"status":"deployed"' in status.replace(" ", "")
        sa_name = f"{release}-pai-operator"
        sa = f"system:serviceaccount:{namespace}:{sa_name}"
        assert_operator_rights(control_plane, sa, ("--all-namespaces",))
        assert can_i(control_plane, sa, "get", "namespaces", "--all-namespaces")
        assert_lease_rights(control_plane, sa, namespace, f"{release}-pai-operator")
        assert_nothing_cluster_level(control_plane, sa)
        # High availability: two replicas, one leader, a PDB that keeps one of them.
        deployment = docs(
            run(control_plane, control_plane.kubectl, "get", "-n", namespace,
                f"deployment/{release}-pai-operator", "-o", "yaml").stdout
        )[0]  # fmt: skip
        assert deployment["spec"]["replicas"] == 2
        assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
        pdb = docs(
            run(control_plane, control_plane.kubectl, "get", "-n", namespace,
                f"poddisruptionbudget/{release}-pai-operator", "-o", "yaml").stdout
        )[0]  # fmt: skip
        assert pdb["spec"]["minAvailable"] == 1

        # The same, with the account's own token instead of impersonation.
        kubeconfig = str(service_account_kubeconfig(namespace, sa_name))
        as_sa = [control_plane.kubectl, "--kubeconfig", kubeconfig]
        run(control_plane, *as_sa, "get", "modelversions.pai.mlops.dev", "--all-namespaces")
        run(control_plane, *as_sa, "get", f"namespace/{namespace}")
        denied = run(control_plane, *as_sa, "get", "secrets", "-n", namespace, check=False)
        assert denied.returncode != 0
        assert "Forbidden" in denied.stderr
        denied = run(control_plane, *as_sa, "get", "crd", check=False)
        assert denied.returncode != 0
        assert "Forbidden" in denied.stderr
    finally:
        _helm_uninstall(control_plane, release, namespace)


@pytest.mark.usefixtures("no_cluster_wide_kustomize_install")
def test_helm_install_single_namespace(
    control_plane: Cluster, namespace: str, service_account_kubeconfig: Callable[[str, str], Path]
) -> None:
    release = unique_name("op")
    _helm_install(control_plane, release, namespace, "--set", f"watchNamespaces={{{namespace}}}", *RRSA)
    try:
        sa_name = f"{release}-pai-operator"
        sa_obj = docs(
            run(
                control_plane,
                control_plane.kubectl,
                "get",
                "-n",
                namespace,
                f"serviceaccount/{sa_name}",
                "-o",
                "yaml",
            ).stdout
        )[0]
        assert sa_obj["metadata"]["annotations"]["pod-identity.alibabacloud.com/role-name"] == "pai-operator"
        sa = f"system:serviceaccount:{namespace}:{sa_name}"
        assert_operator_rights(control_plane, sa, ("-n", namespace))
        assert not can_i(control_plane, sa, "list", "modelversions.pai.mlops.dev", "--all-namespaces")
        assert not can_i(control_plane, sa, "list", "modelversions.pai.mlops.dev", "-n", "default")
        assert not can_i(control_plane, sa, "create", "events", "-n", "default")
        assert can_i(control_plane, sa, "get", f"namespaces/{namespace}")
        assert not can_i(control_plane, sa, "get", "namespaces/default")
        assert_lease_rights(control_plane, sa, namespace, f"{release}-pai-operator")
        assert_nothing_cluster_level(control_plane, sa)

        kubeconfig = str(service_account_kubeconfig(namespace, sa_name))
        as_sa = [control_plane.kubectl, "--kubeconfig", kubeconfig]
        run(control_plane, *as_sa, "get", "modelversions.pai.mlops.dev", "-n", namespace)
        denied = run(
            control_plane, *as_sa, "get", "modelversions.pai.mlops.dev", "-n", "default", check=False
        )
        assert denied.returncode != 0
        assert "Forbidden" in denied.stderr
        denied = run(control_plane, *as_sa, "get", "secrets", "-n", namespace, check=False)
        assert denied.returncode != 0
        assert "Forbidden" in denied.stderr
    finally:
        _helm_uninstall(control_plane, release, namespace)


@pytest.mark.usefixtures("no_cluster_wide_kustomize_install")
def test_overlapping_releases_are_refused(control_plane: Cluster, namespace: str) -> None:
    """Sharding: releases with disjoint watchNamespaces coexist, each with its own Lease; a release
    whose namespaces overlap another's (or a cluster-wide one) is refused at install time."""
    team_a, team_b = unique_name("team-a"), unique_name("team-b")
    for ns in (team_a, team_b):
        run(control_plane, control_plane.kubectl, "create", "namespace", ns)
    first, second, third = unique_name("shard"), unique_name("shard"), unique_name("shard")
    try:
        _helm_install(control_plane, first, namespace, "--set", f"watchNamespaces={{{team_a}}}")
        # A second release over team-a (and team-b) would reconcile team-a's objects twice.
        refused = run(
            control_plane, control_plane.helm, "install", second, str(CHART), "-n", namespace,
            "--set", f"watchNamespaces={{{team_b},{team_a}}}", check=False,
        )  # fmt: skip
        assert refused.returncode != 0
        assert (
            f"watchNamespaces overlap with the pai-operator Deployment {namespace}/{first}-pai-operator"
            in (refused.stderr)
        )
        assert f"in: {team_a}." in refused.stderr
        # Cluster-wide overlaps everything.
        refused = run(
            control_plane, control_plane.helm, "install", third, str(CHART), "-n", namespace, check=False
        )
        assert refused.returncode != 0
        assert "in: all namespaces." in refused.stderr
        # Disjoint: accepted, with a Lease of its own.
        _helm_install(control_plane, second, namespace, "--set", f"watchNamespaces={{{team_b}}}")
        leases = set()
        for release in (first, second):
            deployment = docs(
                run(control_plane, control_plane.kubectl, "get", "-n", namespace,
                    f"deployment/{release}-pai-operator", "-o", "yaml").stdout
            )[0]  # fmt: skip
            env = {
                e["name"]: e.get("value")
                for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
            }
            leases.add(env["PAI_OPERATOR_LEADER_ELECT_LEASE_NAME"])
        assert leases == {f"{first}-pai-operator", f"{second}-pai-operator"}
        # A release never overlaps itself: upgrades go through.
        run(control_plane, control_plane.helm, "upgrade", first, str(CHART), "-n", namespace,
            "--set", f"watchNamespaces={{{team_a}}}")  # fmt: skip
    finally:
        for release in (first, second, third):
            _helm_uninstall(control_plane, release, namespace)
