"""Credentials for signing: the Alibaba Cloud default chain, or explicit static keys.

The client asks its provider for credentials on every request. The default chain caches and
refreshes on its own (STS tokens from RRSA or the ECS RAM role expire), so asking each time is
cheap and a rotated key or refreshed token is used without restarting the operator.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pai_operator.pai.errors import AuthError, CredentialsError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Credentials:
    """One set of credentials. Its repr and str never show the secret or the token."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        kind = "sts" if self.security_token else "access_key"
        return f"Credentials(access_key_id={self.access_key_id!r}, kind={kind!r})"

    __str__ = __repr__

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values that must never be logged or echoed, for redaction."""
        return tuple(value for value in (self.access_key_secret, self.security_token) if value)


class CredentialsProvider(Protocol):
    async def get_credentials(self) -> Credentials: ...


class StaticCredentialsProvider:
    """Fixed credentials, e.g. from operator settings or tests."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    async def get_credentials(self) -> Credentials:
        return self._credentials

    def __repr__(self) -> str:
        return f"StaticCredentialsProvider({self._credentials!r})"


class DefaultChainCredentialsProvider:
    """The `alibabacloud-credentials` default chain.

    Environment access keys (with an optional STS token), RRSA/OIDC on ACK, CLI and INI
    profiles, then the ECS RAM role. The package reads environment variables when it is
    imported, so it is imported on first use: settings loaded (or a test's environment set)
    after this module is imported still count.
    """

    def __init__(self) -> None:
        self._client: Any = None
        self._lock = asyncio.Lock()

    async def get_credentials(self) -> Credentials:
        client = await self._ensure_client()
        try:
            model = await client.get_credential_async()
        except Exception as exc:
            raise CredentialsError(_describe_failure(exc)) from exc
        access_key_id = getattr(model, "access_key_id", None)
        secret = getattr(model, "access_key_secret", None)
        if not access_key_id or not secret:
            raise CredentialsError("the default credential chain returned no access key")
        return Credentials(
            access_key_id=access_key_id,
            access_key_secret=secret,
            security_token=getattr(model, "security_token", None) or None,
        )

    async def _ensure_client(self) -> Any:
        async with self._lock:
            if self._client is None:
                try:
                    from alibabacloud_credentials.client import Client

                    self._client = Client()
                except Exception as exc:
                    raise CredentialsError(_describe_failure(exc)) from exc
            return self._client

    def __repr__(self) -> str:
        return "DefaultChainCredentialsProvider()"


class SourceCredentials:
    """The operator's own identity as `alibabacloud-credentials` sees it, shared by every role
    assumption: one default chain (environment keys, RRSA, profiles, ECS RAM role) whose cached
    token serves all of them."""

    def __init__(self, provider: Any = None) -> None:
        """`provider`: an `alibabacloud_credentials` provider to use instead of the default chain."""
        self._provider = provider

    def library_provider(self) -> Any:
        if self._provider is None:
            try:
                from alibabacloud_credentials.provider import DefaultCredentialsProvider

                self._provider = DefaultCredentialsProvider()
            except Exception as exc:
                raise CredentialsError(_describe_failure(exc)) from exc
        return self._provider


_STS_FAILURE = re.compile(r"http_code: (\d+), result: (.*)$", re.DOTALL)


class AssumedRoleCredentialsProvider:
    """Temporary credentials of a RAM role, assumed with STS AssumeRole by the operator's own
    identity through `alibabacloud-credentials`' RamRoleArnCredentialsProvider.

    The library refreshes once a token is within 15 minutes of expiry, which for a token shorter
    than that (real STS issues 900 s at least, emulators and tests less) would mean one AssumeRole
    per PAI request. So the credentials are kept here until `refresh_fraction` of their lifetime
    has passed (at most 15 minutes before expiry), then fetched again; concurrent callers share
    one refresh.

    An STS refusal (unknown role, no permission to assume it, a malformed ARN) is an `AuthError`
    carrying STS's error code; STS unreachable or failing is a retryable `CredentialsError`.
    """

    def __init__(
        self,
        role_arn: str,
        session_name: str,
        *,
        source: SourceCredentials,
        sts_endpoint: str | None = None,
        duration_seconds: int = 3600,
        refresh_fraction: float = 0.8,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.role_arn = role_arn
        self.session_name = session_name
        self._source = source
        self._sts_endpoint = sts_endpoint
        self._duration = duration_seconds
        self._refresh_fraction = refresh_fraction
        self._clock = clock
        self._provider: Any = None
        self._cached: Credentials | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()

    async def get_credentials(self) -> Credentials:
        if self._cached is not None and self._clock() < self._refresh_at:
            return self._cached
        async with self._lock:
            if self._cached is None or self._clock() >= self._refresh_at:
                await self._refresh()
            assert self._cached is not None
            return self._cached

    async def _refresh(self) -> None:
        provider = self._library_provider()
        fetched_at = self._clock()
        try:
            creds = await provider.get_credentials_async()
        except Exception as exc:
            raise _sts_failure(self.role_arn, exc) from None
        access_key_id = creds.get_access_key_id()
        secret = creds.get_access_key_secret()
        if not access_key_id or not secret:
            raise CredentialsError(f"AssumeRole of {self.role_arn} returned no access key")
        self._cached = Credentials(access_key_id, secret, creds.get_security_token() or None)
        expiration = creds.get_expiration()
        lifetime = (expiration - fetched_at) if expiration else float(self._duration)
        margin = min(15 * 60.0, max(0.0, lifetime) * (1 - self._refresh_fraction))
        self._refresh_at = fetched_at + max(0.0, lifetime - margin)
        log.debug(
            "assumed role %s (session %s) until %s; next refresh in %.0fs",
            self.role_arn,
            self.session_name,
            expiration,
            self._refresh_at - fetched_at,
        )

    def _library_provider(self) -> Any:
        if self._provider is None:
            try:
                from alibabacloud_credentials.provider import RamRoleArnCredentialsProvider

                self._provider = RamRoleArnCredentialsProvider(
                    credentials_provider=self._source.library_provider(),
                    role_arn=self.role_arn,
                    role_session_name=self.session_name,
                    duration_seconds=self._duration,
                    sts_endpoint=self._sts_endpoint,
                )
            except CredentialsError:
                raise
            except Exception as exc:
                raise CredentialsError(_describe_failure(exc)) from exc
        return self._provider

    def __repr__(self) -> str:
        return f"AssumedRoleCredentialsProvider(role_arn={self.role_arn!r}, session={self.session_name!r})"


def _sts_failure(role_arn: str, exc: BaseException) -> Exception:
    """STS's answer to AssumeRole as the library reports it (`http_code: N, result: BODY`):
    4xx other than throttling is a refusal (AuthError with STS's code), the rest is retryable."""
    match = _STS_FAILURE.search(str(exc))
    if match is None:
        return CredentialsError(f"AssumeRole of {role_arn} failed: {_describe_failure(exc)}")
    status = int(match[1])
    code, message, request_id = None, "", None
    try:
        body = json.loads(match[2])
        code, message, request_id = body.get("Code"), str(body.get("Message", "")), body.get("RequestId")
    except (ValueError, AttributeError):
        message = match[2]
    # A signature error echoes the string to sign, which holds the caller's key id and token.
    message = re.split(r"(?i)\bstring to sign\b", message)[0].rstrip(" .:")[:300]
    text = f"AssumeRole of {role_arn} refused: {code or status}: {message[:300]}"
    throttled = status == 429 or (code or "").startswith("Throttling")
    if 400 <= status < 500 and not throttled:
        return AuthError(text, status=status, code=code, request_id=request_id)
    return CredentialsError(text, status=status, code=code, request_id=request_id)


def _describe_failure(exc: BaseException) -> str:
    # The chain's messages name providers and environment variable names, not their values;
    # the cap keeps an unexpected long payload out of logs.
    text = str(exc).strip() or type(exc).__name__
    return f"cannot obtain Alibaba Cloud credentials: {text[:300]}"
