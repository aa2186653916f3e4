"""Nothing lost by accident, on the real API server with the emulator as a process; the remote
count comes from the official Alibaba SDK, a second client.

- Uninstall (`kubectl delete -f` of the one-file install, CRDs included) deletes no remote version,
  with the operator running and with it stopped first; the CRD deletion completes.
- An operator left running through the CRD's deletion and re-creation (a reinstall) manages new
  objects afterwards without a restart.
- The deletion breaker: a selector deleting many objects at once deletes at most the threshold
  remotely; the rest wait with DeletionHeld until the batch is confirmed on the Lease.

Sizes: CI runs small N (DELETION_SAFETY_N, DELETION_SAFETY_BREAKER_N); the issue's 200 / 300 run
by hand with DELETION_SAFETY_FULL=1 (figures in the report)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from alibabacloud_aiworkspace20210204 import models as sdk_models
from alibabacloud_aiworkspace20210204.client import Client
from kubernetes import client

from tests.support import kube as kube_support
from tests.support.kube import REPO_ROOT, Cluster, unique_name
from tests.support.operator import GROUP, PLURAL, VERSION, ModelVersions, OperatorProcess, wait_for

pytestmark = pytest.mark.integration

FULL = os.environ.get("DELETION_SAFETY_FULL") == "1"
N = 200 if FULL else int(os.environ.get("DELETION_SAFETY_N", "40"))
# Breaker: FULL is the 300 objects, 200 deleted, with the shipped defaults (50 / 10 %);
# CI scales it down with a smaller threshold (the same logic, a quarter of the objects).
BREAKER_N, BREAKER_DELETED, THRESHOLD = (300, 200, 50) if FULL else (60, 40, 12)
CRD = f"{PLURAL}.{GROUP}"
CONFIRM = f"{GROUP}/confirm-deletions"


def remote_names(sdk: Client, model_id: str) -> set[str]:
    """Every version of the model, all pages, through the official SDK."""
    names: set[str] = set()
    page = 1
    while True:
        body = sdk.list_model_versions(
            model_id, sdk_models.ListModelVersionsRequest(page_number=page, page_size=100)
        ).body
        names |= {v.version_name for v in body.versions or []}
        if page * 100 >= (body.total_count or 0):
            return names
        page += 1


def spec(model_id: str, i: int) -> dict[str, Any]:
    return {"modelId": model_id, "uri": f"oss://bucket/models/{i}/", "versionName": f"1.{i}.0"}


def create_many(api: client.ApiClient, namespace: str, model_id: str, n: int, **labels: str) -> list[str]:
    custom = client.CustomObjectsApi(api)
    names = []
    for i in range(n):
        name = f"mv-{i:03d}"
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelVersion",
            "metadata": {"name": name, "labels": labels},
            "spec": spec(model_id, i),
        }
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
        names.append(name)
    return names


def objects(api: client.ApiClient, namespace: str) -> list[dict[str, Any]]:
    try:
        listed = client.CustomObjectsApi(api).list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    except client.ApiException as exc:
        if exc.status == 404:  # the CRD is gone
            return []
        raise
    return list(listed["items"])


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == ctype), {})


def wait_ready(api: client.ApiClient, namespace: str, n: int, timeout: float = 180) -> None:
    def probe() -> bool:
        ready = [o for o in objects(api, namespace) if condition(o, "Ready").get("status") == "True"]
        return len(ready) == n

    wait_for(f"{n} objects Ready", probe, timeout=timeout, interval=1.0)


def crd_exists(api: client.ApiClient, name: str = CRD) -> bool:
    try:
        client.ApiextensionsV1Api(api).read_custom_resource_definition(name)
        return True
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise


def installed_crds() -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text()) for p in sorted((REPO_ROOT / "crds").glob("*_*.yaml"))]


def any_installed_crd_exists(api: client.ApiClient) -> bool:
    """Any CRD of crds/ left: an uninstall is complete (and a reinstall starts afresh) once
    every one of them is gone, as `kubectl delete -f` without --wait=false would wait for."""
    return any(crd_exists(api, crd["metadata"]["name"]) for crd in installed_crds())


@pytest.fixture
def install_yaml(control_plane: Cluster, tmp_path: Path) -> Path:
    """The one-file install as `make dist` renders it (kustomize of deploy/: CRDs, namespace, RBAC,
    Deployment, Service); the image does not matter here, no kubelet runs it. Its namespace is
    renamed per test: without a namespace controller a deleted namespace stays Terminating, and
    the kustomize tests need pai-operator-system."""
    out = subprocess.run(
        [control_plane.kubectl, "kustomize", str(REPO_ROOT / "deploy")],
        env=control_plane.env,
        capture_output=True,
        text=True,
        check=True,
    )
    path = tmp_path / "install.yaml"
    path.write_text(out.stdout.replace("pai-operator-system", unique_name("uninstall")))
    return path


def kubectl(cluster: Cluster, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [cluster.kubectl, *args], env=cluster.env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stdout}\n{result.stderr}"
    return result


def install_crds(cluster: Cluster) -> None:
    kubectl(cluster, "apply", "--server-side", "--force-conflicts", "-f", str(REPO_ROOT / "crds"))
    kubectl(cluster, "wait", "--for=condition=Established", f"crd/{CRD}", "--timeout=60s")


def install(cluster: Cluster, path: Path) -> None:
    kubectl(cluster, "apply", "--server-side", "--force-conflicts", "-f", str(path))
    kubectl(cluster, "wait", "--for=condition=Established", f"crd/{CRD}", "--timeout=60s")


@pytest.fixture
def installed(control_plane: Cluster, install_yaml: Path, kube_api: client.ApiClient) -> Iterator[Path]:
    # Earlier tests' objects stay behind (no namespace controller deletes their namespaces), with
    # finalizers no running operator will remove: they would hold this test's CRD deletion.
    release_leftovers(kube_api)
    # The CRD may be left terminating by another test: wait until it is gone or usable.
    wait_for("no terminating CRD", lambda: not _terminating(kube_api), timeout=120)
    install(control_plane, install_yaml)
    yield install_yaml
    # The install's own objects go (a test that did not uninstall, or failed before it): a
    # Deployment left watching every namespace would make the chart refuse later installs as
    # overlapping. The CRDs stay, or come back: later tests expect them.
    rest = [
        d
        for d in yaml.safe_load_all(install_yaml.read_text())
        if d and d["kind"] != "CustomResourceDefinition"
    ]
    leftovers = install_yaml.with_name("install-without-crds.yaml")
    leftovers.write_text(yaml.safe_dump_all(rest))
    kubectl(control_plane, "delete", "-f", str(leftovers), "--ignore-not-found", "--wait=false")
    if not crd_exists(kube_api):
        install_crds(control_plane)


def release_leftovers(api: client.ApiClient) -> None:
    """Clear every namespace that holds objects of our CRDs: each is a finished test's (the
    `namespace` fixture clears its own; this also catches any other)."""
    custom = client.CustomObjectsApi(api)
    namespaces: set[str] = set()
    for group, version, plural in kube_support.our_kinds():
        try:
            items = custom.list_cluster_custom_object(group, version, plural)["items"]
        except client.ApiException as exc:
            if exc.status == 404:  # the CRD is not installed
                continue
            raise
        namespaces |= {obj["metadata"]["namespace"] for obj in items}
    for namespace in sorted(namespaces):
        kube_support.clear_namespace(api, namespace)


def _terminating(api: client.ApiClient) -> bool:
    try:
        crd = client.ApiextensionsV1Api(api).read_custom_resource_definition(CRD)
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return crd.metadata.deletion_timestamp is not None


def test_uninstall_with_the_operator_running_deletes_nothing_remotely_and_a_reinstall_is_managed(
    control_plane: Cluster,
    kube_api: client.ApiClient,
    namespace: str,
    installed: Path,
    start_operator: Callable[..., OperatorProcess],
    sdk: Client,
    model_id: str,
) -> None:
    operator = start_operator()
    names = create_many(kube_api, namespace, model_id, N)
    wait_ready(kube_api, namespace, N)
    assert len(remote_names(sdk, model_id)) == N

    started = time.monotonic()
    # --wait=false: the namespace would wait for a namespace controller this control plane lacks.
    kubectl(control_plane, "delete", "-f", str(installed), "--wait=false")
    # The CRD deletion completes: nothing stuck on a finalizer.
    wait_for("the CRD deletion completes", lambda: not crd_exists(kube_api), timeout=180, interval=0.5)
    took = time.monotonic() - started
    assert objects(kube_api, namespace) == []
    assert len(remote_names(sdk, model_id)) == N  # not one remote version deleted
    print(f"uninstall of {N} objects with the operator running: {took:.1f}s")

    # A reinstall (the CRDs: the old namespace is still terminating here), once every CRD of
    # the uninstall is gone: the same process (started again in place) manages new objects.
    wait_for("every CRD deleted", lambda: not any_installed_crd_exists(kube_api), timeout=180, interval=0.5)
    install_crds(control_plane)
    mvs = ModelVersions(kube_api, namespace)
    mvs.create("after-reinstall", spec(model_id, 999))
    mvs.wait_condition("after-reinstall", "Ready", timeout=120)
    assert "1.999.0" in remote_names(sdk, model_id)
    # A deletion after the reinstall is an ordinary one again.
    mvs.delete("after-reinstall")
    mvs.wait_gone("after-reinstall")
    assert "1.999.0" not in remote_names(sdk, model_id)
    assert len(remote_names(sdk, model_id)) == N
    assert operator.proc is not None
    assert operator.proc.poll() is None  # never restarted
    assert len(names) == N


def test_uninstall_with_the_operator_stopped_first_deletes_nothing_remotely_once_it_returns(
    control_plane: Cluster,
    kube_api: client.ApiClient,
    namespace: str,
    installed: Path,
    start_operator: Callable[..., OperatorProcess],
    sdk: Client,
    model_id: str,
) -> None:
    operator = start_operator()
    create_many(kube_api, namespace, model_id, N)
    wait_ready(kube_api, namespace, N)
    operator.stop()

    kubectl(control_plane, "delete", "-f", str(installed), "--wait=false")
    # Without the operator the CRD deletion waits on the finalizers, as it must.
    time.sleep(2)
    assert _terminating(kube_api)
    assert len(objects(kube_api, namespace)) == N

    returned = start_operator()  # back (a reinstall, or the old Deployment restarting)
    wait_for("the CRD deletion completes", lambda: not crd_exists(kube_api), timeout=180, interval=1.0)
    assert len(remote_names(sdk, model_id)) == N
    # Waiting for the CRD to come back, it stays healthy and stops cleanly on SIGTERM.
    assert returned.healthy()
    returned.stop()
    assert returned.proc is not None
    assert returned.proc.returncode == 0


def test_a_bulk_deletion_trips_the_breaker_until_the_batch_is_confirmed(
    control_plane: Cluster,
    kube_api: client.ApiClient,
    namespace: str,
    installed: Path,
    start_operator: Callable[..., OperatorProcess],
    sdk: Client,
    model_id: str,
) -> None:
    args = ["--deletion-breaker-threshold", str(THRESHOLD)]
    if not FULL:
        args += ["--deletion-breaker-fraction", "0"]  # the shipped 10 % would not bind at CI sizes
    operator = start_operator(extra_args=args)
    names = create_many(kube_api, namespace, model_id, BREAKER_N)
    wait_ready(kube_api, namespace, BREAKER_N, timeout=300)
    doomed = [n for i, n in enumerate(names) if i < BREAKER_DELETED]
    kubectl(control_plane, "label", "-n", namespace, PLURAL + "." + GROUP, *doomed, "doomed=yes")

    kubectl(control_plane, "delete", "-n", namespace, f"{PLURAL}.{GROUP}", "-l", "doomed=yes", "--wait=false")
    held = BREAKER_DELETED - THRESHOLD

    def holding() -> list[dict[str, Any]] | None:
        found = [
            o for o in objects(kube_api, namespace) if condition(o, "Synced").get("reason") == "DeletionHeld"
        ]
        return found if len(found) == held else None

    waiting = wait_for(f"{held} deletions held", holding, timeout=180, interval=1.0)
    remote = remote_names(sdk, model_id)
    assert len(remote) == BREAKER_N - THRESHOLD  # exactly the threshold deleted remotely
    message = condition(waiting[0], "Synced")["message"]
    assert "kubectl annotate lease" in message
    assert "deletionPolicy: Retain" in message
    assert f'\npai_operator_deletions_held{{registry="PAI"}} {float(held)}' in operator.metrics()
    events = client.CoreV1Api(kube_api).list_namespaced_event(namespace).items
    assert sum(1 for e in events if e.reason == "DeletionHeld") >= 1
    time.sleep(5)  # held means held: nothing trickles through
    assert len(remote_names(sdk, model_id)) == BREAKER_N - THRESHOLD

    # The confirmation, exactly as the message says.
    command = message.split("confirm batch ", 1)[1].split(": ", 1)[1].split(". To keep", 1)[0]
    argv = command.split()
    assert argv[:2] == ["kubectl", "annotate"]
    assert CONFIRM in command
    kubectl(control_plane, *argv[1:])
    started = time.monotonic()
    wait_for(
        "every doomed object gone",
        lambda: len(objects(kube_api, namespace)) == BREAKER_N - BREAKER_DELETED,
        timeout=180,
        interval=1.0,
    )
    print(f"{held} held deletions completed {time.monotonic() - started:.1f}s after confirmation")
    remote = remote_names(sdk, model_id)
    kept = {spec(model_id, i)["versionName"] for i in range(BREAKER_DELETED, BREAKER_N)}
    assert remote == kept  # all doomed gone remotely, none of the others touched
    assert '\npai_operator_deletions_held{registry="PAI"} 0.0' in operator.metrics()

    # A single delete right after: not held.
    mvs = ModelVersions(kube_api, namespace)
    mvs.delete(names[BREAKER_DELETED])
    mvs.wait_gone(names[BREAKER_DELETED], timeout=30)
    assert spec(model_id, BREAKER_DELETED)["versionName"] not in remote_names(sdk, model_id)
    # Clean up without tripping the breaker again: Retain is never held (and leaves the model's
    # versions, which no other test uses).
    for name in names[BREAKER_DELETED + 1 :]:
        mvs.patch(name, {"spec": {"deletionPolicy": "Retain"}})
        mvs.delete(name)
    wait_for("cleaned up", lambda: objects(kube_api, namespace) == [], timeout=120, interval=1.0)
