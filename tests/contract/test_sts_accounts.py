"""STS AssumeRole and accounts: `alibabacloud-credentials`' RAM-role-ARN provider (the official
library, the same code path the operator uses) drives the emulator's STS endpoint over real HTTP,
and the official AIWorkSpace SDK uses what it issued. One account never sees another's models."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alibabacloud_aiworkspace20210204 import models as sdk_models
from alibabacloud_aiworkspace20210204.client import Client
from alibabacloud_credentials.exceptions import CredentialException
from alibabacloud_credentials.provider import RamRoleArnCredentialsProvider, StaticAKCredentialsProvider
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config

from tests.support.emulator import Credential, EmulatorProcess

ACCOUNT_A = "1111111111111111"
ACCOUNT_B = "2222222222222222"
ROLE_A = f"acs:ram::{ACCOUNT_A}:role/team-a"
ROLE_B = f"acs:ram::{ACCOUNT_B}:role/team-b"
OPERATOR_KEY = Credential("operator-key", "operator-secret")
TEAM_B_KEY = Credential("team-b-key", "team-b-secret")
MODEL = "model-shared-name"  # the same model id in both accounts: still two different models


@pytest.fixture(scope="module")
def accounts() -> Iterator[EmulatorProcess]:
    args = [
        "--access-key", f"{TEAM_B_KEY.access_key_id}:{TEAM_B_KEY.access_key_secret}@{ACCOUNT_B}",
        "--role", ROLE_A, "--role", ROLE_B,
        "--model", f"{ACCOUNT_A}/{MODEL}", "--model", f"{ACCOUNT_B}/{MODEL}",
        "--sts-token-lifetime", "3",
    ]  # fmt: skip
    with EmulatorProcess(credentials=[OPERATOR_KEY], models=(), extra_args=args) as process:
        yield process


def assume(emulator: EmulatorProcess, role_arn: str, session: str = "pai-operator.team") -> Credential:
    provider = RamRoleArnCredentialsProvider(
        credentials_provider=StaticAKCredentialsProvider(
            access_key_id=OPERATOR_KEY.access_key_id, access_key_secret=OPERATOR_KEY.access_key_secret
        ),
        role_arn=role_arn,
        role_session_name=session,
        duration_seconds=900,
        sts_endpoint=emulator.url,  # an explicit http:// scheme is kept by the library
    )
    creds = asyncio.run(provider.get_credentials_async())
    return Credential(creds.get_access_key_id(), creds.get_access_key_secret(), creds.get_security_token())


def sdk(emulator: EmulatorProcess, credential: Credential) -> Client:
    return Client(
        Config(
            access_key_id=credential.access_key_id,
            access_key_secret=credential.access_key_secret,
            security_token=credential.security_token,
            endpoint=emulator.endpoint,
            protocol="http",
        )
    )


def create(client: Client, model: str = MODEL) -> str:
    request = sdk_models.CreateModelVersionRequest(uri="oss://bucket/models/m/")
    return str(client.create_model_version(model, request).body.version_name)


def test_assumed_roles_act_in_their_own_accounts(accounts: EmulatorProcess) -> None:
    team_a = sdk(accounts, assume(accounts, ROLE_A))
    team_b = sdk(accounts, assume(accounts, ROLE_B))
    name_a = create(team_a)
    create(team_b)
    create(team_b)

    listed_a = team_a.list_model_versions(MODEL, sdk_models.ListModelVersionsRequest()).body
    listed_b = team_b.list_model_versions(MODEL, sdk_models.ListModelVersionsRequest()).body
    assert listed_a.total_count == 1
    assert listed_b.total_count == 2
    assert {v.owner_id for v in listed_a.versions} == {ACCOUNT_A}
    assert {v.owner_id for v in listed_b.versions} == {ACCOUNT_B}
    assert [v["VersionName"] for v in accounts.admin.versions(MODEL, ACCOUNT_A)] == [name_a]
    assert len(accounts.admin.versions(MODEL, ACCOUNT_B)) == 2

    # Account B's version 0.1.0 exists, but account A's name space is its own: B cannot delete
    # A's version, nor see a model only A has.
    accounts.admin.add_model("model-only-a", ACCOUNT_A)
    with pytest.raises(ClientException) as caught:
        team_b.get_model_version("model-only-a", name_a, sdk_models.GetModelVersionRequest())
    assert caught.value.code == "201900002"

    # A long-lived key with @ACCOUNT acts in that account too.
    by_key = sdk(accounts, TEAM_B_KEY).list_model_versions(MODEL, sdk_models.ListModelVersionsRequest())
    assert by_key.body.total_count == 2

    # The operator's own key belongs to the default account, which has no such model.
    with pytest.raises(ClientException) as caught:
        sdk(accounts, OPERATOR_KEY).list_model_versions(MODEL, sdk_models.ListModelVersionsRequest())
    assert caught.value.code == "201900002"

    sessions = [e for e in accounts.admin.journal("AssumeRole") if e["Status"] == 200]
    assert {e["RoleArn"] for e in sessions} == {ROLE_A, ROLE_B}
    assert all(e["RoleSessionName"] == "pai-operator.team" for e in sessions)


def test_issued_credentials_expire(accounts: EmulatorProcess) -> None:
    credential = assume(accounts, ROLE_A)
    client = sdk(accounts, credential)
    client.list_model_versions(MODEL, sdk_models.ListModelVersionsRequest())
    time.sleep(4.1)  # --sts-token-lifetime 3 (whole seconds in Expiration)
    with pytest.raises(ClientException) as caught:
        client.list_model_versions(MODEL, sdk_models.ListModelVersionsRequest())
    assert caught.value.code == "InvalidSecurityToken.Expired"


@pytest.mark.parametrize(
    ("role_arn", "code"),
    [
        (f"acs:ram::{ACCOUNT_A}:role/nobody", "EntityNotExist.Role"),
        ("not-an-arn", "InvalidParameter.RoleArn"),
    ],
)
def test_assume_role_errors_carry_sts_codes(accounts: EmulatorProcess, role_arn: str, code: str) -> None:
    with pytest.raises(CredentialException) as caught:
        assume(accounts, role_arn)
    assert code in str(caught.value)


def test_wrong_secret_is_a_signature_mismatch(accounts: EmulatorProcess) -> None:
    provider = RamRoleArnCredentialsProvider(
        access_key_id=OPERATOR_KEY.access_key_id,
        access_key_secret="not-the-secret",
        role_arn=ROLE_A,
        role_session_name="pai-operator.x",
        sts_endpoint=accounts.url,
    )
    with pytest.raises(CredentialException) as caught:
        provider.get_credentials()  # the synchronous path (requests) as well as the async one
    assert "SignatureDoesNotMatch" in str(caught.value)


def test_state_file_keeps_every_account(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    args = ["--role", ROLE_B, "--model", f"{ACCOUNT_B}/{MODEL}", "--model", MODEL]
    with EmulatorProcess(credentials=[OPERATOR_KEY], models=(), state_file=state, extra_args=args) as first:
        name = create(sdk(first, assume(first, ROLE_B)))
        create(sdk(first, OPERATOR_KEY))
    with EmulatorProcess(credentials=[OPERATOR_KEY], models=(), state_file=state, extra_args=args) as second:
        assert [v["VersionName"] for v in second.admin.versions(MODEL, ACCOUNT_B)] == [name]
        assert [v["OwnerId"] for v in second.admin.versions(MODEL)] == ["1000000000000001"]
