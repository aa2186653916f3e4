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
from pai_operator.pai.errors import IncompleteListError, classify
from pai_operator.pai.models import (
    CreateModelRequest,
    CreateModelResponse,
    CreateModelVersionRequest,
    CreateModelVersionResponse,
    Label,
    ListModelsRequest,
    ListModelsResponse,
    ListModelVersionsRequest,
    ListModelVersionsResponse,
    Model,
    ModelVersion,
    UpdateModelRequest,
    UpdateModelVersionRequest,
)
from pai_operator.pai.signing import canonical_query, encode_path_segment, sign_request
from pai_operator.ratelimit import OperationFamily, RateLimiter, WaitHook, family_of
from pai_operator.transport import NEVER_SENT, USER_AGENT, AiohttpTransport

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
        self._base_url = str(base_url).rstrip("/")
        timeout = self.config.timeout()
        self._timeout = timeout.as_dict()
        # The transport itself, not an httpx.AsyncClient around it: every request is built and
        # signed here already, and the client's layers (URL merging, cookies, redirects, auth)
        # cost a quarter of a call's CPU for nothing (bench/RESULTS.md section 5).
        self._transport = transport or AiohttpTransport(timeout, self.config.max_connections)

    async def aclose(self) -> None:
        await self._transport.aclose()

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
        """Every version matching `request`, page after page (filters and order kept).

        TotalCount, not a short page, ends the walk: PAI documents no maximum page size, and a
        service that caps pages below the size asked would otherwise end an owner search early
        (and a create would duplicate what the rest of the list holds). A short page makes the
        walk continue at the size the service actually serves. A walk that cannot reach
        TotalCount (an empty page before it, a page repeating what was already seen) raises
        `IncompleteListError`: callers must never take a partial list for the whole.
        """
        base = request or ListModelVersionsRequest()
        page_size = base.page_size or DEFAULT_PAGE_SIZE
        page_number = base.page_number or 1
        seen = (page_number - 1) * page_size
        names: set[str] = set()
        while True:
            page = await self.list_model_versions(
                model_id, base.model_copy(update={"page_size": page_size, "page_number": page_number})
            )
            served = len(page.versions)
            fresh = [version for version in page.versions if version.version_name not in names]
            if served and not fresh:
                raise IncompleteListError(
                    f"ListModelVersions of {model_id} served page {page_number} again "
                    f"({seen} of {page.total_count} seen): the service ignores PageNumber",
                    code="IncompleteList",
                )
            for version in fresh:
                names.add(version.version_name)
                yield version
            seen += served
            if seen >= page.total_count:
                return
            if not served:
                raise IncompleteListError(
                    f"ListModelVersions of {model_id} ended at {seen} of {page.total_count} "
                    "versions (an empty page before TotalCount)",
                    code="IncompleteList",
                )
            if served < page_size and seen % served == 0:
                # A capped page: continue at the served size. Either way the service counts
                # PageNumber (in the size asked or the size served), a capped page size and the
                # page number that follows `seen` items name the next unseen item.
                page_size = served
            page_number = seen // page_size + 1

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

    # --- models ---------------------------------------------------------------------------

    async def create_model(self, request: CreateModelRequest) -> CreateModelResponse:
        data = await self._call("CreateModel", "POST", MODELS_PATH, body=request.to_wire())
        return parse_as(CreateModelResponse, data, "CreateModel")

    async def get_model(self, model_id: str) -> Model:
        data = await self._call("GetModel", "GET", _model_path(model_id))
        return parse_as(Model, data, "GetModel")

    async def update_model(self, model_id: str, request: UpdateModelRequest) -> None:
        await self._call("UpdateModel", "PUT", _model_path(model_id), body=request.to_wire())

    async def delete_model(self, model_id: str) -> None:
        """Deletes the model AND every version of it (PAI's DeleteModel)."""
        await self._call("DeleteModel", "DELETE", _model_path(model_id))

    async def list_models(self, request: ListModelsRequest | None = None) -> ListModelsResponse:
        query = {name: str(value) for name, value in (request or ListModelsRequest()).to_wire().items()}
        data = await self._call("ListModels", "GET", MODELS_PATH, query=query)
        return parse_as(ListModelsResponse, data, "ListModels")

    async def iter_models(self, request: ListModelsRequest | None = None) -> AsyncIterator[Model]:
        """Every model matching `request`, page after page; ends by TotalCount like
        `iter_model_versions` (a capped page continues at the served size, a walk that cannot
        reach TotalCount raises IncompleteListError)."""
        base = request or ListModelsRequest()
        page_size = base.page_size or DEFAULT_PAGE_SIZE
        page_number = base.page_number or 1
        seen = (page_number - 1) * page_size
        ids: set[str] = set()
        while True:
            page = await self.list_models(
                base.model_copy(update={"page_size": page_size, "page_number": page_number})
            )
            served = len(page.models)
            fresh = [model for model in page.models if model.model_id not in ids]
            if served and not fresh:
                raise IncompleteListError(
                    f"ListModels served page {page_number} again ({seen} of {page.total_count} "
                    "seen): the service ignores PageNumber",
                    code="IncompleteList",
                )
            for model in fresh:
                ids.add(model.model_id)
                yield model
            seen += served
            if seen >= page.total_count:
                return
            if not served:
                raise IncompleteListError(
                    f"ListModels ended at {seen} of {page.total_count} models (an empty page "
                    "before TotalCount)",
                    code="IncompleteList",
                )
            if served < page_size and seen % served == 0:
                page_size = served
            page_number = seen // page_size + 1

    async def create_model_labels(self, model_id: str, labels: list[Label]) -> None:
        """Add or overwrite labels of a model. An empty list sends nothing."""
        if not labels:
            return
        await self._call(
            "CreateModelLabels",
            "POST",
            _model_path(model_id) + "/labels",
            body={"Labels": [label.to_wire() for label in labels]},
        )

    async def delete_model_labels(self, model_id: str, keys: list[str]) -> None:
        """Remove labels of a model by key. An empty list sends nothing."""
        if not keys:
            return
        await self._call(
            "DeleteModelLabels",
            "DELETE",
            _model_path(model_id) + "/labels",
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
            request = httpx.Request(
                method,
                httpx.URL(self._base_url + url),
                headers=signed,
                content=payload or None,
                extensions={"timeout": self._timeout},
            )
            try:
                response = await self._transport.handle_async_request(request)
                try:
                    await response.aread()
                finally:
                    await response.aclose()
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


MODELS_PATH = "/api/v1/models"


def _model_path(model_id: str) -> str:
    return f"{MODELS_PATH}/{encode_path_segment(model_id)}"


def _versions_path(model_id: str) -> str:
    return f"{_model_path(model_id)}/versions"


def _version_path(model_id: str, version_name: str) -> str:
    return f"{_versions_path(model_id)}/{encode_path_segment(version_name)}"
