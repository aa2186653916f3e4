"""Signature verification: requests signed by the SDK's own signer, then tampered with by hand."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from alibabacloud_aiworkspace20210204 import models as sdk_models
from alibabacloud_aiworkspace20210204.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException

from pai_emulator.config import AccessKey, EmulatorConfig, StsCredential
from pai_emulator.signing import ReceivedRequest, SignatureVerifier, string_to_sign
from tests.contract.conftest import MODEL_ID, STS_CREDENTIAL
from tests.support.emulator import (
    Credential,
    EmulatorProcess,
    InProcessEmulator,
    SignedRequest,
    sdk_signed_request,
)

LIST_PATH = f"/api/v1/models/{MODEL_ID}/versions"


def list_request(emulator: EmulatorProcess, **kwargs: object) -> SignedRequest:
    return sdk_signed_request(emulator.url, "GET", LIST_PATH, "ListModelVersions", **kwargs)  # type: ignore[arg-type]


def assert_error(request: SignedRequest, status: int, code: str) -> str:
    response = request.send()
    body = response.json()
    assert (response.status_code, body["Code"]) == (status, code), body
    assert set(body) == {"RequestId", "HostId", "Code", "Message"}
    assert response.headers["x-acs-request-id"] == body["RequestId"]
    message: str = body["Message"]
    return message


def test_pai_api_test_vector() -> None:
    """The documented vector (computed with the SDK's signer) verifies with the emulator's own code."""
    headers = {
        "host": "aiworkspace.cn-hangzhou.aliyuncs.com",
        "x-acs-version": "2021-02-04",
        "x-acs-action": "ListModelVersions",
        "user-agent": "test-agent",
        "x-acs-date": "2024-01-01T00:00:00Z",
        "x-acs-signature-nonce": "0123456789abcdef0123456789abcdef",
        "accept": "application/json",
        "x-acs-content-sha256": hashlib.sha256(b"").hexdigest(),
    }
    signed = sorted(headers)
    to_sign = string_to_sign(
        "GET",
        "/api/v1/models/model-abc/versions",
        "PageNumber=1&PageSize=10&Label=a+b",
        {name: [value] for name, value in headers.items()},
        signed,
        headers["x-acs-content-sha256"],
    )
    signature = hmac.new(b"testsecret", to_sign.encode(), hashlib.sha256).hexdigest()
    assert signature == "397255c26ec78d8beb9c8c97429a11fe3e069f694cf3e224233a7132a79e4178"

    when = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    verifier = SignatureVerifier(
        [AccessKey("testid", "testsecret")], [], max_clock_skew_seconds=900, clock=lambda: when
    )
    authorization = (
        f"ACS3-HMAC-SHA256 Credential=testid,SignedHeaders={';'.join(signed)},Signature={signature}"
    )
    received = ReceivedRequest(
        "GET",
        "/api/v1/models/model-abc/versions",
        "PageNumber=1&PageSize=10&Label=a%20b",
        [*headers.items(), ("Authorization", authorization)],
        b"",
    )
    assert verifier.verify(received).access_key_id == "testid"


def test_sdk_signed_request_is_accepted(emulator: EmulatorProcess) -> None:
    query = {"Label": "a b/c~d*e+f,g", "PageSize": "5"}
    response = list_request(emulator, query=query).send()
    assert response.status_code == 200, response.text
    assert response.json()["TotalCount"] == 0


def test_wrong_secret(emulator: EmulatorProcess) -> None:
    request = list_request(emulator, credential=Credential("test-access-key-id", "wrong"))
    assert "string to sign" in assert_error(request, 400, "SignatureDoesNotMatch")


def test_unknown_access_key(emulator: EmulatorProcess) -> None:
    request = list_request(emulator, credential=Credential("nobody", "x"))
    assert_error(request, 404, "InvalidAccessKeyId.NotFound")


@pytest.mark.parametrize("minutes", [-16, 16])
def test_stale_date_is_rejected(emulator: EmulatorProcess, minutes: int) -> None:
    stale = (datetime.now(UTC) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert_error(list_request(emulator, date=stale), 400, "InvalidTimeStamp.Expired")


def test_date_within_the_window_is_accepted(emulator: EmulatorProcess) -> None:
    near = (datetime.now(UTC) - timedelta(minutes=14)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert list_request(emulator, date=near).send().status_code == 200


def test_replayed_nonce_is_rejected(emulator: EmulatorProcess) -> None:
    nonce = uuid.uuid4().hex
    assert list_request(emulator, nonce=nonce).send().status_code == 200
    assert_error(list_request(emulator, nonce=nonce), 400, "SignatureNonceUsed")
    # Exactly the same bytes again (a captured request) fails the same way.
    captured = list_request(emulator, nonce=uuid.uuid4().hex)
    assert captured.send().status_code == 200
    assert_error(captured, 400, "SignatureNonceUsed")


def test_forged_request_does_not_burn_the_nonce(emulator: EmulatorProcess) -> None:
    nonce = uuid.uuid4().hex
    forged = list_request(emulator, nonce=nonce, credential=Credential("test-access-key-id", "wrong"))
    assert_error(forged, 400, "SignatureDoesNotMatch")
    assert list_request(emulator, nonce=nonce).send().status_code == 200


@pytest.mark.parametrize(
    "header",
    ["host", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256", "x-acs-action", "x-acs-version"],
)
def test_required_header_must_be_signed(emulator: EmulatorProcess, header: str) -> None:
    message = assert_error(list_request(emulator, unsigned_headers=[header]), 400, "IncompleteSignature")
    assert header in message


def test_missing_authorization(emulator: EmulatorProcess) -> None:
    request = list_request(emulator)
    del request.headers["Authorization"]
    assert_error(request, 400, "IncompleteSignature")
    request.headers["Authorization"] = "HMAC-SHA1 Credential=test-access-key-id"
    assert_error(request, 400, "IncompleteSignature")


def test_body_hash_mismatch(emulator: EmulatorProcess) -> None:
    request = sdk_signed_request(
        emulator.url, "POST", LIST_PATH, "CreateModelVersion", body={"Uri": "oss://b.e/original"}
    )
    request.content = b'{"Uri": "oss://b.e/tampered"}'
    message = assert_error(request, 400, "SignatureDoesNotMatch")
    assert "body hash" in message


def test_signed_header_value_tampering(emulator: EmulatorProcess) -> None:
    request = sdk_signed_request(emulator.url, "GET", LIST_PATH, "ListModelVersions", query={"PageSize": "5"})
    request.url = request.url.replace("PageSize=5", "PageSize=6")
    assert_error(request, 400, "SignatureDoesNotMatch")


def test_action_must_match_the_path(emulator: EmulatorProcess) -> None:
    request = sdk_signed_request(emulator.url, "GET", LIST_PATH, "GetModelVersion")
    assert_error(request, 400, "InvalidParameter")


def test_unknown_api(emulator: EmulatorProcess) -> None:
    # Workspaces are not emulated (ListModels is, since the Model kind).
    request = sdk_signed_request(emulator.url, "GET", "/api/v1/workspaces", "ListWorkspaces")
    assert_error(request, 404, "InvalidApi.NotFound")


def test_sts_credential_through_the_sdk(make_sdk: Callable[..., Client]) -> None:
    sdk = make_sdk(STS_CREDENTIAL)
    created = sdk.create_model_version(MODEL_ID, sdk_models.CreateModelVersionRequest(uri="oss://b.e/p"))
    assert created.body.version_name == "0.1.0"
    wrong_token = make_sdk(
        Credential(STS_CREDENTIAL.access_key_id, STS_CREDENTIAL.access_key_secret, "forged")
    )
    with pytest.raises(ClientException) as caught:
        wrong_token.list_model_versions(MODEL_ID, sdk_models.ListModelVersionsRequest())
    assert caught.value.code == "InvalidSecurityToken.Malformed"
    no_token = make_sdk(Credential(STS_CREDENTIAL.access_key_id, STS_CREDENTIAL.access_key_secret))
    with pytest.raises(ClientException) as caught:
        no_token.list_model_versions(MODEL_ID, sdk_models.ListModelVersionsRequest())
    assert caught.value.code == "InvalidSecurityToken.Malformed"


def test_security_token_must_be_signed(emulator: EmulatorProcess) -> None:
    request = list_request(emulator, credential=STS_CREDENTIAL, unsigned_headers=["x-acs-security-token"])
    assert_error(request, 400, "IncompleteSignature")


def test_expired_sts_token() -> None:
    expired = StsCredential("STS.old", "old-secret", "old-token", expires_at=datetime.now(UTC) - timedelta(1))
    valid = StsCredential("STS.new", "new-secret", "new-token", expires_at=datetime.now(UTC) + timedelta(1))
    config = EmulatorConfig(sts_credentials=[expired, valid], models=[MODEL_ID])
    with InProcessEmulator(config) as emulator:
        old = Credential(expired.access_key_id, expired.access_key_secret, expired.security_token)
        request = sdk_signed_request(emulator.url, "GET", LIST_PATH, "ListModelVersions", credential=old)
        assert_error(request, 400, "InvalidSecurityToken.Expired")
        new = Credential(valid.access_key_id, valid.access_key_secret, valid.security_token)
        request = sdk_signed_request(emulator.url, "GET", LIST_PATH, "ListModelVersions", credential=new)
        assert request.send().status_code == 200


def test_secrets_never_reach_the_log(emulator: EmulatorProcess) -> None:
    list_request(emulator).send()
    list_request(emulator, credential=STS_CREDENTIAL).send()
    list_request(emulator, credential=Credential("test-access-key-id", "wrong")).send()
    time.sleep(0.1)
    log = emulator.log_text()
    assert "ListModelVersions" in log
    secrets = (
        "test-access-key-secret",
        STS_CREDENTIAL.access_key_secret,
        STS_CREDENTIAL.security_token or "",
    )
    for secret in secrets:
        assert secret not in log
    assert "test-access-key-secret" not in repr(AccessKey("id", "test-access-key-secret"))
