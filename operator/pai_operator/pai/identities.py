"""PAI clients, one per (identity, region): quotas are per account and endpoints per region, so
rate limits and connection pools are never shared across either.

An identity is the RAM role a Namespace is mapped to by its admin-owned annotation
`pai.mlops.dev/role-arn`, or "" for the operator's own identity (RRSA's AssumeRoleWithOIDC when
its variables are set, else the default credential chain). The operator's own identity assumes
a namespace's role with STS AssumeRole; the credentials are refreshed before they expire.
Annotations on a ModelVersion never choose an identity: a tenant who can edit objects in a
namespace cannot edit the Namespace itself.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Protocol

from pai_operator import metrics
from pai_operator.pai import CredentialsError, NoCredentialsError, PaiClient, PaiClientConfig
from pai_operator.pai.credentials import (
    AssumedRoleCredentialsProvider,
    CredentialsProvider,
    SourceCredentials,
)
from pai_operator.pai.spec import RESOURCE, ROLE_ARN_ANNOTATION

DEFAULT_IDENTITY = ""
"""The operator's own identity: the default credential chain, no role assumed."""
UNKNOWN_PREFIX = "?"
"""Identity key of a namespace not read yet: groups only with objects of that same namespace."""
SESSION_PREFIX = "pai-operator."
MAX_SESSION_NAME = 64  # STS RoleSessionName: 2-64 of [A-Za-z0-9_.@-]


class PoolSettings(Protocol):
    """The settings a pool reads: PAI's section (`pai.settings.PaiSettings`) and the replica's
    User-Agent (`CoreSettings.user_agent`)."""

    @property
    def endpoint(self) -> str | None: ...
    @property
    def use_vpc_endpoint(self) -> bool: ...
    @property
    def read_rate(self) -> float: ...
    @property
    def write_rate(self) -> float: ...
    @property
    def require_namespace_identity(self) -> bool: ...
    @property
    def sts_endpoint(self) -> str | None: ...
    @property
    def sts_duration(self) -> int: ...
    @property
    def user_agent(self) -> str: ...


class NamespaceAnnotations(Protocol):
    async def get_strict(self, namespace: str) -> Mapping[str, str]: ...
    def peek(self, namespace: str) -> Mapping[str, str] | None: ...


def session_name(namespace: str) -> str:
    """`pai-operator.<namespace>`: names the operator and the tenant in the role's audit trail
    (ActionTrail shows it). Namespaces longer than STS allows keep a prefix and a hash."""
    name = SESSION_PREFIX + namespace
    if len(name) <= MAX_SESSION_NAME:
        return name
    digest = hashlib.sha256(namespace.encode()).hexdigest()[:8]
    return f"{name[: MAX_SESSION_NAME - 9]}.{digest}"


class ClientPool:
    """Clients created on first use; an explicit endpoint (tests, private endpoints) serves every
    region, but never every identity: each identity keeps clients (and rate limits) of its own."""

    def __init__(self, settings: PoolSettings, namespaces: NamespaceAnnotations) -> None:
        self._settings = settings
        self._on_request = metrics.request_hook(RESOURCE.registry)
        self._namespaces = namespaces
        # The operator's own identity: RRSA when its variables are set, else the default chain.
        self._source = SourceCredentials.from_environment(
            os.environ, sts_endpoint=settings.sts_endpoint, duration_seconds=settings.sts_duration
        )
        self._clients: dict[tuple[str, str], PaiClient] = {}
        self._providers: dict[tuple[str, str], CredentialsProvider] = {}

    # --- identities ---------------------------------------------------------------------------

    @staticmethod
    def _identity_in(annotations: Mapping[str, str]) -> str:
        return annotations.get(ROLE_ARN_ANNOTATION, "").strip() or DEFAULT_IDENTITY

    async def resolve(self, namespace: str) -> str:
        """The namespace's identity key, read through the annotation cache (one Namespace read per
        namespace per TTL). A namespace that cannot be read and was never read is a retryable
        CredentialsError: acting with the default identity instead could write to the wrong account."""
        try:
            annotations = await self._namespaces.get_strict(namespace)
        except Exception as exc:
            raise CredentialsError(f"cannot read namespace {namespace} to find its identity: {exc}") from None
        return self._identity_in(annotations)

    def identity_key(self, namespace: str) -> str:
        """The namespace's identity as last read, without I/O (the engine groups by it); a
        namespace not read yet has a key of its own, so it is never grouped with another."""
        annotations = self._namespaces.peek(namespace)
        if annotations is None:
            return UNKNOWN_PREFIX + namespace
        return self._identity_in(annotations)

    # --- clients ------------------------------------------------------------------------------

    async def for_object(self, namespace: str, region_id: str) -> PaiClient:
        """The client for objects of `namespace` in `region_id`."""
        identity = await self.resolve(namespace)
        return self._client(identity, region_id, namespace)

    def for_identity(self, identity: str, region_id: str) -> PaiClient:
        """The client of an identity key returned by `resolve` or `identity_key`."""
        if identity.startswith(UNKNOWN_PREFIX):
            raise CredentialsError(f"the identity of namespace {identity[1:]} is not known yet")
        return self._client(identity, region_id, None)

    def for_region(self, region_id: str) -> PaiClient:
        """The operator's own identity (tools and tests)."""
        return self._client(DEFAULT_IDENTITY, region_id, None)

    def _client(self, identity: str, region_id: str, namespace: str | None) -> PaiClient:
        if identity == DEFAULT_IDENTITY and self._settings.require_namespace_identity:
            where = f"namespace {namespace}" if namespace else "this namespace"
            raise NoCredentialsError(
                f"{where} has no {ROLE_ARN_ANNOTATION} annotation and the operator requires one "
                "(--require-namespace-identity); a cluster admin must map it to a RAM role",
                code="NoCredentials",
            )
        key = (identity, "" if self._settings.endpoint else region_id)
        client = self._clients.get(key)
        if client is None:
            config = PaiClientConfig(
                region_id=region_id,
                endpoint=self._settings.endpoint,
                use_vpc=self._settings.use_vpc_endpoint,
                read_rate=self._settings.read_rate,
                write_rate=self._settings.write_rate,
                user_agent=self._settings.user_agent,
            )
            client = PaiClient(
                config,
                self._provider(identity, namespace),
                on_request=self._on_request,
                on_rate_limit_wait=metrics.observe_rate_limit_wait,
            )
            self._clients[key] = client
        return client

    def _provider(self, identity: str, namespace: str | None) -> CredentialsProvider | None:
        """The operator's own identity: RRSA's provider, or None for the client's default chain. A
        role's provider is shared by its regions, so one
        assumed session serves them all. The session is named after the namespace that first
        needed it: a role mapped to several namespaces is one identity with one session."""
        if identity == DEFAULT_IDENTITY:
            return self._source.operator_provider()
        key = (identity, "")
        provider = self._providers.get(key)
        if provider is None:
            provider = AssumedRoleCredentialsProvider(
                identity,
                session_name(namespace or "shared"),
                source=self._source,
                sts_endpoint=self._settings.sts_endpoint,
                duration_seconds=self._settings.sts_duration,
            )
            self._providers[key] = provider
        return provider

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
