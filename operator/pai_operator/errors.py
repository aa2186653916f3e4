"""Remote errors, one taxonomy for every registry client (PAI, TrueFoundry).

Each client classifies its wire once, at its boundary (`pai_operator.pai.errors.classify`,
`pai_operator.truefoundry.errors`), into these classes; everything above reasons about the
classes (and `retryable`), never about HTTP statuses or error codes.

The tree (`kind` is the stable metric label; tests/unit/pai/test_pai_surface.py checks this
drawing against the classes):

    class                      kind              retryable  raised for
    RemoteError                error             no         (the base: every failed call)
    ├── NotFoundError          not_found         no         the version (or the addressed object) is gone
    │   └── ModelNotFoundError model_not_found   no         its container: PAI model, TrueFoundry ML repo
    ├── ConflictError          conflict          no         409, *AlreadyExists
    ├── InvalidRequestError    invalid_request   no         other 4xx: the request is wrong, do not retry
    ├── AuthError              auth              no         401/403, signature and permission errors,
    │   │                                                   an STS refusal of AssumeRole
    │   └── NoCredentialsError no_credentials    no         no identity configured (nothing sent)
    ├── StaleRequestError      stale_request     yes        a signed request too old or a nonce reused
    ├── ThrottledError         throttled         yes        429, throttling codes, a retry-after header
    ├── ServerError            server            yes        5xx, ServiceUnavailable
    ├── NetworkError           network           yes        no response (`outcome_unknown` for writes)
    └── CredentialsError       credentials       yes        the credential provider failed

Retryable means: the same request, freshly signed, may succeed; callers still bound retries.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

_MAX_MESSAGE_CHARS = 512
_REDACTED = "***"


class RemoteError(Exception):
    """A failed call to a registry (PAI, TrueFoundry). `kind` is a stable, low-cardinality name
    (usable as a metric label)."""

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


class NotFoundError(RemoteError):
    kind = "not_found"


class ModelNotFoundError(NotFoundError):
    """The version's container is missing (PAI's model, TrueFoundry's ML repo), not only the
    version: creating versions cannot help."""

    kind = "model_not_found"


class ConflictError(RemoteError):
    kind = "conflict"


class InvalidRequestError(RemoteError):
    """The request is wrong and will stay wrong: fix the spec, do not retry."""

    kind = "invalid_request"


class AuthError(RemoteError):
    """Credentials are unknown, wrong or lack permission: permanent until someone fixes them."""

    kind = "auth"


class NoCredentialsError(AuthError):
    """No identity is configured for the caller and the default one may not be used: nothing
    was sent. An AuthError (nothing changes until someone configures credentials), reported
    with a reason of its own."""

    kind = "no_credentials"


class StaleRequestError(RemoteError):
    """`InvalidTimeStamp.Expired` or `SignatureNonceUsed`.

    Both judge one particular signed request, not the operation: x-acs-date and the nonce are
    made fresh on every attempt, so a request that waited too long (rate limiter, slow network,
    paused process) or collided on a nonce is accepted when re-signed. Persistent clock skew
    would keep failing, which is why the reader of `retryable` still bounds its retries.
    """

    kind = "stale_request"
    _retryable = True


class ThrottledError(RemoteError):
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


class ServerError(RemoteError):
    kind = "server"
    _retryable = True


class NetworkError(RemoteError):
    """No HTTP response: connection refused or reset, timeout, protocol error.

    `outcome_unknown` is False only when the request certainly never reached the server
    (it failed while connecting); then even a write may be sent again safely.
    """

    kind = "network"
    _retryable = True

    def __init__(self, message: str, *, outcome_unknown: bool) -> None:
        self.outcome_unknown = outcome_unknown
        super().__init__(message)


class CredentialsError(RemoteError):
    """No credentials could be obtained from the configured provider.

    Retryable because the default chain fetches over the network (instance metadata, STS for
    RRSA), and because the fix (mounting a secret, attaching a role) never touches the object
    being reconciled.
    """

    kind = "credentials"
    _retryable = True


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every occurrence of a secret (a server may echo a canonical request) and cap length."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[:_MAX_MESSAGE_CHARS] + "..."
    return text
