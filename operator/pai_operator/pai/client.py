"""Async client for the AIWorkSpace model-version API (2021-02-04).

One shared `httpx.AsyncClient` (pooled connections, explicit timeouts), requests signed with
ACS3-HMAC-SHA256 using credentials fetched per request, a rate limiter per operation family,
and errors classified once into `pai_operator.pai.errors`.

Reads are retried on retryable errors with jittered exponential back-off. Writes are never
retried here: a create whose response was lost may have succeeded, and only the reconciler
(which can look first) knows whether sending it again is safe.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import Field

from pai_operator.calls import (
    AsyncClosing,
    ClientTuning,
    RequestHook,
    json_object,
    network_error,
    observed,
    parse_as,
)
from pai_operator.pai.credentials import CredentialsProvider, DefaultChainCredentialsProvider
from pai_operator.pai.errors import classify
from pai_operator.pai.models import (
    CreateModelVersionRequest,
    CreateModelVersionResponse,
    Label,
    ListModelVersionsRequest,
    ListModelVersionsResponse,
    ModelVersion,
    UpdateModelVersionRequest,
)
from pai_operator.pai.signing import canonical_query, encode_path_segment, sign_request
from pai_operator.ratelimit import OperationFamily, RateLimiter, WaitHook, family_of
from pai_operator.transport import NEVER_SENT, USER_AGENT

logger = logging.getLogger(__name__)

API_VERSION = "2021-02-04"
DEFAULT_PAGE_SIZE = 50


class PaiClientConfig(ClientTuning):
    """How to reach PAI and how hard to push it (timeouts and retries: `ClientTuning`)."""

    region_id: str = "cn-hangzhou"
    endpoint: str | None = None
    """Full URL (`http://127.0.0.1:8089`) or bare host; overrides region and VPC."""
    use_vpc: bool = False
    read_rate: float | None = Field(default=50.0, gt=0)
    """Reads (Get/List) per second; None disables the limit. PAI's published quota per account."""
    write_rate: float | None = Field(default=20.0, gt=0)
    """Writes (Create/Update/Delete/labels) per second; None disables the limit. PAI's published
    quota per account."""
    user_agent: str = USER_AGENT
    """Sent on every request; the operator adds its replica identity (see OperatorSettings)."""

    @property
    def base_url(self) -> str:
        if self.endpoint:
            endpoint = self.endpoint.rstrip("/")
            return endpoint if "://" in endpoint else f"https://{endpoint}"
        service = "aiworkspace-vpc" if self.use_vpc else "aiworkspace"
        return f"https://{service}.{self.region_id}.aliyuncs.com"

    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect_timeout,
            read=self.read_timeout,
            write=self.read_timeout,
            pool=self.pool_timeout,
        )


class PaiClient(AsyncClosing):
    def __init__(
        self,
        config: PaiClientConfig | None = None,
        credentials_provider: CredentialsProvider | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        on_request: RequestHook | None = None,
        *,
        on_rate_limit_wait: WaitHook | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        """`sleep`, `clock` and `rng` drive back-off and rate limiting; tests replace them."""
        self.config = config or PaiClientConfig()
        self._credentials = credentials_provider or DefaultChainCredentialsProvider()
        self._on_request = on_request
        self._sleep = sleep
        self._rng = rng or random.Random()  # jitter only; nothing secret depends on it
        self._read_retries = self.config.read_retries()
        self.rate_limiter = RateLimiter(
            self.config.read_rate,
            self.config.write_rate,
            on_wait=on_rate_limit_wait,
            clock=clock,
            sleep=sleep,
        )
        base_url = httpx.URL(self.config.base_url)
        # Signed exactly as httpx sends it: host plus the port when it is not the scheme default.
        self._host = base_url.netloc.decode("ascii")
        self._http = httpx.AsyncClient(
            base_url=base_url,
            transport=transport,
            timeout=self.config.timeout(),
            limits=httpx.Limits(max_connections=self.config.max_connections),
            headers={"user-agent": self.config.user_agent},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def __repr__(self) -> str:
        return f"PaiClient(base_url={self.config.base_url!r})"

    # --- operations -----------------------------------------------------------------------

    async def create_model_version(
        self, model_id: str, request: CreateModelVersionRequest
    ) -> CreateModelVersionResponse:
        data = await self._call(
            "CreateModelVersion", "POST", _versions_path(model_id), body=request.to_wire()
        )
        return parse_as(CreateModelVersionResponse, data, "CreateModelVersion")

    async def get_model_version(self, model_id: str, version_name: str) -> ModelVersion:
        data = await self._call("GetModelVersion", "GET", _version_path(model_id, version_name))
        return parse_as(ModelVersion, data, "GetModelVersion")

    async def update_model_version(
        self, model_id: str, version_name: str, request: UpdateModelVersionRequest
    ) -> None:
        await self._call(
            "UpdateModelVersion", "PUT", _version_path(model_id, version_name), body=request.to_wire()
        )

    async def delete_model_version(self, model_id: str, version_name: str) -> None:
        await self._call("DeleteModelVersion", "DELETE", _version_path(model_id, version_name))

    async def list_model_versions(
        self, model_id: str, request: ListModelVersionsRequest | None = None
    ) -> ListModelVersionsResponse:
        query = {
            name: str(value) for name, value in (request or ListModelVersionsRequest()).to_wire().items()
        }
        data = await self._call("ListModelVersions", "GET", _versions_path(model_id), query=query)
        return parse_as(ListModelVersionsResponse, data, "ListModelVersions")

    async def iter_model_versions(
        self, model_id: str, request: ListModelVersionsRequest | None = None
    ) -> AsyncIterator[ModelVersion]:
        """Every version matching `request`, page after page (filters and order kept)."""
        base = request or ListModelVersionsRequest()
        page_size = base.page_size or DEFAULT_PAGE_SIZE
        page_number = base.page_number or 1
        seen = (page_number - 1) * page_size
        while True:
            page = await self.list_model_versions(
                model_id, base.model_copy(update={"page_size": page_size, "page_number": page_number})
            )
            for version in page.versions:
                yield version
            seen += len(page.versions)
            # An empty or short page ends the walk even if TotalCount disagrees (it can change
            # while we walk): never loop forever on a server that ignores PageNumber.
            if len(page.versions) < page_size or seen >= page.total_count:
                return
            page_number += 1

    async def create_model_version_labels(
        self, model_id: str, version_name: str, labels: list[Label]
    ) -> None:
        """Add or overwrite labels. An empty list sends nothing."""
        if not labels:
            return
        await self._call(
            "CreateModelVersionLabels",
            "POST",
            _version_path(model_id, version_name) + "/labels",
            body={"Labels": [label.to_wire() for label in labels]},
        )

    async def delete_model_version_labels(self, model_id: str, version_name: str, keys: list[str]) -> None:
        """Remove labels by key. An empty list sends nothing (PAI would read it as "no key")."""
        if not keys:
            return
        await self._call(
            "DeleteModelVersionLabels",
            "DELETE",
            _version_path(model_id, version_name) + "/labels",
            query={"LabelKeys": ",".join(keys)},
        )

    # --- transport ------------------------------------------------------------------------

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        payload = b"" if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")

        async def attempt() -> dict[str, Any]:
            await self.rate_limiter.acquire(operation)
            return await self._send(operation, method, path, query or {}, payload, body is not None)

        if family_of(operation) is OperationFamily.WRITE:
            return await attempt()
        return await self._read_retries.run(
            attempt, label=f"PAI {operation}", logger=logger, sleep=self._sleep, rng=self._rng
        )

    async def _send(
        self,
        operation: str,
        method: str,
        path: str,
        query: Mapping[str, str],
        payload: bytes,
        has_body: bool,
    ) -> dict[str, Any]:
        async with observed("PAI", operation, method, logger, self._on_request) as attempt:
            credentials = await self._credentials.get_credentials()
            headers = {
                "host": self._host,
                "x-acs-action": operation,
                "x-acs-version": API_VERSION,
                "x-acs-date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "x-acs-signature-nonce": uuid.uuid4().hex,
                "accept": "application/json",
                "user-agent": self.config.user_agent,
            }
            if has_body:
                headers["content-type"] = "application/json; charset=utf-8"
            if credentials.security_token:
                # As the SDK sends STS credentials: the token, and the key id in clear.
                headers["x-acs-accesskey-id"] = credentials.access_key_id
                headers["x-acs-security-token"] = credentials.security_token
            signed = sign_request(
                method,
                path,
                query,
                headers,
                payload,
                credentials.access_key_id,
                credentials.access_key_secret,
            )
            # The query goes on the wire exactly as it was signed (RFC 3986), not as httpx
            # would encode it: one encoding, no room for `+` versus `%20` disagreements.
            url = path + ("?" + canonical_query(query) if query else "")
            try:
                response = await self._http.request(method, url, headers=signed, content=payload or None)
            except httpx.TransportError as exc:
                never_sent = isinstance(exc, NEVER_SENT)
                raise network_error(exc, never_sent=never_sent, secrets=credentials.secrets) from exc
            attempt.status = response.status_code
            attempt.request_id = response.headers.get("x-acs-request-id")
            if response.status_code >= 400:
                raise classify(
                    response.status_code, response.content, response.headers, secrets=credentials.secrets
                )
            data = json_object(response.content, operation)
            attempt.request_id = data.get("RequestId") or attempt.request_id
            return data
        raise AssertionError("unreachable: the attempt returns or raises")


def _versions_path(model_id: str) -> str:
    return f"/api/v1/models/{encode_path_segment(model_id)}/versions"


def _version_path(model_id: str, version_name: str) -> str:
    return f"{_versions_path(model_id)}/{encode_path_segment(version_name)}"
