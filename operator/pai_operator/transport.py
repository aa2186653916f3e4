"""What every registry client shares of HTTP (the clients live in `pai/`, `truefoundry/`)."""

from __future__ import annotations

import ssl
import urllib.request
from typing import Final

import aiohttp
import httpx
import yarl

from pai_operator import __version__

USER_AGENT: Final = f"pai-model-operator/{__version__}"
"""Sent on every request; the operator adds its replica identity (`CoreSettings.user_agent`)."""

NEVER_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Failing while connecting (or waiting for a pooled connection) means nothing was sent: safe
to retry even a write."""


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx's transport seam over an aiohttp connection pool.

    The clients keep httpx's types (requests, responses, errors, `MockTransport` in tests); only
    the wire below them changes. httpx's own transport (httpcore over anyio, h11 in pure Python)
    cost about 0.9 ms of CPU per PAI call, aiohttp's C parser about 0.3 ms (measured on
    GetModelVersion against pai_emulator, bench/RESULTS.md section 5): with it a call costs less
    than with the official SDK. kopf already runs on aiohttp, so nothing new is installed.

    Kept as httpx's transport does it: certificates verified as httpx verifies them (certifi, or
    SSL_CERT_FILE / SSL_CERT_DIR), proxies from the environment, no cookies kept, a body of
    `gzip`/`deflate` decoded by httpx. Failures map to httpx's exceptions, so `NEVER_SENT` still
    tells a connection that was never made from a request whose outcome is unknown.
    """

    def __init__(self, timeout: httpx.Timeout, max_connections: int) -> None:
        self._timeout = timeout
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str], str | None] = {}
        self._tls: ssl.SSLContext | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running event loop aiohttp binds it to.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                # httpx's pool limits: idle connections closed after 5 s (keepalive_expiry).
                connector=aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=5.0),
                cookie_jar=aiohttp.DummyCookieJar(),
                # Not aiohttp's trust_env: it looks up netrc and proxies in a worker thread on
                # every request (two thread hops per call). Proxies are read once per origin.
                trust_env=False,
                # Every header the client sends is signed: aiohttp adds nothing of its own but
                # the framing (host, content-length) and the encodings httpx can decode.
                skip_auto_headers=("User-Agent", "Content-Type"),
                auto_decompress=False,
            )
            # aiohttp sends an "idempotent" request (GET, PUT, DELETE, ...) once more when a
            # kept-alive connection drops before the answer. TrueFoundry's PUT model-versions
            # without a version creates one: a create whose answer was lost went out twice, a
            # duplicate (test_lost_create_response_leaves_no_duplicate). Whether a request may be
            # sent again is the clients' decision (NEVER_SENT), never the wire's. Private in
            # aiohttp 3.x; tests/unit/test_transport.py fails if this stops taking effect.
            self._session._retry_connection = False
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout") or {}
        pool = timeout.get("pool", self._timeout.pool)
        connect = timeout.get("connect", self._timeout.connect)
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw]
        if "accept-encoding" not in request.headers:
            headers.append(("accept-encoding", "gzip, deflate"))
        body = await request.aread()
        try:
            async with self._open().request(
                request.method,
                yarl.URL(str(request.url), encoded=True),  # as signed: no re-encoding
                proxy=self._proxy(request.url),
                ssl=self._tls_context() if request.url.scheme == "https" else True,
                headers=headers,
                data=body or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    # aiohttp's `connect` covers waiting for a pooled connection and making one.
                    connect=None if pool is None or connect is None else pool + connect,
                    sock_connect=connect,
                    sock_read=timeout.get("read", self._timeout.read),
                ),
            ) as response:
                content = await response.read()
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc), request=request) from exc
        except aiohttp.ClientConnectorError as exc:  # DNS, refused, TLS handshake, proxy
            raise httpx.ConnectError(str(exc), request=request) from exc
        except TimeoutError as exc:  # aiohttp's socket read timeout and any other
            raise httpx.ReadTimeout(str(exc) or "read timed out", request=request) from exc
        except (
            aiohttp.ServerDisconnectedError,
            aiohttp.ClientPayloadError,
            aiohttp.ClientResponseError,
        ) as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        except (aiohttp.ClientError, OSError) as exc:  # reset, broken pipe: sent, outcome unknown
            raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
        return httpx.Response(
            response.status,
            headers=list(response.raw_headers),
            content=content,
            request=request,
        )

    def _tls_context(self) -> ssl.SSLContext:
        # Built on the first https request only: a context costs tens of milliseconds.
        if self._tls is None:
            self._tls = httpx.create_ssl_context()
        return self._tls

    def _proxy(self, url: httpx.URL) -> str | None:
        """The proxy httpx would take from the environment (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY,
        NO_PROXY), looked up once per origin."""
        origin = (url.scheme, url.host)
        if origin not in self._proxies:
            proxies = urllib.request.getproxies()
            proxy = proxies.get(url.scheme) or proxies.get("all")
            self._proxies[origin] = None if proxy is None or urllib.request.proxy_bypass(url.host) else proxy
        return self._proxies[origin]

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
