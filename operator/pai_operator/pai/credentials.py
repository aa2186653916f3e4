"""Credentials for signing: the Alibaba Cloud default chain, RRSA (AssumeRoleWithOIDC), an assumed
namespace role (AssumeRole), or explicit static keys.

The client asks its provider for credentials on every request. Each provider caches and refreshes
on its own (STS tokens from RRSA, AssumeRole or the ECS RAM role expire), so asking each time is
cheap and a rotated key or refreshed token is used without restarting the operator.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
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


RRSA_VARIABLES = (
    "ALIBABA_CLOUD_ROLE_ARN",
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
)
"""What ACK's RRSA (and the chart's credentials.mode=rrsa) sets; all three or RRSA is off."""
ACCESS_KEY_VARIABLES = ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET")
DEFAULT_RRSA_SESSION = "pai-operator"


class SourceCredentials:
    """The operator's own identity, shared by its PAI clients and by every role assumption.

    With the RRSA variables set (and no access key in the environment, which the library's chain
    would try first), an `RrsaCredentialsProvider` of our own: the exchange goes to `--sts-endpoint`,
    is refreshed on our schedule and a refusal is an `AuthError` with STS's code. Otherwise the
    `alibabacloud-credentials` default chain (environment keys, profiles, ECS RAM role) whose
    cached token serves all of them."""

    def __init__(self, provider: Any = None, *, own: CredentialsProvider | None = None) -> None:
        """`provider`: an `alibabacloud_credentials` provider to use instead of the default chain;
        `own`: one of ours (RRSA) for the operator's identity, handed to the library when chaining."""
        self._provider = provider
        self._own = own

    @classmethod
    def from_environment(
        cls,
        environ: Mapping[str, str],
        *,
        sts_endpoint: str | None = None,
        duration_seconds: int = 3600,
    ) -> SourceCredentials:
        rrsa = {name: environ.get(name, "").strip() for name in RRSA_VARIABLES}
        if any(environ.get(name) for name in ACCESS_KEY_VARIABLES) or not any(rrsa.values()):
            return cls()
        missing = [name for name, value in rrsa.items() if not value]
        if missing:
            # The library skips RRSA silently then; say why the pod has no identity.
            log.warning("RRSA is off: %s set but %s empty", _names(rrsa, present=True), ", ".join(missing))
            return cls()
        provider = RrsaCredentialsProvider(
            rrsa["ALIBABA_CLOUD_ROLE_ARN"],
            rrsa["ALIBABA_CLOUD_OIDC_PROVIDER_ARN"],
            rrsa["ALIBABA_CLOUD_OIDC_TOKEN_FILE"],
            environ.get("ALIBABA_CLOUD_ROLE_SESSION_NAME", "").strip() or DEFAULT_RRSA_SESSION,
            sts_endpoint=sts_endpoint,
            duration_seconds=duration_seconds,
        )
        log.info(
            "credentials: RRSA, role %s through %s, session %s, STS %s",
            provider.role_arn,
            provider.oidc_provider_arn,
            provider.session_name,
            sts_endpoint or "(library default)",
        )
        return cls(own=provider)

    def operator_provider(self) -> CredentialsProvider | None:
        """The provider of the operator's own PAI clients; None: the PAI client's default chain."""
        return self._own

    def library_provider(self) -> Any:
        if self._provider is None:
            try:
                if self._own is not None:
                    self._provider = _LibraryAdapter(self._own)
                else:
                    from alibabacloud_credentials.provider import DefaultCredentialsProvider

                    self._provider = DefaultCredentialsProvider()
            except Exception as exc:
                raise CredentialsError(_describe_failure(exc)) from exc
        return self._provider


def _names(values: Mapping[str, str], *, present: bool) -> str:
    return ", ".join(name for name, value in values.items() if bool(value) is present)


class _LibraryAdapter:
    """One of our providers seen as an `alibabacloud_credentials` provider, so the library's
    RamRoleArnCredentialsProvider signs AssumeRole with the RRSA identity's STS credentials. Our
    errors (an `AuthError` with STS's code) pass through the library unchanged."""

    def __init__(self, provider: CredentialsProvider) -> None:
        self._provider = provider

    async def get_credentials_async(self) -> Any:
        from alibabacloud_credentials.provider.refreshable import Credentials as LibraryCredentials

        creds = await self._provider.get_credentials()
        return LibraryCredentials(
            access_key_id=creds.access_key_id,
            access_key_secret=creds.access_key_secret,
            security_token=creds.security_token,
            provider_name=self.get_provider_name(),
        )

    def get_credentials(self) -> Any:
        raise CredentialsError("the operator's RRSA identity is only available asynchronously")

    def get_provider_name(self) -> str:
        return "pai_operator_rrsa"


_STS_FAILURE = re.compile(r"http_code: (\d+), result: (.*)$", re.DOTALL)


class _StsExchange:
    """Temporary credentials from an STS exchange made by `alibabacloud-credentials`, cached here.

    The library refreshes once a token is within 15 minutes of expiry, which for a token shorter
    than that (real STS issues 900 s at least, emulators and tests less) would mean one exchange
    per PAI request. So the credentials are kept here until `refresh_fraction` of their lifetime
    has passed (at most 15 minutes before expiry), then fetched again; concurrent callers share
    one refresh.

    A refusal (4xx but throttling) is an `AuthError` carrying STS's error code; STS unreachable
    or failing is a retryable `CredentialsError`. With `refusal_holdoff`, a refusal is answered
    again without asking STS for that long, unless `_input_changed` says the request would differ.
    """

    action = "AssumeRole"

    def __init__(
        self,
        role_arn: str,
        session_name: str,
        *,
        sts_endpoint: str | None = None,
        duration_seconds: int = 3600,
        refresh_fraction: float = 0.8,
        refusal_holdoff: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.role_arn = role_arn
        self.session_name = session_name
        self._sts_endpoint = sts_endpoint
        self._duration = duration_seconds
        self._refresh_fraction = refresh_fraction
        self._refusal_holdoff = refusal_holdoff
        self._clock = clock
        self._provider: Any = None
        self._cached: Credentials | None = None
        self._refresh_at = 0.0
        self._refused: AuthError | None = None
        self._refused_until = 0.0
        self._lock = asyncio.Lock()

    async def get_credentials(self) -> Credentials:
        if self._cached is not None and self._clock() < self._refresh_at:
            return self._cached
        async with self._lock:
            if self._cached is None or self._clock() >= self._refresh_at:
                if (
                    self._refused is not None
                    and self._clock() < self._refused_until
                    and not self._input_changed()
                ):
                    raise self._refused
                await self._refresh()
            assert self._cached is not None
            return self._cached

    def _input_changed(self) -> bool:
        """Whether the next exchange would send something new since the last refusal."""
        return False

    async def _refresh(self) -> None:
        provider = self._library_provider()
        fetched_at = self._clock()
        try:
            creds = await provider.get_credentials_async()
        except (AuthError, CredentialsError):
            raise  # the source identity's own failure (RRSA under AssumeRole), already ours
        except Exception as exc:
            failure = _sts_failure(self.action, self.role_arn, exc)
            if isinstance(failure, AuthError):
                self._refused, self._refused_until = failure, self._clock() + self._refusal_holdoff
            raise failure from None
        self._refused = None
        access_key_id = creds.get_access_key_id()
        secret = creds.get_access_key_secret()
        if not access_key_id or not secret:
            raise CredentialsError(f"{self.action} of {self.role_arn} returned no access key")
        self._cached = Credentials(access_key_id, secret, creds.get_security_token() or None)
        expiration = creds.get_expiration()
        lifetime = (expiration - fetched_at) if expiration else float(self._duration)
        margin = min(15 * 60.0, max(0.0, lifetime) * (1 - self._refresh_fraction))
        self._refresh_at = fetched_at + max(0.0, lifetime - margin)
        log.debug(
            "%s %s (session %s) until %s; next refresh in %.0fs",
            self.action,
            self.role_arn,
            self.session_name,
            expiration,
            self._refresh_at - fetched_at,
        )

    def _library_provider(self) -> Any:
        if self._provider is None:
            try:
                self._provider = self._make_library_provider()
            except CredentialsError:
                raise
            except Exception as exc:
                raise CredentialsError(_describe_failure(exc)) from exc
        return self._provider

    def _make_library_provider(self) -> Any:
        raise NotImplementedError


class AssumedRoleCredentialsProvider(_StsExchange):
    """Temporary credentials of a RAM role, assumed with STS AssumeRole by the operator's own
    identity through `alibabacloud-credentials`' RamRoleArnCredentialsProvider (cached and
    refreshed as `_StsExchange` says)."""

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
        super().__init__(
            role_arn,
            session_name,
            sts_endpoint=sts_endpoint,
            duration_seconds=duration_seconds,
            refresh_fraction=refresh_fraction,
            clock=clock,
        )
        self._source = source

    def _make_library_provider(self) -> Any:
        from alibabacloud_credentials.provider import RamRoleArnCredentialsProvider

        return RamRoleArnCredentialsProvider(
            credentials_provider=self._source.library_provider(),
            role_arn=self.role_arn,
            role_session_name=self.session_name,
            duration_seconds=self._duration,
            sts_endpoint=self._sts_endpoint,
        )

    def __repr__(self) -> str:
        return f"AssumedRoleCredentialsProvider(role_arn={self.role_arn!r}, session={self.session_name!r})"


class RrsaCredentialsProvider(_StsExchange):
    """RRSA (RAM Roles for Service Accounts, ACK): the projected ServiceAccount token in
    `token_file` exchanged with STS AssumeRoleWithOIDC through `alibabacloud-credentials`'
    OIDCRoleArnCredentialsProvider (the provider the default chain would use, here with
    `--sts-endpoint` and our refresh schedule).

    The library reads the token file on every exchange, so a token the kubelet rotated is the one
    sent. A refusal (expired token, wrong audience, a trust policy that does not name this
    ServiceAccount) is answered again for `refusal_holdoff` seconds without asking STS, since
    every object's pass would otherwise repeat it; a changed token file ends the hold-off at once.
    """

    action = "AssumeRoleWithOIDC"

    def __init__(
        self,
        role_arn: str,
        oidc_provider_arn: str,
        token_file: str,
        session_name: str = DEFAULT_RRSA_SESSION,
        *,
        sts_endpoint: str | None = None,
        duration_seconds: int = 3600,
        refresh_fraction: float = 0.8,
        refusal_holdoff: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            role_arn,
            session_name,
            sts_endpoint=sts_endpoint,
            duration_seconds=duration_seconds,
            refresh_fraction=refresh_fraction,
            refusal_holdoff=refusal_holdoff,
            clock=clock,
        )
        self.oidc_provider_arn = oidc_provider_arn
        self.token_file = token_file
        self._token_stamp = self._stamp()

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            stat = os.stat(self.token_file)
        except OSError:
            return None
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def _input_changed(self) -> bool:
        # The kubelet replaces the projected file (a symlink swap), so inode and mtime change.
        return self._stamp() != self._token_stamp

    async def _refresh(self) -> None:
        self._token_stamp = self._stamp()
        await super()._refresh()

    def _make_library_provider(self) -> Any:
        from alibabacloud_credentials.provider import OIDCRoleArnCredentialsProvider

        return OIDCRoleArnCredentialsProvider(
            role_arn=self.role_arn,
            oidc_provider_arn=self.oidc_provider_arn,
            oidc_token_file_path=self.token_file,
            role_session_name=self.session_name,
            duration_seconds=self._duration,
            sts_endpoint=self._sts_endpoint,
        )

    def __repr__(self) -> str:
        return f"RrsaCredentialsProvider(role_arn={self.role_arn!r}, session={self.session_name!r})"


def _sts_failure(action: str, role_arn: str, exc: BaseException) -> Exception:
    """STS's answer to AssumeRole(WithOIDC) as the library reports it (`http_code: N, result: BODY`):
    4xx other than throttling is a refusal (AuthError with STS's code), the rest is retryable."""
    match = _STS_FAILURE.search(str(exc))
    if match is None:
        return CredentialsError(f"{action} of {role_arn} failed: {_describe_failure(exc)}")
    status = int(match[1])
    code, message, request_id = None, "", None
    try:
        body = json.loads(match[2])
        code, message, request_id = body.get("Code"), str(body.get("Message", "")), body.get("RequestId")
    except (ValueError, AttributeError):
        message = match[2]
    # A signature error echoes the string to sign, which holds the caller's key id and token.
    message = re.split(r"(?i)\bstring to sign\b", message)[0].rstrip(" .:")[:300]
    text = f"{action} of {role_arn} refused: {code or status}: {message[:300]}"
    throttled = status == 429 or (code or "").startswith("Throttling")
    if 400 <= status < 500 and not throttled:
        return AuthError(text, status=status, code=code, request_id=request_id)
    return CredentialsError(text, status=status, code=code, request_id=request_id)


def _describe_failure(exc: BaseException) -> str:
    # The chain's messages name providers and environment variable names, not their values;
    # the cap keeps an unexpected long payload out of logs.
    text = str(exc).strip() or type(exc).__name__
    return f"cannot obtain Alibaba Cloud credentials: {text[:300]}"
