"""Status tells the truth about the current generation, as the tools that read it see it: the real
kstatus library (hack/kstatus, what Flux's health checks use) and `kubectl wait` fed the live
object, and Argo CD's health Lua run on it. The real kube-apiserver, the PAI emulator as a process
refusing writes on demand, and the operator as a process."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from alibabacloud_aiworkspace20210204 import models as sdk_models
from alibabacloud_aiworkspace20210204.client import Client

from tests.integration.conftest import one_remote
from tests.support.emulator import AdminClient
from tests.support.kube import Cluster, kstatus
from tests.support.operator import ModelVersions, OperatorProcess, wait_for
from tests.unit.test_argocd_health import HEALTH_LUA, run_health

pytestmark = pytest.mark.integration

RESOURCE = "modelversions.pai.mlops.dev"
REQUEST = "pai.mlops.dev/reconcile-requested-at"


def _spec(model_id: str, **extra: Any) -> dict[str, Any]:
    return {"modelId": model_id, "uri": "oss://bucket/m/", "versionName": "1.0.0", **extra}


def kubectl_wait_ready(cluster: Cluster, namespace: str, name: str, timeout: str = "3s") -> bool:
    """`kubectl wait --for=condition=Ready`, as the README tells users (and CI pipelines) to run it."""
    result = cluster.kubectl_run(
        "wait",
        "--for=condition=Ready",
        f"{RESOURCE}/{name}",
        "-n",
        namespace,
        f"--timeout={timeout}",
        check=False,
    )
    return result.returncode == 0


def argocd_health(obj: dict[str, Any]) -> str:
    return run_health(HEALTH_LUA, obj)["status"]


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == ctype)


def test_kstatus_kubectl_wait_and_argocd_follow_what_reached_pai(
    control_plane: Cluster,
    operator: OperatorProcess,
    mvs: ModelVersions,
    pai: AdminClient,
    model_id: str,
    namespace: str,
) -> None:
    mvs.create("mv", _spec(model_id, versionDescription="before"))
    obj = mvs.wait_condition("mv", "Ready")
    assert kstatus(control_plane, RESOURCE, namespace, "mv").status == "Current"
    assert kubectl_wait_ready(control_plane, namespace, "mv")
    assert argocd_health(obj) == "Healthy"
    assert {c["type"]: c["status"] for c in obj["status"]["conditions"]} == {
        "Ready": "True",
        "Synced": "True",
        "Reconciling": "False",
        "Stalled": "False",
    }

    # PAI refuses every update (503): the new generation is not applied, and nobody says it is.
    pai.add_fault("UpdateModelVersion", "error", code="ServiceUnavailable", http_status=503)
    mvs.patch("mv", {"spec": {"versionDescription": "after"}})
    obj = mvs.wait_condition("mv", "Reconciling", reason="UpdateFailed")
    ready = condition(obj, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "UpdateFailed")
    assert "still exists" in ready["message"]
    assert obj["status"]["atProvider"]["approvalStatus"]  # the remote version, as it still is
    assert condition(obj, "Stalled")["status"] == "False"
    state = kstatus(control_plane, RESOURCE, namespace, "mv")
    assert state.status == "InProgress", state
    started = time.monotonic()
    assert not kubectl_wait_ready(control_plane, namespace, "mv", timeout="3s")
    assert time.monotonic() - started >= 2.5  # it waited, then timed out: no early "condition met"
    assert argocd_health(mvs.get("mv") or {}) == "Progressing"
    assert one_remote(pai, model_id)["VersionDescription"] == "before"
    assert pai.journal("UpdateModelVersion")  # really refused by PAI, not skipped

    # The fault clears: the retry applies generation 2, and every reader says done.
    pai.clear_faults()
    obj = mvs.wait_condition("mv", "Ready", timeout=30)
    assert one_remote(pai, model_id)["VersionDescription"] == "after"
    assert kstatus(control_plane, RESOURCE, namespace, "mv").status == "Current"
    assert kubectl_wait_ready(control_plane, namespace, "mv")
    assert argocd_health(obj) == "Healthy"

    # A spec no retry can fix (metrics over PAI's 8192 characters): Failed, not a wait until timeout.
    big = {"Results": [{"Metrics": {"notes": "x" * 9000}}]}
    mvs.patch("mv", {"spec": {"metrics": big}})
    obj = mvs.wait_condition("mv", "Stalled", reason="InvalidSpec")
    assert condition(obj, "Ready")["reason"] == "NotApplied"
    state = kstatus(control_plane, RESOURCE, namespace, "mv")
    assert state.status == "Failed", state
    assert "8192" in state.message
    assert not kubectl_wait_ready(control_plane, namespace, "mv", timeout="1s")
    assert argocd_health(obj) == "Degraded"

    # Fixed by a human: Current again.
    mvs.patch("mv", {"spec": {"metrics": {"Results": [{"Metrics": {"cer": 0.1}}]}}})
    mvs.wait_condition("mv", "Ready")
    assert kstatus(control_plane, RESOURCE, namespace, "mv").status == "Current"
    assert one_remote(pai, model_id)["Metrics"] == {"Results": [{"Metrics": {"cer": 0.1}}]}

    mvs.delete("mv")
    mvs.wait_gone("mv")


def test_reconcile_now_repairs_drift_within_seconds_with_an_hourly_resync(
    start_operator: Callable[..., OperatorProcess],
    mvs: ModelVersions,
    pai: AdminClient,
    model_id: str,
    sdk: Client,
) -> None:
    # Observation far away: the resync bounds it from above, the minimum interval from below
    # (otherwise the read budget would observe this small fleet every few seconds).
    operator = start_operator(resync_interval=3600, extra_args=["--min-observation-interval", "3600"])
    mvs.create("mv", _spec(model_id, versionDescription="declared"))
    mvs.wait_condition("mv", "Ready")
    sdk.update_model_version(
        model_id, "1.0.0", sdk_models.UpdateModelVersionRequest(version_description="changed by hand")
    )
    time.sleep(3)  # what a resync of seconds would have repaired by now
    assert one_remote(pai, model_id)["VersionDescription"] == "changed by hand"
    generation = (mvs.get("mv") or {})["metadata"]["generation"]

    pai.clear_journal()
    mvs.patch("mv", {"metadata": {"annotations": {REQUEST: "2026-12-05T13:00:00Z"}}})
    started = time.monotonic()
    wait_for(
        "drift repaired",
        lambda: one_remote(pai, model_id)["VersionDescription"] == "declared",
        timeout=10,
    )
    repaired_in = time.monotonic() - started
    obj = wait_for(
        "request recorded",
        lambda: (
            (o := mvs.get("mv")) and o["status"].get("lastHandledReconcileAt") == "2026-12-05T13:00:00Z" and o
        ),
        timeout=10,
    )
    assert obj["metadata"]["generation"] == generation  # no spec change was needed
    assert f"requested pass of {obj['metadata']['namespace']}/mv" in operator.log_text()
    assert [e["Operation"] for e in pai.journal() if e["Operation"] == "UpdateModelVersion"] == [
        "UpdateModelVersion"
    ]
    assert repaired_in < 5, repaired_in

    # Handled once: the same value again is no new request (nothing more is read or written).
    pai.clear_journal()
    time.sleep(2)
    assert [e for e in pai.journal() if e.get("ModelId") == model_id] == []

    mvs.delete("mv")
    mvs.wait_gone("mv")
