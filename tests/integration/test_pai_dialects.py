"""The operator's core paths under every plausible PAI answer where the docs are silent.

Error dialect (numeric 201900002/201900003, named InvalidModel(Version).NotFound) x not-found
status (400, 404) x label upsert (replace, append, reject), each with pages capped at 10 items.
One operator process and one namespace serve the whole matrix (the operator cannot know the
dialect: switching it under a running operator is exactly the point); each case runs its paths
side by side on objects and models of its own, and leaves nothing behind.

Paths, per case:
  drift     a version deleted with the official SDK behind the operator's back is recreated
  gone      deleting an object whose version is already gone completes
  relabel   a label value change converges to one label per key
  restore   a version marked for this namespace/name by a UID that no longer exists is taken over
  search    the same, found by the owner search among 61 versions at a page cap of 10
  model     a model deleted under managed versions: ModelNotFound, and deletion completes
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from alibabacloud_aiworkspace20210204 import models as sdk_models
from alibabacloud_aiworkspace20210204.client import Client
from kubernetes import client

from tests.integration.conftest import CRD_FILE
from tests.support.emulator import DEFAULT_CREDENTIAL, AdminClient, EmulatorProcess
from tests.support.kube import Cluster, unique_name
from tests.support.operator import ModelVersions, OperatorProcess, wait_for

pytestmark = pytest.mark.integration

URI = "oss://bucket.oss-cn-hangzhou.aliyuncs.com/m/"
OWNER = "pai.mlops.dev/owner-uid"
OWNER_REF = "pai.mlops.dev/owner-ref"
CASES = list(itertools.product(("numeric", "named"), (400, 404), ("replace", "append", "reject")))


def case_id(case: tuple[str, int, str]) -> str:
    return "-".join(str(part) for part in case)


@pytest.fixture(scope="module")
def matrix_namespace(kube_api: client.ApiClient) -> Iterator[str]:
    name = unique_name("dialects")
    core = client.CoreV1Api(kube_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


@pytest.fixture(scope="module")
def matrix_operator(
    control_plane: Cluster,
    emulator_service: EmulatorProcess,
    matrix_namespace: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    # The CRD first (the `crd` fixture is per test, and this operator outlives a test).
    control_plane.kubectl_run("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    control_plane.kubectl_run("wait", "--for=condition=Established", "crd/modelversions.pai.mlops.dev")
    with OperatorProcess(
        control_plane.kubeconfig,
        emulator_service.url,
        DEFAULT_CREDENTIAL,
        namespaces=(matrix_namespace,),
        resync_interval=2.0,
        log_dir=tmp_path_factory.mktemp("dialects"),
    ) as operator:
        yield operator


def labels_of(version: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((label["Key"], label["Value"]) for label in version.get("Labels") or [])


def remote(pai: AdminClient, model: str, name: str) -> dict[str, Any] | None:
    return next((v for v in pai.versions(model) if v["VersionName"] == name), None)


def creates(pai: AdminClient, model: str) -> int:
    return len([e for e in pai.journal("CreateModelVersion") if e["ModelId"] == model and e["Status"] == 200])


def sdk_create(sdk: Client, model: str, name: str, labels: dict[str, str]) -> None:
    sdk.create_model_version(
        model,
        sdk_models.CreateModelVersionRequest(
            uri=URI,
            version_name=name,
            labels=[sdk_models.Label(key=k, value=v) for k, v in labels.items()],
        ),
    )


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_core_paths_under_each_dialect(
    case: tuple[str, int, str],
    crd: str,
    matrix_operator: OperatorProcess,
    matrix_namespace: str,
    kube_api: client.ApiClient,
    pai: AdminClient,
    sdk: Client,
) -> None:
    error_dialect, status, upsert = case
    ns = matrix_namespace
    mvs = ModelVersions(kube_api, ns)
    tag = f"{error_dialect[:3]}{status}{upsert[:3]}"
    models = {path: f"model-{tag}-{path}-{uuid.uuid4().hex[:6]}" for path in ("drift", "gone", "relabel",
              "restore", "search", "model")}  # fmt: skip
    for model in models.values():
        pai.add_model(model)
    pai.set_dialect(
        error_dialect=error_dialect, not_found_status=status, label_upsert=upsert, max_page_size=10
    )
    pai.set_quota("CreateModelVersion", 0)  # the 61 versions of the search path
    name = {path: f"{tag}-{path}" for path in models}
    objects = [name[p] for p in ("drift", "gone", "relabel", "restore", "search")] + [
        f"{name['model']}-1",
        f"{name['model']}-2",
    ]
    try:
        # Arrange what a restore leaves behind: versions marked for this namespace/name by a UID
        # that no longer exists, one of them after 60 others whose labels the owner search's
        # substring filter also matches (so it lies on the 7th page of 10).
        dead = str(uuid.uuid4())
        sdk_create(sdk, models["restore"], "1.0.0", {OWNER: dead, OWNER_REF: f"{ns}/{name['restore']}",
                   "stage": "old"})  # fmt: skip
        for i in range(60):
            sdk_create(sdk, models["search"], f"1.{i}.0", {"note": f"{ns}/{name['search']}-{i}"})
        sdk_create(sdk, models["search"], "2.0.0", {OWNER: dead, OWNER_REF: f"{ns}/{name['search']}"})

        mvs.create(name["drift"], {"modelId": models["drift"], "uri": URI, "versionName": "1.0.0"})
        mvs.create(name["gone"], {"modelId": models["gone"], "uri": URI, "versionName": "1.0.0"})
        mvs.create(name["relabel"], {"modelId": models["relabel"], "uri": URI, "labels": {"stage": "dev"}})
        mvs.create(name["restore"], {"modelId": models["restore"], "uri": URI, "versionName": "1.0.0",
                   "labels": {"stage": "new"}})  # fmt: skip
        mvs.create(name["search"], {"modelId": models["search"], "uri": URI})
        for suffix in ("1", "2"):
            mvs.create(f"{name['model']}-{suffix}", {"modelId": models["model"], "uri": URI})
        ready = {obj: mvs.wait_condition(obj, "Ready", timeout=90) for obj in objects}

        # restore / search: taken over, never duplicated, one label per key.
        for path, version in (("restore", "1.0.0"), ("search", "2.0.0")):
            obj = mvs.wait_condition(name[path], "Synced", "True", "ReconcileSuccess")
            uid = obj["metadata"]["uid"]
            expected = [(OWNER_REF, f"{ns}/{name[path]}"), (OWNER, uid)]
            if path == "restore":
                expected.append(("stage", "new"))
            expected.sort()
            model, want_labels = models[path], expected
            wait_for(
                f"{path}: labels converge",
                lambda m=model, v=version, e=want_labels: labels_of(remote(pai, m, v) or {}) == e,
                timeout=30,
            )
            assert obj["status"]["versionName"] == version
        assert creates(pai, models["restore"]) == 1  # the SDK's, and no other
        assert creates(pai, models["search"]) == 61
        assert len(pai.versions(models["search"])) == 61

        # relabel: a value change converges to exactly one label per key.
        mvs.patch(name["relabel"], {"spec": {"labels": {"stage": "prod", "team": "x"}}})
        relabelled = mvs.wait_condition(name["relabel"], "Synced", "True", "ReconcileSuccess")
        version = relabelled["status"]["versionName"]
        want = sorted([("stage", "prod"), ("team", "x"), (OWNER, relabelled["metadata"]["uid"]),
                       (OWNER_REF, f"{ns}/{name['relabel']}")])  # fmt: skip
        wait_for(
            "relabel converges", lambda: labels_of(remote(pai, models["relabel"], version) or {}) == want
        )

        # drift: deleted with the SDK, recreated with its ownership labels.
        sdk.delete_model_version(models["drift"], "1.0.0", sdk_models.DeleteModelVersionRequest())
        wait_for("drift: recreated", lambda: remote(pai, models["drift"], "1.0.0"), timeout=30)
        assert creates(pai, models["drift"]) == 2
        recreated = remote(pai, models["drift"], "1.0.0") or {}
        assert dict(labels_of(recreated))[OWNER] == ready[name["drift"]]["metadata"]["uid"]

        # gone: the version vanishes, then the object is deleted: deletion completes.
        sdk.delete_model_version(models["gone"], "1.0.0", sdk_models.DeleteModelVersionRequest())
        mvs.delete(name["gone"])
        mvs.wait_gone(name["gone"], timeout=30)
        assert pai.versions(models["gone"]) == []

        # model: deleted under two managed versions.
        pai.delete_model(models["model"])
        for suffix in ("1", "2"):
            mvs.wait_condition(f"{name['model']}-{suffix}", "Synced", "False", "ModelNotFound", timeout=30)
        for suffix in ("1", "2"):
            mvs.delete(f"{name['model']}-{suffix}")
        for suffix in ("1", "2"):
            mvs.wait_gone(f"{name['model']}-{suffix}", timeout=30)

        # No path left a version without its ownership labels or with a duplicated key.
        for path in ("drift", "relabel", "restore", "search"):
            for v in pai.versions(models[path]):
                keys = [label["Key"] for label in v["Labels"]]
                assert len(keys) == len(set(keys)), (path, v)
    finally:
        pai.set_dialect(
            error_dialect="numeric", not_found_status=400, label_upsert="replace", max_page_size=None
        )
        pai.clear_faults()
        for obj in objects:
            if mvs.get(obj) is not None:
                mvs.delete(obj)
        for obj in objects:
            mvs.wait_gone(obj, timeout=60)
        pai.set_quota("CreateModelVersion", 20)  # the emulator's default
