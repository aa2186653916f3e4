"""Static checks of the raw kustomize manifests in deploy/ (rendering and applying them against a
real API server is tests/integration/test_install.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
OPERATOR_VERBS = {
    ("pai.mlops.dev", "modelversions"): {"list", "watch", "patch"},
    ("pai.mlops.dev", "modelversions/status"): {"patch"},
    ("truefoundry.mlops.dev", "modelversions"): {"list", "watch", "patch"},
    ("truefoundry.mlops.dev", "modelversions/status"): {"patch"},
    ("", "events"): {"create"},
    ("", "namespaces"): {"get"},
    ("coordination.k8s.io", "leases"): {"get", "create", "update"},
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"get"},
}
# The operator's own CRDs, the only ones it may read (and only by name).
CRD_NAMES = ["modelversions.pai.mlops.dev", "modelversions.truefoundry.mlops.dev"]
CRD_RULE = {
    "apiGroups": ["apiextensions.k8s.io"],
    "resources": ["customresourcedefinitions"],
    "resourceNames": CRD_NAMES,
    "verbs": ["get"],
}


GROUPS = ("pai.mlops.dev", "truefoundry.mlops.dev")
MODELVERSION_CRDS = [f"{group}_modelversions.yaml" for group in GROUPS]


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _all_manifests() -> list[tuple[Path, dict[str, Any]]]:
    skip = {"kustomization.yaml"}
    return [
        (p, d)
        for p in sorted(DEPLOY.rglob("*.yaml"))
        if p.name not in skip and "argocd" not in p.parts
        for d in _docs(p)
    ]


def _rbac_roles() -> list[tuple[Path, dict[str, Any]]]:
    """The operator's own roles (the tenant roles in rbac/tenant are for people; tested below)."""
    return [
        (p, d)
        for p, d in _all_manifests()
        if d.get("kind") in {"Role", "ClusterRole"} and p.parent.name != "tenant"
    ]


def tenant_roles() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _docs(DEPLOY / "rbac" / "tenant" / "clusterroles.yaml")}


def test_rbac_exists_for_both_installs() -> None:
    kinds = {(p.parent.name, d["kind"]) for p, d in _rbac_roles()}
    assert ("cluster-wide", "ClusterRole") in kinds
    assert ("single-namespace", "Role") in kinds
    assert ("single-namespace", "ClusterRole") in kinds


@pytest.mark.parametrize(
    "path_and_role", _rbac_roles(), ids=lambda pr: f"{pr[0].parent.name}/{pr[1]['kind']}"
)
def test_rbac_is_least_privilege(path_and_role: tuple[Path, dict[str, Any]]) -> None:
    _, role = path_and_role
    for rule in role["rules"]:
        assert "*" not in rule["verbs"]
        assert "*" not in rule["resources"]
        assert "*" not in rule["apiGroups"]
        assert "nonResourceURLs" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                allowed = OPERATOR_VERBS.get((group, resource))
                assert allowed is not None, f"unexpected resource {group}/{resource}"
                assert set(rule["verbs"]) <= allowed, f"{group}/{resource}: {rule['verbs']}"


def test_single_namespace_install_grants_nothing_cluster_wide_but_its_own_namespace() -> None:
    for path, role in _rbac_roles():
        if path.parent.name == "single-namespace" and role["kind"] == "ClusterRole":
            assert role["rules"] == [
                {
                    "apiGroups": [""],
                    "resources": ["namespaces"],
                    "resourceNames": ["NAMESPACE"],
                    "verbs": ["get"],
                },
                CRD_RULE,
            ]


def test_crds_are_read_only_by_name_and_only_the_operators_own() -> None:
    crd_rules = [
        (p.parent.name, rule)
        for p, role in _rbac_roles()
        for rule in role["rules"]
        if "customresourcedefinitions" in rule["resources"]
    ]
    assert sorted(scope for scope, _ in crd_rules) == ["cluster-wide", "single-namespace"]
    assert all(rule == CRD_RULE for _, rule in crd_rules)


def test_leases_only_in_the_operators_own_namespace_and_only_its_own_lease() -> None:
    with_leases = [
        (p, d) for p, d in _rbac_roles() if any("leases" in rule["resources"] for rule in d["rules"])
    ]
    assert [(p.name, d["kind"]) for p, d in with_leases] == [("leader-election-role.yaml", "Role")]
    (_, role), = with_leases  # fmt: skip
    assert role["metadata"]["namespace"] == "pai-operator-system"  # rewritten by overlays with the rest
    rules = {tuple(sorted(r["verbs"])): r for r in role["rules"]}
    # create cannot be narrowed by name; get and update can, to the one Lease the operator uses.
    assert set(rules) == {("create",), ("get", "update")}
    assert rules[("get", "update")]["resourceNames"] == ["pai-operator"]
    binding = _docs(DEPLOY / "base" / "leader-election-rolebinding.yaml")[0]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role["metadata"]["name"],
    }  # fmt: skip
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "pai-operator", "namespace": "pai-operator-system"}
    ]


def _deployment() -> dict[str, Any]:
    return _docs(DEPLOY / "base" / "deployment.yaml")[0]


def test_deployment_is_two_replicas_one_leader_rolling_update() -> None:
    spec = _deployment()["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["PAI_OPERATOR_LEADER_ELECT"]["value"] == "true"
    assert env["PAI_OPERATOR_LEADER_ELECT_LEASE_NAME"]["value"] == "pai-operator"
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    # A standby is Ready (it serves /healthz itself), so the PDB and rollouts count it.
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    (soft,) = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert soft["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert soft["podAffinityTerm"]["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in pod["affinity"]["podAntiAffinity"]


def test_pod_disruption_budget_keeps_one_operator_pod() -> None:
    pdb = _docs(DEPLOY / "base" / "poddisruptionbudget.yaml")[0]
    assert pdb["kind"] == "PodDisruptionBudget"
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == _deployment()["spec"]["selector"]["matchLabels"]
    base = yaml.safe_load((DEPLOY / "base" / "kustomization.yaml").read_text())
    assert {
        "poddisruptionbudget.yaml",
        "leader-election-role.yaml",
        "leader-election-rolebinding.yaml",
    } <= set(base["resources"])


def test_deployment_hardening() -> None:
    pod = _deployment()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 8080, "health": 8081}


def test_only_the_operator_pod_gets_an_api_token() -> None:
    sa = _docs(DEPLOY / "base" / "serviceaccount.yaml")[0]
    assert sa["automountServiceAccountToken"] is False
    assert _deployment()["spec"]["template"]["spec"]["automountServiceAccountToken"] is True


def test_credentials_come_only_from_secret_refs() -> None:
    (container,) = _deployment()["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    for name in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"):
        assert "value" not in env[name]
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "pai-operator-credentials"


def test_every_setting_is_an_env_var_the_operator_reads() -> None:
    (container,) = _deployment()["spec"]["template"]["spec"]["containers"]
    names = {e["name"] for e in container["env"] if e["name"].startswith("PAI_OPERATOR_")}
    assert names == {
        "PAI_OPERATOR_NAMESPACES",
        "PAI_OPERATOR_REGION",
        "PAI_OPERATOR_RESYNC_INTERVAL",
        "PAI_OPERATOR_CONCURRENCY",
        "PAI_OPERATOR_READ_RATE",
        "PAI_OPERATOR_WRITE_RATE",
        "PAI_OPERATOR_DEFAULT_DELETION_POLICY",
        "PAI_OPERATOR_METRICS_PORT",
        "PAI_OPERATOR_HEALTH_PORT",
        "PAI_OPERATOR_LOG_FORMAT",
        "PAI_OPERATOR_LEADER_ELECT",
        "PAI_OPERATOR_LEADER_ELECT_LEASE_NAME",
        "PAI_OPERATOR_REQUIRE_NAMESPACE_IDENTITY",
    }


def test_secret_template_is_not_applied_by_any_kustomization() -> None:
    # Re-applying manifests must never reset real keys to placeholders.
    for kustomization in DEPLOY.rglob("kustomization.yaml"):
        listed = yaml.safe_load(kustomization.read_text()).get("resources", [])
        assert not [r for r in listed if "secret" in r], kustomization
    secrets = [p.name for p, d in _all_manifests() if d.get("kind") == "Secret"]
    assert secrets == ["credentials-secret.example.yaml"]


def test_base_uses_the_generated_crd_directory() -> None:
    base = yaml.safe_load((DEPLOY / "base" / "kustomization.yaml").read_text())
    assert "../../crds" in base["resources"]


def test_kubectl_apply_f_crds_sees_only_kubernetes_objects() -> None:
    """`kubectl apply -f crds/` reads every .yaml/.yml/.json file there: a kustomization.yaml
    (kind Kustomization, no such API on a server) would make the first command a user types
    fail. kustomize also recognises a file named `Kustomization`, which kubectl skips."""
    crds = DEPLOY.parent / "crds"
    applied = [p for p in sorted(crds.iterdir()) if p.suffix in {".yaml", ".yml", ".json"}]
    assert [p.name for p in applied] == MODELVERSION_CRDS
    for path in applied:
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc["apiVersion"] == "apiextensions.k8s.io/v1"
            assert doc["kind"] == "CustomResourceDefinition"
    kustomization = yaml.safe_load((crds / "Kustomization").read_text())
    assert kustomization["resources"] == MODELVERSION_CRDS


AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"


def test_tenant_roles_aggregate_into_the_built_in_roles() -> None:
    roles = tenant_roles()
    assert set(roles) == {"pai-operator-modelversion-viewer", "pai-operator-modelversion-editor"}
    labels = {
        name: {k for k in r["metadata"]["labels"] if k.startswith(AGGREGATE)} for name, r in roles.items()
    }
    assert labels["pai-operator-modelversion-viewer"] == {AGGREGATE + "view"}
    assert labels["pai-operator-modelversion-editor"] == {AGGREGATE + "edit", AGGREGATE + "admin"}
    for role in roles.values():
        for rule in role["rules"]:
            assert rule["apiGroups"] == list(GROUPS)
            assert "*" not in rule["verbs"]
            # Status is the operator's: people read it, never write it.
            if rule["resources"] == ["modelversions/status"]:
                assert rule["verbs"] == ["get"]
    viewer_verbs = {v for r in roles["pai-operator-modelversion-viewer"]["rules"] for v in r["verbs"]}
    assert viewer_verbs == {"get", "list", "watch"}


def test_tenant_roles_are_installed_by_the_default_kustomization() -> None:
    top = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert "rbac/tenant" in top["resources"]


def _grants(roles: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    granted: dict[tuple[str, str], set[str]] = {}
    for role in roles:
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    granted.setdefault((group, resource), set()).update(rule["verbs"])
    return granted


@pytest.mark.parametrize("kind_dir", ["cluster-wide", "single-namespace", "tenant"])
def test_both_registries_get_the_same_grants(kind_dir: str) -> None:
    """The TrueFoundry ModelVersions are always granted exactly what PAI's are (operator and
    tenant roles): the CRD always ships, whether or not --truefoundry-host turns its controller on."""
    roles = [
        d
        for p, d in _all_manifests()
        if d.get("kind") in {"Role", "ClusterRole"} and p.parent.name == kind_dir
    ]
    granted = _grants(roles)
    for resource in ("modelversions", "modelversions/status"):
        assert granted[("pai.mlops.dev", resource)], resource
        assert granted[("truefoundry.mlops.dev", resource)] == granted[("pai.mlops.dev", resource)], resource
