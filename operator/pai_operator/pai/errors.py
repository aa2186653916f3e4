"""PAI errors: `classify` maps PAI's wire (HTTP status, error code, headers) to the shared
taxonomy in `pai_operator.errors` (drawn there) once, at the client boundary. The codes the
project relies on where PAI's public docs are silent are listed in the emulator's docs.

    PAI code or status                              class
    201900002 (any status), InvalidModel.NotFound   ModelNotFoundError
    201900003 (any status), *.NotFound, 404 or      NotFoundError
      "NotFound" in the message, with a PAI code
    409, *AlreadyExists                             ConflictError
    other 4xx, InvalidApi.NotFound, bare 404        InvalidRequestError
    401/403, InvalidAccessKeyId*, Forbidden*,       AuthError
      NoPermission*, SignatureDoesNotMatch
    InvalidTimeStamp.Expired, SignatureNonceUsed    StaleRequestError
    *Throttling* anywhere in the code, 429,         ThrottledError
      x-acs-retry-after
    5xx, ServiceUnavailable                         ServerError

The not-found rules follow the Terraform provider, which Alibaba runs against the real service
(aliyun/terraform-provider-alicloud): `alicloud/service_alicloud_pai_workspace_v2.go` matches
201900002 as "model not found" and 201900002 or 201900003 as "model version not found" by code,
whatever the status; `alicloud/errors.go` NotFoundError adds HTTP 404 and "NotFound" in the
message, and NeedRetry retries any code matching "Throttling". One deliberate difference: a 404 or
"NotFound" text without a PAI error code is a proxy or a wrong endpoint speaking, never "gone"
(taking it for gone would make the reconciler recreate or forget a version that exists).
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


class IncompleteListError(ServerError):
    """A paged list could not be walked to its TotalCount. Retryable (the list may settle), and
    never to be read as "these are all": an owner search that stopped short would let a create
    duplicate a version on a page it never read."""


__all__ = [
    "AuthError",
    "ConflictError",
    "CredentialsError",
    "IncompleteListError",
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
MODEL_NOT_FOUND_CODES = frozenset({"201900002", "InvalidModel.NotFound"})
VERSION_NOT_FOUND_CODES = frozenset({"201900003", "InvalidModelVersion.NotFound"})


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
    # Before throttling and 5xx: these codes name the answer whatever status carries them.
    if code in MODEL_NOT_FOUND_CODES:
        return make(ModelNotFoundError)
    if code in VERSION_NOT_FOUND_CODES:
        return make(NotFoundError)
    if (code and _is_throttling(code)) or status == 429 or retry_after is not None:
        return ThrottledError(
            message, status=status, code=code, request_id=request_id, retry_after=retry_after
        )
    if status >= 500 or code == "ServiceUnavailable":
        return make(ServerError)
    if code in _NOT_A_RESOURCE:
        return make(InvalidRequestError)
    if code and (code.endswith(".NotFound") or status == 404 or "NotFound" in (fields.get("Message") or "")):
        return make(NotFoundError)
    if status == 409 or (code and code.endswith("AlreadyExists")):
        return make(ConflictError)
    # Includes a 404 without a PAI error body: that is a proxy or a wrong endpoint speaking, and
    # "not found" would wrongly tell the reconciler the version is gone.
    return make(InvalidRequestError)


def _is_throttling(code: str) -> bool:
    # Terraform's NeedRetry: any code matching "Throttling" (Throttling.User, Rejected.Throttling,
    # Throttling.Api, ...), not only a prefix.
    return "Throttling" in code


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
