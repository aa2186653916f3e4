"""Credentials for signing: the Alibaba Cloud default chain, or explicit static keys.

The client asks its provider for credentials on every request. The default chain caches and
refreshes on its own (STS tokens from RRSA or the ECS RAM role expire), so asking each time is
cheap and a rotated key or refreshed token is used without restarting the operator.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

from pai_operator.pai.errors import CredentialsError


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


def _describe_failure(exc: BaseException) -> str:
    # The chain's messages name providers and environment variable names, not their values;
    # the cap keeps an unexpected long payload out of logs.
    text = str(exc).strip() or type(exc).__name__
    return f"cannot obtain Alibaba Cloud credentials: {text[:300]}"
