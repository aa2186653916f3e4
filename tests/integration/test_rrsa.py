"""RRSA for real: ServiceAccount tokens the real kube-apiserver signed (TokenRequest, audience
sts.aliyuncs.com), the provider's keys from its /openid/v1/jwks, the emulator's STS
AssumeRoleWithOIDC checking them, and the operator as a process configured only by the RRSA
variables (no access key anywhere). The token file is replaced while the operator runs, as the
kubelet does on rotation: each bad token is refused with STS's code, the good one is used without
a restart, and namespace roles are assumed from the RRSA identity."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.support.emulator import EmulatorProcess
from tests.support.kube import Cluster, unique_name
from tests.support.oidc import AUDIENCE, Signer, unverified_claims, unverified_header
from tests.support.operator import ModelVersions, OperatorProcess, wait_for

pytestmark = pytest.mark.integration

ACCOUNT = "7777777777777777"
TEAM_ACCOUNT = "8888888888888888"
PROVIDER = f"acs:ram::{ACCOUNT}:oidc-provider/ack-rrsa-local"
ROLE = f"acs:ram::{ACCOUNT}:role/pai-operator-rrsa"
TEAM_ROLE = f"acs:ram::{TEAM_ACCOUNT}:role/pai-team"
ROLE_ANNOTATION = "pai.mlops.dev/role-arn"


def raw(cluster: Cluster, path: str) -> Any:
    return json.loads(cluster.kubectl_run("get", "--raw", path).stdout)


def request_token(core: client.CoreV1Api, namespace: str, name: str, audience: str | None) -> str:
    spec = client.V1TokenRequestSpec(audiences=[audience] if audience else [], expiration_seconds=600)
    answer = core.create_namespaced_service_account_token(
        name, namespace, client.AuthenticationV1TokenRequest(spec=spec)
    )
    return str(answer.status.token)


def expired_copy(cluster: Cluster, token: str) -> str:
    """The API server's own token, its times moved an hour back and signed again with the API
    server's signing key: a token as it would be had the kubelet stopped rotating it
    (TokenRequest will not issue one shorter than 10 minutes)."""
    if cluster.service_account_key is None:
        # Only for a cluster of its own (PAI_TEST_KUBECONFIG): the signing key stays on its nodes.
        pytest.skip("an external cluster (PAI_TEST_KUBECONFIG) does not share its ServiceAccount signing key")
    claims = unverified_claims(token)
    for claim in ("exp", "iat", "nbf"):
        claims[claim] -= 3600
    signer = Signer.from_pem(cluster.service_account_key, kid=unverified_header(token)["kid"])
    return signer.token(claims)


def swap(path: Path, token: str) -> None:
    """Replace the file as the kubelet's atomic writer does (a new file renamed over it)."""
    staged = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}")
    staged.write_text(token)
    staged.replace(path)


@pytest.fixture
def rrsa_namespace(kube_api: client.ApiClient) -> Iterator[tuple[str, str]]:
    """The operator's namespace with its ServiceAccount, and an unrelated one's."""
    core = client.CoreV1Api(kube_api)
    name = unique_name("rrsa")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    for sa in ("pai-operator", "someone-else"):
        core.create_namespaced_service_account(
            name, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=sa))
        )
    yield name, "pai-operator"
    core.delete_namespace(name)


def test_operator_acts_with_tokens_the_api_server_signed(
    control_plane: Cluster,
    kube_api: client.ApiClient,
    crd: str,
    rrsa_namespace: tuple[str, str],
    tmp_path: Path,
) -> None:
    core = client.CoreV1Api(kube_api)
    namespace, service_account = rrsa_namespace
    team = unique_name("team")
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=team, annotations={ROLE_ANNOTATION: TEAM_ROLE}))
    )
    subject = f"system:serviceaccount:{namespace}:{service_account}"

    # The provider as RAM would have it registered: the issuer the API server names in its
    # discovery document and the keys it publishes.
    issuer = raw(control_plane, "/.well-known/openid-configuration")["issuer"]
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(raw(control_plane, "/openid/v1/jwks")))
    good = request_token(core, namespace, service_account, AUDIENCE)
    assert unverified_claims(good)["sub"] == subject
    assert unverified_claims(good)["iss"] == issuer
    refused = [
        (
            request_token(core, namespace, service_account, None),
            "AuthenticationFail.OIDCToken.AudienceNotMatch",
        ),
        (request_token(core, namespace, "someone-else", AUDIENCE), "AuthenticationFail.NoPermission"),
        (expired_copy(control_plane, good), "AuthenticationFail.OIDCToken.Expired"),
    ]

    args = [
        "--oidc-provider", f"{PROVIDER}={issuer}@{jwks}",
        "--role-subject", f"{ROLE}={subject}",
        "--role", TEAM_ROLE,
        "--sts-token-lifetime", "8",
    ]  # fmt: skip
    with EmulatorProcess(credentials=[], models=(), extra_args=args) as emulator:
        model = f"model-{uuid.uuid4().hex[:8]}"
        emulator.admin.add_model(model, ACCOUNT)
        emulator.admin.add_model(model, TEAM_ACCOUNT)
        token_file = tmp_path / "rrsa-tokens" / "token"
        token_file.parent.mkdir()
        swap(token_file, refused[0][0])
        operator = OperatorProcess(
            control_plane.kubeconfig,
            emulator.url,
            None,  # no access key: RRSA only
            namespaces=(namespace, team),
            log_dir=tmp_path,
            extra_args=["--sts-endpoint", emulator.url],
            extra_env={
                "ALIBABA_CLOUD_ROLE_ARN": ROLE,
                "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": PROVIDER,
                "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(token_file),
            },
        )
        with operator.start():
            mvs = ModelVersions(kube_api, namespace)
            mvs.create("mv", {"modelId": model, "uri": "oss://bucket/models/m/"})
            started = time.monotonic()
            for index, (token, code) in enumerate(refused):
                if index:
                    swap(token_file, token)  # rotation: read on the next exchange, no restart

                def shows(code: str = code) -> bool:
                    cond = mvs.condition("mv", "Synced") or {}
                    return cond.get("reason") == "AuthFailed" and str(cond.get("message", "")).startswith(
                        code
                    )

                wait_for(f"Synced=False AuthFailed {code}", shows, timeout=60)
            swap(token_file, good)
            ready = mvs.wait_condition("mv", "Ready", timeout=60)
            assert ready["status"]["atProvider"]["ownerId"] == ACCOUNT

            # A namespace mapped to another account's role: AssumeRole signed with the RRSA
            # identity's credentials.
            ModelVersions(kube_api, team).create("mv", {"modelId": model, "uri": "oss://bucket/models/t/"})
            team_ready = ModelVersions(kube_api, team).wait_condition("mv", "Ready", timeout=60)
            assert team_ready["status"]["atProvider"]["ownerId"] == TEAM_ACCOUNT

            # Credentials of 8 s: refreshed by new exchanges (the token file re-read) while
            # drift checks keep working.
            time.sleep(12)
            journal = emulator.admin.journal()
            elapsed = time.monotonic() - started
            log = operator.log_text()

        exchanges = [e for e in journal if e["Operation"] == "AssumeRoleWithOIDC"]
        codes = [e["Code"] for e in exchanges if e["Status"] != 200]
        assert {code for _, code in refused} <= set(codes)
        assert set(codes) == {code for _, code in refused}
        # No hot loop: refusals are held off (10 s) unless the token file changes.
        assert len(codes) <= 3 + elapsed / 10 + 2, codes
        good_exchanges = [e for e in exchanges if e["Status"] == 200]
        assert len(good_exchanges) >= 2  # refreshed before expiry
        # The journal names the subject of every token that passed the token checks.
        assert {e["Subject"] for e in good_exchanges} == {subject}
        trust_refusals = {
            e.get("Subject") for e in exchanges if e["Code"] == "AuthenticationFail.NoPermission"
        }
        assert trust_refusals == {f"system:serviceaccount:{namespace}:someone-else"}
        assert all(e["RoleSessionName"] == "pai-operator" for e in exchanges)

        assumed = [e for e in journal if e["Operation"] == "AssumeRole"]
        assert assumed, "the team role was never assumed"
        assert {(e["Status"], e["Account"], e["RoleArn"]) for e in assumed} == {(200, ACCOUNT, TEAM_ROLE)}
        assert {e["RoleSessionName"] for e in assumed} == {f"pai-operator.{team}"}
        pai_calls = [e for e in journal if e.get("ModelId") == model]
        assert {e["Account"] for e in pai_calls} == {ACCOUNT, TEAM_ACCOUNT}
        assert [e for e in journal if e["Code"] == "InvalidSecurityToken.Expired"] == []
        assert [v["OwnerId"] for v in emulator.admin.versions(model, ACCOUNT)] == [ACCOUNT]

    # Neither the OIDC tokens nor the STS credentials reach the log.
    for token in [good, *(t for t, _ in refused)]:
        assert token.split(".")[2] not in log
    assert not re.search(r"CAIS[A-Za-z0-9_-]{20,}", log)
    assert "RRSA, role " + ROLE in log  # the identity it acts as is logged at start
