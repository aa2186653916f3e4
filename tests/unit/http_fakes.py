"""Test doubles for any registry client over httpx: a recording MockTransport, scripted answers,
and a fake clock (no real waiting)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx

Handler = Callable[[httpx.Request], httpx.Response]


class RecordingTransport(httpx.MockTransport):
    """A MockTransport that keeps every request it answered."""

    def __init__(self, handler: Handler) -> None:
        self.requests: list[httpx.Request] = []

        def record(request: httpx.Request) -> httpx.Response:
            request.read()
            self.requests.append(request)
            return handler(request)

        super().__init__(record)


def scripted(*responses: httpx.Response | Exception) -> Handler:
    """Answer each request with the next item; an exception is raised as the transport's failure."""
    remaining = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        item = remaining.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return handler


def decoded_query(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(request.url.query.decode("ascii"), keep_blank_values=True))


def json_body(request: httpx.Request) -> Any:
    return json.loads(request.content)


class FakeClock:
    """A monotonic clock that only moves when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
