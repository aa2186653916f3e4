"""What a user sees of the ModelVersion CRD through the API server alone (no operator running):
`kubectl explain`, the printer columns, defaulting, the CEL rejections and the status subresource.

These run at both ends of the supported range (make test-min), because every one of them depends
on API-server features that changed over time: OpenAPI v3 for explain, CEL `reason`/`fieldPath`
for the rejection causes, the status subresource, server-side defaulting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.support.kube import REPO_ROOT, Cluster, unique_name
from tests.support.operator import GROUP, PLURAL, VERSION, ModelVersions, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.min_kubernetes]

CRD: dict[str, Any] = yaml.safe_load((REPO_ROOT / "crds" / "pai.mlops.dev_modelversions.yaml").read_text())
SCHEMA: dict[str, Any] = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
URI = "oss://bucket.oss-cn-hangzhou.aliyuncs.com/m/"


@pytest.fixture
def model_id() -> str:
    # Only the API server is under test here: a model name, no PAI emulator behind it.
    return unique_name("model")


@pytest.fixture
def discoverable(control_plane: Cluster, crd: str) -> str:
    """The CRD's kubectl view. Established does not mean published: discovery and the OpenAPI
    document follow a moment later, and kubectl knows no `pmv` until then."""

    def explain() -> str | None:
        result = control_plane.kubectl_run("explain", "pmv.spec", check=False)
        return result.stdout if result.returncode == 0 else None

    return wait_for("kubectl explain pmv.spec", explain, timeout=60)


def test_kubectl_explain_shows_every_field_with_its_description(
    control_plane: Cluster, discoverable: str
) -> None:
    spec = SCHEMA["properties"]["spec"]["properties"]
    out = discoverable
    for name in spec:
        assert f"  {name}\t" in out or f"  {name} " in out, f"kubectl explain pmv.spec lacks {name}:\n{out}"
    uri = control_plane.kubectl_run("explain", "pmv.spec.uri").stdout
    # Descriptions come through word for word (explain re-wraps lines, so compare words).
    assert spec["uri"]["description"].split() == _description_words(uri)
    conditions = control_plane.kubectl_run("explain", "pmv.status.conditions.status").stdout
    enum = conditions.split("ENUM:", 1)[1].split("DESCRIPTION:", 1)[0].split()
    assert enum == ["True", "False", "Unknown"], conditions


def _description_words(explain: str) -> list[str]:
    lines = explain.splitlines()
    start = lines.index("DESCRIPTION:") + 1
    body: list[str] = []
    for line in lines[start:]:
        if line and not line.startswith(" "):
            break  # the next section (FIELDS:, ENUM:, ...)
        body.extend(line.split())
    return body


def test_server_applies_the_schema_defaults(mvs: ModelVersions, model_id: str) -> None:
    created = mvs.create("defaults", {"modelId": model_id, "uri": URI})
    assert created["spec"]["managementPolicy"] == "Manage"
    assert created["spec"]["adoptionPolicy"] == "Never"
    assert "deletionPolicy" not in created["spec"]  # no default: the namespace annotation may decide


def _patch_status(
    kube_api: client.ApiClient, namespace: str, name: str, status: dict[str, Any]
) -> dict[str, Any]:
    api = client.CustomObjectsApi(kube_api)
    return api.patch_namespaced_custom_object_status(  # type: ignore[no-any-return]
        GROUP, VERSION, namespace, PLURAL, name, {"status": status}
    )


def _condition(ctype: str, status: str, reason: str, generation: int) -> dict[str, Any]:
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
        "observedGeneration": generation,
    }


def test_status_subresource_and_printer_columns(
    control_plane: Cluster,
    kube_api: client.ApiClient,
    mvs: ModelVersions,
    namespace: str,
    model_id: str,
    discoverable: str,
) -> None:
    created = mvs.create("cols", {"modelId": model_id, "uri": URI, "approvalStatus": "Pending"})
    generation = created["metadata"]["generation"]
    status = {
        "observedGeneration": generation,
        "versionName": "0.1.0",
        "atProvider": {"approvalStatus": "Pending"},
        "conditions": [
            _condition("Ready", "True", "Available", generation),
            _condition("Synced", "False", "ReconcileError", generation),
        ],
    }
    written = _patch_status(kube_api, namespace, "cols", status)
    # A status write is not a spec change: generation stays, so observedGeneration stays honest.
    assert written["metadata"]["generation"] == generation
    assert written["status"]["conditions"][0]["message"] == ""  # the schema default, applied in status too

    # The main resource ignores status (and the status subresource ignores spec).
    mvs.patch("cols", {"status": {"versionName": "9.9.9"}})
    _patch_status(kube_api, namespace, "cols", {"versionName": "0.1.0"})
    api = client.CustomObjectsApi(kube_api)
    api.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "cols", {"spec": {"approvalStatus": "Approved"}}
    )
    current = mvs.get("cols")
    assert current is not None
    assert current["status"]["versionName"] == "0.1.0"
    assert current["spec"]["approvalStatus"] == "Pending"
    assert current["metadata"]["generation"] == generation

    table = control_plane.kubectl_run("-n", namespace, "get", "pmv", "cols").stdout.splitlines()
    assert table[0].split() == ["NAME", "MODEL", "MODELREF", "VERSION", "APPROVAL", "READY", "SYNCED", "AGE"]
    # An unset modelRef prints as a blank cell.
    assert table[1].split()[:6] == ["cols", model_id, "0.1.0", "Pending", "True", "False"]
    # The same columns for every short name and category the CRD declares.
    for resource in ("modelversions", "modelversion.pai.mlops.dev", "pai", "mlops"):
        out = control_plane.kubectl_run("-n", namespace, "get", resource, "-o", "name").stdout
        assert "modelversion.pai.mlops.dev/cols" in out.split(), (resource, out)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("uri", "oss://other/"),
        ("modelId", "model-x"),
        ("versionName", "2.0.0"),
        ("regionId", "cn-shanghai"),
        ("formatType", "ONNX"),
        ("frameworkType", "TensorFlow"),
    ],
)
def test_immutability_rejection_names_the_field_and_reason(
    kube_api: client.ApiClient, mvs: ModelVersions, model_id: str, field: str, value: str
) -> None:
    spec = {
        "modelId": model_id,
        "uri": URI,
        "versionName": "1.0.0",
        "regionId": "cn-hangzhou",
        "formatType": "SavedModel",
        "frameworkType": "PyTorch",
    }
    mvs.create("imm", spec)
    with pytest.raises(client.ApiException) as caught:
        mvs.patch("imm", {"spec": {field: value}})
    assert caught.value.status == 422
    body = json.loads(caught.value.body)
    # reason and fieldPath of the CEL rule surface as the cause: clients (and Argo CD) see
    # "spec.<field>: Forbidden", not a rule on the whole spec.
    causes = [c for c in body["details"]["causes"] if f"spec.{field} is immutable" in c["message"]]
    assert causes, body
    assert causes[0]["reason"] == "FieldValueForbidden"
    assert causes[0]["field"] == f"spec.{field}"
    current = mvs.get("imm")
    assert current is not None
    assert current["spec"][field] == spec[field]


def test_setting_a_field_that_was_unset_is_allowed(mvs: ModelVersions, model_id: str) -> None:
    # The transition rules guard changes, not first assignment (has(oldSelf.x) is false).
    mvs.create("late", {"modelId": model_id, "uri": URI})
    patched = mvs.patch("late", {"spec": {"versionName": "1.0.0", "formatType": "ONNX"}})
    assert patched["spec"]["versionName"] == "1.0.0"


@pytest.mark.parametrize(
    ("labels", "complaint"),
    [
        ({"pai.mlops.dev/owner-uid": "x"}, "reserved for the operator"),
        ({"": "x"}, "label keys must not be empty"),
        ({f"k{i}": "v" for i in range(19)}, "must have at most 18 items"),
        # PAI's own limits (Go SDK label_model.go): 128 bytes, no '=' or ','.
        ({"k" * 129: "v"}, "label keys must be at most 128 bytes"),
        ({"é" * 65: "v"}, "label keys must be at most 128 bytes"),  # 65 characters, 130 bytes
        ({"a=b": "v"}, "label keys must not contain '=' or ','"),
        ({"a,b": "v"}, "label keys must not contain '=' or ','"),
        ({"stage": "é" * 65}, "label values must be at most 128 bytes"),
        ({"stage": "v" * 129}, "spec.labels.stage: Too long"),
        ({"stage": "x=y"}, "label values must not contain '=' or ','"),
        ({"stage": "x,y"}, "label values must not contain '=' or ','"),
    ],
    ids=[
        "reserved",
        "empty-key",
        "too-many",
        "long-key",
        "long-key-bytes",
        "key-equals",
        "key-comma",
        "long-value-bytes",
        "long-value",
        "value-equals",
        "value-comma",
    ],
)
def test_label_rules_reject_on_create(
    control_plane: Cluster,
    namespace: str,
    model_id: str,
    crd: str,
    tmp_path: Path,
    labels: dict[str, str],
    complaint: str,
) -> None:
    manifest = tmp_path / "mv.yaml"
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": {"name": "labels", "namespace": namespace},
        "spec": {"modelId": model_id, "uri": URI, "labels": labels},
    }
    manifest.write_text(yaml.safe_dump(body))
    result = control_plane.kubectl_run("apply", "-f", str(manifest), check=False)
    assert result.returncode != 0
    assert complaint in result.stderr
    assert "spec.labels" in result.stderr  # the field is named


def test_labels_at_pais_limits_are_admitted(mvs: ModelVersions, model_id: str) -> None:
    labels = {"k" * 128: "v" * 128, "é" * 64: "é" * 64, "empty": ""}
    created = mvs.create("at-limits", {"modelId": model_id, "uri": URI, "labels": labels})
    assert created["spec"]["labels"] == labels
