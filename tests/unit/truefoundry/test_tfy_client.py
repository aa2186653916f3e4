"""TrueFoundryClient over httpx.MockTransport: wire shape under both prefixes, query encoding as
the official SDK sends it, paging, retries of reads only, lost responses, credentials, and no
API key in any output."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from pai_operator import __version__
from pai_operator.ratelimit import OperationFamily
from pai_operator.truefoundry import (
    AuthError,
    ConflictError,
    CredentialsError,
    EnvApiKey,
    InvalidRequestError,
    ModelManifest,
    ModelNotFoundError,
    ModelVersionEnvironment,
    NetworkError,
    NoCredentialsError,
    NotFoundError,
    ServerError,
    StaticApiKey,
    ThrottledError,
    TransformersFramework,
    TrueFoundryClient,
    TrueFoundryClientConfig,
    TrueFoundrySource,
)
from pai_operator.truefoundry.credentials import ApiKeySource
from tests.unit.http_fakes import FakeClock, RecordingTransport, decoded_query, json_body, scripted
from tests.unit.truefoundry.tfy_fakes import REPO, data, page, svc_error, version_json

API_KEY = "tfy_s3cr3t-never-shown"
HOST = "http://127.0.0.1:8765"
WALL = 1_700_000_000.0


def make_client(
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    api_key: ApiKeySource | None = None,
    clock: FakeClock | None = None,
    on_request: Callable[[str, str, float], None] | None = None,
    **config: object,
) -> tuple[TrueFoundryClient, RecordingTransport]:
    transport = RecordingTransport(handler)
    clock = clock or FakeClock()
    client = TrueFoundryClient(
        TrueFoundryClientConfig.model_validate(
            {"host": HOST, "read_rate": None, "write_rate": None, **config}
        ),
        api_key or StaticApiKey(API_KEY),
        transport=transport,
        on_request=on_request,
        sleep=clock.sleep,
        wall_clock=lambda: WALL,
        rng=random.Random(7),
    )
    return client, transport


def manifest(**fields: Any) -> ModelManifest:
    return ModelManifest(
        name="m1",
        ml_repo=REPO,
        metadata={"a": 1},
        source=TrueFoundrySource(uri="s3://b/x"),
        **fields,
    )


# --- wire shape ---------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/api/svc/v1", "/api/ml/v1"])
async def test_apply_wire_shape_matches_the_sdk_capture(prefix: str) -> None:
    client, transport = make_client(lambda _: data(version_json(1)), api_prefix=prefix)
    request = manifest(
        framework=TransformersFramework(pipeline_tag="text-generation"),
        environment=ModelVersionEnvironment(python_version="3.11"),
    )
    async with client:
        created = await client.apply(request)
    assert (created.id, created.fqn, created.version) == (
        "00000000-0000-4000-8000-000000000001",
        f"model:acme/{REPO}/m1:1",
        1,
    )
    (sent,) = transport.requests
    assert (sent.method, sent.url.path, sent.url.query) == ("PUT", f"{prefix}/model-versions", b"")
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["user-agent"] == f"pai-model-operator/{__version__}"
    # The capture in the contract (§3.1): set fields only, None dropped, `type` and `step` present.
    assert json_body(sent) == {
        "manifest": {
            "name": "m1",
            "metadata": {"a": 1},
            "ml_repo": REPO,
            "type": "model-version",
            "source": {"type": "truefoundry", "uri": "s3://b/x"},
            "framework": {"type": "transformers", "pipeline_tag": "text-generation"},
            "environment": {"python_version": "3.11"},
            "step": 0,
        }
    }


async def test_apply_with_a_version_sends_it_and_keeps_nulls_inside_metadata() -> None:
    client, transport = make_client(lambda _: data(version_json(3)))
    async with client:
        await client.apply(
            manifest(version=3, version_alias="v1-prod", description="d", run_id="r-1").model_copy(
                update={"metadata": {"owner": None, "nested": {"k": [1, None]}}}
            )
        )
    body = json_body(transport.requests[0])["manifest"]
    assert (body["version"], body["version_alias"], body["description"], body["run_id"]) == (
        3,
        "v1-prod",
        "d",
        "r-1",
    )
    assert body["metadata"] == {"owner": None, "nested": {"k": [1, None]}}


@pytest.mark.parametrize("prefix", ["/api/svc/v1", "/api/ml/v1"])
async def test_get_delete_and_tags_wire_shape(prefix: str) -> None:
    client, transport = make_client(
        scripted(data(version_json(2)), httpx.Response(200, json={}), httpx.Response(200, json={})),
        api_prefix=prefix,
    )
    async with client:
        version = await client.get("vid-2")
        await client.delete("vid-2")
        await client.apply_tags("vid-2", ["prod", "eu"], force=True)
    assert version.version == 2
    get, delete, tags = transport.requests
    # Reserved metadata asked for, on get as on lists: it is sent back whole on update.
    assert (get.method, get.url.raw_path, get.content) == (
        "GET",
        f"{prefix}/model-versions/vid-2?include_internal_metadata=true".encode(),
        b"",
    )
    assert "content-type" not in get.headers
    assert (delete.method, delete.url.raw_path, delete.content) == (
        "DELETE",
        f"{prefix}/model-versions/vid-2".encode(),
        b"",
    )
    assert (tags.method, tags.url.raw_path) == ("PUT", f"{prefix}/model-versions/tags".encode())
    assert json_body(tags) == {"model_version_id": "vid-2", "tags": ["prod", "eu"], "force": True}
    for sent in transport.requests:
        assert sent.headers["authorization"] == f"Bearer {API_KEY}"


async def test_apply_tags_defaults_to_no_force() -> None:
    client, transport = make_client(lambda _: httpx.Response(200, json={}))
    async with client:
        await client.apply_tags("vid", [])
    assert json_body(transport.requests[0]) == {"model_version_id": "vid", "tags": [], "force": False}


async def test_path_segments_are_percent_encoded() -> None:
    client, transport = make_client(lambda _: data(version_json(1)))
    async with client:
        await client.get("a/b c?")
    assert transport.requests[0].url.path == "/api/svc/v1/model-versions/a/b c?"
    assert transport.requests[0].url.raw_path.startswith(b"/api/svc/v1/model-versions/a%2Fb%20c%3F?")


async def test_list_query_is_encoded_like_the_sdk() -> None:
    client, transport = make_client(lambda _: page([version_json(4)], total=1, offset=0, limit=5))
    async with client:
        result = await client.list_versions(ml_repo_id="17", name="m1", version=4, tag="prod", limit=5)
    assert [v.version for v in result.data] == [4]
    assert result.pagination is not None
    assert result.pagination.total == 1
    (sent,) = transport.requests
    assert (sent.method, sent.url.path) == ("GET", "/api/svc/v1/model-versions")
    # The SDK's order, None dropped, booleans lowercase, include_internal_metadata always sent
    # (true: the operator keeps TrueFoundry's reserved metadata, so it must see it).
    assert sent.url.query.decode().split("&") == [
        "limit=5",
        "offset=0",
        "tag=prod",
        "ml_repo_id=17",
        "name=m1",
        "version=4",
        "include_internal_metadata=true",
    ]


async def test_get_by_fqn_takes_the_first_item_of_a_one_item_page() -> None:
    fqn = f"model:acme/{REPO}/m1:7"
    client, transport = make_client(lambda _: page([version_json(7)], total=1, offset=0, limit=1))
    async with client:
        version = await client.get_by_fqn(fqn)
    assert version.fqn == fqn
    assert decoded_query(transport.requests[0]) == {
        "limit": "1",
        "offset": "0",
        "fqn": fqn,
        "include_internal_metadata": "true",
    }


async def test_get_by_fqn_of_nothing_is_not_found() -> None:
    client, _ = make_client(lambda _: page([], total=0, offset=0, limit=1))
    async with client:
        with pytest.raises(NotFoundError) as caught:
            await client.get_by_fqn("model:acme/repo-a/m1:99")
    assert not isinstance(caught.value, ModelNotFoundError)
    assert "m1:99" in str(caught.value)


async def test_find_ml_repo_matches_the_exact_name() -> None:
    def repo(repo_id: str, name: str) -> dict[str, Any]:
        return {
            "id": repo_id,
            "tenant_name": "acme",
            "manifest": {"type": "ml-repo", "name": name, "storage_integration_fqn": "s3-int"},
            "created_by_subject": {"subjectId": "u-1", "subjectType": "user"},
            "created_at": "2023-11-07T05:31:56Z",
            "account_id": "acc",
        }

    client, transport = make_client(
        lambda _: httpx.Response(
            200,
            json={"data": [repo("16", "repo-a-old"), repo(17, REPO)], "pagination": {"total": 2}},
        )
    )
    async with client:
        found = await client.find_ml_repo(REPO)
    assert (found.id, found.name, found.tenant_name) == ("17", REPO, "acme")  # numeric id as a string
    (sent,) = transport.requests
    assert sent.url.path == "/api/svc/v1/ml-repos"
    assert decoded_query(sent) == {"limit": "100", "offset": "0", "name": REPO}


async def test_iter_ml_repos_walks_every_page_without_a_name_filter() -> None:
    def repo(repo_id: str) -> dict[str, Any]:
        return {"id": repo_id, "manifest": {"type": "ml-repo", "name": f"repo-{repo_id}"}}

    client, transport = make_client(
        scripted(
            page([repo("1"), repo("2")], total=3, offset=0, limit=100),
            page([repo("3")], total=3, offset=2, limit=100),
        )
    )
    async with client:
        found = [r.name async for r in client.iter_ml_repos()]
    assert found == ["repo-1", "repo-2", "repo-3"]
    assert [decoded_query(r) for r in transport.requests] == [
        {"limit": "100", "offset": "0"},
        {"limit": "100", "offset": "2"},
    ]


async def test_a_missing_ml_repo_is_a_missing_container() -> None:
    client, _ = make_client(lambda _: httpx.Response(200, json={"data": [], "pagination": {"total": 0}}))
    async with client:
        with pytest.raises(ModelNotFoundError, match="repo-x"):
            await client.find_ml_repo("repo-x")


# --- paging -------------------------------------------------------------------------------------


async def test_iterator_walks_three_pages_with_growing_offsets_and_the_same_filters() -> None:
    versions = [version_json(n) for n in range(7, 0, -1)]  # newest first, as the service sorts

    def pages(request: httpx.Request) -> httpx.Response:
        query = decoded_query(request)
        limit, offset = int(query["limit"]), int(query["offset"])
        return page(versions[offset : offset + limit], total=len(versions), offset=offset, limit=limit)

    client, transport = make_client(pages)
    async with client:
        seen = [v.version async for v in client.iter_versions(model_id="mid", page_size=3)]
    assert seen == [7, 6, 5, 4, 3, 2, 1]
    assert [decoded_query(r)["offset"] for r in transport.requests] == ["0", "3", "6"]
    for sent in transport.requests:
        assert decoded_query(sent)["model_id"] == "mid"
        assert decoded_query(sent)["limit"] == "3"


async def test_iterator_stops_on_an_empty_page_without_pagination() -> None:
    client, transport = make_client(
        scripted(
            httpx.Response(200, json={"data": [version_json(2), version_json(1)]}),
            httpx.Response(200, json={"data": []}),
        )
    )
    async with client:
        assert [v.version async for v in client.iter_versions(name="m1", page_size=2)] == [2, 1]
    assert len(transport.requests) == 2


async def test_iterator_ends_on_a_server_that_ignores_offset() -> None:
    client, transport = make_client(
        lambda _: page([version_json(2), version_json(1)], total=4, offset=0, limit=2)
    )
    async with client:
        seen = [v.version async for v in client.iter_versions(page_size=2)]
    assert seen == [2, 1]  # the repeated page is not yielded twice
    assert len(transport.requests) == 2  # offset 2 then 4 >= total


async def test_iterator_uses_the_sdk_page_size_by_default() -> None:
    client, transport = make_client(lambda _: page([], total=0, offset=0, limit=100))
    async with client:
        assert [v async for v in client.iter_versions()] == []
    assert decoded_query(transport.requests[0])["limit"] == "100"


# --- errors and retries -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (svc_error(401, "bad token"), AuthError),
        (svc_error(403, "no access to repo"), AuthError),
        (svc_error(404, "Model version not found"), NotFoundError),
        (httpx.Response(404, text="<html>nginx</html>"), InvalidRequestError),
        (svc_error(409, "alias in use"), ConflictError),
        (svc_error(400, "source is immutable"), InvalidRequestError),
        (
            httpx.Response(
                422, json={"detail": [{"loc": ["body", "manifest", "name"], "msg": "bad", "type": "x"}]}
            ),
            InvalidRequestError,
        ),
    ],
)
async def test_permanent_errors_are_classified_and_not_retried(
    response: httpx.Response, error: type[Exception]
) -> None:
    clock = FakeClock()
    client, transport = make_client(lambda _: response, clock=clock)
    async with client:
        with pytest.raises(error) as caught:
            await client.get("vid")
    assert type(caught.value) is error
    assert len(transport.requests) == 1
    assert clock.sleeps == []


async def test_reads_are_retried_with_bounded_jittered_backoff() -> None:
    clock = FakeClock()
    client, transport = make_client(
        scripted(svc_error(503), httpx.ReadTimeout("slow"), svc_error(500), data(version_json(1))),
        clock=clock,
        backoff_base=0.5,
        backoff_cap=1.5,
    )
    async with client:
        version = await client.get("vid")
    assert version.version == 1
    assert len(transport.requests) == 4
    assert len(clock.sleeps) == 3
    for attempt, slept in enumerate(clock.sleeps, start=1):
        assert 0 <= slept <= min(1.5, 0.5 * 2 ** (attempt - 1))
    assert len(set(clock.sleeps)) == 3  # jittered, not a fixed schedule


async def test_reads_give_up_after_max_attempts() -> None:
    clock = FakeClock()
    client, transport = make_client(lambda _: svc_error(502), clock=clock, max_read_attempts=3)
    async with client:
        with pytest.raises(ServerError):
            await client.list_versions(name="m1")
    assert len(transport.requests) == 3
    assert len(clock.sleeps) == 2


@pytest.mark.parametrize(
    ("first", "wait"),
    [
        (svc_error(429, headers={"Retry-After": "2"}), 2.0),
        (svc_error(503, headers={"Retry-After": "3"}), 3.0),
        (svc_error(429, headers={"retry-after-ms": "1500"}), 1.5),
        (svc_error(408, headers={"Retry-After": "Tue, 14 Nov 2023 22:13:24 GMT"}), 4.0),  # WALL + 4 s
        (svc_error(429, headers={"X-RateLimit-Reset": str(int(WALL) + 6)}), 6.0),
    ],
)
async def test_throttled_reads_honour_the_servers_wait(first: httpx.Response, wait: float) -> None:
    clock = FakeClock()
    client, transport = make_client(
        scripted(first, page([], total=0, offset=0, limit=100)),
        clock=clock,
        backoff_base=0.1,
        backoff_cap=0.1,
    )
    async with client:
        await client.list_versions()
    assert len(transport.requests) == 2
    (slept,) = clock.sleeps
    assert wait <= slept <= wait + 0.1


async def test_a_retry_after_longer_than_the_cap_goes_up_unwaited() -> None:
    clock = FakeClock()
    client, transport = make_client(
        scripted(svc_error(429, headers={"Retry-After": "120"}), data(version_json(1))),
        clock=clock,
        max_retry_wait=30,
    )
    async with client:
        with pytest.raises(ThrottledError) as caught:
            await client.get("vid")
    assert caught.value.retry_after == 120  # for the reconciler's requeue
    assert len(transport.requests) == 1
    assert clock.sleeps == []


WRITES: dict[str, Callable[[TrueFoundryClient], Awaitable[object]]] = {
    "apply": lambda c: c.apply(manifest()),
    "delete": lambda c: c.delete("vid"),
    "tags": lambda c: c.apply_tags("vid", ["prod"]),
}


@pytest.mark.parametrize(
    "failure",
    [
        svc_error(503),
        svc_error(429, headers={"Retry-After": "1"}),
        svc_error(409, "conflict"),
        httpx.ReadError("connection reset by peer"),
    ],
)
@pytest.mark.parametrize("operation", sorted(WRITES))
async def test_writes_are_never_retried(failure: httpx.Response | Exception, operation: str) -> None:
    clock = FakeClock()
    client, transport = make_client(scripted(failure, data(version_json(1))), clock=clock)
    async with client:
        with pytest.raises((ServerError, ThrottledError, ConflictError, NetworkError)):
            await WRITES[operation](client)
    assert len(transport.requests) == 1
    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("failure", "unknown"),
    [
        (httpx.ConnectError("refused"), False),
        (httpx.ConnectTimeout("no answer to SYN"), False),
        (httpx.PoolTimeout("pool busy"), False),
        (httpx.ReadTimeout("lost"), True),
        (httpx.WriteError("broken pipe"), True),
        (httpx.RemoteProtocolError("server disconnected"), True),
    ],
)
async def test_a_lost_apply_says_whether_it_may_have_created_a_version(
    failure: Exception, unknown: bool
) -> None:
    client, _ = make_client(scripted(failure))
    async with client:
        with pytest.raises(NetworkError) as caught:
            await client.apply(manifest())
    assert caught.value.outcome_unknown is unknown
    assert caught.value.retryable


async def test_malformed_success_bodies_are_server_errors() -> None:
    broken = dict(version_json(1))
    del broken["created_by_subject"]
    client, _ = make_client(
        scripted(httpx.Response(200, content=b"<html>"), data(broken), httpx.Response(200, json=[1])),
        max_read_attempts=1,
    )
    async with client:
        with pytest.raises(ServerError, match="not JSON"):
            await client.get("vid")
        with pytest.raises(ServerError, match="created_by_subject"):
            await client.apply(manifest())
        with pytest.raises(ServerError, match="not an object"):
            await client.list_versions()


async def test_a_redirect_is_not_followed_with_the_key() -> None:
    client, transport = make_client(
        lambda _: httpx.Response(301, headers={"location": "https://elsewhere.example/api/svc/v1/x"})
    )
    async with client:
        with pytest.raises(InvalidRequestError, match=r"elsewhere\.example"):
            await client.get("vid")
    assert len(transport.requests) == 1


async def test_on_request_reports_each_attempt_outcome() -> None:
    seen: list[tuple[str, str]] = []
    client, _ = make_client(
        scripted(svc_error(503), data(version_json(1)), svc_error(422, "bad alias"), svc_error(404, "gone")),
        on_request=lambda operation, outcome, seconds: seen.append((operation, outcome)),
    )
    async with client:
        await client.get("vid")
        with pytest.raises(InvalidRequestError):
            await client.apply(manifest())
        with pytest.raises(NotFoundError):
            await client.delete("vid")
    assert seen == [
        ("GetModelVersion", "server"),
        ("GetModelVersion", "ok"),
        ("ApplyModelVersion", "invalid_request"),
        ("DeleteModelVersion", "not_found"),
    ]


async def test_client_rate_limits_reads_and_writes_separately() -> None:
    waits: list[tuple[str, float]] = []
    clock = FakeClock()
    transport = RecordingTransport(lambda _: data(version_json(1)))
    client = TrueFoundryClient(
        TrueFoundryClientConfig(host=HOST),
        StaticApiKey(API_KEY),
        transport=transport,
        on_rate_limit_wait=lambda family, seconds: waits.append((family, seconds)),
        sleep=clock.sleep,
        clock=clock,
    )
    async with client:
        for _ in range(25):
            await client.get("vid")
        for _ in range(7):
            await client.apply(manifest())
    # the defaults: a burst of 20 reads then one every 1/20 s; a burst of 5 writes then 1/5 s
    assert [s for f, s in waits if f == "read"] == pytest.approx([1 / 20] * 5)
    assert [s for f, s in waits if f == "write"] == pytest.approx([1 / 5, 1 / 5])
    assert client.rate_limiter.waited_seconds[OperationFamily.READ] == pytest.approx(5 / 20)


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "base_url"),
    [
        ("http://127.0.0.1:8765/", "http://127.0.0.1:8765"),
        ("myorg.truefoundry.cloud", "https://myorg.truefoundry.cloud"),
        ("https://gateway.example/tfy", "https://gateway.example/tfy"),
    ],
)
async def test_host_is_the_root_url(host: str, base_url: str) -> None:
    config = TrueFoundryClientConfig(host=host)
    assert config.base_url == base_url
    transport = RecordingTransport(lambda _: data(version_json(1)))
    async with TrueFoundryClient(config, StaticApiKey(API_KEY), transport=transport) as client:
        await client.get("vid")
    url = f"{base_url}/api/svc/v1/model-versions/vid?include_internal_metadata=true"
    assert str(transport.requests[0].url) == url


@pytest.mark.parametrize(
    "host",
    ["https://x.example/api", "https://x.example/api/svc/v1/", "ftp://x.example", "", "https://x/?a=1"],
)
def test_hosts_that_cannot_be_the_root_are_refused(host: str) -> None:
    with pytest.raises(ValueError, match="host"):
        TrueFoundryClientConfig(host=host)


def test_a_host_with_credentials_is_refused_without_repeating_them() -> None:
    with pytest.raises(ValueError, match="credentials") as caught:
        TrueFoundryClientConfig(host="https://admin:hunter2@x.example")
    assert "hunter2" not in str(caught.value)


def test_only_the_two_known_prefixes_are_accepted() -> None:
    assert TrueFoundryClientConfig(host=HOST).api_prefix == "/api/svc/v1"
    with pytest.raises(ValueError, match="api_prefix"):
        TrueFoundryClientConfig.model_validate({"host": HOST, "api_prefix": "/api/v2"})


# --- credentials --------------------------------------------------------------------------------


async def test_no_key_raises_before_anything_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TFY_API_KEY", raising=False)
    transport = RecordingTransport(lambda _: data(version_json(1)))
    seen: list[str] = []
    async with TrueFoundryClient(
        TrueFoundryClientConfig(host=HOST),
        transport=transport,
        on_request=lambda o, outcome, s: seen.append(outcome),
    ) as client:
        with pytest.raises(NoCredentialsError, match="TFY_API_KEY"):
            await client.get("vid")
        with pytest.raises(NoCredentialsError):
            await client.apply(manifest())
    assert transport.requests == []
    assert seen == ["no_credentials", "no_credentials"]


async def test_the_default_source_is_the_sdk_variable_read_per_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    transport = RecordingTransport(lambda _: data(version_json(1)))
    async with TrueFoundryClient(TrueFoundryClientConfig(host=HOST), transport=transport) as client:
        monkeypatch.setenv("TFY_API_KEY", "tfy_one")
        await client.get("vid")
        monkeypatch.setenv("TFY_API_KEY", "tfy_two")
        await client.get("vid")
    assert [r.headers["authorization"] for r in transport.requests] == ["Bearer tfy_one", "Bearer tfy_two"]


class FailingSource:
    async def api_key(self) -> str:
        raise CredentialsError("the secret store is unreachable")


async def test_a_failing_source_is_retried_for_reads_and_not_for_writes() -> None:
    clock = FakeClock()
    client, transport = make_client(lambda _: data(version_json(1)), api_key=FailingSource(), clock=clock)
    async with client:
        with pytest.raises(CredentialsError):
            await client.get("vid")
        assert len(clock.sleeps) == 3  # retryable: four attempts
        with pytest.raises(CredentialsError):
            await client.delete("vid")
    assert len(clock.sleeps) == 3
    assert transport.requests == []


# --- secrets ------------------------------------------------------------------------------------


async def test_the_key_never_reaches_logs_reprs_or_exceptions(caplog: pytest.LogCaptureFixture) -> None:
    # A server (or proxy) that echoes the request, and a transport error that quotes the header.
    echo = f"invalid token: Authorization: Bearer {API_KEY}"
    client, transport = make_client(
        scripted(
            svc_error(401, echo),
            httpx.Response(502, text=f"upstream said {API_KEY}"),
            httpx.ReadError(f"reset while sending Bearer {API_KEY}"),
        ),
        max_read_attempts=1,
    )
    caplog.set_level(logging.DEBUG)
    async with client:
        with pytest.raises(AuthError) as auth_failure:
            await client.get("vid")
        with pytest.raises(ServerError) as server_failure:
            await client.list_versions()
        with pytest.raises(NetworkError) as network_failure:
            await client.apply(manifest())
    assert transport.requests[0].headers["authorization"] == f"Bearer {API_KEY}"  # it was really sent
    outputs = [caplog.text, repr(client), repr(client.config), repr(StaticApiKey(API_KEY)), repr(EnvApiKey())]
    for error in (auth_failure.value, server_failure.value, network_failure.value):
        outputs += [str(error), repr(error), error.message]
    assert "invalid token" in str(auth_failure.value)
    assert "GetModelVersion" in caplog.text  # the calls were logged, only without the key
    assert "ApplyModelVersion" in caplog.text
    for text in outputs:
        assert API_KEY not in text


# --- real sockets -------------------------------------------------------------------------------


async def test_on_real_sockets_a_refused_connection_is_known_unsent_and_a_dropped_one_is_not() -> None:
    """The two NetworkError flavours from a real TCP stack on loopback, not from a mock."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused_port = closed.getsockname()[1]
    closed.close()  # nothing listens there now

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the request arrived; no answer ever leaves
        writer.close()

    server = await asyncio.start_server(drop, "127.0.0.1", 0)
    dropping_port = server.sockets[0].getsockname()[1]
    try:
        for port, unknown in ((refused_port, False), (dropping_port, True)):
            config = TrueFoundryClientConfig(host=f"http://127.0.0.1:{port}", max_read_attempts=1)
            async with TrueFoundryClient(config, StaticApiKey(API_KEY)) as client:
                with pytest.raises(NetworkError) as caught:
                    await client.apply(manifest())
            assert caught.value.outcome_unknown is unknown, port
            assert API_KEY not in str(caught.value)
    finally:
        server.close()
        await server.wait_closed()


async def test_a_deleted_version_returned_by_id_is_not_found() -> None:
    """Two-phase deletes: the service may still return the row, with its DELETED status."""
    deleted = {**version_json(3), "status": "DELETED"}
    client, _ = make_client(lambda _: data(deleted))
    async with client:
        with pytest.raises(NotFoundError, match="DELETED"):
            await client.get("vid-3")
    committed = {**version_json(3), "status": "COMMITTED"}
    client, _ = make_client(lambda _: data(committed))
    async with client:
        assert (await client.get("vid-3")).version == 3


async def test_lists_never_yield_a_deleted_version() -> None:
    items = [version_json(2), {**version_json(1), "status": "HARD_DELETED"}]
    client, _ = make_client(lambda _: page(items, total=2, offset=0, limit=100))
    async with client:
        assert [v.version for v in (await client.list_versions(name="m1")).data] == [2]
    client, _ = make_client(
        scripted(page(items, total=2, offset=0, limit=100), page([], total=2, offset=2, limit=100))
    )
    async with client:
        assert [v.version async for v in client.iter_versions(name="m1")] == [2]


async def test_float_metric_fields_parse() -> None:
    metrics = [{"key": "loss", "value": 0.5, "timestamp": 1767225600123.5, "step": 2.5}]
    client, _ = make_client(lambda _: data({**version_json(1), "metrics": metrics}))
    async with client:
        version = await client.get("vid")
    (metric,) = version.metrics
    assert (metric.timestamp, metric.step) == (1767225600123.5, 2.5)
    assert metric.to_wire() == metrics[0]
