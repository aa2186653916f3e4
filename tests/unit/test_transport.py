"""AiohttpTransport against a real HTTP server on loopback: what goes on the wire is exactly the
request httpx describes, answers come back as httpx responses, and failures are httpx's
exceptions, split as the clients rely on (nothing sent versus outcome unknown)."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest
from aiohttp import web

from pai_operator.transport import NEVER_SENT, AiohttpTransport

TIMEOUT = httpx.Timeout(connect=2.0, read=2.0, write=2.0, pool=2.0)


@dataclass
class Seen:
    """What the server received, one entry per request."""

    raw_paths: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[tuple[str, Seen]]]]:
    """Starts a server whose every request goes to `handler`; returns its base URL."""
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> tuple[str, Seen]:
        seen = Seen()

        async def record(request: web.Request) -> web.StreamResponse:
            seen.raw_paths.append(request.raw_path)
            seen.headers.append({name.lower(): value for name, value in request.headers.items()})
            seen.bodies.append(await request.read())
            return await handler(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", record)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}", seen

    yield start
    for runner in runners:
        await runner.cleanup()


async def send(transport: AiohttpTransport, request: httpx.Request) -> httpx.Response:
    response = await transport.handle_async_request(request)
    await response.aread()
    return response


async def test_sends_the_request_as_given(serve: Callable[[Handler], Awaitable[tuple[str, Seen]]]) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"ok": True}, headers={"x-acs-request-id": "RID"})

    url, seen = await serve(answer)
    transport = AiohttpTransport(TIMEOUT, max_connections=2)
    try:
        # Signed paths and queries carry RFC 3986 escapes that must reach the server untouched.
        path = "/api/v1/models/m%2F1/versions/v%201?LabelKeys=a%2Cb&Name=x~y"
        headers = {
            "host": url.removeprefix("http://"),
            "x-acs-action": "GetModelVersion",
            "user-agent": "ua/1",
        }
        response = await send(transport, httpx.Request("GET", url + path, headers=headers))
        post = httpx.Request(
            "POST",
            url + "/api/v1/models",
            headers={"content-type": "application/json; charset=utf-8"},
            content=b'{"A": 1}',
        )
        await send(transport, post)
    finally:
        await transport.aclose()

    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert response.headers["x-acs-request-id"] == "RID"
    assert seen.raw_paths[0] == path
    sent = seen.headers[0]
    for name, value in headers.items():
        assert sent[name] == value
    # Nothing of aiohttp's own beyond the framing: no guessed content type, no aiohttp user agent.
    assert "content-type" not in sent
    assert set(sent) - set(headers) <= {"accept", "accept-encoding", "content-length", "connection"}
    assert seen.bodies[1] == b'{"A": 1}'
    assert seen.headers[1]["content-type"] == "application/json; charset=utf-8"


async def test_compressed_answers_are_decoded_once(
    serve: Callable[[Handler], Awaitable[tuple[str, Seen]]],
) -> None:
    payload = b'{"Versions": []}' * 100

    async def answer(request: web.Request) -> web.Response:
        assert "gzip" in request.headers["accept-encoding"]
        return web.Response(body=gzip.compress(payload), headers={"content-encoding": "gzip"})

    url, _ = await serve(answer)
    transport = AiohttpTransport(TIMEOUT, max_connections=2)
    try:
        response = await send(transport, httpx.Request("GET", url + "/x"))
    finally:
        await transport.aclose()
    assert response.content == payload


async def test_keeps_no_cookies(serve: Callable[[Handler], Awaitable[tuple[str, Seen]]]) -> None:
    async def answer(request: web.Request) -> web.Response:
        response = web.Response(text="{}")
        response.set_cookie("session", "abc")
        return response

    url, seen = await serve(answer)
    transport = AiohttpTransport(TIMEOUT, max_connections=2)
    try:
        for _ in range(2):
            await send(transport, httpx.Request("GET", url + "/x"))
    finally:
        await transport.aclose()
    assert "cookie" not in seen.headers[1]


async def test_refused_connection_was_never_sent() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = AiohttpTransport(TIMEOUT, max_connections=2)
    try:
        with pytest.raises(httpx.ConnectError) as caught:
            await send(transport, httpx.Request("POST", f"http://127.0.0.1:{port}/x", content=b"{}"))
    finally:
        await transport.aclose()
    assert isinstance(caught.value, NEVER_SENT)


async def test_slow_answer_is_a_read_timeout(serve: Callable[[Handler], Awaitable[tuple[str, Seen]]]) -> None:
    async def answer(request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.Response(text="{}")

    url, _ = await serve(answer)
    transport = AiohttpTransport(TIMEOUT, max_connections=2)
    request = httpx.Request("GET", url + "/x", extensions={"timeout": httpx.Timeout(5.0, read=0.2).as_dict()})
    try:
        with pytest.raises(httpx.ReadTimeout) as caught:
            await send(transport, request)
    finally:
        await transport.aclose()
    assert not isinstance(caught.value, NEVER_SENT)


async def test_dropped_connection_leaves_the_outcome_unknown(
    serve: Callable[[Handler], Awaitable[tuple[str, Seen]]],
) -> None:
    async def answer(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()  # the request arrived; its answer never leaves
        return web.Response(text="{}")

    url, seen = await serve(answer)
    transport = AiohttpTransport(TIMEOUT, max_connections=2)
    try:
        with pytest.raises(httpx.TransportError) as caught:
            await send(transport, httpx.Request("POST", url + "/x", content=b"{}"))
    finally:
        await transport.aclose()
    assert seen.bodies == [b"{}"]
    assert not isinstance(caught.value, NEVER_SENT)


async def test_proxy_from_the_environment(
    serve: Callable[[Handler], Awaitable[tuple[str, Seen]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(text="{}")

    proxy, seen = await serve(answer)
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("NO_PROXY", "bypassed.invalid")
    transport = AiohttpTransport(TIMEOUT, max_connections=2)
    try:
        await send(transport, httpx.Request("GET", "http://pai.invalid/api/v1/models"))
        with pytest.raises(httpx.ConnectError):  # not proxied: its name does not resolve
            await send(transport, httpx.Request("GET", "http://bypassed.invalid/x"))
    finally:
        await transport.aclose()
    # A proxy receives the absolute URL; the host header names the origin, not the proxy.
    assert seen.headers[0]["host"] == "pai.invalid"
    assert len(seen.headers) == 1


async def test_the_truefoundry_client_sends_through_it(
    serve: Callable[[Handler], Awaitable[tuple[str, Seen]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """TrueFoundryClient's default wire is this transport (as PaiClient's is), proxies included:
    httpx's own environment handling would route a proxied host around it."""
    from pai_operator.truefoundry import StaticApiKey, TrueFoundryClient, TrueFoundryClientConfig
    from tests.unit.truefoundry.tfy_fakes import version_json

    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"data": version_json(2)})

    proxy, seen = await serve(answer)
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("NO_PROXY", "")
    config = TrueFoundryClientConfig.model_validate(
        {"host": "http://tfy.invalid", "read_rate": None, "write_rate": None}
    )
    client = TrueFoundryClient(config, StaticApiKey("tfy-key"))
    assert isinstance(client._http._transport, AiohttpTransport)
    async with client:
        version = await client.get("vid 2")
    assert version.version == 2
    # Through the proxy (the origin does not resolve), as httpx described the request.
    assert seen.headers[0]["host"] == "tfy.invalid"
    assert seen.headers[0]["authorization"] == "Bearer tfy-key"
    assert seen.raw_paths == [
        "http://tfy.invalid/api/svc/v1/model-versions/vid%202?include_internal_metadata=true"
    ]


async def test_a_write_on_a_dropped_kept_alive_connection_is_sent_once(
    serve: Callable[[Handler], Awaitable[tuple[str, Seen]]],
) -> None:
    # aiohttp on its own resends PUT/DELETE/GET once when a reused connection drops; a PUT that
    # creates (TrueFoundry's model-versions) must reach the server once, its outcome unknown.
    async def answer(request: web.Request) -> web.Response:
        if request.method == "PUT":
            assert request.transport is not None
            request.transport.close()  # the request was read (and may be committed); no answer
        return web.Response(text="{}")

    url, seen = await serve(answer)
    transport = AiohttpTransport(TIMEOUT, max_connections=1)
    try:
        await send(transport, httpx.Request("GET", f"{url}/warm"))  # a kept-alive connection
        with pytest.raises(httpx.TransportError) as caught:
            await send(transport, httpx.Request("PUT", f"{url}/api/svc/v1/model-versions", content=b"{}"))
    finally:
        await transport.aclose()
    assert not isinstance(caught.value, NEVER_SENT)
    assert [path for path in seen.raw_paths if path.endswith("model-versions")] == [
        "/api/svc/v1/model-versions"
    ]
