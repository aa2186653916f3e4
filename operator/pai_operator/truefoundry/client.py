"""Async client for TrueFoundry's model-version API (v1).

One shared `httpx.AsyncClient` per host (pooled connections, explicit timeouts, no redirects: a
bearer token is never carried to another address), `Authorization: Bearer <key>` from an
`ApiKeySource` asked on every request, a rate limiter per operation family, and errors
classified once into `pai_operator.errors` (`pai_operator.truefoundry.errors.classify`).

Reads are retried on retryable errors with jittered exponential back-off that honours the
server's retry-after. Writes (apply, delete, tags) are never retried here: `PUT model-versions`
without `version` creates the next version, so a create whose response was lost may have
succeeded, and only the reconciler (which can look first) knows whether sending it again is safe.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal
from urllib.parse import quote

import httpx
from pydantic import ConfigDict, Field, field_validator

from pai_operator.calls import (
    AsyncClosing,
    ClientTuning,
    RequestHook,
    json_object,
    network_error,
    observed,
    parse_as,
)
from pai_operator.errors import InvalidRequestError, ModelNotFoundError, NotFoundError
from pai_operator.ratelimit import OperationFamily, RateLimiter, WaitHook, family_of
from pai_operator.transport import NEVER_SENT, USER_AGENT, AiohttpTransport
from pai_operator.truefoundry.credentials import ApiKeySource, EnvApiKey
from pai_operator.truefoundry.errors import classify
from pai_operator.truefoundry.models import (
    ItemT,
    MlRepo,
    ModelManifest,
    ModelVersion,
    ModelVersionEnvelope,
    Page,
)

logger = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 100
"""The official SDK's default `limit`."""

ApiPrefix = Literal["/api/svc/v1", "/api/ml/v1"]

_API_SUFFIXES = ("/api", "/api/svc", "/api/ml", "/api/svc/v1", "/api/ml/v1")


class TrueFoundryClientConfig(ClientTuning):
    """How to reach one TrueFoundry control plane and how hard to push it (timeouts and
    retries: `ClientTuning`).

    TrueFoundry publishes no rate limits, so the defaults are a guess on the careful side: 20
    reads/s lets an operator restart observe a thousand versions in under a minute, and 5
    writes/s is more than a mass apply needs while leaving the tenant's own UI and CI their
    share of a control plane that may be a single FastAPI deployment. The client honours 429s
    and their retry-after either way.
    """

    # A host URL may arrive with a password in it (refused below): never quoted in errors.
    model_config = ConfigDict(hide_input_in_errors=True)

    host: str
    """The control plane's root URL (`https://myorg.truefoundry.cloud`), no `/api` suffix; a bare
    host name means https."""
    api_prefix: ApiPrefix = "/api/svc/v1"
    """`/api/svc/v1` (current SDK, >= 0.4.0) or `/api/ml/v1` (the documented one, older SDKs)."""
    read_rate: float | None = Field(default=20.0, gt=0)
    """Reads (get, list) per second; None disables the limit."""
    write_rate: float | None = Field(default=5.0, gt=0)
    """Writes (apply, delete, tags) per second; None disables the limit."""
    max_connections: int = Field(default=10, ge=1)
    max_retry_wait: float | None = Field(default=30.0, gt=0)
    """A retry-after longer than this goes up to the reconciler instead of being waited for."""
    user_agent: str = USER_AGENT
    """Sent on every request; the operator adds its replica identity."""

    @field_validator("host")
    @classmethod
    def _root_url(cls, value: str) -> str:
        url = value.strip().rstrip("/")
        if not url:
            raise ValueError("host is empty")
        if "://" not in url:
            url = f"https://{url}"
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            raise ValueError("host is not a valid URL") from None
        if parsed.userinfo:
            # Said without repeating the value: it holds a password.
            raise ValueError("host must not carry credentials; the API key is configured apart")
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"host must be an http(s) URL, got {value!r}")
        if parsed.query or parsed.fragment:
            raise ValueError("host must not carry a query or a fragment")
        if parsed.path.rstrip("/").endswith(_API_SUFFIXES):
            # The prefix is added per request; a host ending in /api would double it and every
            # call would meet a 404 from the router, not the service.
            raise ValueError(f"host is the control plane's root URL, without the /api suffix: {value!r}")
        return url

    @property
    def base_url(self) -> str:
        return self.host


class TrueFoundryClient(AsyncClosing):
    """One client per TrueFoundry host: its rate limits and connection pool are that host's."""

    def __init__(
        self,
        config: TrueFoundryClientConfig,
        api_key: ApiKeySource | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        on_request: RequestHook | None = None,
        *,
        on_rate_limit_wait: WaitHook | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        """`api_key` defaults to `$TFY_API_KEY`. `sleep`, `clock`, `wall_clock` (for HTTP-date
        and reset-time headers) and `rng` drive back-off and rate limiting; tests replace them."""
        self.config = config
        self._api_key = api_key or EnvApiKey()
        self._on_request = on_request
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._rng = rng or random.Random()  # jitter only; nothing secret depends on it
        self._read_retries = config.read_retries()
        self.rate_limiter = RateLimiter(
            config.read_rate, config.write_rate, on_wait=on_rate_limit_wait, clock=clock, sleep=sleep
        )
        timeout = httpx.Timeout(config.read_timeout, connect=config.connect_timeout, pool=config.pool_timeout)
        self._http = httpx.AsyncClient(
            base_url=config.base_url,
            # aiohttp's wire under httpx's types, as the PAI client has it: httpx's own transport
            # (httpcore, h11 in pure Python) was most of a call's CPU (bench/RESULTS.md section 5).
            transport=transport or AiohttpTransport(timeout, config.max_connections),
            timeout=timeout,
            limits=httpx.Limits(max_connections=config.max_connections),
            headers={"user-agent": config.user_agent, "accept": "application/json"},
            follow_redirects=False,
            # Proxies from the environment are the transport's (read once per origin, NO_PROXY
            # honoured); httpx's would route proxied hosts around it, through its own transport.
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def __repr__(self) -> str:
        return f"TrueFoundryClient(base_url={self.config.base_url!r}, api_prefix={self.config.api_prefix!r})"

    # --- model versions -------------------------------------------------------------------

    async def apply(self, manifest: ModelManifest) -> ModelVersion:
        """Create (no `manifest.version`: the next number) or update (that version) a version.

        A write, never retried. If it fails with anything but a 4xx answer, a version may have
        been created all the same (a lost response, a proxy's 502/504 after the service
        committed): look before applying a versionless manifest again.
        """
        data = await self._call(
            "ApplyModelVersion", "PUT", self._path("model-versions"), body={"manifest": manifest.to_wire()}
        )
        return parse_as(ModelVersionEnvelope, data, "ApplyModelVersion").data

    async def get(self, version_id: str) -> ModelVersion:
        """NotFoundError when there is no such version, and when the service returns one whose
        status says it is deleted (a two-phase delete keeps the row for a while)."""
        query = _query({"include_internal_metadata": True})
        data = await self._call(
            "GetModelVersion", "GET", self._path("model-versions", version_id), query=query
        )
        found = parse_as(ModelVersionEnvelope, data, "GetModelVersion").data
        if found.gone:
            raise NotFoundError(f"model version {version_id} is {found.status}", code=found.status)
        return found

    async def list_versions(
        self,
        *,
        ml_repo_id: str | None = None,
        model_id: str | None = None,
        name: str | None = None,
        version: int | None = None,
        fqn: str | None = None,
        tag: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
    ) -> Page[ModelVersion]:
        """One page of versions matching every filter given (the service sorts them by version,
        newest first). `fqn` may name a model (all its versions) or one version."""
        filters = _version_filters(tag, fqn, model_id, ml_repo_id, name, version)
        page = await self._page(_VERSIONS, filters, limit=limit, offset=offset)
        if any(item.gone for item in page.data):
            # Lists return committed versions only; should one say otherwise, it is gone.
            return page.model_copy(update={"data": [item for item in page.data if not item.gone]})
        return page

    async def iter_versions(
        self,
        *,
        ml_repo_id: str | None = None,
        model_id: str | None = None,
        name: str | None = None,
        version: int | None = None,
        fqn: str | None = None,
        tag: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> AsyncIterator[ModelVersion]:
        """Every version matching the filters, page after page (see `_walk`)."""
        filters = _version_filters(tag, fqn, model_id, ml_repo_id, name, version)
        async for item in self._walk(_VERSIONS, filters, page_size):
            yield item

    async def get_by_fqn(self, fqn: str) -> ModelVersion:
        """The version named by `fqn` (`model:{tenant}/{ml_repo}/{model}:{version}`), found as the
        SDK does: the list's `fqn` filter, first item. NotFoundError when there is none. A model's
        fqn (no `:version`) gives its newest version."""
        page = await self.list_versions(fqn=fqn, limit=1, offset=0)
        if not page.data:
            raise NotFoundError(f"no model version {fqn}", code="ModelVersionNotFound")
        return page.data[0]

    async def delete(self, version_id: str) -> None:
        """A write, never retried. NotFoundError when the version is already gone."""
        await self._call("DeleteModelVersion", "DELETE", self._path("model-versions", version_id))

    async def apply_tags(self, version_id: str, tags: Sequence[str], force: bool = False) -> None:
        """Set a version's tags; `force` takes a tag over from another version of the model that
        holds it. A write, never retried. An empty list is sent too: whether the service replaces
        the tags or adds to them is not documented."""
        body = {"model_version_id": version_id, "tags": list(tags), "force": force}
        await self._call("ApplyModelVersionTags", "PUT", self._path("model-versions", "tags"), body=body)

    # --- ML repos -------------------------------------------------------------------------

    async def find_ml_repo(self, name: str) -> MlRepo:
        """The ML repo called `name`, exactly. ModelNotFoundError when there is none: the
        container of the versions is missing, and applying a version cannot create it."""
        async for repo in self._walk(_ML_REPOS, {"name": name}, DEFAULT_PAGE_SIZE):
            # The `name` filter's matching is not documented: only an exact name counts.
            if repo.name == name:
                return repo
        raise ModelNotFoundError(f"no ML repo named {name!r}", code="MlRepoNotFound")

    async def iter_ml_repos(self) -> AsyncIterator[MlRepo]:
        """Every ML repo the key can see (`pai-operator orphans` without `--ml-repo`)."""
        async for repo in self._walk(_ML_REPOS, {}, DEFAULT_PAGE_SIZE):
            yield repo

    # --- paging ---------------------------------------------------------------------------

    async def _page(
        self, listing: _Listing[ItemT], filters: Mapping[str, object], *, limit: int, offset: int
    ) -> Page[ItemT]:
        # The SDK's order: limit and offset first, then the filters; None dropped.
        query = _query({"limit": limit, "offset": offset, **filters})
        data = await self._call(listing.operation, "GET", self._path(listing.resource), query=query)
        return parse_as(listing.page, data, listing.operation)

    async def _walk(
        self, listing: _Listing[ItemT], filters: Mapping[str, object], page_size: int
    ) -> AsyncIterator[ItemT]:
        """Every item of a list, page after page (offset paging).

        Stops on an empty page or once the offset reaches `pagination.total`, so a server that
        ignores `offset` cannot loop it forever. Offsets shift when items are created or
        deleted during the walk: an item seen twice is yielded once, but one may be missed, so a
        caller that must not miss one (the look before a create) walks a narrow filter.
        """
        offset = 0
        seen: set[str] = set()
        while True:
            page = await self._page(listing, filters, limit=page_size, offset=offset)
            for item in page.data:
                if item.id not in seen and not item.gone:
                    seen.add(item.id)
                    yield item
            offset += len(page.data)
            if not page.data or (page.pagination is not None and offset >= page.pagination.total):
                return

    # --- transport ------------------------------------------------------------------------

    def _path(self, *segments: str) -> str:
        return self.config.api_prefix + "".join("/" + quote(segment, safe="") for segment in segments)

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        payload = b"" if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")

        async def attempt() -> dict[str, Any]:
            await self.rate_limiter.acquire(operation)
            return await self._send(operation, method, path, query or [], payload)

        if family_of(operation) is OperationFamily.WRITE:
            return await attempt()
        return await self._read_retries.run(
            attempt, label=f"TrueFoundry {operation}", logger=logger, sleep=self._sleep, rng=self._rng
        )

    async def _send(
        self, operation: str, method: str, path: str, query: list[tuple[str, str]], payload: bytes
    ) -> dict[str, Any]:
        async with observed("TrueFoundry", operation, method, logger, self._on_request) as attempt:
            key = await self._api_key.api_key()
            headers = {"authorization": f"Bearer {key}"}
            if payload:
                headers["content-type"] = "application/json"
            try:
                response = await self._http.request(
                    method, path, params=tuple(query), headers=headers, content=payload or None
                )
            except httpx.TransportError as exc:
                never_sent = isinstance(exc, NEVER_SENT)
                raise network_error(exc, never_sent=never_sent, secrets=(key,)) from exc
            attempt.status = response.status_code
            attempt.request_id = response.headers.get("x-request-id")
            if 300 <= response.status_code < 400:
                raise InvalidRequestError(
                    f"{operation} was redirected to {response.headers.get('location', '?')!r}; "
                    "the host setting must name the control plane's final URL",
                    status=response.status_code,
                    request_id=attempt.request_id,
                )
            if response.status_code >= 400:
                raise classify(
                    response.status_code,
                    response.content,
                    response.headers,
                    secrets=(key,),
                    now=self._wall_clock(),
                )
            return json_object(response.content, operation)
        raise AssertionError("unreachable: the attempt returns or raises")


@dataclass(frozen=True)
class _Listing(Generic[ItemT]):
    operation: str
    resource: str
    page: type[Page[ItemT]]


_VERSIONS = _Listing("ListModelVersions", "model-versions", Page[ModelVersion])
_ML_REPOS = _Listing("ListMlRepos", "ml-repos", Page[MlRepo])


def _version_filters(
    tag: str | None,
    fqn: str | None,
    model_id: str | None,
    ml_repo_id: str | None,
    name: str | None,
    version: int | None,
) -> dict[str, object]:
    return {
        "tag": tag,
        "fqn": fqn,
        "model_id": model_id,
        "ml_repo_id": ml_repo_id,
        "name": name,
        "version": version,
        # Asked for: the versions' reserved metadata (`.truefoundry`, what `truefoundry` writes
        # for itself) is then seen, never counted as drift, and sent back whole on update, so
        # it survives whether the service keeps an omitted key or replaces metadata whole.
        "include_internal_metadata": True,
    }


def _query(params: Mapping[str, object]) -> list[tuple[str, str]]:
    """Encoded as the SDK encodes it: in the given order, None dropped, booleans lowercase."""
    return [
        (name, ("true" if value else "false") if isinstance(value, bool) else str(value))
        for name, value in params.items()
        if value is not None
    ]
