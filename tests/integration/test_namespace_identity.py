"""Many teams, many accounts: a real kube-apiserver, the operator as a process, and the emulator
(PAI + STS AssumeRole, with accounts) over HTTP. Namespaces are mapped to RAM roles by the
admin-owned annotation pai.mlops.dev/role-arn; the operator's own key assumes them."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.support.emulator import Credential, EmulatorProcess
from tests.support.kube import Cluster, unique_name
from tests.support.operator import ModelVersions, OperatorProcess, wait_for

pytestmark = pytest.mark.integration

ROLE_ANNOTATION = "pai.mlops.dev/role-arn"
OWNER = "pai.mlops.dev/owner-uid"
DEFAULT_ACCOUNT = "1000000000000001"
ACCOUNT_A = "1111111111111111"
ACCOUNT_B = "2222222222222222"
ROLE_A = f"acs:ram::{ACCOUNT_A}:role/team-a"
ROLE_B = f"acs:ram::{ACCOUNT_B}:role/team-b"
OPERATOR_KEY = Credential("operator-key", "operator-secret")
TOKEN_LIFETIME = 6  # seconds: every test outlives several tokens


@pytest.fixture(scope="module")
def accounts() -> Iterator[EmulatorProcess]:
    args = ["--role", ROLE_A, "--role", ROLE_B, "--sts-token-lifetime", str(TOKEN_LIFETIME)]
    with EmulatorProcess(credentials=[OPERATOR_KEY], models=(), extra_args=args) as process:
        yield process


@pytest.fixture
def model(accounts: EmulatorProcess) -> str:
    """One model id, present in all three accounts (three different models)."""
    model_id = f"model-{uuid.uuid4().hex[:8]}"
    for account in (DEFAULT_ACCOUNT, ACCOUNT_A, ACCOUNT_B):
        accounts.admin.add_model(model_id, account)
    return model_id


@pytest.fixture
def make_namespace(kube_api: client.ApiClient) -> Iterator[Callable[[str | None], str]]:
    core = client.CoreV1Api(kube_api)
    made: list[str] = []

    def make(role_arn: str | None) -> str:
        name = unique_name("id")
        annotations = {ROLE_ANNOTATION: role_arn} if role_arn else {}
        core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name, annotations=annotations))
        )
        made.append(name)
        return name

    yield make
    for name in made:
        try:
            core.delete_namespace(name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise


@pytest.fixture
def run_operator(
    control_plane: Cluster, accounts: EmulatorProcess, crd: str, tmp_path: Path
) -> Iterator[Callable[..., OperatorProcess]]:
    started: list[OperatorProcess] = []

    def run(namespaces: tuple[str, ...], *extra: str) -> OperatorProcess:
        proc = OperatorProcess(
            control_plane.kubeconfig,
            accounts.url,
            OPERATOR_KEY,
            namespaces=namespaces,
            log_dir=tmp_path,
            extra_args=["--sts-endpoint", accounts.url, *extra],
        )
        started.append(proc)
        return proc.start()

    yield run
    for proc in started:
        proc.stop()


def spec(model_id: str, **extra: Any) -> dict[str, Any]:
    return {"modelId": model_id, "uri": "oss://bucket/models/m/", **extra}


def owners(accounts: EmulatorProcess, model_id: str, account: str) -> set[str]:
    versions = accounts.admin.versions(model_id, account)
    return {label["Value"] for v in versions for label in v["Labels"] if label["Key"] == OWNER}


def test_each_team_acts_in_its_own_account(
    accounts: EmulatorProcess,
    model: str,
    make_namespace: Callable[[str | None], str],
    run_operator: Callable[..., OperatorProcess],
    kube_api: client.ApiClient,
) -> None:
    team_a, team_b, unmapped = make_namespace(ROLE_A), make_namespace(ROLE_B), make_namespace(None)
    mvs_a, mvs_b, mvs_c = (ModelVersions(kube_api, ns) for ns in (team_a, team_b, unmapped))
    started = time.monotonic()
    operator = run_operator((team_a, team_b, unmapped))

    mvs_a.create("mv", spec(model, versionDescription="a"))
    mvs_b.create("mv", spec(model, versionDescription="b"))
    # A tenant of team B names team A's role on its object: ignored, it acts as team B.
    mvs_b.create("sneaky", spec(model), annotations={ROLE_ANNOTATION: ROLE_A})
    mvs_c.create("mv", spec(model))  # no mapping, default mode: the operator's own identity
    uid = {
        (ns, name): mvs.wait_condition(name, "Ready", timeout=90)["metadata"]["uid"]
        for ns, mvs, names in (
            (team_a, mvs_a, ["mv"]),
            (team_b, mvs_b, ["mv", "sneaky"]),
            (unmapped, mvs_c, ["mv"]),
        )
        for name in names
    }

    # Each version is in its team's account and only there.
    assert owners(accounts, model, ACCOUNT_A) == {uid[(team_a, "mv")]}
    assert owners(accounts, model, ACCOUNT_B) == {uid[(team_b, "mv")], uid[(team_b, "sneaky")]}
    assert owners(accounts, model, DEFAULT_ACCOUNT) == {uid[(unmapped, "mv")]}
    # Same model id, same first version name in each account: three versions, no collision.
    assert {v["VersionName"] for v in accounts.admin.versions(model, ACCOUNT_A)} == {"0.1.0"}
    assert {v["VersionName"] for v in accounts.admin.versions(model, ACCOUNT_B)} == {"0.1.0", "0.2.0"}

    journal = accounts.admin.journal()
    sessions = {(e["RoleArn"], e["RoleSessionName"]) for e in journal if e["Operation"] == "AssumeRole"}
    assert sessions == {(ROLE_A, f"pai-operator.{team_a}"), (ROLE_B, f"pai-operator.{team_b}")}
    pai_calls = [e for e in journal if e.get("ModelId") == model]
    assert {e["Account"] for e in pai_calls} == {DEFAULT_ACCOUNT, ACCOUNT_A, ACCOUNT_B}
    # Batched observation lists per identity: never one list answering for two accounts.
    lists = [e for e in pai_calls if e["Operation"] == "ListModelVersions"]
    assert all(e["Status"] == 200 for e in lists)

    # Tokens expire every few seconds; drift checks and a change keep working across several
    # lifetimes because the operator refreshes before expiry.
    time.sleep(2.5 * TOKEN_LIFETIME)
    mvs_a.patch("mv", {"spec": {"versionDescription": "a2"}})
    obj = mvs_a.wait_condition("mv", "Synced", timeout=60)
    wait_for(
        "the update in account A",
        lambda: accounts.admin.versions(model, ACCOUNT_A)[0]["VersionDescription"] == "a2",
        timeout=30,
    )
    assert obj["status"]["atProvider"]["ownerId"] == ACCOUNT_A  # status shows whose version it is
    journal = accounts.admin.journal()
    refreshes = [e for e in journal if e["Operation"] == "AssumeRole" and e["RoleArn"] == ROLE_A]
    assert len(refreshes) >= 3, refreshes
    assert all(e["Status"] == 200 for e in refreshes)
    expired = [e for e in journal if e["Code"] == "InvalidSecurityToken.Expired"]
    assert expired == []
    # No hot loop on STS: about one AssumeRole per 0.8 token lifetime per role, not per request.
    assert len(refreshes) <= 2 + (time.monotonic() - started) / (0.7 * TOKEN_LIFETIME)
    # No credential in the operator's log.
    assert OPERATOR_KEY.access_key_secret not in operator.log_text()
    assert not re.search(r"CAIS[A-Za-z0-9_-]{20,}", operator.log_text())


def test_required_identity_and_unassumable_roles(
    accounts: EmulatorProcess,
    model: str,
    make_namespace: Callable[[str | None], str],
    run_operator: Callable[..., OperatorProcess],
    kube_api: client.ApiClient,
) -> None:
    unmapped = make_namespace(None)
    broken = make_namespace(f"acs:ram::{ACCOUNT_A}:role/nobody")
    team_a = make_namespace(ROLE_A)
    operator = run_operator((unmapped, broken, team_a), "--require-namespace-identity")
    mvs_u, mvs_x, mvs_a = (ModelVersions(kube_api, ns) for ns in (unmapped, broken, team_a))

    mvs_u.create("mv", spec(model))
    mvs_x.create("mv", spec(model))
    mvs_a.create("mv", spec(model))
    mvs_a.wait_condition("mv", "Ready", timeout=90)
    refused = mvs_u.wait_condition("mv", "Synced", "False", reason="NoCredentials", timeout=60)
    cond = next(c for c in refused["status"]["conditions"] if c["type"] == "Synced")
    assert ROLE_ANNOTATION in cond["message"]
    failed = mvs_x.wait_condition("mv", "Synced", "False", reason="AuthFailed", timeout=60)
    cond = next(c for c in failed["status"]["conditions"] if c["type"] == "Synced")
    assert cond["message"].startswith("EntityNotExist.Role"), cond

    # No PAI call for the unmapped namespace, nothing in the default account, and no hot loop:
    # the refused objects are looked at again at the resync pace (3 s here), not continuously.
    accounts.admin.clear_journal()
    time.sleep(7)
    journal = accounts.admin.journal()
    assert accounts.admin.versions(model, DEFAULT_ACCOUNT) == []
    assert [e for e in journal if e.get("Account") == DEFAULT_ACCOUNT and e.get("ModelId") == model] == []
    failing_sts = [e for e in journal if e["Operation"] == "AssumeRole" and e["Status"] != 200]
    assert 1 <= len(failing_sts) <= 4, failing_sts
    assert {e["Code"] for e in failing_sts} == {"EntityNotExist.Role"}

    # The credentials library's own failure log (whole STS answers, tracebacks) stays out.
    assert "Refresh credentials failed" not in operator.log_text()
    assert "string to sign" not in operator.log_text().lower()

    # An object that never reached PAI is let go when deleted, identity or not.
    mvs_u.delete("mv")
    mvs_u.wait_gone("mv", timeout=30)
    assert operator.healthy()
