"""PAI errors: `classify` maps PAI's wire (HTTP status, error code, headers) to the shared
taxonomy in `pai_operator.errors` (drawn there) once, at the client boundary. The codes the
project relies on where PAI's public docs are silent are listed in the emulator's docs.

    PAI code or status                              class
    *.NotFound, 404 with a PAI error body           NotFoundError
    InvalidModel.NotFound                           ModelNotFoundError
    409, *AlreadyExists                             ConflictError
    other 4xx, InvalidApi.NotFound, bare 404        InvalidRequestError
    401/403, InvalidAccessKeyId*, Forbidden*,       AuthError
      NoPermission*, SignatureDoesNotMatch
    InvalidTimeStamp.Expired, SignatureNonceUsed    StaleRequestError
    Throttling*, 429, x-acs-retry-after             ThrottledError
    5xx, ServiceUnavailable                         ServerError
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from pai_operator.errors import (
    AuthError,
    ConflictError,
    CredentialsError,
    InvalidRequestError,
    ModelNotFoundError,
    NetworkError,
    NoCredentialsError,
    NotFoundError,
    RemoteError,
    ServerError,
    StaleRequestError,
    ThrottledError,
    redact,
)

PaiError = RemoteError
"""PAI's name for the shared base (a failed PAI call)."""

__all__ = [
    "AuthError",
    "ConflictError",
    "CredentialsError",
    "InvalidRequestError",
    "ModelNotFoundError",
    "NetworkError",
    "NoCredentialsError",
    "NotFoundError",
    "PaiError",
    "ServerError",
    "StaleRequestError",
    "ThrottledError",
    "classify",
    "redact",
    "retry_after_seconds",
]


# --- classification -------------------------------------------------------------------------

_AUTH_PREFIXES = ("InvalidAccessKeyId", "InvalidSecurityToken", "Forbidden", "NoPermission")
_AUTH_CODES = frozenset({"SignatureDoesNotMatch", "IncompleteSignature"})
_STALE_CODES = frozenset({"InvalidTimeStamp.Expired", "SignatureNonceUsed"})
# A wrong endpoint or API version answers InvalidApi.NotFound: treating that as "the version is
# gone" would make the reconciler create duplicates, so it is a permanent request error.
_NOT_A_RESOURCE = frozenset({"InvalidApi.NotFound"})


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """`x-acs-retry-after` as the SDK reads it: a positive integer number of seconds, else None."""
    raw = _header(headers, "x-acs-retry-after")
    if raw is None:
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        return None
    return float(value) if value > 0 else None


def classify(
    status: int,
    body: bytes | str | Mapping[str, object] | None,
    headers: Mapping[str, str] | None = None,
    *,
    secrets: Iterable[str | None] = (),
) -> PaiError:
    """Turn an HTTP error response into the one exception class callers reason about."""
    headers = headers or {}
    fields = _error_fields(body)
    code = fields.get("Code")
    request_id = fields.get("RequestId") or _header(headers, "x-acs-request-id")
    message = redact(fields.get("Message") or _fallback_message(status, body), list(secrets))
    retry_after = retry_after_seconds(headers)

    def make(cls: type[PaiError]) -> PaiError:
        return cls(message, status=status, code=code, request_id=request_id)

    if code in _AUTH_CODES or (code and code.startswith(_AUTH_PREFIXES)) or status in (401, 403):
        return make(AuthError)
    if code in _STALE_CODES:
        return make(StaleRequestError)
    if (code and _is_throttling(code)) or status == 429 or retry_after is not None:
        return ThrottledError(
            message, status=status, code=code, request_id=request_id, retry_after=retry_after
        )
    if status >= 500 or code == "ServiceUnavailable":
        return make(ServerError)
    if code == "InvalidModel.NotFound":
        return make(ModelNotFoundError)
    if code in _NOT_A_RESOURCE:
        return make(InvalidRequestError)
    if (code and code.endswith(".NotFound")) or (status == 404 and code):
        return make(NotFoundError)
    if status == 409 or (code and code.endswith("AlreadyExists")):
        return make(ConflictError)
    # Includes a 404 without a PAI error body: that is a proxy or a wrong endpoint speaking, and
    # "not found" would wrongly tell the reconciler the version is gone.
    return make(InvalidRequestError)


def _is_throttling(code: str) -> bool:
    return code.startswith("Throttling") or code == "Rejected.Throttling"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _error_fields(body: bytes | str | Mapping[str, object] | None) -> dict[str, str]:
    parsed: object = body
    if isinstance(body, bytes | str):
        try:
            parsed = json.loads(body)
        except ValueError:
            return {}
    if not isinstance(parsed, Mapping):
        return {}
    # The SDK accepts both spellings; some gateways answer in camelCase.
    fields: dict[str, str] = {}
    for name in ("Code", "Message", "RequestId"):
        value = parsed.get(name, parsed.get(name[0].lower() + name[1:]))
        if value is not None:
            fields[name] = str(value)
    return fields


def _fallback_message(status: int, body: bytes | str | Mapping[str, object] | None) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    text = body.strip() if isinstance(body, str) else ""
    return f"HTTP {status} without a PAI error body" + (f": {text[:200]}" if text else "")
