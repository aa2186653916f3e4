"""TrueFoundry ModelVersions end to end: the real kube-apiserver, `tfy-emulator` as a process and
the operator as a process with `PAI_OPERATOR_TRUEFOUNDRY_HOST` set. Remote changes made "by hand"
(drift, versions to adopt or observe) go through the official `truefoundry_sdk`, an outside client.

One emulator, one operator and one namespace serve the whole module (starting them is most of
the cost); every test uses a model name of its own and deletes its objects again, so journals
and version lists never mix between tests."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from truefoundry_sdk import ExternalBlobStorageSource, ModelManifest, TrueFoundry, TrueFoundryManagedSource

from pai_operator.errors import AuthError
from pai_operator.truefoundry import StaticApiKey, TrueFoundryClient, TrueFoundryClientConfig
from pai_operator.truefoundry import spec as tfy
from tests.integration.conftest import CRD_FILE as PAI_CRD_FILE
from tests.support.emulator import DEFAULT_CREDENTIAL, EmulatorProcess
from tests.support.kube import REPO_ROOT, Cluster, unique_name
from tests.support.operator import OperatorProcess, wait_for
from tests.support.tfy_emulator import TfyAdminClient, TfyAdminError, TfyEmulatorProcess

pytestmark = pytest.mark.integration

API_KEY = "tfy-lifecycle-key"
REPO = "repo-lifecycle"
URI = "s3://bucket/models/m/"
OWNER_KEY = tfy.OWNER_METADATA_KEY
RESYNC = 3.0
CRD_NAME = f"{tfy.PLURAL}.{tfy.GROUP}"
READS = {"GetModelVersion", "ListModelVersions", "GetModel", "ListModels", "GetMlRepo", "ListMlRepos"}


def _install_crd(cluster: Cluster, path: Path, name: str) -> None:
    cluster.kubectl_run("apply", "--server-side", "--force-conflicts", "-f", str(path))
    cluster.kubectl_run("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")


@pytest.fixture(scope="module")
def crds(control_plane: Cluster) -> None:
    """Both CRDs: the operator always runs its PAI controller, whose watch needs PAI's."""
    _install_crd(control_plane, PAI_CRD_FILE, "modelversions.pai.mlops.dev")
    _install_crd(control_plane, REPO_ROOT / "crds" / f"{tfy.GROUP}_{tfy.PLURAL}.yaml", CRD_NAME)


@pytest.fixture(scope="module")
def tfy_service() -> Iterator[TfyEmulatorProcess]:
    with TfyEmulatorProcess(api_key=API_KEY, ml_repos=[REPO]) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def tfy_namespace(kube_api: client.ApiClient) -> Iterator[str]:
    name = unique_name("tfy")
    core = client.CoreV1Api(kube_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    with contextlib.suppress(client.ApiException):
        core.delete_namespace(name)


class TfyModelVersions:
    """truefoundry.mlops.dev ModelVersions in one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = client.CustomObjectsApi(api)
        self.namespace = namespace
        self._args: tuple[str, str, str, str] = (tfy.GROUP, tfy.VERSION, namespace, tfy.PLURAL)

    def create(
        self, name: str, spec: dict[str, Any], annotations: dict[str, str] | None = None
    ) -> dict[str, Any]:
        body = {
            "apiVersion": f"{tfy.GROUP}/{tfy.VERSION}",
            "kind": tfy.KIND,
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": spec,
        }
        return self.api.create_namespaced_custom_object(*self._args, body)  # type: ignore[no-any-return]

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            return self.api.get_namespaced_custom_object(*self._args, name)  # type: ignore[no-any-return]
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def patch(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.api.patch_namespaced_custom_object(*self._args, name, body)  # type: ignore[no-any-return]

    def delete(self, name: str) -> None:
        with contextlib.suppress(client.ApiException):
            self.api.delete_namespaced_custom_object(*self._args, name)

    def names(self) -> list[str]:
        return [o["metadata"]["name"] for o in self.api.list_namespaced_custom_object(*self._args)["items"]]

    def wait(self, name: str, ctype: str, status: str = "True", reason: str | None = None) -> dict[str, Any]:
        """The object once condition `ctype` has `status` (and `reason`) for its current generation."""

        def probe() -> dict[str, Any] | None:
            obj = self.get(name) or {}
            for cond in (obj.get("status") or {}).get("conditions") or []:
                if (
                    cond["type"] == ctype
                    and cond["status"] == status
                    and (reason is None or cond["reason"] == reason)
                    and cond.get("observedGeneration") == obj["metadata"]["generation"]
                ):
                    return obj
            return None

        return wait_for(f"{name} {ctype}={status} {reason or ''}", probe, timeout=60)

    def wait_gone(self, name: str) -> None:
        wait_for(f"{name} deleted", lambda: self.get(name) is None, timeout=60)


@pytest.fixture(scope="module")
def tfy_operator(
    control_plane: Cluster,
    emulator_service: EmulatorProcess,
    tfy_service: TfyEmulatorProcess,
    tfy_namespace: str,
    kube_api: client.ApiClient,
    crds: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    proc = OperatorProcess(
        control_plane.kubeconfig,
        emulator_service.url,
        DEFAULT_CREDENTIAL,
        namespaces=(tfy_namespace,),
        resync_interval=RESYNC,
        log_dir=tmp_path_factory.mktemp("tfy-operator"),
        extra_env={"PAI_OPERATOR_TRUEFOUNDRY_HOST": tfy_service.url, "TFY_API_KEY": API_KEY},
    )
    proc.start()
    yield proc
    # Nothing may stay behind our finalizer: deleting the CRD later would hang on it.
    objects = TfyModelVersions(kube_api, tfy_namespace)
    for name in objects.names():
        objects.delete(name)
    with contextlib.suppress(AssertionError):
        for name in objects.names():
            objects.wait_gone(name)
    proc.stop()
    for name in objects.names():
        with contextlib.suppress(client.ApiException):
            objects.patch(name, {"metadata": {"finalizers": None}})
    assert API_KEY not in proc.log_text()


@pytest.fixture
def mvs(
    tfy_operator: OperatorProcess, kube_api: client.ApiClient, tfy_namespace: str
) -> Iterator[TfyModelVersions]:
    objects = TfyModelVersions(kube_api, tfy_namespace)
    yield objects
    # Each test's objects go again (remote deletes included) before the next test starts.
    names = objects.names()
    for name in names:
        objects.delete(name)
    for name in names:
        objects.wait_gone(name)


@pytest.fixture
def admin(tfy_service: TfyEmulatorProcess) -> TfyAdminClient:
    tfy_service.admin.clear_faults()
    tfy_service.admin.clear_journal()
    return tfy_service.admin


@pytest.fixture
def model() -> str:
    return f"m-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def sdk(tfy_service: TfyEmulatorProcess) -> TrueFoundry:
    return TrueFoundry(api_key=API_KEY, base_url=tfy_service.url, timeout=10)


def spec(model: str, **extra: Any) -> dict[str, Any]:
    return {"mlRepo": REPO, "name": model, "source": {"type": "external", "uri": URI}, **extra}


def live(admin: TfyAdminClient, model: str) -> list[dict[str, Any]]:
    """The model's versions that exist (not deleted), in creation order."""
    try:
        versions = admin.versions(REPO, model)
    except TfyAdminError as exc:  # no such model yet
        if exc.status != 404:
            raise
        return []
    return [v for v in versions if v.get("DeletedAt") is None]


def applies(admin: TfyAdminClient) -> list[dict[str, Any]]:
    return admin.journal("ApplyModelVersion")


def owner_of(version: dict[str, Any]) -> Any:
    return version["manifest"]["metadata"].get(OWNER_KEY)


def sdk_version(sdk: TrueFoundry, model: str, **fields: Any) -> Any:
    """A version made by hand with the official SDK (no ownership mark)."""
    fields.setdefault("metadata", {"team": "search"})
    manifest = ModelManifest(name=model, ml_repo=REPO, source=ExternalBlobStorageSource(uri=URI), **fields)
    return sdk.models.create_or_update(manifest=manifest).data


def sdk_set_description(sdk: TrueFoundry, version_id: str, description: str) -> None:
    """Drift by hand: the whole manifest sent back with another description (apply semantics)."""
    current = sdk.model_versions.get(id=version_id).data.manifest
    sdk.models.create_or_update(manifest=current.model_copy(update={"description": description}))


def test_create_numbers_versions_and_marks_ownership(
    mvs: TfyModelVersions, admin: TfyAdminClient, tfy_service: TfyEmulatorProcess, model: str
) -> None:
    mvs.create("first", spec(model, description="one", metadata={"team": "a", "nested": {"k": [1]}}))
    first = mvs.wait("first", "Ready")
    mvs.wait("first", "Synced")
    status = first["status"]
    assert status["version"] == 1
    assert status["fqn"] == tfy_service.fqn(REPO, model, 1)
    (remote,) = live(admin, model)
    assert status["id"] == remote["id"]
    assert remote["manifest"]["description"] == "one"
    assert owner_of(remote) == {"uid": first["metadata"]["uid"], "ref": f"{mvs.namespace}/first"}
    assert {k: v for k, v in remote["manifest"]["metadata"].items() if k != OWNER_KEY} == {
        "team": "a",
        "nested": {"k": [1]},
    }
    assert first["metadata"]["finalizers"] == [tfy.FINALIZER]

    mvs.create("second", spec(model))
    second = mvs.wait("second", "Ready")
    assert second["status"]["version"] == 2
    assert second["status"]["fqn"] == tfy_service.fqn(REPO, model, 2)
    assert [v["manifest"]["version"] for v in live(admin, model)] == [1, 2]
    assert len(applies(admin)) == 2  # one create each, no update


def test_update_and_alias_move_write_in_place(
    mvs: TfyModelVersions, admin: TfyAdminClient, model: str
) -> None:
    mvs.create("a", spec(model, description="d1", versionAlias="v1-prod"))
    mvs.wait("a", "Ready")
    mvs.create("b", spec(model))
    mvs.wait("b", "Ready")
    admin.clear_journal()

    mvs.patch("a", {"spec": {"description": "d2"}})
    mvs.wait("a", "Synced")
    wait_for("description updated", lambda: live(admin, model)[0]["manifest"].get("description") == "d2")

    # The alias moves: off "a" first (it is unique within the model), then onto "b".
    mvs.patch("a", {"spec": {"versionAlias": "v1-old"}})
    wait_for("alias off a", lambda: live(admin, model)[0]["manifest"].get("version_alias") == "v1-old")
    mvs.patch("b", {"spec": {"versionAlias": "v1-prod"}})
    b = mvs.wait("b", "Synced")
    wait_for("alias on b", lambda: live(admin, model)[1]["manifest"].get("version_alias") == "v1-prod")
    b = wait_for(
        "b's status shows the alias",
        lambda: (
            ((o := mvs.get("b")) or {}).get("status", {}).get("atProvider", {}).get("versionAlias")
            == "v1-prod"
            and o
        ),
    )
    versions = live(admin, model)
    assert [v["manifest"]["version"] for v in versions] == [1, 2]  # no new version
    assert versions[0]["manifest"]["description"] == "d2"
    assert owner_of(versions[1])["uid"] == b["metadata"]["uid"]
    assert len(admin.versions(REPO, model)) == 2  # none created and deleted either
    assert len(applies(admin)) == 3  # one write per change


def test_drift_made_with_the_sdk_is_repaired(
    mvs: TfyModelVersions, admin: TfyAdminClient, sdk: TrueFoundry, model: str
) -> None:
    mvs.create("mv", spec(model, description="wanted"))
    obj = mvs.wait("mv", "Ready")
    sdk_set_description(sdk, obj["status"]["id"], "changed by hand")
    assert live(admin, model)[0]["manifest"]["description"] == "changed by hand"
    wait_for(
        "drift repaired",
        lambda: live(admin, model)[0]["manifest"]["description"] == "wanted",
        timeout=RESYNC * 5,
    )
    (remote,) = live(admin, model)
    assert owner_of(remote)["uid"] == obj["metadata"]["uid"]


def test_adopt_existing_version_if_exists(
    mvs: TfyModelVersions, admin: TfyAdminClient, sdk: TrueFoundry, model: str
) -> None:
    made = sdk_version(sdk, model, description="by hand")
    admin.clear_journal()
    mvs.create("mv", spec(model, version=1, adoptionPolicy="IfExists", description="adopted"))
    obj = mvs.wait("mv", "Ready")
    mvs.wait("mv", "Synced")
    assert (obj["status"]["id"], obj["status"]["version"]) == (made.id, 1)
    wait_for("description applied", lambda: live(admin, model)[0]["manifest"]["description"] == "adopted")
    (remote,) = live(admin, model)
    assert owner_of(remote)["uid"] == obj["metadata"]["uid"]
    # metadata is not in the spec, so not managed: what was there stays, next to the mark.
    assert remote["manifest"]["metadata"]["team"] == "search"
    assert len(admin.versions(REPO, model)) == 1


def test_adoption_never_refuses_an_existing_version(
    mvs: TfyModelVersions, admin: TfyAdminClient, sdk: TrueFoundry, model: str
) -> None:
    sdk_version(sdk, model, description="by hand")
    admin.clear_journal()
    mvs.create("mv", spec(model, version=1, description="mine now?"))
    mvs.wait("mv", "Synced", "False", "AlreadyExists")
    assert applies(admin) == []
    (remote,) = live(admin, model)
    assert remote["manifest"]["description"] == "by hand"
    assert owner_of(remote) is None


def test_delete_removes_the_remote_version(mvs: TfyModelVersions, admin: TfyAdminClient, model: str) -> None:
    mvs.create("mv", spec(model))
    obj = mvs.wait("mv", "Ready")
    mvs.delete("mv")
    mvs.wait_gone("mv")
    assert live(admin, model) == []
    (deleted,) = admin.versions(REPO, model)
    assert deleted["id"] == obj["status"]["id"]
    assert deleted["DeletedAt"] is not None


def test_retain_keeps_the_version_and_drops_the_mark(
    mvs: TfyModelVersions, admin: TfyAdminClient, model: str
) -> None:
    mvs.create("mv", spec(model, deletionPolicy="Retain", metadata={"team": "a"}))
    mvs.wait("mv", "Ready")
    assert owner_of(live(admin, model)[0]) is not None
    mvs.delete("mv")
    mvs.wait_gone("mv")
    (kept,) = live(admin, model)
    assert kept["manifest"]["metadata"] == {"team": "a"}
    assert admin.journal("DeleteModelVersion") == []


def test_observe_never_writes(
    mvs: TfyModelVersions, admin: TfyAdminClient, sdk: TrueFoundry, model: str
) -> None:
    made = sdk_version(sdk, model, description="remote")
    admin.clear_journal()
    mvs.create("mv", spec(model, version=1, managementPolicy="Observe", description="wanted"))

    def observed() -> dict[str, Any] | None:
        obj = mvs.get("mv") or {}
        status = obj.get("status") or {}
        return obj if status.get("drift") == ["description"] and status.get("id") == made.id else None

    obj = wait_for("drift observed", observed)
    assert obj["status"]["atProvider"]["createdBy"]
    # Two resyncs later still nothing written; deleting the object leaves the version alone.
    time.sleep(RESYNC * 2)
    mvs.delete("mv")
    mvs.wait_gone("mv")
    assert applies(admin) == []
    assert admin.journal("DeleteModelVersion") == []
    (remote,) = live(admin, model)
    assert remote["manifest"]["description"] == "remote"
    assert owner_of(remote) is None


def test_pause_stops_repair_until_unpaused(
    mvs: TfyModelVersions, admin: TfyAdminClient, sdk: TrueFoundry, model: str
) -> None:
    mvs.create("mv", spec(model, description="wanted"))
    obj = mvs.wait("mv", "Ready")
    mvs.patch("mv", {"metadata": {"annotations": {tfy.PAUSED_ANNOTATION: "true"}}})
    mvs.wait("mv", "Synced", "False", "ReconcilePaused")
    admin.clear_journal()
    sdk_set_description(sdk, obj["status"]["id"], "by hand")
    wait_for(
        "drift reported while paused",
        lambda: ((mvs.get("mv") or {}).get("status") or {}).get("drift") == ["description"],
        timeout=RESYNC * 5,
    )
    assert len(applies(admin)) == 1  # the SDK's own
    assert live(admin, model)[0]["manifest"]["description"] == "by hand"

    mvs.patch("mv", {"metadata": {"annotations": {tfy.PAUSED_ANNOTATION: None}}})
    wait_for("repaired after unpause", lambda: live(admin, model)[0]["manifest"]["description"] == "wanted")
    mvs.wait("mv", "Synced")
    assert len(live(admin, model)) == 1


def test_lost_create_response_leaves_no_duplicate(
    mvs: TfyModelVersions, admin: TfyAdminClient, tfy_service: TfyEmulatorProcess, model: str
) -> None:
    admin.add_fault("ApplyModelVersion", "commit_then_drop", count=1)
    mvs.create("mv", spec(model, description="once"))
    obj = mvs.wait("mv", "Ready")
    assert applies(admin)[0]["Fault"], applies(admin)  # the first create's answer was dropped
    versions = admin.versions(REPO, model)
    assert len(versions) == 1, versions  # never a second one, not even one deleted again
    assert obj["status"]["version"] == 1
    assert obj["status"]["id"] == versions[0]["id"]
    assert owner_of(versions[0])["uid"] == obj["metadata"]["uid"]


def test_reserved_metadata_key_is_invalid_spec(
    mvs: TfyModelVersions, admin: TfyAdminClient, model: str
) -> None:
    mvs.create("mv", spec(model, metadata={OWNER_KEY: {"uid": "someone-else"}}))
    obj = mvs.wait("mv", "Synced", "False", "InvalidSpec")
    synced = next(c for c in obj["status"]["conditions"] if c["type"] == "Synced")
    assert OWNER_KEY in synced["message"]
    assert applies(admin) == []
    assert live(admin, model) == []


def test_unknown_ml_repo_is_model_not_found(mvs: TfyModelVersions, admin: TfyAdminClient, model: str) -> None:
    mvs.create("mv", {**spec(model), "mlRepo": "no-such-repo"})
    mvs.wait("mv", "Synced", "False", "ModelNotFound")
    assert applies(admin) == []


# --- The core paths under each dialect switch of the emulator -------------------------------
#
# What TrueFoundry's own client packages show but do not prove for the v1 endpoints is a switch
# of the emulator (tfy_emulator/README.md "Dialect switches"); the operator must be right under
# every setting. One emulator serves the module, so each test switches it through the admin API
# and puts the defaults back afterwards.

DIALECTS: dict[str, dict[str, Any]] = {
    "mlflow-400": {"error_shape": "mlflow", "conflict_status": 400, "deleted_visible": False},
    "mlflow-409": {"error_shape": "mlflow", "conflict_status": 409, "deleted_visible": False},
    "current": {"error_shape": "current", "conflict_status": 400, "deleted_visible": False},
    "deleted-visible": {"error_shape": "mlflow", "conflict_status": 400, "deleted_visible": True},
}
DEFAULT_DIALECT = DIALECTS["mlflow-400"]


@pytest.fixture(params=list(DIALECTS))
def dialect(admin: TfyAdminClient, request: pytest.FixtureRequest) -> Iterator[str]:
    admin.set_dialect(**DIALECTS[request.param])
    yield str(request.param)
    admin.set_dialect(**DEFAULT_DIALECT)


def log_like_truefoundry(sdk: TrueFoundry, model: str, **fields: Any) -> tuple[Any, str]:
    """The calls `truefoundry`'s log_model makes (tests/contract/test_truefoundry_ml.py shows the
    real client making them): stage, then the PUT that commits the staged storage root, with
    the `.truefoundry` metadata the library writes. The version and its storage root."""
    staged = sdk.artifact_versions.stage(
        manifest=ModelManifest(name=model, ml_repo=REPO, metadata={}, source=TrueFoundryManagedSource())
    )
    metadata = {"team": "search", ".truefoundry": INTERNAL}
    manifest = ModelManifest(
        name=model,
        ml_repo=REPO,
        metadata=metadata,
        source=TrueFoundryManagedSource(uri=staged.storage_root),
        **fields,
    )
    return sdk.models.create_or_update(manifest=manifest).data, staged.storage_root


INTERNAL = {"created_by": {"job_run_name": "train-42"}, "artifact_size": 4096}


def test_matrix_alias_moves_between_objects(
    mvs: TfyModelVersions, admin: TfyAdminClient, model: str, dialect: str
) -> None:
    """The new holder is patched first: its apply meets the alias still held (a conflict in every
    shape: 400 RESOURCE_ALREADY_EXISTS, 409, or 400 VERSION_ALIAS_IN_USE), is retried with
    backoff, and succeeds once the old holder lets go. No version is created on the way."""
    mvs.create("a", spec(model, versionAlias="v1-prod"))
    mvs.wait("a", "Ready")
    mvs.create("b", spec(model))
    mvs.wait("b", "Ready")
    admin.clear_journal()

    mvs.patch("b", {"spec": {"versionAlias": "v1-prod"}})
    wait_for(
        "b's apply refused while a holds the alias", lambda: [e for e in applies(admin) if e["Status"] >= 400]
    )
    b = mvs.wait("b", "Synced", "False")
    synced = next(c for c in b["status"]["conditions"] if c["type"] == "Synced")
    assert synced["reason"] == "ReconcileError", synced  # a conflict retried, not an invalid spec
    mvs.patch("a", {"spec": {"versionAlias": "v1-old"}})

    def moved() -> bool:
        versions = live(admin, model)
        return [v["manifest"].get("version_alias") for v in versions] == ["v1-old", "v1-prod"]

    wait_for("alias moved from a to b", moved, timeout=RESYNC * 10)
    mvs.wait("b", "Synced")
    mvs.wait("a", "Synced")
    assert len(admin.versions(REPO, model)) == 2
    refused = {e["Status"] for e in applies(admin) if e["Status"] >= 400}
    expected = {"mlflow-409": 409}.get(dialect, 400)
    assert refused == {expected}, [(e["Status"], e["Message"]) for e in applies(admin)]


def test_matrix_version_logged_by_truefoundry_adopted_and_updated(
    mvs: TfyModelVersions, admin: TfyAdminClient, sdk: TrueFoundry, model: str, dialect: str
) -> None:
    logged, root = log_like_truefoundry(sdk, model, description="by the training job")
    source = {"type": "truefoundry", "uri": root}
    mvs.create(
        "mv", spec(model, source=source, version=1, adoptionPolicy="IfExists", metadata={"team": "ml"})
    )
    obj = mvs.wait("mv", "Ready")
    mvs.wait("mv", "Synced")
    assert obj["status"]["id"] == logged.id
    wait_for("metadata applied", lambda: live(admin, model)[0]["manifest"]["metadata"].get("team") == "ml")
    (remote,) = live(admin, model)
    assert remote["manifest"]["metadata"][".truefoundry"] == INTERNAL  # intact
    assert owner_of(remote)["uid"] == obj["metadata"]["uid"]

    mvs.patch("mv", {"spec": {"description": "promoted"}})
    wait_for(
        "description applied", lambda: live(admin, model)[0]["manifest"].get("description") == "promoted"
    )
    obj = mvs.wait("mv", "Synced")
    (remote,) = live(admin, model)
    assert remote["manifest"]["metadata"] == {
        "team": "ml",
        ".truefoundry": INTERNAL,
        OWNER_KEY: {"uid": obj["metadata"]["uid"], "ref": f"{mvs.namespace}/mv"},
    }
    assert "drift" not in obj["status"]  # .truefoundry is never drift
    assert len(admin.versions(REPO, model)) == 1

    # Released (Retain): the mark goes, TrueFoundry's own metadata stays.
    mvs.patch("mv", {"spec": {"deletionPolicy": "Retain"}})
    mvs.wait("mv", "Synced")
    mvs.delete("mv")
    mvs.wait_gone("mv")
    (kept,) = live(admin, model)
    assert kept["manifest"]["metadata"] == {"team": "ml", ".truefoundry": INTERNAL}


def test_matrix_version_deleted_behind_the_operators_back(
    mvs: TfyModelVersions, admin: TfyAdminClient, sdk: TrueFoundry, model: str, dialect: str
) -> None:
    """Deleted by hand: under --deleted-visible get by id still answers the row (DELETED). In
    every dialect the operator reads it as gone and creates the version again (level-triggered),
    never reports the deleted one as present."""
    mvs.create("mv", spec(model, description="wanted"))
    first = mvs.wait("mv", "Ready")
    sdk.model_versions.delete(id=first["status"]["id"])

    def recreated() -> dict[str, Any] | None:
        obj = mvs.get("mv") or {}
        status = obj.get("status") or {}
        return obj if status.get("version") == 2 and status.get("id") != first["status"]["id"] else None

    obj = wait_for("a new version after the deletion", recreated, timeout=RESYNC * 10)
    mvs.wait("mv", "Ready")
    (remote,) = live(admin, model)
    assert (remote["id"], remote["manifest"]["version"]) == (obj["status"]["id"], 2)
    assert owner_of(remote)["uid"] == obj["metadata"]["uid"]
    gets = [e for e in admin.journal("GetModelVersion") if e["VersionId"] == first["status"]["id"]]
    if dialect == "deleted-visible":
        assert any(e["Status"] == 200 for e in gets), gets  # the row was answered, and read as gone


def test_creating_a_truefoundry_source_is_refused_at_admission(mvs: TfyModelVersions) -> None:
    with pytest.raises(client.ApiException) as caught:
        mvs.create("mv", spec("m-refused", source={"type": "truefoundry", "uri": "s3://tfy/root/1/"}))
    assert caught.value.status == 422
    assert "source.type external" in caught.value.body
    assert "adopt" in caught.value.body


def test_an_expired_jwt_key_is_auth_failed_without_calls(
    admin: TfyAdminClient, tfy_service: TfyEmulatorProcess, model: str
) -> None:
    """The client's own check: nothing is sent with an expired JWT, and a TrueFoundry client built
    on it fails with AuthFailed's error class, saying why, in one attempt."""

    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    expired = f"{part({'alg': 'RS256'})}.{part({'tenantName': 't', 'exp': int(time.time()) - 5})}.c2ln"

    async def read() -> None:
        config = TrueFoundryClientConfig(host=tfy_service.url)
        async with TrueFoundryClient(config, StaticApiKey(expired)) as tfy:
            await tfy.list_versions(name=model)

    with pytest.raises(AuthError, match="expired at"):
        asyncio.run(read())
    assert admin.journal() == []


# --- honest status: kstatus, kubectl wait and Argo CD follow what reached TrueFoundry ----------

TFY_RESOURCE = f"{tfy.PLURAL}.{tfy.GROUP}"


def _kubectl_wait_ready(cluster: Cluster, namespace: str, name: str, timeout: str) -> bool:
    result = cluster.kubectl_run(
        "wait", "--for=condition=Ready", f"{TFY_RESOURCE}/{name}", "-n", namespace, f"--timeout={timeout}",
        check=False,
    )  # fmt: skip
    return result.returncode == 0


def _condition(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == ctype)


def test_kstatus_kubectl_wait_and_argocd_follow_what_reached_truefoundry(
    control_plane: Cluster, mvs: TfyModelVersions, admin: TfyAdminClient, tfy_namespace: str, model: str
) -> None:
    from tests.support.kube import kstatus
    from tests.unit.test_argocd_health import HEALTH_LUA, run_health

    def state() -> str:
        return kstatus(control_plane, TFY_RESOURCE, tfy_namespace, "mv").status

    mvs.create("mv", spec(model, description="before"))
    obj = mvs.wait("mv", "Ready")
    assert state() == "Current"
    assert _kubectl_wait_ready(control_plane, tfy_namespace, "mv", "3s")
    assert run_health(HEALTH_LUA, obj)["status"] == "Healthy"

    admin.add_fault("ApplyModelVersion", "error", http_status=503)
    mvs.patch("mv", {"spec": {"description": "after"}})
    obj = mvs.wait("mv", "Reconciling", reason="UpdateFailed")
    assert (_condition(obj, "Ready")["status"], _condition(obj, "Ready")["reason"]) == (
        "False",
        "UpdateFailed",
    )
    assert state() == "InProgress"
    assert not _kubectl_wait_ready(control_plane, tfy_namespace, "mv", "3s")
    assert run_health(HEALTH_LUA, mvs.get("mv") or {})["status"] == "Progressing"
    assert live(admin, model)[0]["manifest"]["description"] == "before"

    admin.clear_faults()
    obj = mvs.wait("mv", "Ready")
    assert live(admin, model)[0]["manifest"]["description"] == "after"
    assert state() == "Current"
    assert _kubectl_wait_ready(control_plane, tfy_namespace, "mv", "3s")
    assert run_health(HEALTH_LUA, obj)["status"] == "Healthy"

    # Terminal (Observe without a version to observe): Failed, Degraded, no waiting for a timeout.
    mvs.create("invalid", spec(model, managementPolicy="Observe"))
    obj = mvs.wait("invalid", "Stalled", reason="InvalidSpec")
    assert kstatus(control_plane, TFY_RESOURCE, tfy_namespace, "invalid").status == "Failed"
    assert run_health(HEALTH_LUA, obj)["status"] == "Degraded"


def test_reconcile_request_is_handled_and_recorded(
    tfy_operator: OperatorProcess, mvs: TfyModelVersions, tfy_namespace: str, model: str
) -> None:
    mvs.create("mv", spec(model))
    mvs.wait("mv", "Ready")
    mvs.patch("mv", {"metadata": {"annotations": {f"{tfy.GROUP}/reconcile-requested-at": "now-1"}}})
    wait_for(
        "request handled",
        lambda: ((mvs.get("mv") or {}).get("status") or {}).get("lastHandledReconcileAt") == "now-1",
        timeout=RESYNC * 3,
    )
    # Passed because of the request (the engine logs why a pass ran), not by a resync that happened
    # to come along: an annotation change bumps no generation.
    assert f"requested pass of {tfy_namespace}/mv" in tfy_operator.log_text()


def writes(admin: TfyAdminClient) -> list[dict[str, Any]]:
    """The journal's calls that are not reads."""
    return [e for e in admin.journal() if e["Operation"] not in READS]


def cli(
    tfy_service: TfyEmulatorProcess, emulator_service: EmulatorProcess, *args: str
) -> subprocess.CompletedProcess[str]:
    """`pai-operator` as a user runs it, against both emulators (the TrueFoundry key from the
    environment, as `TFY_API_KEY`)."""
    argv = [sys.executable, "-m", "pai_operator.cli", *args]
    argv += ["--truefoundry-host", tfy_service.url, "--endpoint", emulator_service.url]
    env = {**os.environ, "TFY_API_KEY": API_KEY}
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_import_of_sdk_made_versions_is_adopted_with_one_apply_each_and_diff_clean(
    control_plane: Cluster,
    tfy_service: TfyEmulatorProcess,
    emulator_service: EmulatorProcess,
    mvs: TfyModelVersions,
    admin: TfyAdminClient,
    sdk: TrueFoundry,
    model: str,
) -> None:
    """`pai-operator import --ml-repo/--name` of versions logged with the official SDK, applied
    with kubectl: the running operator's only write is one ApplyModelVersion per version (the
    ownership key added to the metadata), and `kubectl diff` is clean."""
    sdk_version(sdk, model, description="first", version_alias="v1-prod")
    sdk_version(sdk, model, metadata={"team": "search", "nested": {"k": [1, 2]}}, step=0)
    before = {v["manifest"]["version"]: v["manifest"] for v in live(admin, model)}
    admin.clear_journal()
    done = cli(
        tfy_service, emulator_service, "import", "--ml-repo", REPO, "--name", model, "-n", mvs.namespace
    )
    assert done.returncode == 0, done.stderr
    assert [e["Operation"] for e in writes(admin)] == []
    documents = list(yaml.safe_load_all(done.stdout))
    assert sorted(d["spec"]["version"] for d in documents) == [1, 2]

    control_plane.kubectl_run("apply", "-n", mvs.namespace, "-f", "-", input=done.stdout)
    for document in documents:
        mvs.wait(document["metadata"]["name"], "Ready")
    assert sorted(e["Operation"] for e in writes(admin)) == ["ApplyModelVersion", "ApplyModelVersion"]
    for remote in live(admin, model):
        manifest = remote["manifest"]
        assert set(manifest["metadata"]) - set(before[manifest["version"]]["metadata"]) == {OWNER_KEY}
        unmarked = {k: v for k, v in manifest.items() if k != "metadata"}
        assert unmarked == {k: v for k, v in before[manifest["version"]].items() if k != "metadata"}
    shown = control_plane.kubectl_run("diff", "-n", mvs.namespace, "-f", "-", input=done.stdout, check=False)
    assert shown.returncode == 0, shown.stdout + shown.stderr


def test_orphans_finds_a_retain_deleted_version_and_deletes_only_it(
    control_plane: Cluster,
    tfy_service: TfyEmulatorProcess,
    emulator_service: EmulatorProcess,
    mvs: TfyModelVersions,
    admin: TfyAdminClient,
    sdk: TrueFoundry,
    model: str,
) -> None:
    """A Retain deletion whose mark release failed leaves a marked version no object owns:
    `orphans --ml-repo/--name` lists it alone (not the live object's version, not an unmarked
    one), prints the manifest that takes it back, writes nothing, and `--delete --yes` deletes
    exactly it."""
    retained = mvs.create("retained", spec(model, deletionPolicy="Retain"))
    mvs.create("live", spec(model))
    retained_id = mvs.wait("retained", "Ready")["status"]["id"]
    live_id = mvs.wait("live", "Ready")["status"]["id"]
    unmarked_id = sdk_version(sdk, model).id
    # Retain: releasing the mark (an apply without it) fails, and is best effort: the object goes.
    admin.add_fault("ApplyModelVersion", "error", http_status=500)
    mvs.delete("retained")
    mvs.wait_gone("retained")
    admin.clear_faults()
    marked = {v["id"] for v in live(admin, model) if owner_of(v) is not None}
    assert marked == {retained_id, live_id}
    admin.clear_journal()

    kubeconfig = str(control_plane.kubeconfig)

    def orphans(*args: str) -> subprocess.CompletedProcess[str]:
        scope = ("--ml-repo", REPO, "--name", model)
        return cli(tfy_service, emulator_service, "orphans", "--kubeconfig", kubeconfig, *scope, *args)

    found = orphans("-o", "json")
    assert found.returncode == 0, found.stderr
    (orphan,) = json.loads(found.stdout)
    assert (orphan["registry"], orphan["modelId"]) == ("TrueFoundry", f"{REPO}/{model}")
    assert orphan["ownerUid"] == retained["metadata"]["uid"]
    assert orphan["ownerRef"] == f"{mvs.namespace}/retained"
    adopt = orphans("--adopt-manifests")
    assert adopt.returncode == 0, adopt.stderr
    (document,) = yaml.safe_load_all(adopt.stdout)
    assert document["metadata"] == {"name": "retained", "namespace": mvs.namespace}
    assert str(document["spec"]["version"]) == orphan["versionName"]
    assert [e["Operation"] for e in writes(admin)] == []

    refused = orphans("--delete")
    assert refused.returncode == 1  # no terminal to ask, no --yes
    assert [e["Operation"] for e in writes(admin)] == []
    deleted = orphans("--delete", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert [(e["Operation"], e["VersionId"]) for e in writes(admin)] == [("DeleteModelVersion", retained_id)]
    assert {v["id"] for v in live(admin, model)} == {live_id, unmarked_id}
    assert mvs.get("live") is not None
