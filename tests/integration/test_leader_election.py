"""High availability for real: two operator processes (the replicas of one Deployment) against a
real kube-apiserver and the PAI emulator. One Lease, one writer, handover on SIGTERM and SIGKILL."""

from __future__ import annotations

import signal
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client

from pai_operator import __version__
from tests.integration.test_truefoundry_lifecycle import (
    API_KEY as TFY_API_KEY,
)
from tests.integration.test_truefoundry_lifecycle import (
    TfyModelVersions,
    crds,  # noqa: F401  (a fixture: both CRDs)
    tfy_namespace,  # noqa: F401  (a fixture)
    tfy_service,  # noqa: F401  (a fixture)
)
from tests.integration.test_truefoundry_lifecycle import spec as tfy_spec
from tests.support.emulator import AdminClient
from tests.support.operator import ModelVersions, OperatorProcess, wait_for
from tests.support.tfy_emulator import TfyEmulatorProcess

pytestmark = pytest.mark.integration

OWNER = "pai.mlops.dev/owner-uid"
WRITES = {"CreateModelVersion", "UpdateModelVersion", "DeleteModelVersion", "CreateModelVersionLabels",
          "DeleteModelVersionLabels"}  # fmt: skip
# Short timings for the crash cases (the smallest the election accepts are 2/1.5/1).
QUICK = ["--leader-elect-lease-duration", "4", "--leader-elect-renew-deadline", "3",
         "--leader-elect-retry-period", "1"]  # fmt: skip


def agent(identity: str) -> str:
    return f"pai-model-operator/{__version__} ({identity})"


def spec(model_id: str, **extra: Any) -> dict[str, Any]:
    return {"modelId": model_id, "uri": "oss://bucket.oss-cn-hangzhou.aliyuncs.com/ha/", **extra}


def lease(kube_api: client.ApiClient, namespace: str, name: str) -> client.V1Lease:
    return client.CoordinationV1Api(kube_api).read_namespaced_lease(name, namespace)


def holder(kube_api: client.ApiClient, namespace: str, name: str) -> str | None:
    try:
        return lease(kube_api, namespace, name).spec.holder_identity  # type: ignore[no-any-return]
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def replicas(
    start_operator: Callable[..., OperatorProcess], *extra_args: str
) -> tuple[OperatorProcess, OperatorProcess, str]:
    """Two processes with the same settings and one Lease; returns (leader, standby, lease)."""
    lease_name = f"pai-operator-{uuid.uuid4().hex[:6]}"
    a = start_operator(identity="replica-a", lease_name=lease_name, extra_args=extra_args)
    b = start_operator(identity="replica-b", lease_name=lease_name, extra_args=extra_args)
    leader = wait_for("a leader", lambda: next((p for p in (a, b) if p.is_leader()), None), timeout=30)
    standby = b if leader is a else a
    return leader, standby, lease_name


def remote_owners(pai: AdminClient, model_id: str) -> list[str]:
    return [
        next((label["Value"] for label in v.get("Labels") or [] if label["Key"] == OWNER), "")
        for v in pai.versions(model_id)
    ]


def test_two_replicas_exactly_one_leads_and_only_it_talks_to_pai(
    start_operator: Callable[..., OperatorProcess],
    kube_api: client.ApiClient,
    namespace: str,
    mvs: ModelVersions,
    pai: AdminClient,
    model_id: str,
) -> None:
    leader, standby, lease_name = replicas(start_operator)
    assert holder(kube_api, namespace, lease_name) == leader.identity
    assert lease(kube_api, namespace, lease_name).spec.lease_duration_seconds == 15  # the default

    names = [f"mv-{i}" for i in range(4)]
    for name in names:
        mvs.create(name, spec(model_id, labels={"n": name}))
    for name in names:
        mvs.wait_condition(name, "Ready")
    mvs.patch(names[0], {"spec": {"approvalStatus": "Approved"}})
    wait_for("approval", lambda: any(v["ApprovalStatus"] == "Approved" for v in pai.versions(model_id)))
    mvs.delete(names[1])
    mvs.wait_gone(names[1])

    journal = [e for e in pai.journal() if e["ModelId"] == model_id]
    assert {e["Operation"] for e in journal} >= {"CreateModelVersion", "UpdateModelVersion",
                                                 "DeleteModelVersion"}  # fmt: skip
    # Every request, reads included, came from the Lease holder; the standby never called PAI.
    assert {e["UserAgent"] for e in journal} == {agent(leader.identity or "")}
    assert standby.healthy()  # a healthy standby stays Ready
    assert not standby.is_leader()
    standby_metrics = standby.metrics()
    assert "\npai_operator_leader 0.0" in standby_metrics
    assert "pai_operator_registry_requests_total{" not in standby_metrics
    assert "became the leader" in leader.log_text()
    assert "became the leader" not in standby.log_text()
    assert holder(kube_api, namespace, lease_name) == leader.identity  # renewed all along


def test_sigkill_of_the_leader_mid_burst_the_standby_finishes_without_duplicates(
    start_operator: Callable[..., OperatorProcess],
    kube_api: client.ApiClient,
    namespace: str,
    mvs: ModelVersions,
    pai: AdminClient,
    model_id: str,
) -> None:
    # Slow writes so the burst is still going when the leader dies.
    leader, standby, lease_name = replicas(start_operator, *QUICK, "--write-rate", "4")
    names = [f"burst-{i:02d}" for i in range(16)]
    for name in names[:8]:
        mvs.create(name, spec(model_id))  # server-assigned names: the hardest to find again
    wait_for("creates under way", lambda: len(pai.journal("CreateModelVersion")) >= 3, timeout=30)
    leader.kill()
    killed_at = time.monotonic()
    for name in names[8:]:
        mvs.create(name, spec(model_id, versionName=f"1.0.{name[-2:]}"))  # created during the handover
    wait_for("the standby leads", standby.is_leader, timeout=4 + 10)
    took_over = time.monotonic() - killed_at
    objects = {name: mvs.wait_condition(name, "Ready", timeout=90) for name in names}

    uids = sorted(obj["metadata"]["uid"] for obj in objects.values())
    # One remote version per object: no duplicate, no orphan.
    assert sorted(remote_owners(pai, model_id)) == uids
    for obj in objects.values():
        assert obj["status"]["id"] == f"{model_id}:{obj['status']['versionName']}"
    assert holder(kube_api, namespace, lease_name) == standby.identity
    # After the kill, only the new leader wrote (the dead one cannot, by construction).
    late = [e for e in pai.journal() if e["ModelId"] == model_id and e["Time"] > _iso(killed_at)]
    assert {e["UserAgent"] for e in late if e["Operation"] in WRITES} <= {agent(standby.identity or "")}
    assert took_over <= 4 + 5, took_over  # lease duration + 5 s


def _iso(monotonic_instant: float) -> str:
    """The wall-clock ISO time (journal format) of a time.monotonic() instant."""
    wall = time.time() - (time.monotonic() - monotonic_instant)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall)) + f".{int(wall % 1 * 1000):03d}Z"


def test_sigterm_hands_over_without_waiting_for_the_lease_to_expire(
    start_operator: Callable[..., OperatorProcess],
    kube_api: client.ApiClient,
    namespace: str,
    mvs: ModelVersions,
    pai: AdminClient,
    model_id: str,
) -> None:
    leader, standby, lease_name = replicas(start_operator)  # default timings: a 15 s lease
    mvs.create("before", spec(model_id, versionName="1.0.0"))
    mvs.wait_condition("before", "Ready")
    assert leader.proc is not None
    leader.proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    wait_for("the standby leads", standby.is_leader, timeout=10, interval=0.1)
    handover = time.monotonic() - sent
    assert handover < 6, handover  # at the standby's next retry (2 s), far from the 15 s expiry
    assert leader.proc.wait(15) == 0
    assert "released Lease" in leader.log_text()
    assert holder(kube_api, namespace, lease_name) == standby.identity

    pai.clear_journal()
    mvs.create("after", spec(model_id, versionName="2.0.0"))
    mvs.wait_condition("after", "Ready")
    journal = [e for e in pai.journal() if e["ModelId"] == model_id]
    assert journal
    assert {e["UserAgent"] for e in journal} == {agent(standby.identity or "")}


def test_a_leader_that_loses_its_lease_stops_at_once(
    start_operator: Callable[..., OperatorProcess], kube_api: client.ApiClient, namespace: str
) -> None:
    only = start_operator(identity="replica-a", extra_args=QUICK)
    wait_for("leading", only.is_leader, timeout=30)
    # Someone else holds the lease now (what a leader cut off from the API server finds when it
    # comes back): it must stop within the renew deadline, and it must not fight for the lease.
    coordination = client.CoordinationV1Api(kube_api)
    taken = lease(kube_api, namespace, only.lease_name)
    taken.spec.holder_identity = "someone-else"
    taken.spec.renew_time = datetime.now(UTC)
    taken.spec.lease_duration_seconds = 3600
    coordination.replace_namespaced_lease(only.lease_name, namespace, taken)
    assert only.proc is not None
    code = only.proc.wait(3 + 10)
    assert code == 3, only.log_text()[-3000:]
    assert "leadership lost" in only.log_text()
    assert holder(kube_api, namespace, only.lease_name) == "someone-else"


def test_without_pod_name_or_identity_exactly_one_of_two_leads_for_both_registries(
    start_operator: Callable[..., OperatorProcess],
    kube_api: client.ApiClient,
    namespace: str,
    tfy_namespace: str,  # noqa: F811
    mvs: ModelVersions,
    pai: AdminClient,
    model_id: str,
    tfy_service: TfyEmulatorProcess,  # noqa: F811
    crds: None,  # noqa: F811
) -> None:
    """Started as the README's bare run: no POD_NAME, no --identity. Each replica is named after
    its host and pid (an empty name once made both read the free Lease as their own)."""
    tfy_service.admin.clear_journal()
    lease_name = f"pai-operator-{uuid.uuid4().hex[:6]}"
    env = {"PAI_OPERATOR_TRUEFOUNDRY_HOST": tfy_service.url, "TFY_API_KEY": TFY_API_KEY}
    a, b = (
        start_operator(lease_name=lease_name, namespaces=(namespace, tfy_namespace), extra_env=env)
        for _ in range(2)
    )
    assert (a.identity, b.identity) == (None, None)  # neither POD_NAME nor --identity
    names = {p: f"{socket.gethostname()}-{p.proc.pid if p.proc else 0}" for p in (a, b)}
    leader = wait_for("a leader", lambda: next((p for p in (a, b) if p.is_leader()), None), timeout=30)
    standby = b if leader is a else a
    for _ in range(8):  # over several retry periods: never two
        assert [p.is_leader() for p in (a, b)].count(True) == 1
        time.sleep(0.5)
    assert holder(kube_api, namespace, lease_name) == names[leader]

    mvs.create("bare", spec(model_id))
    mvs.wait_condition("bare", "Ready")
    tfy = TfyModelVersions(kube_api, tfy_namespace)
    tfy.create("bare", tfy_spec(f"bare-{uuid.uuid4().hex[:6]}"))
    tfy.wait("bare", "Ready")
    # Both registries heard from the elected process only, under its name (never "()").
    assert {e["UserAgent"] for e in pai.journal() if e["ModelId"] == model_id} == {agent(names[leader])}
    assert {e["UserAgent"] for e in tfy_service.admin.journal()} == {agent(names[leader])}
    assert "became the leader" in leader.log_text()
    assert "became the leader" not in standby.log_text()
    tfy.delete("bare")
    tfy.wait_gone("bare")
