"""STS AssumeRoleWithOIDC (RRSA): `alibabacloud-credentials`' OIDCRoleArnCredentialsProvider (the
official library, what the default chain runs on ACK) exchanges a token file with the emulator's
STS over real HTTP; the official AIWorkSpace SDK uses what it got. Each check RAM makes on the
token and on the role's trust rule answers with STS's own code."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from alibabacloud_aiworkspace20210204 import models as sdk_models
from alibabacloud_aiworkspace20210204.client import Client
from alibabacloud_credentials.exceptions import CredentialException
from alibabacloud_credentials.provider import OIDCRoleArnCredentialsProvider
from alibabacloud_tea_openapi.models import Config

from tests.support.emulator import EmulatorProcess
from tests.support.oidc import Signer, unverified_claims

ACCOUNT = "3333333333333333"
OTHER_ACCOUNT = "4444444444444444"
ISSUER = "https://oidc-ack-cn-hangzhou.oss-cn-hangzhou.aliyuncs.com/c0ffee"
PROVIDER = f"acs:ram::{ACCOUNT}:oidc-provider/ack-rrsa-c0ffee"
OTHER_PROVIDER = f"acs:ram::{OTHER_ACCOUNT}:oidc-provider/ack-rrsa-other"
ROLE = f"acs:ram::{ACCOUNT}:role/pai-operator-rrsa"
OTHER_ACCOUNT_ROLE = f"acs:ram::{OTHER_ACCOUNT}:role/pai-operator-rrsa"
NAMESPACE, SERVICE_ACCOUNT = "pai-operator-system", "pai-operator"
SUBJECT = f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"
MODEL = "model-rrsa"
SIGNER = Signer(kid="ack-rrsa-key")


@pytest.fixture(scope="module")
def sts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    jwks = SIGNER.write_jwks(tmp_path_factory.mktemp("oidc") / "jwks.json")
    args = [
        "--oidc-provider", f"{PROVIDER}={ISSUER}@{jwks}",
        # The other account's provider shares the issuer (and keys): only the trust rule differs.
        "--oidc-provider", f"{OTHER_PROVIDER}={ISSUER}@{jwks}",
        "--role-subject", f"{ROLE}={SUBJECT}",
        "--role-subject", f"{OTHER_ACCOUNT_ROLE}={SUBJECT}",
        "--role", f"acs:ram::{ACCOUNT}:role/no-oidc-trust",
        "--model", f"{ACCOUNT}/{MODEL}",
    ]  # fmt: skip
    with EmulatorProcess(credentials=[], models=(), extra_args=args) as process:
        yield process


def provider(
    emulator: EmulatorProcess, token_file: Path, role: str = ROLE, oidc_provider: str = PROVIDER
) -> OIDCRoleArnCredentialsProvider:
    return OIDCRoleArnCredentialsProvider(
        role_arn=role,
        oidc_provider_arn=oidc_provider,
        oidc_token_file_path=str(token_file),
        role_session_name="pai-operator",
        duration_seconds=900,
        sts_endpoint=emulator.url,  # an explicit http:// scheme is kept by the library
    )


def write(tmp_path: Path, token: str) -> Path:
    path = tmp_path / "token"
    path.write_text(token)
    return path


def good_token(**overrides: float) -> str:
    return SIGNER.service_account_token(ISSUER, NAMESPACE, SERVICE_ACCOUNT, **overrides)  # type: ignore[arg-type]


def test_exchange_gives_credentials_of_the_roles_account(sts: EmulatorProcess, tmp_path: Path) -> None:
    token = good_token()
    creds = asyncio.run(provider(sts, write(tmp_path, token)).get_credentials_async())
    assert creds.get_access_key_id().startswith("STS.")
    assert creds.get_security_token()
    assert creds.get_expiration() > time.time() + 800

    client = Client(
        Config(
            access_key_id=creds.get_access_key_id(),
            access_key_secret=creds.get_access_key_secret(),
            security_token=creds.get_security_token(),
            endpoint=sts.endpoint,
            protocol="http",
        )
    )
    request = sdk_models.CreateModelVersionRequest(uri="oss://bucket/models/m/")
    name = client.create_model_version(MODEL, request).body.version_name
    assert [v["VersionName"] for v in sts.admin.versions(MODEL, ACCOUNT)] == [name]

    entry = sts.admin.journal("AssumeRoleWithOIDC")[-1]
    assert entry["Status"] == 200
    assert entry["Subject"] == SUBJECT
    assert entry["Account"] == ACCOUNT
    assert entry["RoleArn"] == ROLE
    assert entry["OIDCProviderArn"] == PROVIDER
    assert entry["RoleSessionName"] == "pai-operator"
    # The token is never journaled.
    assert token not in str(sts.admin.journal())


def test_the_synchronous_path_works_too(sts: EmulatorProcess, tmp_path: Path) -> None:
    creds = provider(sts, write(tmp_path, good_token())).get_credentials()
    assert creds.get_security_token()


def _claims_without(**changes: object) -> dict[str, object]:
    claims = unverified_claims(good_token())
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


INVALID = "AuthenticationFail.OIDCToken.Invalid"
NO_PERMISSION = "AuthenticationFail.NoPermission"
BAD_SIGNATURE = "AuthenticationFail.OIDCToken.InvalidSignature"


def _spliced() -> str:
    """A token whose signature part was swapped for another token's."""
    return good_token().rsplit(".", 1)[0] + "." + good_token(issued_at=1).rsplit(".", 1)[1]


REFUSED_TOKENS: dict[str, tuple[Callable[[], str], str]] = {
    "expired": (lambda: good_token(issued_at=time.time() - 700), "AuthenticationFail.OIDCToken.Expired"),
    "audience": (
        lambda: SIGNER.service_account_token(ISSUER, NAMESPACE, SERVICE_ACCOUNT, audience="https://k8s"),
        "AuthenticationFail.OIDCToken.AudienceNotMatch",
    ),
    "issuer": (
        lambda: SIGNER.service_account_token("https://k8s", NAMESPACE, SERVICE_ACCOUNT),
        "AuthenticationFail.OIDCToken.IssuerNotMatch",
    ),
    "other-key": (
        lambda: Signer(kid=SIGNER.kid).service_account_token(ISSUER, NAMESPACE, SERVICE_ACCOUNT),
        BAD_SIGNATURE,
    ),
    "spliced": (_spliced, BAD_SIGNATURE),
    "other-sa": (lambda: SIGNER.service_account_token(ISSUER, NAMESPACE, "someone-else"), NO_PERMISSION),
    "other-namespace": (
        lambda: SIGNER.service_account_token(ISSUER, "elsewhere", SERVICE_ACCOUNT),
        NO_PERMISSION,
    ),
    "malformed": (lambda: "not-a-jwt", INVALID),
    "hs256": (lambda: SIGNER.token(_claims_without(), alg="HS256"), INVALID),
    "no-exp": (lambda: SIGNER.token(_claims_without(exp=None)), INVALID),
}


@pytest.mark.parametrize("case", list(REFUSED_TOKENS))
def test_token_checks_answer_with_sts_codes(sts: EmulatorProcess, tmp_path: Path, case: str) -> None:
    make_token, code = REFUSED_TOKENS[case]
    with pytest.raises(CredentialException) as caught:
        asyncio.run(provider(sts, write(tmp_path, make_token())).get_credentials_async())
    assert "http_code: 401" in str(caught.value)
    assert f'"Code":"{code}"' in str(caught.value).replace(" ", "")
    # Refused exchanges issue nothing and are journaled with their code.
    assert sts.admin.journal("AssumeRoleWithOIDC")[-1]["Code"] == code


@pytest.mark.parametrize(
    ("role", "oidc_provider", "status", "code"),
    [
        (f"acs:ram::{ACCOUNT}:role/nobody", PROVIDER, 404, "EntityNotExist.Role"),
        # A role without an OIDC trust rule for this subject.
        (f"acs:ram::{ACCOUNT}:role/no-oidc-trust", PROVIDER, 401, "AuthenticationFail.NoPermission"),
        # The role trusts the subject, but through its own account's provider only.
        (OTHER_ACCOUNT_ROLE, PROVIDER, 401, "AuthenticationFail.NoPermission"),
        (ROLE, f"acs:ram::{ACCOUNT}:oidc-provider/not-registered", 401, "AuthenticationFail.NoPermission"),
        ("not-an-arn", PROVIDER, 400, "InvalidParameter.RoleArn"),
    ],
)
def test_role_and_provider_checks(
    sts: EmulatorProcess, tmp_path: Path, role: str, oidc_provider: str, status: int, code: str
) -> None:
    with pytest.raises(CredentialException) as caught:
        asyncio.run(provider(sts, write(tmp_path, good_token()), role, oidc_provider).get_credentials_async())
    assert f"http_code: {status}" in str(caught.value)
    assert code in str(caught.value)


def test_other_accounts_provider_and_role_work_together(sts: EmulatorProcess, tmp_path: Path) -> None:
    creds = asyncio.run(
        provider(
            sts, write(tmp_path, good_token()), OTHER_ACCOUNT_ROLE, OTHER_PROVIDER
        ).get_credentials_async()
    )
    assert creds.get_access_key_id()
    assert sts.admin.journal("AssumeRoleWithOIDC")[-1]["Account"] == OTHER_ACCOUNT


def test_the_call_is_unsigned(sts: EmulatorProcess, tmp_path: Path) -> None:
    """AssumeRoleWithOIDC carries no AccessKeyId or Signature: the emulator must not ask for one,
    while AssumeRole still must."""
    params = {
        "Action": "AssumeRoleWithOIDC", "Format": "JSON", "Version": "2015-04-01",
        "RoleArn": ROLE, "OIDCProviderArn": PROVIDER, "OIDCToken": good_token(),
        "RoleSessionName": "raw-http",
    }  # fmt: skip
    answer = httpx.post(sts.url + "/", data=params).json()
    assert answer["AssumedRoleUser"]["Arn"] == f"{ROLE}/raw-http"
    assert answer["OIDCTokenInfo"]["Subject"] == SUBJECT
    assert answer["OIDCTokenInfo"]["ClientIds"] == "sts.aliyuncs.com"
    unsigned_assume_role = httpx.post(sts.url + "/", data={**params, "Action": "AssumeRole"})
    assert unsigned_assume_role.status_code == 400
    assert unsigned_assume_role.json()["Code"] == "IncompleteSignature"


def test_flags_are_checked_at_start(tmp_path: Path) -> None:
    from pai_emulator.cli import build_parser, config_from_args

    jwks = SIGNER.write_jwks(tmp_path / "jwks.json")
    args = build_parser().parse_args(
        [
            "--oidc-provider",
            f"{PROVIDER}={ISSUER}@{jwks}",
            "--role-subject",
            f"acs:ram::{ACCOUNT}:role/PAI-Operator-RRSA={SUBJECT}",
        ]
    )
    config = config_from_args(args)
    (registered,) = config.oidc_providers
    assert (registered.arn, registered.account, registered.issuer) == (PROVIDER, ACCOUNT, ISSUER)
    # Role names compare case-insensitively in RAM: the rule is kept under the normalised ARN.
    assert config.role_subjects == {ROLE.lower(): [SUBJECT]}
    (tmp_path / "not-jwks.json").write_text('{"kty": "RSA"}')
    for bad in (
        ["--oidc-provider", f"{ROLE}={ISSUER}@{jwks}"],  # a role ARN is not a provider ARN
        ["--oidc-provider", f"{PROVIDER}={ISSUER}"],  # no key set
        ["--oidc-provider", f"{PROVIDER}={ISSUER}@{tmp_path / 'missing.json'}"],
        ["--oidc-provider", f"{PROVIDER}={ISSUER}@{tmp_path / 'not-jwks.json'}"],
        ["--role-subject", f"{ROLE}"],
        ["--role-subject", f"not-a-role={SUBJECT}"],
    ):
        with pytest.raises(SystemExit):
            build_parser().parse_args(bad)
