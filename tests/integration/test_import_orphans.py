"""`pai-operator import` and `orphans` end to end: the CLI as a process against the emulator
process, `kubectl` against the real API server, the operator as a process.

Import round trip: versions (and a model) created with the official Alibaba SDK, a second
client -> `import` (from the model, a Terraform v4 state, a Pulumi stack export) -> `kubectl
apply` -> the running operator adopts them: the emulator's journal shows no write but one
ownership-label call per version (and per model), and `kubectl diff` is clean. The Terraform
state and the Pulumi export are written in the documented formats with the providers' attribute
names (sources in tests/unit/commands/fixtures/README.md).

Orphans: a Retain deletion whose label removal failed and a finalizer stripped by hand leave
marked versions without an object; `orphans` finds those two only (a live object's version and an
unmarked version are not listed), and `--delete --yes` deletes exactly those. Neither `import` nor
`orphans` without `--delete` writes to PAI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from alibabacloud_aiworkspace20210204 import models as sdk_models
from alibabacloud_aiworkspace20210204.client import Client
from kubernetes import client

from tests.support.emulator import DEFAULT_CREDENTIAL, AdminClient, EmulatorProcess
from tests.support.kube import Cluster
from tests.support.operator import ModelVersions, OperatorProcess

pytestmark = pytest.mark.integration

OWNER_UID = "pai.mlops.dev/owner-uid"
OWNER_REF = "pai.mlops.dev/owner-ref"
VERSION_TYPE = "alicloud:pai/workspaceModelVersion:WorkspaceModelVersion"
READS = {"GetModelVersion", "ListModelVersions", "GetModel", "ListModels"}


@pytest.fixture
def sdk(official_sdk: Client) -> Client:
    return official_sdk


def cli(emulator: EmulatorProcess, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """`pai-operator` as a user runs it, with the default credential chain's variables."""
    hidden = ("ALIBABA_CLOUD_", "PAI_OPERATOR_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(hidden)}
    env.update(
        ALIBABA_CLOUD_ACCESS_KEY_ID=DEFAULT_CREDENTIAL.access_key_id,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=DEFAULT_CREDENTIAL.access_key_secret,
        ALIBABA_CLOUD_ECS_METADATA_DISABLED="true",
    )
    argv = [sys.executable, "-m", "pai_operator.cli", *args, "--endpoint", emulator.url]
    return subprocess.run(
        argv, input=input, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def writes(pai: AdminClient) -> list[tuple[str, str | None]]:
    """Every call of the journal that is not a read, as (operation, version)."""
    return sorted(
        (e["Operation"], e.get("VersionName")) for e in pai.journal() if e["Operation"] not in READS
    )


def create_versions(sdk: Client, model_id: str) -> list[str]:
    """Three versions through the official SDK: every managed field set on the first, a name PAI
    assigns on the second, a label-only third."""
    fields: list[dict[str, Any]] = [
        {
            "version_name": "1.0.0",
            "uri": "oss://bucket.oss-cn-hangzhou.aliyuncs.com/m/1/",
            "version_description": "first",
            "format_type": "SavedModel",
            "framework_type": "TensorFlow",
            "labels": [
                sdk_models.Label(key="team", value="search"),
                sdk_models.Label(key="stage", value="dev"),
            ],
            "metrics": {"Results": [{"Dataset": {"DatasetId": "d-x"}, "Metrics": {"cer": 0.175}}]},
            "training_spec": {"Image": "train:1"},
            "inference_spec": {"Processor": "tensorflow_cpu_2.3"},
            "extra_info": {"Note": "x"},
            "options": '{"Key": "Value", "n": 1.0}',
            "source_type": "TrainingService",
            "source_id": "region=cn-hangzhou,workspaceId=1,kind=TrainingJob,id=t-1",
            "approval_status": "Approved",
        },
        {"uri": "oss://bucket.oss-cn-hangzhou.aliyuncs.com/m/2/", "framework_type": "Pytorch"},
        {
            "version_name": "2.0.0_rc",
            "uri": "oss://bucket.oss-cn-hangzhou.aliyuncs.com/m/3/",
            "labels": [sdk_models.Label(key="stage", value="prod")],
        },
    ]
    names = []
    for body in fields:
        response = sdk.create_model_version(model_id, sdk_models.CreateModelVersionRequest(**body))
        names.append(response.body.version_name)
    return names


def apply(cluster: Cluster, namespace: str, manifests: str) -> None:
    cluster.kubectl_run("apply", "-n", namespace, "-f", "-", input=manifests)


def diff(cluster: Cluster, namespace: str, manifests: str) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl_run("diff", "-n", namespace, "-f", "-", input=manifests, check=False)


def wait_ready(objects: ModelVersions, names: list[str]) -> None:
    for name in names:
        objects.wait_condition(name, "Ready", "True", timeout=60)


def labels_of(item: dict[str, Any]) -> dict[str, str]:
    return {label["Key"]: label["Value"] for label in item.get("Labels") or []}


def test_import_of_a_model_s_versions_is_adopted_with_one_label_call_each_and_diff_clean(
    control_plane: Cluster,
    emulator_service: EmulatorProcess,
    start_operator: Callable[..., OperatorProcess],
    pai: AdminClient,
    sdk: Client,
    model_id: str,
    namespace: str,
    mvs: ModelVersions,
) -> None:
    versions = create_versions(sdk, model_id)
    before = {v["VersionName"]: v for v in pai.versions(model_id)}
    pai.clear_journal()

    done = cli(emulator_service, "import", "--model", model_id, "-n", namespace)
    assert done.returncode == 0, done.stderr
    assert writes(pai) == []  # import reads only
    documents = list(yaml.safe_load_all(done.stdout))
    assert sorted(d["spec"]["versionName"] for d in documents) == sorted(versions)
    assert all(d["spec"]["adoptionPolicy"] == "IfExists" for d in documents)
    # `plan` agrees before anything is applied: no change but the ownership labels (exit 0).
    planned = cli(emulator_service, "plan", "-f", "-", "--detailed-exitcode", input=done.stdout)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert planned.stdout.count("ownership labels only") == len(versions), planned.stdout
    assert writes(pai) == []

    apply(control_plane, namespace, done.stdout)
    pai.clear_journal()
    start_operator()
    names = [d["metadata"]["name"] for d in documents]
    wait_ready(mvs, names)

    # Adopted with one CreateModelVersionLabels per version and no other write.
    assert writes(pai) == sorted(("CreateModelVersionLabels", v) for v in versions)
    after = {v["VersionName"]: v for v in pai.versions(model_id)}
    for name, version in after.items():
        marks = {k: v for k, v in labels_of(version).items() if k in (OWNER_UID, OWNER_REF)}
        assert set(marks) == {OWNER_UID, OWNER_REF}
        unmarked = {k: v for k, v in version.items() if k not in ("Labels", "GmtModifiedTime")}
        assert unmarked == {k: v for k, v in before[name].items() if k not in ("Labels", "GmtModifiedTime")}
        assert {k: v for k, v in labels_of(version).items() if k not in marks} == labels_of(before[name])
    shown = diff(control_plane, namespace, done.stdout)
    assert shown.returncode == 0, shown.stdout + shown.stderr


def terraform_state(model_id: str, versions: list[str]) -> dict[str, Any]:
    """A v4 state as `terraform apply` of alicloud_pai_workspace_model(_version) leaves it
    (attributes as the provider's Read sets them; the fields import ignores are stale on purpose:
    the spec comes from PAI, not from the state)."""
    version_instances = [
        {
            "index_key": name,
            "schema_version": 0,
            "attributes": {
                "id": f"{model_id}:{name}",
                "model_id": model_id,
                "version_name": name,
                "uri": "oss://stale/",
                "labels": [],
                "timeouts": None,
            },
            "sensitive_attributes": [],
            "dependencies": ["alicloud_pai_workspace_model.main"],
        }
        for name in versions
    ]
    return {
        "version": 4,
        "terraform_version": "1.9.5",
        "serial": 3,
        "lineage": "0b8c2d1e-5f6a-4b3c-9d2e-1f0a9b8c7d6e",
        "outputs": {},
        "resources": [
            {
                "mode": "managed",
                "type": "alicloud_pai_workspace_model",
                "name": "main",
                "provider": 'provider["registry.terraform.io/aliyun/alicloud"]',
                "instances": [
                    {
                        "schema_version": 0,
                        "attributes": {
                            "id": model_id,
                            "model_name": "stale-name",
                            "workspace_id": "ws-import",
                        },
                        "sensitive_attributes": [],
                    }
                ],
            },
            {
                "mode": "managed",
                "type": "alicloud_pai_workspace_model_version",
                "name": "versions",
                "each": "map",
                "provider": 'provider["registry.terraform.io/aliyun/alicloud"]',
                "instances": version_instances,
            },
        ],
        "check_results": None,
    }


def pulumi_export(model_id: str, versions: list[str]) -> dict[str, Any]:
    """`pulumi stack export` of a program with a WorkspaceModel and its WorkspaceModelVersions."""
    stack = "urn:pulumi:prod::models::pulumi:pulumi:Stack::models-prod"
    resources: list[dict[str, Any]] = [
        {"urn": stack, "custom": False, "type": "pulumi:pulumi:Stack", "outputs": {}},
        {
            "urn": "urn:pulumi:prod::models::alicloud:pai/workspaceModel:WorkspaceModel::main",
            "custom": True,
            "id": model_id,
            "type": "alicloud:pai/workspaceModel:WorkspaceModel",
            "inputs": {"modelName": "stale-name"},
            "outputs": {"id": model_id, "modelName": "stale-name"},
            "parent": stack,
        },
    ]
    for name in versions:
        resources.append(
            {
                "urn": f"urn:pulumi:prod::models::{VERSION_TYPE}::v-{name}",
                "custom": True,
                "id": f"{model_id}:{name}",
                "type": VERSION_TYPE,
                "inputs": {"modelId": model_id, "uri": "oss://stale/", "versionName": name},
                "outputs": {"id": f"{model_id}:{name}", "modelId": model_id, "versionName": name},
                "parent": stack,
            }
        )
    return {"version": 3, "deployment": {"manifest": {"version": "v3.140.0"}, "resources": resources}}


@pytest.mark.parametrize(
    ("flag", "document"),
    [("--from-terraform-state", terraform_state), ("--from-pulumi-export", pulumi_export)],
    ids=["terraform", "pulumi"],
)
def test_import_from_another_tool_s_state_is_adopted_with_ownership_labels_only(
    flag: str,
    document: Callable[[str, list[str]], dict[str, Any]],
    control_plane: Cluster,
    emulator_service: EmulatorProcess,
    start_operator: Callable[..., OperatorProcess],
    pai: AdminClient,
    sdk: Client,
    namespace: str,
    kube_api: client.ApiClient,
    model_crd: str,
    mvs: ModelVersions,
    tmp_path: Path,
) -> None:
    created = sdk.create_model(
        sdk_models.CreateModelRequest(
            model_name="imported", workspace_id="ws-import", domain="nlp", task="text-classification",
            labels=[sdk_models.Label(key="team", value="search")],
        )
    )  # fmt: skip
    model_id = created.body.model_id
    versions = create_versions(sdk, model_id)
    state = tmp_path / "state.json"
    state.write_text(json.dumps(document(model_id, versions)))
    pai.clear_journal()

    done = cli(emulator_service, "import", flag, str(state), "-n", namespace)
    assert done.returncode == 0, done.stderr
    assert writes(pai) == []
    documents = list(yaml.safe_load_all(done.stdout))
    kinds = sorted(d["kind"] for d in documents)
    assert kinds == ["Model", *["ModelVersion"] * len(versions)]
    model = next(d for d in documents if d["kind"] == "Model")
    assert model["spec"]["modelName"] == "imported"  # from PAI, not the stale state
    assert model["spec"]["modelId"] == model_id

    apply(control_plane, namespace, done.stdout)
    pai.clear_journal()
    start_operator()
    models = ModelVersions(kube_api, namespace, kind="Model", plural="models")
    wait_ready(models, [model["metadata"]["name"]])
    wait_ready(mvs, [d["metadata"]["name"] for d in documents if d["kind"] == "ModelVersion"])

    assert writes(pai) == sorted(
        [("CreateModelLabels", None), *(("CreateModelVersionLabels", v) for v in versions)]
    )
    shown = diff(control_plane, namespace, done.stdout)
    assert shown.returncode == 0, shown.stdout + shown.stderr


def test_orphans_finds_retained_and_finalizer_stripped_versions_and_deletes_only_those(
    control_plane: Cluster,
    emulator_service: EmulatorProcess,
    start_operator: Callable[..., OperatorProcess],
    pai: AdminClient,
    sdk: Client,
    model_id: str,
    mvs: ModelVersions,
) -> None:
    def spec(name: str, **more: Any) -> dict[str, Any]:
        return {"modelId": model_id, "uri": f"oss://bucket/{name}/", "versionName": name, **more}

    operator = start_operator()
    mvs.create("retained", spec("1.0.0", deletionPolicy="Retain"))
    mvs.create("stripped", spec("2.0.0"))
    mvs.create("live", spec("3.0.0"))
    wait_ready(mvs, ["retained", "stripped", "live"])
    sdk.create_model_version(
        model_id, sdk_models.CreateModelVersionRequest(uri="oss://b/x/", version_name="9.0.0")
    )

    # Retain: the release of the ownership labels fails, and is best effort: the object goes.
    pai.add_fault("DeleteModelVersionLabels", "error", http_status=500, code="InternalError")
    mvs.delete("retained")
    mvs.wait_gone("retained")
    pai.clear_faults()
    # A finalizer removed by hand while the operator is away.
    operator.stop()
    mvs.delete("stripped")
    mvs.api.patch_namespaced_custom_object(
        "pai.mlops.dev",
        "v1alpha1",
        mvs.namespace,
        "modelversions",
        "stripped",
        {"metadata": {"finalizers": None}},
    )
    mvs.wait_gone("stripped")
    marked = {v["VersionName"] for v in pai.versions(model_id) if OWNER_UID in labels_of(v)}
    assert marked == {"1.0.0", "2.0.0", "3.0.0"}
    pai.clear_journal()

    kubeconfig = str(control_plane.kubeconfig)
    found = cli(emulator_service, "orphans", "--kubeconfig", kubeconfig, "--model", model_id, "-o", "json")
    assert found.returncode == 0, found.stderr
    report = json.loads(found.stdout)
    assert sorted((o["kind"], o["versionName"]) for o in report) == [
        ("ModelVersion", "1.0.0"),
        ("ModelVersion", "2.0.0"),
    ]
    assert {o["ownerRef"] for o in report} == {f"{mvs.namespace}/retained", f"{mvs.namespace}/stripped"}
    adopt = cli(
        emulator_service, "orphans", "--kubeconfig", kubeconfig, "--model", model_id, "--adopt-manifests"
    )
    assert adopt.returncode == 0, adopt.stderr
    taken_back = list(yaml.safe_load_all(adopt.stdout))
    assert sorted((d["metadata"]["namespace"], d["metadata"]["name"]) for d in taken_back) == [
        (mvs.namespace, "retained"),
        (mvs.namespace, "stripped"),
    ]
    assert writes(pai) == []  # listing orphans and printing manifests write nothing

    refused = cli(emulator_service, "orphans", "--kubeconfig", kubeconfig, "--model", model_id, "--delete")
    assert refused.returncode == 1  # no terminal to ask, no --yes
    assert writes(pai) == []
    deleted = cli(
        emulator_service, "orphans", "--kubeconfig", kubeconfig, "--model", model_id, "--delete", "--yes"
    )
    assert deleted.returncode == 0, deleted.stderr
    assert writes(pai) == [("DeleteModelVersion", "1.0.0"), ("DeleteModelVersion", "2.0.0")]
    assert {v["VersionName"] for v in pai.versions(model_id)} == {"3.0.0", "9.0.0"}
    assert mvs.get("live") is not None
