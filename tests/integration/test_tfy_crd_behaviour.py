"""What a user sees of the TrueFoundry ModelVersion CRD (truefoundry.mlops.dev) through the API
server alone (no operator running): the generated CRD installs (its CEL rules compile), the
printer columns, the CEL transition and cross-field rules with the field named, the patterns.

The PAI CRD's behaviour is in test_crd_behaviour.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.support.kube import REPO_ROOT, Cluster, unique_name
from tests.support.operator import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.min_kubernetes]

CRD_FILE = REPO_ROOT / "crds" / "truefoundry.mlops.dev_modelversions.yaml"
CRD: dict[str, Any] = yaml.safe_load(CRD_FILE.read_text())
GROUP, VERSION, PLURAL = "truefoundry.mlops.dev", "v1alpha1", "modelversions"
SOURCE = {"type": "external", "uri": "s3://bucket/models/m/"}


@pytest.fixture
def tfy_crd(control_plane: Cluster, kube_api: client.ApiClient) -> str:
    """The TrueFoundry CRD, installed when missing (test_install's teardown may remove it)."""
    name = CRD["metadata"]["name"]
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
        return str(name)
    if existing is not None:  # these tests add no finalizers, so a deletion completes on its own
        wait_for(f"crd/{name} deleted", lambda: current() is None, timeout=60)
    control_plane.kubectl_run("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    control_plane.kubectl_run("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    return str(name)


Create = Callable[[str, dict[str, Any]], dict[str, Any]]


@pytest.fixture
def api(kube_api: client.ApiClient, tfy_crd: str) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_api)


@pytest.fixture
def create(api: client.CustomObjectsApi, namespace: str) -> Create:
    def create(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelVersion",
            "metadata": {"name": name},
            "spec": spec,
        }
        return api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)  # type: ignore[no-any-return]

    return create


def _spec(**extra: Any) -> dict[str, Any]:
    return {"mlRepo": "team-repo", "name": unique_name("model"), "source": dict(SOURCE), **extra}


def _rejection(caught: pytest.ExceptionInfo[client.ApiException]) -> list[dict[str, Any]]:
    assert caught.value.status == 422, caught.value.body
    body = json.loads(caught.value.body)
    return list(body["details"]["causes"])


def test_valid_object_keeps_nested_json_and_gets_the_defaults(create: Create) -> None:
    spec = _spec(
        versionAlias="v1.0-prod",
        metadata={"team": "search", "eval": {"auc": 0.91, "splits": ["a", "b"]}},
        framework={"type": "transformers", "libraryName": "transformers", "pipelineTag": "text-generation"},
        environment={"pythonVersion": "3.11", "pipPackages": ["transformers==4.44.0"]},
        step=3,
        runId="run-1",
    )
    created = create("valid", spec)
    assert created["spec"]["metadata"] == spec["metadata"]  # preserved, not pruned
    assert created["spec"]["framework"] == spec["framework"]
    assert created["spec"]["managementPolicy"] == "Manage"
    assert created["spec"]["adoptionPolicy"] == "Never"
    assert "deletionPolicy" not in created["spec"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("source", {"type": "external", "uri": "s3://bucket/models/other/"}),
        ("mlRepo", "other-repo"),
        ("name", "other-model"),
        ("step", 4),
        ("runId", "run-2"),
    ],
)
def test_immutable_fields_are_refused_with_the_field_named(
    api: client.CustomObjectsApi, create: Create, namespace: str, field: str, value: Any
) -> None:
    create("imm", _spec(step=3, runId="run-1"))
    with pytest.raises(client.ApiException) as caught:
        api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "imm", {"spec": {field: value}})
    causes = [c for c in _rejection(caught) if f"spec.{field} is immutable" in c["message"]]
    assert causes, caught.value.body
    assert causes[0]["reason"] == "FieldValueForbidden"
    assert causes[0]["field"] == f"spec.{field}"


def test_version_may_be_set_once_and_never_changed(
    api: client.CustomObjectsApi, create: Create, namespace: str
) -> None:
    create("ver", _spec())

    def patch(spec: dict[str, Any]) -> dict[str, Any]:
        return api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "ver", {"spec": spec})  # type: ignore[no-any-return]

    # Pinning the number TrueFoundry assigned is allowed (has(oldSelf.version) was false)...
    assert patch({"version": 2})["spec"]["version"] == 2
    # ...changing or removing it afterwards is not.
    for change in ({"version": 3}, {"version": None}):
        with pytest.raises(client.ApiException) as caught:
            patch(change)
        assert any(c["field"] == "spec.version" for c in _rejection(caught)), caught.value.body


@pytest.mark.parametrize(
    ("spec", "field", "complaint"),
    [
        (_spec(versionAlias="1.0.0"), "spec.versionAlias", "should match"),
        (_spec(versionAlias="v1.0-"), "spec.versionAlias", "should match"),
        (
            _spec(framework={"type": "transformers", "modelFilepath": "model.pkl"}),
            "spec.framework.modelFilepath",
            "framework.modelFilepath applies only to type sklearn or xgboost",
        ),
        (
            _spec(framework={"type": "sklearn", "serializationFormat": "json"}),
            "spec.framework.serializationFormat",
            "framework.serializationFormat json applies only to type xgboost",
        ),
        (_spec(source={"type": "external", "uri": "oss://bucket/m/"}), "spec.source.uri", "should match"),
        (_spec(mlRepo="-bad"), "spec.mlRepo", "should match"),
        (
            _spec(source={"type": "truefoundry", "uri": "s3://tfy/root/1/"}),
            "spec.source.type",
            "source.type truefoundry cannot be created by the operator",
        ),
        (_spec(step=3), "spec.step", "spec.step needs spec.runId"),
    ],
    ids=[
        "alias-no-v",
        "alias-trailing-dash",
        "framework-wrong-type",
        "json-not-xgboost",
        "uri",
        "ml-repo",
        "truefoundry-source-created",
        "step-without-run",
    ],
)
def test_bad_input_is_refused_on_create(
    create: Create, spec: dict[str, Any], field: str, complaint: str
) -> None:
    with pytest.raises(client.ApiException) as caught:
        create("bad", spec)
    causes = _rejection(caught)
    assert any(c.get("field") == field and complaint in c["message"] for c in causes), caught.value.body


def test_a_truefoundry_source_may_be_adopted_or_observed(create: Create) -> None:
    """The way out the refusal names: a version logged with truefoundry, named by its number."""
    source = {"type": "truefoundry", "uri": "s3://tfy/root/1/"}
    adopted = create("tfy-adopt", _spec(source=source, version=1, adoptionPolicy="IfExists"))
    assert adopted["spec"]["source"] == source
    observed = create("tfy-observe", _spec(source=source, version=2, managementPolicy="Observe"))
    assert observed["spec"]["version"] == 2


def test_printer_columns_and_names(
    control_plane: Cluster, api: client.CustomObjectsApi, create: Create, namespace: str, tmp_path: Path
) -> None:
    spec = _spec()
    create("cols", spec)
    status = {
        "version": 7,
        "atProvider": {"versionAlias": "v7"},
        "conditions": [
            {
                "type": t,
                "status": "True",
                "reason": "ReconcileSuccess",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
            for t in ("Ready", "Synced")
        ],
    }
    api.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, "cols", {"status": status})

    def table() -> list[str] | None:
        result = control_plane.kubectl_run("-n", namespace, "get", "tfmv", "cols", check=False)
        return result.stdout.splitlines() if result.returncode == 0 else None

    # Discovery publishes the short name a moment after Established.
    lines = wait_for("kubectl get tfmv", table, timeout=60)
    assert lines[0].split() == ["NAME", "ML", "REPO", "MODEL", "VERSION", "ALIAS", "READY", "SYNCED", "AGE"]
    assert lines[1].split()[:7] == ["cols", "team-repo", spec["name"], "7", "v7", "True", "True"]

    def category() -> str | None:
        # Retried: an earlier test may just have removed the PAI CRD (also in `mlops`), and kubectl's
        # discovery cache lags behind that by a moment.
        result = control_plane.kubectl_run("-n", namespace, "get", "mlops", "-o", "name", check=False)
        return result.stdout if result.returncode == 0 else None

    out = wait_for("kubectl get mlops", category, timeout=60)
    assert "modelversion.truefoundry.mlops.dev/cols" in out.split(), out


def test_samples_are_accepted(control_plane: Cluster, tfy_crd: str, namespace: str) -> None:
    samples = REPO_ROOT / "samples" / "truefoundry"
    out = control_plane.kubectl_run("-n", namespace, "apply", "--dry-run=server", "-f", str(samples)).stdout
    assert sorted(out.split()) == sorted(
        [
            "modelversion.truefoundry.mlops.dev/churn-classifier-1", "created", "(server", "dry", "run)",
            "modelversion.truefoundry.mlops.dev/churn-classifier-next", "created", "(server", "dry", "run)",
        ]
    ), out  # fmt: skip
