"""classify: TrueFoundry's statuses and both error-body shapes onto the shared taxonomy."""

from __future__ import annotations

import json

import pytest

from pai_operator.errors import (
    AuthError,
    ConflictError,
    InvalidRequestError,
    ModelNotFoundError,
    NotFoundError,
    RemoteError,
    ServerError,
    ThrottledError,
)
from pai_operator.truefoundry.errors import classify, retry_after_seconds

NOW = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT


def svc(status: int, message: str = "boom", **extra: object) -> bytes:
    return json.dumps({"statusCode": status, "message": message, **extra}).encode()


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, svc(401, "invalid token"), AuthError),
        (403, svc(403, "no permission on ML repo"), AuthError),
        (401, b"", AuthError),
        (404, svc(404, "Model version not found"), NotFoundError),
        (404, b'{"detail": "Model version abc not found"}', NotFoundError),
        (404, b'{"statusCode": 404}', NotFoundError),
        # A proxy, a wrong path or FastAPI's unknown route: never "the version is gone".
        (404, b"", InvalidRequestError),
        (404, b"<html><body>404 Not Found</body></html>", InvalidRequestError),
        (404, b'{"detail": "Not Found"}', InvalidRequestError),
        (404, b'{"unrelated": 1}', InvalidRequestError),
        (409, svc(409, "exists"), ConflictError),
        (400, svc(400, "source cannot change"), InvalidRequestError),
        (422, b'{"detail": [{"loc": ["body"], "msg": "m", "type": "t"}]}', InvalidRequestError),
        (405, b"", InvalidRequestError),
        (413, b"too large", InvalidRequestError),
        (408, b"", ThrottledError),
        (429, svc(429, "slow down"), ThrottledError),
        (500, svc(500, "internal"), ServerError),
        (502, b"<html>bad gateway</html>", ServerError),
        (503, b"", ServerError),
        (504, b"", ServerError),
    ],
)
def test_status_and_body_decide_the_class(status: int, body: bytes, expected: type[RemoteError]) -> None:
    error = classify(status, body, {})
    assert type(error) is expected
    assert error.status == status
    assert not isinstance(error, ModelNotFoundError)  # only the client knows a container is missing


def test_servicefoundry_message_and_code_are_kept() -> None:
    error = classify(
        400, svc(400, "version_alias must start with v", code="INVALID_ALIAS"), {"X-Request-Id": "r-9"}
    )
    assert (error.message, error.code, error.request_id) == (
        "version_alias must start with v",
        "INVALID_ALIAS",
        "r-9",
    )
    assert str(error) == "INVALID_ALIAS: version_alias must start with v | HTTP 400 | RequestId r-9"


def test_numeric_codes_become_text_and_odd_ones_are_dropped() -> None:
    assert classify(409, svc(409, code=1042), {}).code == "1042"
    assert classify(409, svc(409, code={"x": 1}), {}).code is None
    assert classify(409, svc(409, code=True), {}).code is None


def test_fastapi_validation_errors_name_their_location() -> None:
    body = {
        "detail": [
            {"loc": ["body", "manifest", "version_alias"], "msg": "string does not match regex", "type": "v"},
            {"loc": ["body", "manifest", "metadata"], "msg": "field required", "type": "missing"},
        ]
    }
    error = classify(422, json.dumps(body), {})
    assert error.message == (
        "body.manifest.version_alias: string does not match regex; body.manifest.metadata: field required"
    )
    assert error.code is None


def test_a_mapping_body_is_read_like_json() -> None:
    assert classify(404, {"statusCode": 404, "message": "gone"}).message == "gone"


def test_a_body_without_a_message_is_described_with_its_start() -> None:
    error = classify(502, b"<html>" + b"x" * 1000, {})
    assert error.message.startswith("HTTP 502 without a TrueFoundry error body: <html>xxx")
    assert len(error.message) < 300


def test_the_key_is_redacted_wherever_the_server_echoes_it() -> None:
    key = "tfy_0123456789abcdef"
    for body in (
        svc(401, f"bad token {key}"),
        f"raw {key}".encode(),
        json.dumps({"detail": f"x {key}"}).encode(),
    ):
        error = classify(401, body, {}, secrets=[key, None])
        assert key not in str(error)
        assert key not in repr(error)
        assert "***" in error.message


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [
        (429, {}, None),
        (429, {"Retry-After": "7"}, 7.0),
        (429, {"retry-after": " 2.5 "}, 2.5),
        (429, {"Retry-After": "Tue, 14 Nov 2023 22:13:30 GMT"}, 10.0),
        (429, {"Retry-After": "Tue, 14 Nov 2023 22:13:00 GMT"}, 0.0),  # already past: no wait
        (429, {"Retry-After": "soon"}, None),
        (429, {"Retry-After": "-3"}, None),
        (429, {"retry-after-ms": "250", "Retry-After": "9"}, 0.25),  # the SDK's order
        (429, {"retry-after-ms": "nope", "Retry-After": "9"}, 9.0),
        (429, {"X-RateLimit-Reset": str(int(NOW) + 42)}, 42.0),
        (429, {"X-RateLimit-Reset": str(int(NOW) - 5)}, None),  # already past: no hint
        (429, {"Retry-After": "1", "X-RateLimit-Reset": str(int(NOW) + 42)}, 1.0),
        (408, {"Retry-After": "3"}, 3.0),
    ],
)
def test_throttling_carries_the_servers_wait(
    status: int, headers: dict[str, str], retry_after: float | None
) -> None:
    error = classify(status, b"", headers, now=NOW)
    assert isinstance(error, ThrottledError)
    if retry_after is None:
        assert error.retry_after is None
    else:
        assert error.retry_after == pytest.approx(retry_after)


def test_a_server_error_asking_for_a_pause_is_throttling() -> None:
    paused = classify(503, b"", {"Retry-After": "4"}, now=NOW)
    assert isinstance(paused, ThrottledError)
    assert paused.retry_after == 4.0
    assert paused.status == 503
    assert type(classify(503, b"", {"Retry-After": "later"}, now=NOW)) is ServerError


def test_a_client_error_with_a_retry_after_stays_permanent() -> None:
    assert type(classify(400, svc(400), {"Retry-After": "4"}, now=NOW)) is InvalidRequestError
    assert type(classify(409, svc(409), {"Retry-After": "4"}, now=NOW)) is ConflictError


def test_retry_after_reads_any_header_case_and_uses_the_wall_clock_by_default() -> None:
    assert retry_after_seconds({"RETRY-AFTER-MS": "1000"}) == 1.0
    assert retry_after_seconds({}) is None
    # Far in the future against the real clock: a positive wait.
    far = retry_after_seconds({"x-ratelimit-reset": str(2**40)})
    assert far is not None
    assert far > 0


def test_an_alias_or_tag_in_use_is_a_conflict_retried_soon_not_an_invalid_spec() -> None:
    for code in ("VERSION_ALIAS_IN_USE", "TAG_IN_USE"):
        error = classify(400, {"statusCode": 400, "message": "in use", "code": code})
        assert isinstance(error, ConflictError), code
    other = classify(400, {"statusCode": 400, "message": "bad", "code": "IMMUTABLE_FIELD"})
    assert isinstance(other, InvalidRequestError)


def mlflow(code: str, message: str = "boom") -> bytes:
    """The mlflow fork's error body (tfy-mlflow-client's MlflowException.serialize_as_json)."""
    return json.dumps({"error_code": code, "message": message}).encode()


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (404, mlflow("RESOURCE_DOES_NOT_EXIST", "Artifact version with ID x not found"), NotFoundError),
        # A wrong prefix is not a missing version, in either shape.
        (404, mlflow("ENDPOINT_NOT_FOUND", "No API route"), InvalidRequestError),
        (404, svc(404, "Cannot GET /api/svc/v2/model-versions/x", error="Not Found"), InvalidRequestError),
        (404, svc(404, "Cannot version x"), NotFoundError),  # not NestJS's route-miss sentence
        (400, mlflow("RESOURCE_ALREADY_EXISTS", "alias v1 in use"), ConflictError),
        (409, mlflow("RESOURCE_ALREADY_EXISTS", "alias v1 in use"), ConflictError),
        (400, mlflow("INVALID_PARAMETER_VALUE", "source cannot change"), InvalidRequestError),
        (400, mlflow("BAD_REQUEST"), InvalidRequestError),
        (403, mlflow("PERMISSION_DENIED", "no access to repo"), AuthError),
        (401, mlflow("UNAUTHORIZED"), AuthError),
        (429, mlflow("REQUEST_LIMIT_EXCEEDED"), ThrottledError),
        (503, mlflow("TEMPORARILY_UNAVAILABLE"), ServerError),
    ],
)
def test_the_mlflow_shape_is_read(status: int, body: bytes, expected: type[RemoteError]) -> None:
    error = classify(status, body, {})
    assert type(error) is expected
    assert error.code == json.loads(body).get("error_code", json.loads(body).get("code"))


def test_a_route_miss_says_where_to_look() -> None:
    error = classify(404, mlflow("ENDPOINT_NOT_FOUND", "No route"), {})
    assert "host" in error.message
    assert "API prefix" in error.message
