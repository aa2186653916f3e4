"""Static checks of charts/pai-operator that need no helm binary (rendering is tested against the
real API server in tests/integration/test_install.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

import pai_operator

CHART = Path(__file__).resolve().parents[2] / "charts" / "pai-operator"
SCHEMA: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
VALUES: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
TEMPLATES = {p.name: p.read_text() for p in (CHART / "templates").iterdir()}


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "pai-operator"
    assert chart["appVersion"] == pai_operator.__version__


def _walk(values: Any, schema: dict[str, Any], path: str, problems: list[str]) -> None:
    if not isinstance(values, dict) or "properties" not in schema:
        return
    for key, value in values.items():
        if key not in schema["properties"]:
            problems.append(f"{path}.{key}")
        else:
            _walk(value, schema["properties"][key], f"{path}.{key}", problems)


def test_every_default_value_is_declared_in_the_schema() -> None:
    problems: list[str] = []
    _walk(VALUES, SCHEMA, "", problems)
    assert problems == []


def _objects(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, schema)] if schema.get("type") == "object" and "properties" in schema else []
    for key, sub in schema.get("properties", {}).items():
        found += _objects(sub, f"{path}.{key}")
    return found


def test_schema_is_strict_for_chart_owned_objects() -> None:
    # Every object the chart itself interprets rejects unknown keys, so a typo fails instead of being
    # ignored. The security contexts pass through to Kubernetes (which validates them); the schema
    # only pins their safety-relevant fields.
    loose = [p for p, s in _objects(SCHEMA) if s.get("additionalProperties") is not False]
    assert loose == [".podSecurityContext", ".securityContext", ".securityContext.capabilities"]


def test_schema_enums() -> None:
    props = SCHEMA["properties"]
    assert props["logFormat"]["enum"] == ["plain", "json"]
    assert props["defaultDeletionPolicy"]["enum"] == ["Delete", "Retain"]
    assert props["credentials"]["properties"]["mode"]["enum"] == ["accessKey", "rrsa", "none"]
    assert props["podAntiAffinity"]["enum"] == ["soft", "hard", "none"]


def test_high_availability_defaults() -> None:
    # Two replicas, one leader (controller-runtime's timings), a PDB and soft anti-affinity.
    assert VALUES["replicaCount"] == 2
    assert VALUES["leaderElection"] == {
        "enabled": True, "leaseName": "", "leaseDuration": 15, "renewDeadline": 10, "retryPeriod": 2,
    }  # fmt: skip
    assert VALUES["podDisruptionBudget"] == {"enabled": True, "minAvailable": 1}
    assert VALUES["podAntiAffinity"] == "soft"
    deployment = TEMPLATES["deployment.yaml"]
    assert "type: RollingUpdate" in deployment
    assert "fieldPath: metadata.name" in deployment  # POD_NAME: the replica's identity
    assert "readinessProbe:" in deployment
    # Without leader election more than one replica is refused, not silently doubled.
    assert "replicaCount > 1 needs leaderElection.enabled" in deployment
    # Shards (releases) with overlapping watchNamespaces are refused at install (tested for real
    # in tests/integration/test_install.py).
    assert '{{- include "pai-operator.refuseOverlappingShards" . }}' in deployment
    assert "pai.mlops.dev/watch-namespaces:" in deployment
    # With one replica a PDB of minAvailable 1 would block every node drain.
    assert "gt (int .Values.replicaCount) 1" in TEMPLATES["poddisruptionbudget.yaml"]


def test_leader_election_rbac_is_a_role_in_the_release_namespace() -> None:
    rbac = TEMPLATES["leader-election-rbac.yaml"]
    assert set(re.findall(r"^kind:\s*(\S+)", rbac, flags=re.MULTILINE)) == {"Role", "RoleBinding"}
    assert rbac.count("namespace: {{ .Release.Namespace }}") == 3  # Role, RoleBinding, subject
    assert re.findall(r"verbs: \[(.*)\]", rbac) == ['"create"', '"get", "update"']
    assert 'resourceNames: [{{ include "pai-operator.leaseName" . | quote }}]' in rbac


def test_values_hold_no_credential_material() -> None:
    text = (CHART / "values.yaml").read_text()
    creds = VALUES["credentials"]
    assert set(creds["existingSecret"]) == {"name", "accessKeyIdKey", "accessKeySecretKey"}
    # Alibaba Cloud AccessKey IDs start with LTAI; STS ones with STS.
    assert not re.search(r"\bLTAI[0-9A-Za-z]{8,}|\bSTS\.[0-9A-Za-z]{8,}", text)


def test_templates_never_create_configmaps_or_secrets() -> None:
    # The one ConfigMap is the Grafana dashboard's (off by default): data for Grafana's sidecar,
    # never the operator's configuration, which stays in environment variables.
    for name, text in TEMPLATES.items():
        kinds = set(re.findall(r"^kind:\s*(\S+)", text, flags=re.MULTILINE))
        allowed = {"ConfigMap"} if name == "dashboard.yaml" else set()
        assert not kinds & ({"Secret", "ConfigMap"} - allowed), name
    dashboard = TEMPLATES["dashboard.yaml"]
    assert dashboard.startswith("{{- if .Values.metrics.dashboard.enabled }}")
    data = dashboard.split("\ndata:\n")[1]
    assert re.findall(r"^  (\S+):", data, flags=re.MULTILINE) == ["pai-operator.json"]


def test_crd_is_not_templated() -> None:
    # The CRD comes from crds/ (generated); a templated CRD would make `helm uninstall` delete every
    # ModelVersion.
    assert not any("CustomResourceDefinition" in text for text in TEMPLATES.values())


def test_rbac_template_has_no_wildcards_and_no_secrets() -> None:
    rbac = TEMPLATES["rbac.yaml"] + TEMPLATES["leader-election-rbac.yaml"] + TEMPLATES["_helpers.tpl"]
    assert '"*"' not in rbac
    assert "'*'" not in rbac
    assert "secrets" not in rbac


def test_notes_explain_next_steps() -> None:
    notes = TEMPLATES["NOTES.txt"]
    assert "create secret generic" in notes
    assert "kind: ModelVersion" in notes


def _untemplated(name: str) -> list[dict[str, Any]]:
    """A template's YAML with the `{{ ... }}` expressions removed (enough for static structure)."""
    text = re.sub(r"\{\{-?.*?-?\}\}", "", TEMPLATES[name])
    return [d for d in yaml.safe_load_all(text) if d]


def test_tenant_roles_match_deploy_and_can_be_turned_off() -> None:
    assert VALUES["rbac"]["aggregateToDefaultRoles"] is True
    assert SCHEMA["properties"]["rbac"]["properties"]["aggregateToDefaultRoles"] == {"type": "boolean"}
    assert TEMPLATES["tenant-rbac.yaml"].startswith(
        "{{- if and .Values.rbac.create .Values.rbac.aggregateToDefaultRoles }}"
    )
    deploy = CHART.parents[1] / "deploy" / "rbac" / "tenant" / "clusterroles.yaml"
    expected = {d["metadata"]["name"]: d for d in yaml.safe_load_all(deploy.read_text()) if d}
    chart = {d["metadata"]["name"]: d for d in _untemplated("tenant-rbac.yaml")}
    # The chart prefixes the names with the release's full name ("pai-operator" by default).
    assert {"pai-operator" + name for name in chart} == set(expected)
    for name, role in chart.items():
        want = expected["pai-operator" + name]
        assert role["rules"] == want["rules"]
        aggregate = {k: v for k, v in role["metadata"]["labels"].items() if k.startswith("rbac.")}
        assert aggregate == {k: v for k, v in want["metadata"]["labels"].items() if k.startswith("rbac.")}


def test_operator_rules_grant_both_registries_alike_and_match_deploy() -> None:
    # The chart's object rules (one helper for the ClusterRole and the per-namespace Roles) are
    # deploy/'s namespace Role rules: PAI's and TrueFoundry's ModelVersions, always both.
    helpers = TEMPLATES["_helpers.tpl"]
    body = helpers.split('define "pai-operator.objectRules" -}}', 1)[1].split("{{- end }}", 1)[0]
    rules = yaml.safe_load(body)
    deploy = CHART.parents[1] / "deploy" / "overlays" / "single-namespace" / "role.yaml"
    assert rules == yaml.safe_load(deploy.read_text())["rules"]
    groups = [rule["apiGroups"] for rule in rules if rule["resources"][0].startswith("modelversions")]
    assert groups
    assert all(g == ["pai.mlops.dev", "truefoundry.mlops.dev"] for g in groups)


def test_truefoundry_values() -> None:
    tfy = VALUES["truefoundry"]
    assert tfy == {"host": "", "apiPrefix": "/api/svc/v1", "apiKeySecret": "pai-operator-truefoundry"}
    # The key reaches the pod only through the kubelet (secretKeyRef), only when the controller is on.
    deployment = TEMPLATES["deployment.yaml"]
    block = deployment.split("{{- if .Values.truefoundry.host }}", 1)[1].split("{{- end }}", 1)[0]
    assert "- name: TFY_API_KEY" in block
    assert "name: {{ .Values.truefoundry.apiKeySecret }}" in block
    assert "key: TFY_API_KEY" in block
    schema = SCHEMA["properties"]["truefoundry"]
    assert schema["then"] == {"properties": {"apiKeySecret": {"minLength": 1}}}
