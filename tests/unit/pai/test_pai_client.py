"""PaiClient over httpx.MockTransport: wire shape, endpoints, retries, paging, credentials,
and no secret in any output."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from pai_operator import __version__
from pai_operator.pai import (
    AuthError,
    CreateModelVersionRequest,
    Credentials,
    IncompleteListError,
    InvalidRequestError,
    Label,
    ListModelVersionsRequest,
    ModelNotFoundError,
    ModelVersion,
    NetworkError,
    NotFoundError,
    PaiClient,
    PaiClientConfig,
    ServerError,
    StaticCredentialsProvider,
    ThrottledError,
    UpdateModelVersionRequest,
)
from pai_operator.ratelimit import OperationFamily
from tests.unit.http_fakes import FakeClock, RecordingTransport, decoded_query, json_body, scripted
from tests.unit.pai.pai_fakes import ok, pai_error, sdk_authorization, signed_header_names

KEY_ID = "LTAI-test-id"
SECRET = "s3cr3t-never-shown"
TOKEN = "sts-token-never-shown"
EMULATOR = "http://127.0.0.1:8089"
REQUIRED_SIGNED = {
    "host",
    "x-acs-action",
    "x-acs-version",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-content-sha256",
    "accept",
    "user-agent",
}


def make_client(
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    credentials: Credentials | None = None,
    clock: FakeClock | None = None,
    on_request: Callable[[str, str, float], None] | None = None,
    **config: object,
) -> tuple[PaiClient, RecordingTransport]:
    transport = RecordingTransport(handler)
    clock = clock or FakeClock()
    client = PaiClient(
        PaiClientConfig.model_validate(
            {"endpoint": EMULATOR, "read_rate": None, "write_rate": None, **config}
        ),
        StaticCredentialsProvider(credentials or Credentials(KEY_ID, SECRET)),
        transport=transport,
        on_request=on_request,
        sleep=clock.sleep,
        rng=random.Random(7),
    )
    return client, transport


def assert_signed(request: httpx.Request, key_id: str = KEY_ID, secret: str = SECRET) -> None:
    assert set(signed_header_names(request)) >= REQUIRED_SIGNED
    assert request.headers["authorization"] == sdk_authorization(request, key_id, secret)


# --- wire shape ---------------------------------------------------------------------------------


async def test_create_model_version_wire_shape() -> None:
    client, transport = make_client(lambda _: ok({"VersionName": "1.0.0"}))
    request = CreateModelVersionRequest(
        uri="oss://bucket.oss-cn-hangzhou.aliyuncs.com/m/",
        version_name="1.0.0",
        framework_type="PyTorch",
        labels=[Label(key="team", value="nlp")],
        metrics={"Results": [{"Metrics": {"cer": 0.175}}]},
    )
    async with client:
        response = await client.create_model_version("model-abc", request)
    assert response.version_name == "1.0.0"
    (sent,) = transport.requests
    assert (sent.method, sent.url.raw_path) == ("POST", b"/api/v1/models/model-abc/versions")
    assert sent.headers["x-acs-action"] == "CreateModelVersion"
    assert sent.headers["x-acs-version"] == "2021-02-04"
    assert sent.headers["host"] == "127.0.0.1:8089"
    assert sent.headers["user-agent"] == f"pai-model-operator/{__version__}"
    assert sent.headers["content-type"] == "application/json; charset=utf-8"
    assert json_body(sent) == {
        "Uri": "oss://bucket.oss-cn-hangzhou.aliyuncs.com/m/",
        "VersionName": "1.0.0",
        "FrameworkType": "PyTorch",
        "Labels": [{"Key": "team", "Value": "nlp"}],
        "Metrics": {"Results": [{"Metrics": {"cer": 0.175}}]},
    }
    assert_signed(sent)


async def test_user_agent_names_the_replica_and_is_signed() -> None:
    agent = f"pai-model-operator/{__version__} (pai-operator-7d9f-abcde)"
    client, transport = make_client(lambda _: ok({"VersionName": "1.0.0"}), user_agent=agent)
    async with client:
        await client.get_model_version("model-abc", "1.0.0")
    (sent,) = transport.requests
    assert sent.headers["user-agent"] == agent
    assert "user-agent" in signed_header_names(sent)
    assert_signed(sent)


async def test_get_model_version_wire_shape_and_parsing() -> None:
    body = {
        "VersionName": "1.0.0",
        "Uri": "oss://b/p",
        "ApprovalStatus": "Approved",
        "Labels": [{"Key": "k", "Value": "v"}],
        "GmtCreateTime": "2021-01-30T12:51:33.028Z",
        "SomethingNew": 1,
    }
    client, transport = make_client(lambda _: ok(body))
    async with client:
        version = await client.get_model_version("model-abc", "1.0.0")
    assert (version.version_name, version.approval_status, version.label_map()) == (
        "1.0.0",
        "Approved",
        {"k": "v"},
    )
    (sent,) = transport.requests
    assert (sent.method, sent.url.raw_path, sent.content) == (
        "GET",
        b"/api/v1/models/model-abc/versions/1.0.0",
        b"",
    )
    assert "content-type" not in sent.headers
    assert sent.headers["x-acs-action"] == "GetModelVersion"
    assert_signed(sent)


async def test_update_sends_only_the_fields_set() -> None:
    client, transport = make_client(lambda _: ok())
    async with client:
        await client.update_model_version(
            "model-abc", "1.0.0", UpdateModelVersionRequest(approval_status="Approved", options="{}")
        )
    (sent,) = transport.requests
    assert (sent.method, sent.url.raw_path) == ("PUT", b"/api/v1/models/model-abc/versions/1.0.0")
    assert json_body(sent) == {"ApprovalStatus": "Approved", "Options": "{}"}
    assert sent.headers["x-acs-action"] == "UpdateModelVersion"
    assert_signed(sent)


async def test_delete_model_version_wire_shape() -> None:
    client, transport = make_client(lambda _: ok())
    async with client:
        await client.delete_model_version("model-abc", "2.3.4_beta")
    (sent,) = transport.requests
    assert (sent.method, sent.url.raw_path) == ("DELETE", b"/api/v1/models/model-abc/versions/2.3.4_beta")
    assert sent.headers["x-acs-action"] == "DeleteModelVersion"
    assert_signed(sent)


async def test_list_sends_filters_as_pascal_case_query() -> None:
    client, transport = make_client(lambda _: ok({"TotalCount": 1, "Versions": [{"VersionName": "0.1.0"}]}))
    request = ListModelVersionsRequest(
        page_size=5, page_number=2, label="a b&c", order="DESC", approval_status="Pending"
    )
    async with client:
        response = await client.list_model_versions("model-abc", request)
    assert response.total_count == 1
    assert [v.version_name for v in response.versions] == ["0.1.0"]
    (sent,) = transport.requests
    assert (sent.method, sent.url.path) == ("GET", "/api/v1/models/model-abc/versions")
    assert decoded_query(sent) == {
        "PageSize": "5",
        "PageNumber": "2",
        "Label": "a b&c",
        "Order": "DESC",
        "ApprovalStatus": "Pending",
    }
    assert b"a%20b%26c" in sent.url.query  # RFC 3986 on the wire, exactly as signed
    assert_signed(sent)


async def test_label_operations_wire_shape() -> None:
    client, transport = make_client(lambda _: ok())
    async with client:
        await client.create_model_version_labels(
            "model-abc", "1.0.0", [Label(key="a", value="1"), Label(key="b", value="2")]
        )
        await client.delete_model_version_labels("model-abc", "1.0.0", ["a", "b c"])
    create, delete = transport.requests
    assert (create.method, create.url.raw_path) == ("POST", b"/api/v1/models/model-abc/versions/1.0.0/labels")
    assert json_body(create) == {"Labels": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]}
    assert create.headers["x-acs-action"] == "CreateModelVersionLabels"
    assert (delete.method, delete.url.path, delete.content) == (
        "DELETE",
        "/api/v1/models/model-abc/versions/1.0.0/labels",
        b"",
    )
    assert decoded_query(delete) == {"LabelKeys": "a,b c"}
    assert delete.headers["x-acs-action"] == "DeleteModelVersionLabels"
    for sent in transport.requests:
        assert_signed(sent)


async def test_empty_label_lists_send_nothing() -> None:
    client, transport = make_client(lambda _: ok())
    async with client:
        await client.create_model_version_labels("m", "1.0.0", [])
        await client.delete_model_version_labels("m", "1.0.0", [])
    assert transport.requests == []


async def test_path_parameters_are_percent_encoded() -> None:
    client, transport = make_client(lambda _: ok({"VersionName": "x"}))
    async with client:
        await client.get_model_version("m/ü 1?", "1.0.0#x")
    (sent,) = transport.requests
    assert sent.url.raw_path == b"/api/v1/models/m%2F%C3%BC%201%3F/versions/1.0.0%23x"
    assert_signed(sent)


async def test_sts_token_is_sent_and_signed() -> None:
    client, transport = make_client(
        lambda _: ok({"VersionName": "1.0.0"}), credentials=Credentials(KEY_ID, SECRET, TOKEN)
    )
    async with client:
        await client.get_model_version("m", "1.0.0")
    (sent,) = transport.requests
    assert sent.headers["x-acs-security-token"] == TOKEN
    assert {"x-acs-security-token", "x-acs-accesskey-id"} <= set(signed_header_names(sent))
    assert_signed(sent)


async def test_every_request_has_a_fresh_nonce() -> None:
    client, transport = make_client(lambda _: ok({"VersionName": "1.0.0"}))
    async with client:
        for _ in range(3):
            await client.get_model_version("m", "1.0.0")
    nonces = {sent.headers["x-acs-signature-nonce"] for sent in transport.requests}
    assert len(nonces) == 3


# --- endpoints ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "base_url", "host"),
    [
        ({}, "https://aiworkspace.cn-hangzhou.aliyuncs.com", "aiworkspace.cn-hangzhou.aliyuncs.com"),
        ({"region_id": "cn-shanghai"}, "https://aiworkspace.cn-shanghai.aliyuncs.com", None),
        (
            {"region_id": "ap-southeast-1", "use_vpc": True},
            "https://aiworkspace-vpc.ap-southeast-1.aliyuncs.com",
            "aiworkspace-vpc.ap-southeast-1.aliyuncs.com",
        ),
        ({"endpoint": "http://127.0.0.1:8089/", "use_vpc": True}, "http://127.0.0.1:8089", "127.0.0.1:8089"),
        ({"endpoint": "pai.example.internal"}, "https://pai.example.internal", "pai.example.internal"),
        (
            {"endpoint": "https://pai.example.internal:443"},
            "https://pai.example.internal:443",
            "pai.example.internal",
        ),
    ],
)
async def test_endpoint_from_region_vpc_or_override(
    config: dict[str, object], base_url: str, host: str | None
) -> None:
    assert PaiClientConfig.model_validate(config).base_url == base_url
    if host is None:
        return
    transport = RecordingTransport(lambda _: ok({"VersionName": "1"}))
    async with PaiClient(
        PaiClientConfig.model_validate(config),
        StaticCredentialsProvider(Credentials(KEY_ID, SECRET)),
        transport=transport,
    ) as client:
        await client.get_model_version("m", "1")
    (sent,) = transport.requests
    assert sent.url.host == host.split(":")[0]
    assert sent.headers["host"] == host
    assert_signed(sent)


def test_timeouts_are_explicit() -> None:
    timeout = PaiClientConfig(connect_timeout=2, read_timeout=7).timeout()
    assert (timeout.connect, timeout.read, timeout.write) == (2, 7, 7)


# --- retries ------------------------------------------------------------------------------------


async def test_reads_are_retried_with_bounded_jittered_backoff() -> None:
    clock = FakeClock()
    client, transport = make_client(
        scripted(
            pai_error(503, "ServiceUnavailable"),
            httpx.ReadTimeout("slow"),
            pai_error(400, "InvalidTimeStamp.Expired"),
            ok({"VersionName": "1.0.0"}),
        ),
        clock=clock,
        backoff_base=0.5,
        backoff_cap=1.5,
    )
    async with client:
        version = await client.get_model_version("m", "1.0.0")
    assert version.version_name == "1.0.0"
    assert len(transport.requests) == 4
    assert len(clock.sleeps) == 3
    for attempt, slept in enumerate(clock.sleeps, start=1):
        assert 0 <= slept <= min(1.5, 0.5 * 2 ** (attempt - 1))
    assert len(set(clock.sleeps)) == 3  # jittered, not a fixed schedule
    # every attempt is signed afresh: a new nonce each time
    assert len({sent.headers["x-acs-signature-nonce"] for sent in transport.requests}) == 4


async def test_reads_give_up_after_max_attempts() -> None:
    clock = FakeClock()
    client, transport = make_client(
        lambda _: pai_error(500, "InternalError"), clock=clock, max_read_attempts=3
    )
    async with client:
        with pytest.raises(ServerError):
            await client.list_model_versions("m")
    assert len(transport.requests) == 3
    assert len(clock.sleeps) == 2


async def test_throttled_reads_honour_retry_after() -> None:
    clock = FakeClock()
    client, transport = make_client(
        scripted(
            pai_error(429, "Throttling.User", headers={"x-acs-retry-after": "2"}),
            ok({"VersionName": "1.0.0"}),
        ),
        clock=clock,
        backoff_base=0.1,
        backoff_cap=0.1,
    )
    async with client:
        await client.get_model_version("m", "1.0.0")
    assert len(transport.requests) == 2
    (slept,) = clock.sleeps
    assert 2.0 <= slept <= 2.1


async def test_permanent_read_errors_are_not_retried() -> None:
    clock = FakeClock()
    client, transport = make_client(
        scripted(pai_error(404, "InvalidModel.NotFound"), pai_error(404, "InvalidModelVersion.NotFound")),
        clock=clock,
    )
    async with client:
        with pytest.raises(ModelNotFoundError):
            await client.get_model_version("m", "1.0.0")
        with pytest.raises(NotFoundError) as caught:
            await client.get_model_version("m", "9.9.9")
    assert not isinstance(caught.value, ModelNotFoundError)
    assert caught.value.request_id == "req-err"
    assert len(transport.requests) == 2
    assert clock.sleeps == []


@pytest.mark.parametrize(
    "failure",
    [
        pai_error(503, "ServiceUnavailable"),
        pai_error(429, "Throttling.User", headers={"x-acs-retry-after": "1"}),
        httpx.ReadError("connection reset by peer"),
    ],
)
@pytest.mark.parametrize("operation", ["create", "update", "delete", "labels", "unlabel"])
async def test_writes_are_never_retried(failure: httpx.Response | Exception, operation: str) -> None:
    clock = FakeClock()
    client, transport = make_client(scripted(failure, ok({"VersionName": "1.0.0"})), clock=clock)
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "create": lambda: client.create_model_version("m", CreateModelVersionRequest(uri="oss://b/p")),
        "update": lambda: client.update_model_version("m", "1.0.0", UpdateModelVersionRequest(options="{}")),
        "delete": lambda: client.delete_model_version("m", "1.0.0"),
        "labels": lambda: client.create_model_version_labels("m", "1.0.0", [Label(key="k", value="v")]),
        "unlabel": lambda: client.delete_model_version_labels("m", "1.0.0", ["k"]),
    }
    async with client:
        with pytest.raises((ServerError, ThrottledError, NetworkError)) as caught:
            await calls[operation]()
    assert caught.value.retryable  # retryable in principle: the reconciler decides, not the client
    assert len(transport.requests) == 1
    assert clock.sleeps == []


async def test_network_errors_say_whether_the_request_may_have_been_processed() -> None:
    client, _ = make_client(scripted(httpx.ConnectError("refused"), httpx.ReadTimeout("lost")))
    async with client:
        with pytest.raises(NetworkError) as refused:
            await client.create_model_version("m", CreateModelVersionRequest(uri="oss://b/p"))
        with pytest.raises(NetworkError) as lost:
            await client.create_model_version("m", CreateModelVersionRequest(uri="oss://b/p"))
    assert refused.value.outcome_unknown is False
    assert lost.value.outcome_unknown is True


async def test_malformed_success_bodies_are_server_errors() -> None:
    client, _ = make_client(
        scripted(httpx.Response(200, content=b"<html>"), httpx.Response(200, json={"RequestId": "r"})),
        max_read_attempts=1,
    )
    async with client:
        with pytest.raises(ServerError, match="not JSON"):
            await client.get_model_version("m", "1.0.0")
        with pytest.raises(ServerError, match="VersionName"):
            await client.create_model_version("m", CreateModelVersionRequest(uri="oss://b/p"))


async def test_on_request_reports_each_attempt_outcome() -> None:
    seen: list[tuple[str, str]] = []
    client, _ = make_client(
        scripted(
            pai_error(503, "ServiceUnavailable"), ok({"VersionName": "1"}), pai_error(400, "InvalidParameter")
        ),
        on_request=lambda operation, outcome, seconds: seen.append((operation, outcome)),
    )
    async with client:
        await client.get_model_version("m", "1")
        with pytest.raises(InvalidRequestError):
            await client.update_model_version("m", "1", UpdateModelVersionRequest(options="x"))
    assert seen == [
        ("GetModelVersion", "server"),
        ("GetModelVersion", "ok"),
        ("UpdateModelVersion", "invalid_request"),
    ]


async def test_client_rate_limits_reads_and_writes_separately() -> None:
    waits: list[tuple[str, float]] = []
    clock = FakeClock()
    transport = RecordingTransport(lambda _: ok({"VersionName": "1"}))
    client = PaiClient(
        PaiClientConfig(endpoint=EMULATOR, read_rate=50, write_rate=20),
        StaticCredentialsProvider(Credentials(KEY_ID, SECRET)),
        transport=transport,
        on_rate_limit_wait=lambda family, seconds: waits.append((family, seconds)),
        sleep=clock.sleep,
        clock=clock,
    )
    async with client:
        for _ in range(60):
            await client.get_model_version("m", "1")
    read_waits = [seconds for family, seconds in waits if family == "read"]
    # a burst of 50 reads, then one read every 1/50 s; writes untouched
    assert read_waits == pytest.approx([1 / 50] * 10)
    assert len(waits) == len(read_waits)
    assert clock.now == pytest.approx(1000 + 10 / 50)
    assert client.rate_limiter.waited_seconds[OperationFamily.READ] == pytest.approx(sum(read_waits))


# --- pagination ---------------------------------------------------------------------------------


async def test_iterator_walks_every_page_and_keeps_filters() -> None:
    names = [f"0.{i}.0" for i in range(1, 8)]

    def pages(request: httpx.Request) -> httpx.Response:
        query = decoded_query(request)
        size, number = int(query["PageSize"]), int(query["PageNumber"])
        chunk = names[(number - 1) * size : number * size]
        return ok({"TotalCount": len(names), "Versions": [{"VersionName": n} for n in chunk]})

    client, transport = make_client(pages)
    async with client:
        seen = [
            v.version_name
            async for v in client.iter_model_versions(
                "m", ListModelVersionsRequest(page_size=3, label="prod")
            )
        ]
    assert seen == names
    assert [decoded_query(r)["PageNumber"] for r in transport.requests] == ["1", "2", "3"]
    assert all(decoded_query(r)["Label"] == "prod" for r in transport.requests)


async def collect(versions: AsyncIterator[ModelVersion], into: list[str]) -> None:
    async for version in versions:
        into.append(version.version_name)


async def test_iterator_stops_at_total_count_and_raises_on_a_server_that_ignores_paging() -> None:
    full_page = ok({"TotalCount": 4, "Versions": [{"VersionName": "a"}, {"VersionName": "b"}]})
    client, transport = make_client(lambda _: full_page)
    async with client:
        seen: list[str] = []
        with pytest.raises(IncompleteListError):
            await collect(client.iter_model_versions("m", ListModelVersionsRequest(page_size=2)), seen)
    assert seen == ["a", "b"]
    assert len(transport.requests) == 2

    client, transport = make_client(lambda _: ok({"TotalCount": 0, "Versions": []}))
    async with client:
        assert [v async for v in client.iter_model_versions("m")] == []
    assert decoded_query(transport.requests[0])["PageSize"] == "50"


def capped_pages(
    names: list[str], cap: int, *, offset_in_asked_size: bool
) -> Callable[[httpx.Request], httpx.Response]:
    """A service that serves at most `cap` items a page, counting PageNumber in the size served
    or in the size asked (both are plausible; neither is documented)."""

    def handler(request: httpx.Request) -> httpx.Response:
        query = decoded_query(request)
        asked, number = int(query["PageSize"]), int(query["PageNumber"])
        start = (number - 1) * (asked if offset_in_asked_size else min(asked, cap))
        chunk = names[start : start + min(asked, cap)]
        return ok({"TotalCount": len(names), "Versions": [{"VersionName": n} for n in chunk]})

    return handler


@pytest.mark.parametrize("offset_in_asked_size", [False, True])
async def test_iterator_is_complete_under_a_page_cap_below_the_size_asked(offset_in_asked_size: bool) -> None:
    names = [f"0.{i}.0" for i in range(1, 61)]
    client, transport = make_client(capped_pages(names, 10, offset_in_asked_size=offset_in_asked_size))
    async with client:
        seen = [v.version_name async for v in client.iter_model_versions("m")]
    assert seen == names
    # The first page asks 50, gets 10; the walk goes on at 10 a page: 6 requests, not 1.
    assert len(transport.requests) == 6
    assert [decoded_query(r)["PageSize"] for r in transport.requests] == ["50"] + ["10"] * 5


async def test_iterator_raises_when_the_list_ends_before_total_count() -> None:
    pages = iter(
        [
            ok({"TotalCount": 5, "Versions": [{"VersionName": "a"}, {"VersionName": "b"}]}),
            ok({"TotalCount": 5, "Versions": []}),
        ]
    )
    client, _ = make_client(lambda _: next(pages))
    async with client:
        seen: list[str] = []
        with pytest.raises(IncompleteListError) as caught:
            await collect(client.iter_model_versions("m", ListModelVersionsRequest(page_size=2)), seen)
    assert seen == ["a", "b"]
    assert caught.value.retryable
    assert "2 of 5" in str(caught.value)


# --- credentials --------------------------------------------------------------------------------


class RotatingProvider:
    def __init__(self, *values: Credentials) -> None:
        self.values = list(values)
        self.calls = 0

    async def get_credentials(self) -> Credentials:
        value = self.values[min(self.calls, len(self.values) - 1)]
        self.calls += 1
        return value


async def test_refreshed_credentials_are_used_without_restart() -> None:
    first = Credentials("key-one", "secret-one", "token-one")
    second = Credentials("key-two", "secret-two", "token-two")
    provider = RotatingProvider(first, second)
    transport = RecordingTransport(lambda _: ok({"VersionName": "1"}))
    async with PaiClient(PaiClientConfig(endpoint=EMULATOR), provider, transport=transport) as client:
        await client.get_model_version("m", "1")
        await client.get_model_version("m", "1")
    before, after = transport.requests
    assert "Credential=key-one," in before.headers["authorization"]
    assert before.headers["x-acs-security-token"] == "token-one"
    assert_signed(before, "key-one", "secret-one")
    assert "Credential=key-two," in after.headers["authorization"]
    assert after.headers["x-acs-security-token"] == "token-two"
    assert_signed(after, "key-two", "secret-two")


# --- secrets ------------------------------------------------------------------------------------


async def test_secrets_never_reach_logs_reprs_or_exceptions(caplog: pytest.LogCaptureFixture) -> None:
    credentials = Credentials(KEY_ID, SECRET, TOKEN)
    # A server that echoes what it saw, as real signature errors do.
    echo = f"string to sign mismatch; header x-acs-security-token:{TOKEN}; key {SECRET}"
    client, transport = make_client(
        scripted(pai_error(400, "SignatureDoesNotMatch", echo), httpx.ReadError(f"reset {SECRET}")),
        credentials=credentials,
        max_read_attempts=1,
    )
    caplog.set_level(logging.DEBUG)
    async with client:
        with pytest.raises(AuthError) as auth_failure:
            await client.get_model_version("m", "1.0.0")
        with pytest.raises(NetworkError) as network_failure:
            await client.delete_model_version("m", "1.0.0")
    assert transport.requests[0].headers["x-acs-security-token"] == TOKEN  # it was really sent
    outputs = [
        caplog.text,
        str(auth_failure.value),
        repr(auth_failure.value),
        str(network_failure.value),
        repr(network_failure.value),
        auth_failure.value.message,
        repr(client),
        repr(client.config),
        repr(credentials),
        str(credentials),
    ]
    assert "SignatureDoesNotMatch" in str(auth_failure.value)
    assert "GetModelVersion" in caplog.text  # the call was logged, only without secrets
    for text in outputs:
        assert SECRET not in text
        assert TOKEN not in text
    assert "ReadError" in str(network_failure.value)
