"""`pai-operator plan` against the PAI emulator process over real HTTP (and the real API server for
`--kubeconfig`): every outcome, the exit codes, and not one write call in the emulator's journal.

Remote state is arranged with the official Alibaba Cloud SDK, as a person or Terraform would have
made it; the CLI runs as a process, as a CI job runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from alibabacloud_aiworkspace20210204 import models as sdk_models
from alibabacloud_aiworkspace20210204.client import Client
from truefoundry_sdk import ExternalBlobStorageSource, ModelManifest, TrueFoundry

from pai_operator.pai.labels import owner_ref_label
from pai_operator.pai.spec import OWNER_LABEL_KEY, OWNER_REF_LABEL_KEY
from tests.support.emulator import DEFAULT_CREDENTIAL, AdminClient, EmulatorProcess
from tests.support.kube import Cluster
from tests.support.operator import ModelVersions, OperatorProcess
from tests.support.tfy_emulator import TfyEmulatorProcess

pytestmark = pytest.mark.integration

URI = "oss://bucket.oss-cn-hangzhou.aliyuncs.com/models/fraud/"
WRITES = ("Create", "Update", "Delete")
TFY_KEY = "tfy-plan-test-key"
TFY_REPO = "repo-plan"


@pytest.fixture
def sdk(official_sdk: Client) -> Client:
    return official_sdk


def cli_env() -> dict[str, str]:
    """The CLI's environment: the emulator's access key through the standard chain, no cluster."""
    env = {
        **os.environ,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": DEFAULT_CREDENTIAL.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": DEFAULT_CREDENTIAL.access_key_secret,
    }
    env.pop("KUBECONFIG", None)
    return env


def pai_operator(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a process, as a CI job runs it (`env` adds to `cli_env()`)."""
    return subprocess.run(
        [sys.executable, "-m", "pai_operator.cli", *args],
        input=stdin,
        env={**cli_env(), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def plan(
    emulator_service: EmulatorProcess, pai: AdminClient
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs `pai-operator plan` on manifests (given as dicts) with the emulator's credentials, and
    checks that the calls it made (the journal's new entries) are reads only."""

    def run(*manifests: dict[str, Any], args: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        before = len(pai.journal())
        result = pai_operator(
            "plan", "-f", "-", "--endpoint", emulator_service.url, *args, stdin=yaml.safe_dump_all(manifests)
        )
        calls = [e["Operation"] for e in pai.journal()[before:]]
        assert calls, "plan read nothing"
        assert [c for c in calls if c.startswith(WRITES)] == []
        return result

    return run


def version(name: str, namespace: str = "team", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "pai.mlops.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"uri": URI, **spec},
    }


def as_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.stdout.startswith("{"), result.stdout + result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["name"]: o for o in report["objects"]}


def create_remote(
    sdk: Client, model_id: str, version_name: str, *, owner: tuple[str, str] | None = None, **fields: Any
) -> None:
    labels = [sdk_models.Label(key="team", value="risk")]
    if owner is not None:
        uid, ref = owner
        labels += [
            sdk_models.Label(key=OWNER_LABEL_KEY, value=uid),
            sdk_models.Label(key=OWNER_REF_LABEL_KEY, value=owner_ref_label(ref)),
        ]
    request = sdk_models.CreateModelVersionRequest(
        version_name=version_name, uri=fields.pop("uri", URI), labels=labels, **fields
    )
    sdk.create_model_version(model_id, request)


def test_creates_with_fixed_and_assigned_names(plan: Callable[..., Any], sdk: Client, model_id: str) -> None:
    create_remote(sdk, model_id, "1.3.0", owner=("uid-other", "team/other"))
    result = plan(
        version("fixed", modelId=model_id, versionName="1.0.0"),
        version("assigned", modelId=model_id),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}},
        args=("-o", "json", "--detailed-exitcode"),
    )
    assert result.returncode == 2, result.stderr
    report = as_json(result)
    objects = by_name(report)
    assert objects["fixed"]["action"] == "create"
    assert objects["fixed"]["version"] == f"{model_id}:1.0.0"
    assert objects["assigned"]["action"] == "create"
    assert "assigned by PAI" in objects["assigned"]["message"]
    # The name PAI gives it: the highest major.minor with the minor incremented.
    assert (objects["assigned"]["version"], objects["assigned"]["versionPredicted"]) == (
        f"{model_id}:1.4.0",
        True,
    )
    assert objects["fixed"]["versionPredicted"] is False
    assert report["ignored"] == ["<stdin>#3: ConfigMap v1 is not ours, ignored"]
    assert report["changes"] == 2


def test_converged_exits_0_and_a_field_change_exits_2(
    plan: Callable[..., Any], sdk: Client, model_id: str
) -> None:
    create_remote(
        sdk,
        model_id,
        "1.0.0",
        owner=("uid-of-the-object", "team/fraud"),
        version_description="first",
        inference_spec={"processor": "pmml", "resources": {"cpu": 1}},
    )
    spec = {
        "modelId": model_id,
        "versionName": "1.0.0",
        "versionDescription": "first",
        "labels": {"team": "risk"},
        "inferenceSpec": {"resources": {"cpu": 1}, "processor": "pmml"},  # key order never counts
    }
    converged = plan(version("fraud", **spec), args=("--detailed-exitcode",))
    assert converged.returncode == 0, converged.stdout + converged.stderr
    assert "fraud (PAI " in converged.stdout
    assert ": no-change" in converged.stdout

    changed = {
        **spec,
        "versionDescription": "second",
        "labels": {"team": "fraud", "tier": "gold"},
        "inferenceSpec": {"processor": "pmml", "resources": {"cpu": 2}},
    }
    result = plan(version("fraud", **changed), args=("--detailed-exitcode",))
    assert result.returncode == 2, result.stdout + result.stderr
    text = result.stdout
    assert "\x1b[" not in text  # piped: no escape codes
    assert f"~ ModelVersion team/fraud (PAI {model_id}:1.0.0): update" in text
    assert 'versionDescription: "first" → "second"' in text
    assert '  ~ team: "risk" → "fraud"' in text
    assert '  + tier: "gold"' in text
    assert '-    "cpu": 1' in text  # the JSON field as a diff
    assert '+    "cpu": 2' in text
    report = as_json(plan(version("fraud", **changed), args=("-o", "json")))
    (only,) = report["objects"]
    assert [c["field"] for c in only["changes"]] == ["versionDescription", "labels", "inferenceSpec"]
    assert only["changes"][1] == {
        "field": "labels",
        "old": {"team": "risk"},
        "new": {"team": "fraud", "tier": "gold"},
    }


def test_adopting_an_identical_version_writes_ownership_labels_only(
    plan: Callable[..., Any], sdk: Client, model_id: str
) -> None:
    create_remote(sdk, model_id, "2.0.0", version_description="by terraform")
    same = version(
        "imported", modelId=model_id, versionName="2.0.0", versionDescription="by terraform",
        adoptionPolicy="IfExists",
    )  # fmt: skip
    result = plan(same, args=("--detailed-exitcode",))
    # Freshly imported: only the ownership labels would be written, no field changes: exit 0.
    assert result.returncode == 0, result.stdout + result.stderr
    assert "imported (PAI" in result.stdout
    assert "adopt: ownership labels only" in result.stdout
    drifted = {**same, "spec": {**same["spec"], "versionDescription": "by the operator"}}
    drifted_plan = plan(drifted, args=("-o", "json", "--detailed-exitcode"))
    assert drifted_plan.returncode == 2
    (adopt,) = as_json(drifted_plan)["objects"]
    assert (adopt["action"], adopt["ownershipOnly"]) == ("adopt", False)
    assert adopt["changes"] == [
        {"field": "versionDescription", "old": "by terraform", "new": "by the operator"}
    ]


def test_every_terminal_condition_exits_1(plan: Callable[..., Any], sdk: Client, model_id: str) -> None:
    create_remote(sdk, model_id, "1.0.0")  # nobody's
    create_remote(sdk, model_id, "1.1.0", owner=("uid-other", "elsewhere/other"))
    create_remote(sdk, model_id, "1.2.0", owner=("uid-mine", "team/moved"), uri=URI + "old/")
    result = plan(
        version("exists", modelId=model_id, versionName="1.0.0"),
        version("conflict", modelId=model_id, versionName="1.1.0"),
        version("moved", modelId=model_id, versionName="1.2.0"),
        version("reserved", modelId=model_id, versionName="1.3.0", labels={OWNER_LABEL_KEY: "x"}),
        version("nomodel", modelId=f"{model_id}-gone", versionName="1.0.0"),
        version("fine", modelId=model_id, versionName="1.4.0"),
        args=("-o", "json", "--detailed-exitcode"),
    )
    assert result.returncode == 1, result.stderr
    objects = by_name(as_json(result))
    assert {name: (o["action"], o["reason"]) for name, o in objects.items()} == {
        "exists": ("blocked", "AlreadyExists"),
        "conflict": ("blocked", "Conflict"),
        "moved": ("blocked", "ImmutableFieldMismatch"),
        "reserved": ("blocked", "InvalidSpec"),
        "nomodel": ("error", "ModelNotFound"),
        "fine": ("create", None),
    }
    assert objects["moved"]["changes"] == [{"field": "uri", "old": URI + "old/", "new": URI}]
    text = plan(version("exists", modelId=model_id, versionName="1.0.0")).stdout
    assert "! ModelVersion team/exists (PAI" in text
    assert "blocked: AlreadyExists" in text
    assert "adoptionPolicy: IfExists" in text  # the planner's own advice


def test_observe_and_paused_show_drift_and_change_nothing(
    plan: Callable[..., Any], sdk: Client, model_id: str
) -> None:
    create_remote(sdk, model_id, "3.0.0", owner=("uid-3", "team/paused"), version_description="remote")
    observed = version(
        "observed", modelId=model_id, versionName="3.0.0", versionDescription="declared",
        managementPolicy="Observe",
    )  # fmt: skip
    paused = version("paused", modelId=model_id, versionName="3.0.0", versionDescription="declared")
    paused["metadata"]["annotations"] = {"pai.mlops.dev/paused": "true"}
    result = plan(observed, paused, args=("-o", "json", "--detailed-exitcode"))
    assert result.returncode == 0, result.stdout + result.stderr
    objects = by_name(as_json(result))
    drift = [{"field": "versionDescription", "old": "remote", "new": "declared"}]
    assert (objects["observed"]["action"], objects["observed"]["changes"]) == ("observe", drift)
    assert (objects["paused"]["action"], objects["paused"]["changes"]) == ("paused", drift)


def test_a_version_waits_for_the_model_this_plan_creates(plan: Callable[..., Any]) -> None:
    name = f"fraud-{uuid.uuid4().hex[:6]}"
    model = {
        "apiVersion": "pai.mlops.dev/v1alpha1",
        "kind": "Model",
        "metadata": {"name": name, "namespace": "team"},
        "spec": {"modelName": name},
    }
    result = plan(version("v1", modelRef={"name": name}), model, args=("-o", "json", "--detailed-exitcode"))
    assert result.returncode == 2, result.stderr
    objects = {(o["kind"], o["name"]): o for o in as_json(result)["objects"]}
    assert objects[("Model", name)]["action"] == "create"
    waiting = objects[("ModelVersion", "v1")]
    assert (waiting["action"], waiting["reason"]) == ("waiting", "ReferenceNotReady")
    assert f"Model {name}" in waiting["message"]


def test_a_version_whose_model_exists_is_planned_against_it(
    plan: Callable[..., Any], pai: AdminClient, sdk: Client
) -> None:
    name = f"fraud-{uuid.uuid4().hex[:6]}"
    created = sdk.create_model(sdk_models.CreateModelRequest(model_name=name, workspace_id="ws-1"))
    model_id = created.body.model_id
    model = {
        "apiVersion": "pai.mlops.dev/v1alpha1",
        "kind": "Model",
        "metadata": {"name": name, "namespace": "team"},
        "spec": {"modelName": name, "modelId": model_id, "adoptionPolicy": "IfExists"},
    }
    result = plan(
        model,
        version("v1", modelRef={"name": name}, versionName="1.0.0"),
        args=("-o", "json", "--detailed-exitcode"),
    )
    assert result.returncode == 2, result.stderr  # the version's create
    objects = {o["kind"]: o for o in as_json(result)["objects"]}
    assert (objects["Model"]["action"], objects["Model"]["ownershipOnly"]) == ("adopt", True)
    assert objects["ModelVersion"]["action"] == "create"
    assert objects["ModelVersion"]["version"] == f"{model_id}:1.0.0"


def test_truefoundry_off_is_an_error(plan: Callable[..., Any], model_id: str) -> None:
    tfy = {
        "apiVersion": "truefoundry.mlops.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": "t", "namespace": "team"},
        "spec": {"mlRepo": "repo", "name": "m", "source": {"type": "external", "uri": "s3://b/m"}},
    }
    result = plan(tfy, version("v", modelId=model_id, versionName="1.0.0"), args=("-o", "json"))
    assert result.returncode == 1
    objects = by_name(as_json(result))
    assert objects["t"]["reason"] == "NotConfigured"
    assert "TrueFoundry off" in objects["t"]["message"]


def test_kubeconfig_reads_the_recorded_server_assigned_name(
    control_plane: Cluster,
    start_operator: Callable[..., OperatorProcess],
    mvs: ModelVersions,
    namespace: str,
    pai: AdminClient,
    model_id: str,
    plan: Callable[..., Any],
) -> None:
    operator = start_operator()
    body = version("assigned", namespace, modelId=model_id, versionDescription="v")
    mvs.create("assigned", body["spec"])
    mvs.wait_condition("assigned", "Ready")
    operator.stop()
    pai.clear_journal()
    assigned = mvs.get("assigned")["status"]["versionName"]

    with_cluster = plan(
        body, args=("--kubeconfig", str(control_plane.kubeconfig), "-o", "json", "--detailed-exitcode")
    )
    assert with_cluster.returncode == 0, with_cluster.stdout + with_cluster.stderr
    (converged,) = as_json(with_cluster)["objects"]
    assert (converged["action"], converged["version"]) == ("no-change", f"{model_id}:{assigned}")
    # Reads by the recorded name: no ownership search was needed.
    assert {e["Operation"] for e in pai.journal()} == {"GetModelVersion"}

    # Without the cluster the version is found by its ownership mark (namespace/name) instead.
    without = plan(body, args=("-o", "json", "--detailed-exitcode"))
    assert without.returncode == 0, without.stdout + without.stderr
    assert as_json(without)["objects"][0]["version"] == f"{model_id}:{assigned}"


@pytest.fixture
def explain(
    control_plane: Cluster, emulator_service: EmulatorProcess, pai: AdminClient
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs `pai-operator explain TARGET` against the control plane and the emulator, and checks
    that the calls it made are reads only."""

    def run(target: str, *args: str) -> subprocess.CompletedProcess[str]:
        before = len(pai.journal())
        cluster = ("--kubeconfig", str(control_plane.kubeconfig), "--endpoint", emulator_service.url)
        result = pai_operator("explain", target, *args, *cluster)
        calls = [e["Operation"] for e in pai.journal()[before:]]
        assert [c for c in calls if c.startswith(WRITES)] == []
        return result

    return run


def test_explain_shows_conditions_events_drift_and_the_next_pass(
    explain: Callable[..., subprocess.CompletedProcess[str]],
    start_operator: Callable[..., OperatorProcess],
    mvs: ModelVersions,
    namespace: str,
    pai: AdminClient,
    model_id: str,
    sdk: Client,
) -> None:
    operator = start_operator()
    spec = {"modelId": model_id, "versionName": "1.0.0", "uri": URI, "versionDescription": "declared"}
    mvs.create("fraud", spec)
    mvs.wait_condition("fraud", "Ready")
    operator.stop()
    # Drift made behind the operator's back, by a second client.
    sdk.update_model_version(
        model_id, "1.0.0", sdk_models.UpdateModelVersionRequest(version_description="changed by hand")
    )
    before = len(pai.journal())
    result = explain(f"{namespace}/fraud", "-o", "json", "--resync-interval", "60")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    conditions = {c["type"]: c for c in report["conditions"]}
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == ("True", "Available")
    assert conditions["Ready"]["age"].endswith(("s", "m"))
    assert "Created" in [e["reason"] for e in report["events"]]
    fields = {f["field"]: f for f in report["fields"]}
    assert fields["versionDescription"] == {
        "field": "versionDescription",
        "spec": "declared",
        "remote": "changed by hand",
        "drift": True,
        "managed": True,
        "remoteHasField": True,
    }
    assert fields["uri"]["drift"] is False
    assert fields["approvalStatus"]["managed"] is False  # set remotely, unset in spec: unmanaged
    nxt = report["next"]
    assert (nxt["action"], nxt["version"]) == ("update", f"{model_id}:1.0.0")
    assert nxt["changes"] == [{"field": "versionDescription", "old": "changed by hand", "new": "declared"}]
    assert nxt["due"] == "within 66s"  # the resync interval given, +10% jitter

    text = explain(f"{namespace}/fraud").stdout
    assert f"ModelVersion {namespace}/fraud" in text
    assert "Next pass: update" in text
    assert 'versionDescription: "changed by hand" → "declared"' in text
    assert "≠  versionDescription" in text
    assert "the drift shown is repaired then" in text
    assert [e["Operation"] for e in pai.journal()[before:]]  # it read the registry

    missing = explain(f"{namespace}/fraud", "--kind", "model")
    assert missing.returncode == 1
    assert f"Model {namespace}/fraud not found" in missing.stderr


@pytest.fixture(scope="module")
def tfy_service() -> Iterator[TfyEmulatorProcess]:
    with TfyEmulatorProcess(api_key=TFY_KEY, ml_repos=[TFY_REPO]) as emulator:
        yield emulator


def test_truefoundry_versions_are_planned_the_same_way(tfy_service: TfyEmulatorProcess) -> None:
    model = f"ranker-{uuid.uuid4().hex[:6]}"
    sdk = TrueFoundry(api_key=TFY_KEY, base_url=tfy_service.url, timeout=10)
    source = {"type": "external", "uri": "s3://bucket/ranker/"}
    made = sdk.models.create_or_update(
        manifest=ModelManifest(
            name=model,
            ml_repo=TFY_REPO,
            description="by hand",
            metadata={"team": "search"},
            source=ExternalBlobStorageSource(uri=source["uri"]),
        )
    ).data

    def tfv(name: str, **spec: Any) -> dict[str, Any]:
        return {
            "apiVersion": "truefoundry.mlops.dev/v1alpha1",
            "kind": "ModelVersion",
            "metadata": {"name": name, "namespace": "team"},
            "spec": {"mlRepo": TFY_REPO, "name": model, "source": source, **spec},
        }

    before = len(tfy_service.admin.journal())
    manifests = [
        tfv("adopted", version=made.manifest.version, adoptionPolicy="IfExists", description="declared"),
        tfv("next"),
    ]
    result = pai_operator(
        "plan", "-f", "-", "-o", "json", "--detailed-exitcode", "--truefoundry-host", tfy_service.url,
        stdin=yaml.safe_dump_all(manifests), TFY_API_KEY=TFY_KEY,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    objects = by_name(as_json(result))
    adopted = objects["adopted"]
    assert (adopted["action"], adopted["registry"]) == ("adopt", "TrueFoundry")
    assert adopted["changes"] == [{"field": "description", "old": "by hand", "new": "declared"}]
    assert objects["next"]["action"] == "create"
    calls = tfy_service.admin.journal()[before:]
    assert calls
    assert [c["Operation"] for c in calls if c["Method"] != "GET"] == []


def test_explain_a_stalled_object(
    explain: Callable[..., subprocess.CompletedProcess[str]],
    start_operator: Callable[..., OperatorProcess],
    mvs: ModelVersions,
    namespace: str,
    model_id: str,
    sdk: Client,
) -> None:
    create_remote(sdk, model_id, "1.0.0")  # nobody's: the object may not take it (adoptionPolicy Never)
    operator = start_operator()
    mvs.create("taken", {"modelId": model_id, "versionName": "1.0.0", "uri": URI})
    mvs.wait_condition("taken", "Synced", status="False", reason="AlreadyExists")
    operator.stop()
    result = explain(f"{namespace}/taken", "-o", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    conditions = {c["type"]: (c["status"], c["reason"]) for c in report["conditions"]}
    assert conditions["Synced"] == ("False", "AlreadyExists")
    assert conditions["Stalled"][0] == "True"
    assert ("Warning", "AlreadyExists") in [(e["type"], e["reason"]) for e in report["events"]]
    nxt = report["next"]
    assert (nxt["action"], nxt["reason"], nxt["headline"]) == (
        "blocked",
        "AlreadyExists",
        "blocked: AlreadyExists",
    )
    assert nxt["due"] == "within 11m"
    assert nxt["why"].startswith("AlreadyExists: nothing changes until")
