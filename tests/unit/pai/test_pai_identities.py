"""Per-namespace identities: the client pool (identity per namespace, clients per identity,
require mode), role assumption through alibabacloud-credentials against the emulator's STS over
real HTTP (refresh before expiry, STS error codes), and the reconciler's NoCredentials."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from pai_emulator.config import AccessKey, EmulatorConfig, parse_role_arn
from pai_operator.pai import AuthError, CredentialsError, NoCredentialsError
from pai_operator.pai.credentials import AssumedRoleCredentialsProvider, SourceCredentials
from pai_operator.pai.identities import ClientPool, session_name
from pai_operator.pai.spec import ROLE_ARN_ANNOTATION
from pai_operator.settings import OperatorSettings
from tests.support.emulator import emulator_in_loop
from tests.unit.reconciler_harness import HarnessFactory, harness_factory

ROLE_A = "acs:ram::1111111111111111:role/team-a"
ROLE_B = "acs:ram::2222222222222222:role/team-b"
KEY_ID, KEY_SECRET = "operator-key", "operator-secret"


class Namespaces:
    """The annotation cache's two faces; `unreadable` namespaces fail like a forbidden read."""

    def __init__(self, annotations: Mapping[str, Mapping[str, str]]) -> None:
        self.annotations = {ns: dict(a) for ns, a in annotations.items()}
        self.unreadable: set[str] = set()
        self.read: set[str] = set()
        self.reads = 0

    async def get_strict(self, namespace: str) -> Mapping[str, str]:
        self.reads += 1
        if namespace in self.unreadable:
            raise RuntimeError("namespaces is forbidden")
        self.read.add(namespace)
        return self.annotations.get(namespace, {})

    def peek(self, namespace: str) -> Mapping[str, str] | None:
        return self.annotations.get(namespace, {}) if namespace in self.read else None


def pool(namespaces: Namespaces, **settings: Any) -> ClientPool:
    return ClientPool(OperatorSettings(endpoint="http://127.0.0.1:1", **settings), namespaces)


def test_session_names_identify_operator_and_namespace_within_sts_limits() -> None:
    assert session_name("team-a") == "pai-operator.team-a"
    long = session_name("n" * 63)
    assert len(long) == 64
    assert long.startswith("pai-operator.nnn")
    assert long != session_name("n" * 62 + "m")  # cut names stay distinct


async def test_clients_per_identity_and_region() -> None:
    namespaces = Namespaces(
        {
            "a": {ROLE_ARN_ANNOTATION: ROLE_A},
            "a2": {ROLE_ARN_ANNOTATION: f" {ROLE_A} "},
            "b": {ROLE_ARN_ANNOTATION: ROLE_B},
        }
    )
    clients = pool(namespaces)
    a = await clients.for_object("a", "cn-hangzhou")
    assert await clients.for_object("a2", "cn-hangzhou") is a  # one role: one client, one rate limit
    b = await clients.for_object("b", "cn-hangzhou")
    default = await clients.for_object("unmapped", "cn-hangzhou")
    assert len({id(a), id(b), id(default)}) == 3
    assert default is clients.for_region("cn-hangzhou")
    provider = a._credentials
    assert isinstance(provider, AssumedRoleCredentialsProvider)
    assert (provider.role_arn, provider.session_name) == (ROLE_A, "pai-operator.a")
    assert clients.for_identity(ROLE_B, "cn-hangzhou") is b
    assert clients.identity_key("b") == ROLE_B
    assert clients.identity_key("unmapped") == ""
    assert clients.identity_key("never-read") == "?never-read"
    with pytest.raises(CredentialsError):
        clients.for_identity("?never-read", "cn-hangzhou")
    await clients.aclose()


async def test_require_mode_refuses_unmapped_namespaces_and_unreadable_ones_never_fall_back() -> None:
    namespaces = Namespaces({"a": {ROLE_ARN_ANNOTATION: ROLE_A}})
    clients = pool(namespaces, require_namespace_identity=True)
    with pytest.raises(NoCredentialsError) as caught:
        await clients.for_object("unmapped", "cn-hangzhou")
    assert caught.value.code == "NoCredentials"
    assert ROLE_ARN_ANNOTATION in caught.value.message
    assert isinstance(caught.value, AuthError)
    await clients.for_object("a", "cn-hangzhou")

    lenient = pool(Namespaces({}))
    lenient._namespaces.unreadable.add("x")  # type: ignore[attr-defined]
    with pytest.raises(CredentialsError) as failed:
        await lenient.for_object("x", "cn-hangzhou")
    assert not isinstance(failed.value, AuthError)  # retryable, not "unmapped"
    await clients.aclose()


@pytest.fixture
async def sts() -> AsyncIterator[str]:
    config = EmulatorConfig(
        access_keys=[AccessKey(KEY_ID, KEY_SECRET)],
        roles=[role for role in (parse_role_arn(ROLE_A), parse_role_arn(ROLE_B)) if role],
        models=["1111111111111111/m"],
        sts_token_lifetime=2,
        admin=True,
    )
    async with emulator_in_loop(config) as url:
        yield url


def source() -> SourceCredentials:
    from alibabacloud_credentials.provider import StaticAKCredentialsProvider

    return SourceCredentials(StaticAKCredentialsProvider(access_key_id=KEY_ID, access_key_secret=KEY_SECRET))


async def assume_role_calls(url: str) -> list[dict[str, Any]]:
    import httpx

    async with httpx.AsyncClient() as http:
        entries = (await http.get(f"{url}/_emulator/journal")).json()["Entries"]
    return [e for e in entries if e["Operation"] == "AssumeRole"]


async def test_assumed_credentials_are_cached_and_refreshed_before_expiry(sts: str) -> None:
    provider = AssumedRoleCredentialsProvider(ROLE_A, "pai-operator.a", source=source(), sts_endpoint=sts)
    first = await asyncio.gather(*(provider.get_credentials() for _ in range(10)))
    assert len({c.access_key_id for c in first}) == 1  # concurrent callers share one AssumeRole
    assert first[0].access_key_id.startswith("STS.")
    assert first[0].security_token
    assert len(await assume_role_calls(sts)) == 1
    # 2 s tokens whose Expiration is cut to whole seconds: refreshed after 80% of what is left.
    await asyncio.sleep(1.8)
    second = await provider.get_credentials()
    assert second.access_key_id != first[0].access_key_id
    calls = await assume_role_calls(sts)
    assert [(c["RoleArn"], c["RoleSessionName"], c["Status"]) for c in calls] == [
        (ROLE_A, "pai-operator.a", 200),
        (ROLE_A, "pai-operator.a", 200),
    ]
    # What it signs with is accepted by PAI, in the role's account.
    from pai_operator.pai import PaiClient, PaiClientConfig

    async with PaiClient(PaiClientConfig(endpoint=sts), provider) as client:
        assert [v async for v in client.iter_model_versions("m")] == []


@pytest.mark.parametrize(
    ("role", "code"),
    [
        ("acs:ram::1111111111111111:role/nobody", "EntityNotExist.Role"),
        ("bad-arn", "InvalidParameter.RoleArn"),
    ],
)
async def test_sts_refusals_are_auth_errors_with_the_sts_code(sts: str, role: str, code: str) -> None:
    provider = AssumedRoleCredentialsProvider(role, "pai-operator.a", source=source(), sts_endpoint=sts)
    with pytest.raises(AuthError) as caught:
        await provider.get_credentials()
    assert caught.value.code == code
    assert role in caught.value.message


async def test_a_wrong_source_secret_is_refused_without_echoing_it(sts: str) -> None:
    from alibabacloud_credentials.provider import StaticAKCredentialsProvider

    wrong = SourceCredentials(
        StaticAKCredentialsProvider(access_key_id=KEY_ID, access_key_secret="nope-secret")
    )
    provider = AssumedRoleCredentialsProvider(ROLE_A, "pai-operator.a", source=wrong, sts_endpoint=sts)
    with pytest.raises(AuthError) as caught:
        await provider.get_credentials()
    assert caught.value.code == "SignatureDoesNotMatch"
    assert "nope-secret" not in str(caught.value)
    assert "string to sign" not in str(caught.value).lower()


async def test_sts_unreachable_is_retryable() -> None:
    provider = AssumedRoleCredentialsProvider(
        ROLE_A, "s.a", source=source(), sts_endpoint="http://127.0.0.1:9"
    )
    with pytest.raises(CredentialsError) as caught:
        await provider.get_credentials()
    assert caught.value.retryable


@pytest.fixture
async def make_harness() -> AsyncIterator[HarnessFactory]:
    async with harness_factory() as make:
        yield make


async def test_no_credentials_is_a_condition_with_no_pai_call_and_a_resync_pace(
    make_harness: HarnessFactory,
) -> None:
    h = await make_harness(OperatorSettings(region="cn-hangzhou", resync_interval=100.0))
    h.clients.error = NoCredentialsError("namespace ns has no pai.mlops.dev/role-arn", code="NoCredentials")
    result = await h.reconcile({"modelId": "model-test", "uri": "oss://b/m/"})
    synced = next(c for c in h.status["conditions"] if c["type"] == "Synced")
    assert (synced["status"], synced["reason"]) == ("False", "NoCredentials")
    assert "role-arn" in synced["message"]
    assert await h.pai.actions() == []
    assert result.retry_in is not None
    assert 90 <= result.retry_in <= 110  # the resync pace, not a backoff: no hot loop

    # Deleting it: nothing was recorded remotely, so nothing holds the object.
    done = await h.reconciler.finalize(h.view({"modelId": "model-test", "uri": "oss://b/m/"}), h.state)
    assert done.done
