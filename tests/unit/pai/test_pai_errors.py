"""Error classification: one table from the wire to the exception classes callers use."""

from __future__ import annotations

import json

import pytest

from pai_operator.pai.errors import (
    AuthError,
    ConflictError,
    InvalidRequestError,
    ModelNotFoundError,
    NotFoundError,
    PaiError,
    ServerError,
    StaleRequestError,
    ThrottledError,
    classify,
    retry_after_seconds,
)


def body(code: str | None, message: str = "details", request_id: str = "rid-1") -> bytes:
    fields = {"RequestId": request_id, "HostId": "aiworkspace", "Message": message}
    if code is not None:
        fields["Code"] = code
    return json.dumps(fields).encode()


@pytest.mark.parametrize(
    ("status", "code", "expected", "retryable"),
    [
        # The numeric dialect (Terraform provider's codes): by code, whatever the status.
        (400, "201900002", ModelNotFoundError, False),
        (404, "201900002", ModelNotFoundError, False),
        (500, "201900002", ModelNotFoundError, False),
        (400, "201900003", NotFoundError, False),
        (404, "201900003", NotFoundError, False),
        (429, "201900003", NotFoundError, False),
        (400, "201900001", InvalidRequestError, False),
        (404, "InvalidModel.NotFound", ModelNotFoundError, False),
        (400, "InvalidModel.NotFound", ModelNotFoundError, False),
        (400, "InvalidModelVersion.NotFound", NotFoundError, False),
        (404, "InvalidModelVersion.NotFound", NotFoundError, False),
        (400, "Some.NotFound", NotFoundError, False),
        (404, "Whatever", NotFoundError, False),
        (409, "InvalidModelVersion.AlreadyExists", ConflictError, False),
        (400, "Resource.AlreadyExists", ConflictError, False),
        (409, None, ConflictError, False),
        (400, "InvalidParameter", InvalidRequestError, False),
        (400, "MissingUri", InvalidRequestError, False),
        (404, "InvalidApi.NotFound", InvalidRequestError, False),
        (404, None, InvalidRequestError, False),
        (404, "InvalidAccessKeyId.NotFound", AuthError, False),
        (400, "InvalidAccessKeyId.Inactive", AuthError, False),
        (400, "SignatureDoesNotMatch", AuthError, False),
        (400, "IncompleteSignature", AuthError, False),
        (400, "InvalidSecurityToken.Expired", AuthError, False),
        (400, "InvalidSecurityToken.Malformed", AuthError, False),
        (403, "Forbidden.RAM", AuthError, False),
        (403, "NoPermission", AuthError, False),
        (401, "Unauthorized", AuthError, False),
        (403, None, AuthError, False),
        (400, "InvalidTimeStamp.Expired", StaleRequestError, True),
        (400, "SignatureNonceUsed", StaleRequestError, True),
        (429, "Throttling.User", ThrottledError, True),
        (400, "Throttling", ThrottledError, True),
        (400, "Rejected.Throttling", ThrottledError, True),
        (400, "Throttling.Api", ThrottledError, True),
        (400, "Api.Throttling.Limit", ThrottledError, True),
        (503, "ServiceThrottling", ThrottledError, True),
        (429, None, ThrottledError, True),
        (503, "ServiceUnavailable", ServerError, True),
        (500, "InternalError", ServerError, True),
        (502, None, ServerError, True),
        (400, "ServiceUnavailable", ServerError, True),
    ],
)
def test_classification_table(
    status: int, code: str | None, expected: type[PaiError], retryable: bool
) -> None:
    error = classify(status, body(code), {})
    assert type(error) is expected
    assert error.retryable is retryable
    assert error.status == status
    assert error.code == code
    assert error.request_id == "rid-1"
    assert error.message == "details"


def test_not_found_of_a_model_is_still_a_not_found() -> None:
    assert isinstance(classify(404, body("InvalidModel.NotFound")), NotFoundError)
    assert isinstance(classify(400, body("201900002")), NotFoundError)


def test_not_found_text_in_the_message_counts_only_with_a_pai_code() -> None:
    """Terraform's generic rule ("NotFound" in the message) applies to PAI error bodies; text
    from a proxy without a PAI code is never read as "the version is gone"."""
    assert type(classify(400, body("EntityMissing", message="Version NotFound"))) is NotFoundError
    assert type(classify(400, body(None, message="Version NotFound"))) is InvalidRequestError
    assert type(classify(404, b"<html>404 NotFound</html>")) is InvalidRequestError
    assert type(classify(404, b"")) is InvalidRequestError
    # The wrong-endpoint answer stays a permanent request error even though it says NotFound.
    assert type(classify(404, body("InvalidApi.NotFound", message="NotFound"))) is InvalidRequestError


def test_throttle_carries_retry_after_from_the_header() -> None:
    error = classify(429, body("Throttling.User"), {"X-Acs-Retry-After": "3"})
    assert isinstance(error, ThrottledError)
    assert error.retry_after == 3.0


def test_retry_after_alone_marks_throttling() -> None:
    assert isinstance(classify(400, body("Odd"), {"x-acs-retry-after": "1"}), ThrottledError)


@pytest.mark.parametrize(
    ("raw", "expected"), [("5", 5.0), (" 2 ", 2.0), ("0", None), ("-1", None), ("x", None)]
)
def test_retry_after_accepts_only_positive_integers(raw: str, expected: float | None) -> None:
    assert retry_after_seconds({"x-acs-retry-after": raw}) == expected
    assert retry_after_seconds({}) is None


def test_message_names_code_message_status_and_request_id() -> None:
    error = classify(400, body("InvalidParameter", "VersionName must match ^\\d+"), {})
    text = str(error)
    for part in ("InvalidParameter", "VersionName must match", "HTTP 400", "rid-1"):
        assert part in text


def test_non_json_body_and_camel_case_body() -> None:
    error = classify(502, b"<html>Bad Gateway</html>", {"x-acs-request-id": "hdr-rid"})
    assert isinstance(error, ServerError)
    assert "Bad Gateway" in error.message
    assert error.request_id == "hdr-rid"
    camel = classify(404, {"code": "InvalidModelVersion.NotFound", "message": "m", "requestId": "r"})
    assert (type(camel), camel.code, camel.request_id) == (NotFoundError, "InvalidModelVersion.NotFound", "r")


def test_secrets_echoed_by_the_server_are_redacted() -> None:
    echoed = "canonical request: x-acs-security-token:TOKEN-123 with secret SECRET-456"
    error = classify(
        400, body("SignatureDoesNotMatch", echoed), {}, secrets=["SECRET-456", "TOKEN-123", None]
    )
    for text in (str(error), repr(error), error.message):
        assert "SECRET-456" not in text
        assert "TOKEN-123" not in text


def test_long_messages_are_capped() -> None:
    error = classify(400, body("InvalidParameter", "x" * 5000))
    assert len(error.message) < 600
