"""Test doubles shared by the PAI client tests: PAI-shaped answers and an independent signature
check through the official SDK's signer (the registry-neutral doubles are in tests/unit/http_fakes)."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace
from typing import Any

import httpx
from alibabacloud_tea_openapi.utils import Utils as SdkUtils

from tests.unit.http_fakes import decoded_query


def ok(body: dict[str, Any] | None = None, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json={"RequestId": "req-ok", **(body or {})})


def pai_error(
    status: int, code: str, message: str = "boom", headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {"RequestId": "req-err", "HostId": "h", "Code": code, "Message": message}
    return httpx.Response(status, json=body, headers=headers)


def signed_header_names(request: httpx.Request) -> list[str]:
    auth = request.headers["authorization"]
    signed = auth.split("SignedHeaders=", 1)[1].split(",", 1)[0]
    return signed.split(";")


def sdk_authorization(request: httpx.Request, access_key_id: str, secret: str) -> str:
    """What the official SDK's signer computes for this request as it arrived on the wire.

    Done the way a server verifies: decode the query, take the headers the client says it
    signed, hash the body bytes received.
    """
    names = signed_header_names(request)
    headers = {name: request.headers[name] for name in names}
    payload_hash = hashlib.sha256(request.content).hexdigest()
    sdk_request = SimpleNamespace(
        method=request.method,
        pathname=request.url.raw_path.decode("ascii").split("?", 1)[0],
        query=decoded_query(request),
        headers=headers,
    )
    result: str = SdkUtils.get_authorization(
        sdk_request, "ACS3-HMAC-SHA256", payload_hash, access_key_id, secret
    )
    return result
