"""RRSA: the operator's own identity from the RRSA variables, exchanged with STS
AssumeRoleWithOIDC through alibabacloud-credentials against the emulator's STS over real HTTP
(cached, refreshed before expiry, the token file re-read, refusals as AuthError with STS's code
and held off), and namespace roles assumed from it."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pai_emulator.config import EmulatorConfig, OidcProvider
from pai_operator.pai import AuthError, PaiClient, PaiClientConfig
from pai_operator.pai.credentials import (
    AssumedRoleCredentialsProvider,
    RrsaCredentialsProvider,
    SourceCredentials,
)
from tests.support.emulator import emulator_in_loop
from tests.support.oidc import Signer

ACCOUNT = "5555555555555555"
TEAM_ACCOUNT = "6666666666666666"
ISSUER = "https://oidc.example/cluster-1"
PROVIDER_ARN = f"acs:ram::{ACCOUNT}:oidc-provider/ack-rrsa-cluster-1"
ROLE = f"acs:ram::{ACCOUNT}:role/pai-operator"
TEAM_ROLE = f"acs:ram::{TEAM_ACCOUNT}:role/team"
NAMESPACE, NAME = "pai-operator-system", "pai-operator"
SIGNER = Signer(kid="k1")


@pytest.fixture
async def sts() -> AsyncIterator[str]:
    from pai_emulator.config import parse_role_arn

    team = parse_role_arn(TEAM_ROLE)
    assert team is not None
    config = EmulatorConfig(
        oidc_providers=[OidcProvider(PROVIDER_ARN, ACCOUNT, ISSUER, SIGNER.jwks())],
        role_subjects={ROLE: [f"system:serviceaccount:{NAMESPACE}:{NAME}"]},
        roles=[team],
        models=[f"{ACCOUNT}/m", f"{TEAM_ACCOUNT}/m"],
        sts_token_lifetime=2,
        admin=True,
    )
    async with emulator_in_loop(config) as url:
        yield url


async def journal(url: str, operation: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as http:
        entries = (await http.get(f"{url}/_emulator/journal")).json()["Entries"]
    return [e for e in entries if e["Operation"] == operation]


def token_file(tmp_path: Path, token: str) -> Path:
    """Written as the kubelet does: a new file swapped in, never rewritten in place."""
    path = tmp_path / "token"
    staged = tmp_path / f".token-{os.getpid()}-{len(list(tmp_path.iterdir()))}"
    staged.write_text(token)
    staged.replace(path)
    return path


def good(name: str = NAME, **kwargs: Any) -> str:
    return SIGNER.service_account_token(ISSUER, NAMESPACE, name, **kwargs)


def rrsa(sts: str, path: Path, **kwargs: Any) -> RrsaCredentialsProvider:
    return RrsaCredentialsProvider(ROLE, PROVIDER_ARN, str(path), sts_endpoint=sts, **kwargs)


def test_the_environment_chooses_the_identity(caplog: pytest.LogCaptureFixture) -> None:
    env = {
        "ALIBABA_CLOUD_ROLE_ARN": ROLE,
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": PROVIDER_ARN,
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE": "/var/run/secrets/ack.alibabacloud.com/rrsa-tokens/token",
    }
    source = SourceCredentials.from_environment(env, sts_endpoint="sts-vpc.cn-hangzhou.aliyuncs.com")
    provider = source.operator_provider()
    assert isinstance(provider, RrsaCredentialsProvider)
    assert (provider.role_arn, provider.oidc_provider_arn, provider.session_name) == (
        ROLE,
        PROVIDER_ARN,
        "pai-operator",
    )
    named = SourceCredentials.from_environment({**env, "ALIBABA_CLOUD_ROLE_SESSION_NAME": "replica-1"})
    assert isinstance(named.operator_provider(), RrsaCredentialsProvider)
    assert named.operator_provider().session_name == "replica-1"  # type: ignore[union-attr]
    # Access keys in the environment win, as in the library's chain; nothing set: the chain.
    keys = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "id", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "secret"}
    assert SourceCredentials.from_environment({**env, **keys}).operator_provider() is None
    assert SourceCredentials.from_environment({}).operator_provider() is None
    # Incomplete RRSA: the chain, and a warning naming what is missing (never a value).
    with caplog.at_level(logging.WARNING):
        partial = {k: v for k, v in env.items() if k != "ALIBABA_CLOUD_OIDC_PROVIDER_ARN"}
        assert SourceCredentials.from_environment(partial).operator_provider() is None
    assert "ALIBABA_CLOUD_OIDC_PROVIDER_ARN" in caplog.text
    assert ROLE not in caplog.text


async def test_exchanged_once_refreshed_before_expiry_and_accepted_by_pai(sts: str, tmp_path: Path) -> None:
    provider = rrsa(sts, token_file(tmp_path, good()))
    first = await asyncio.gather(*(provider.get_credentials() for _ in range(10)))
    assert len({c.access_key_id for c in first}) == 1  # concurrent callers share one exchange
    assert first[0].security_token
    assert len(await journal(sts, "AssumeRoleWithOIDC")) == 1
    # A rotated token file is what the next exchange sends.
    token_file(tmp_path, good(issued_at=time.time() - 60))
    await asyncio.sleep(1.8)  # 2 s credentials: refreshed after 80% of their lifetime
    second = await provider.get_credentials()
    assert second.access_key_id != first[0].access_key_id
    calls = await journal(sts, "AssumeRoleWithOIDC")
    assert [(c["Status"], c["Subject"], c["RoleSessionName"]) for c in calls] == [
        (200, f"system:serviceaccount:{NAMESPACE}:{NAME}", "pai-operator")
    ] * 2
    assert calls[0]["TokenIssuedAt"] != calls[1]["TokenIssuedAt"]  # the rotated token was sent
    async with PaiClient(PaiClientConfig(endpoint=sts), provider) as client:
        assert [v async for v in client.iter_model_versions("m")] == []
    pai_calls = await journal(sts, "ListModelVersions")
    assert {c["Account"] for c in pai_calls} == {ACCOUNT}


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (lambda: good(issued_at=1_000_000), "AuthenticationFail.OIDCToken.Expired"),
        (
            lambda: good(audience="https://kubernetes.default.svc"),
            "AuthenticationFail.OIDCToken.AudienceNotMatch",
        ),
        (lambda: good(name="default"), "AuthenticationFail.NoPermission"),
    ],
    ids=["expired", "audience", "other-service-account"],
)
async def test_refusals_are_auth_errors_held_off_until_the_token_changes(
    sts: str, tmp_path: Path, token: Any, code: str
) -> None:
    path = token_file(tmp_path, token())
    provider = rrsa(sts, path, refusal_holdoff=60)
    for _ in range(5):
        with pytest.raises(AuthError) as caught:
            await provider.get_credentials()
        assert caught.value.code == code
        assert caught.value.status == 401
    assert caught.value.message.startswith(f"AssumeRoleWithOIDC of {ROLE} refused: {code}")
    # No hot loop: five callers, one exchange.
    assert len(await journal(sts, "AssumeRoleWithOIDC")) == 1
    # The kubelet writes a good token: used at once, hold-off or not.
    token_file(tmp_path, good())
    assert (await provider.get_credentials()).security_token
    assert [c["Status"] for c in await journal(sts, "AssumeRoleWithOIDC")] == [401, 200]


async def test_a_missing_token_file_is_retryable(sts: str, tmp_path: Path) -> None:
    from pai_operator.pai import CredentialsError

    with pytest.raises(CredentialsError) as caught:
        await rrsa(sts, tmp_path / "not-yet").get_credentials()
    assert caught.value.retryable
    assert not isinstance(caught.value, AuthError)


async def test_namespace_roles_are_assumed_from_the_rrsa_identity(sts: str, tmp_path: Path) -> None:
    source = SourceCredentials(own=rrsa(sts, token_file(tmp_path, good())))
    team = AssumedRoleCredentialsProvider(TEAM_ROLE, "pai-operator.team", source=source, sts_endpoint=sts)
    async with PaiClient(PaiClientConfig(endpoint=sts), team) as client:
        assert [v async for v in client.iter_model_versions("m")] == []
    (assumed,) = await journal(sts, "AssumeRole")
    # Signed with the RRSA role's STS credentials: the caller is the RRSA role's account.
    assert (assumed["Status"], assumed["Account"], assumed["RoleArn"]) == (200, ACCOUNT, TEAM_ROLE)
    assert {c["Account"] for c in await journal(sts, "ListModelVersions")} == {TEAM_ACCOUNT}


async def test_a_refused_rrsa_identity_fails_namespace_roles_with_its_code(sts: str, tmp_path: Path) -> None:
    source = SourceCredentials(own=rrsa(sts, token_file(tmp_path, good(name="intruder"))))
    team = AssumedRoleCredentialsProvider(TEAM_ROLE, "pai-operator.team", source=source, sts_endpoint=sts)
    with pytest.raises(AuthError) as caught:
        await team.get_credentials()
    assert caught.value.code == "AuthenticationFail.NoPermission"
    assert await journal(sts, "AssumeRole") == []
