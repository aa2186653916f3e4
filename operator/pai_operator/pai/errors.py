"""PAI errors, classified once at the client boundary.

Everything above this module reasons about exception classes (and `retryable`), never about
HTTP statuses or error codes. `classify` is the only place that maps the wire to a class; the
codes the project relies on where PAI's public docs are silent are listed in the emulator's docs.

The tree (`kind` is the stable metric label; tests/unit/pai/test_pai_surface.py checks this
drawing against the classes):

    class                      kind              retryable  raised for
    PaiError                   error             no         (the base: every failed call)
    ├── NotFoundError          not_found         no         *.NotFound, 404 with a PAI error body
    │   └── ModelNotFoundError model_not_found   no         InvalidModel.NotFound: the model itself
    ├── ConflictError          conflict          no         409, *AlreadyExists
    ├── InvalidRequestError    invalid_request   no         other 4xx, InvalidApi.NotFound, bare 404
    ├── AuthError              auth              no         401/403, InvalidAccessKeyId*, Forbidden*,
    │   │                                                   NoPermission*, SignatureDoesNotMatch,
    │   │                                                   an STS refusal of AssumeRole
    │   └── NoCredentialsError no_credentials no         no identity configured (nothing sent)
    ├── StaleRequestError      stale_request     yes        InvalidTimeStamp.Expired, SignatureNonceUsed
    ├── ThrottledError         throttled         yes        Throttling*, 429, x-acs-retry-after
    ├── ServerError            server            yes        5xx, ServiceUnavailable
    ├── NetworkError           network           yes        no response (`outcome_unknown` for writes)
    └── CredentialsError       credentials       yes        the credential provider failed

Retryable means: the same request, freshly signed, may succeed; callers still bound retries.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import ClassVar

_MAX_MESSAGE_CHARS = 512
_REDACTED = "***"


class PaiError(Exception):
    """A failed PAI call. `kind` is a stable, low-cardinality name (usable as a metric label)."""

    kind: ClassVar[str] = "error"
    _retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        super().__init__(self._describe())

    @property
    def retryable(self) -> bool:
        """Whether sending the same request again (freshly signed) may succeed."""
        return self._retryable

    def _describe(self) -> str:
        parts = [f"{self.code or self.kind}: {self.message}"]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.request_id:
            parts.append(f"RequestId {self.request_id}")
        return " | ".join(parts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, request_id={self.request_id!r})"
        )


class NotFoundError(PaiError):
    kind = "not_found"


class ModelNotFoundError(NotFoundError):
    """The model itself is missing (not only the version): creating versions cannot help."""

    kind = "model_not_found"


class ConflictError(PaiError):
    kind = "conflict"


class InvalidRequestError(PaiError):
    """The request is wrong and will stay wrong: fix the spec, do not retry."""

    kind = "invalid_request"


class AuthError(PaiError):
    """Credentials are unknown, wrong or lack permission: permanent until someone fixes them."""

    kind = "auth"


class NoCredentialsError(AuthError):
    """No identity is configured for the caller and the default one may not be used: nothing
    was sent. An AuthError (nothing changes until someone configures credentials), reported
    with a reason of its own."""

    kind = "no_credentials"


class StaleRequestError(PaiError):
    """`InvalidTimeStamp.Expired` or `SignatureNonceUsed`.

    Both judge one particular signed request, not the operation: x-acs-date and the nonce are
    made fresh on every attempt, so a request that waited too long (rate limiter, slow network,
    paused process) or collided on a nonce is accepted when re-signed. Persistent clock skew
    would keep failing, which is why the reader of `retryable` still bounds its retries.
    """

    kind = "stale_request"
    _retryable = True


class ThrottledError(PaiError):
    kind = "throttled"
    _retryable = True

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, status=status, code=code, request_id=request_id)


class ServerError(PaiError):
    kind = "server"
    _retryable = True


class NetworkError(PaiError):
    """No HTTP response: connection refused or reset, timeout, protocol error.

    `outcome_unknown` is False only when the request certainly never reached the server
    (it failed while connecting); then even a write may be sent again safely.
    """

    kind = "network"
    _retryable = True

    def __init__(self, message: str, *, outcome_unknown: bool) -> None:
        self.outcome_unknown = outcome_unknown
        super().__init__(message)


class CredentialsError(PaiError):
    """No credentials could be obtained from the configured provider.

    Retryable because the default chain fetches over the network (instance metadata, STS for
    RRSA), and because the fix (mounting a secret, attaching a role) never touches the object
    being reconciled.
    """

    kind = "credentials"
    _retryable = True


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


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every occurrence of a secret (a server may echo a canonical request) and cap length."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[:_MAX_MESSAGE_CHARS] + "..."
    return text


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
