"""Shared runtime of one emulator application: its state holder and the JSON response helpers."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from pai_emulator import errors
from pai_emulator.config import EmulatorConfig
from pai_emulator.faults import FaultInjector, Journal
from pai_emulator.quotas import Quotas
from pai_emulator.signing import SignatureVerifier
from pai_emulator.store import Store

JSON_CONTENT_TYPE = "application/json;charset=utf-8"


class Emulator:
    """Everything the handlers share; one per application."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.store = Store(config.models, config.owner_id, clock=lambda: datetime.now(UTC))
        self.verifier = SignatureVerifier(
            config.access_keys, config.sts_credentials, max_clock_skew_seconds=config.max_clock_skew_seconds
        )
        self.quotas = Quotas(config.quotas)
        self.faults = FaultInjector()
        self.journal = Journal(config.journal_limit)
        self._save_lock = asyncio.Lock()
        if config.state_file is not None and config.state_file.exists():
            self.store.load(json.loads(config.state_file.read_text()))

    def reset(self) -> None:
        """Back to the configured start: seeded models without versions, no faults, empty journal."""
        self.store.reset()
        self.faults.clear()
        self.journal.clear()
        self.verifier.nonces.clear()
        self.quotas.configure(self.config.quotas)

    async def save(self) -> None:
        path = self.config.state_file
        if path is None:
            return
        # Serialised now (consistent with this moment's state), written off the event loop.
        data = json.dumps(self.store.snapshot(), indent=1)
        async with self._save_lock:
            await asyncio.to_thread(_atomic_write, path, data)


def _atomic_write(path: Path, data: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(data)
    os.replace(tmp, path)


EMULATOR: web.AppKey[Emulator] = web.AppKey("emulator", Emulator)


def new_request_id() -> str:
    return str(uuid.uuid4()).upper()


def json_response(
    payload: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(payload).encode(),  # ASCII escapes: safe even for lone surrogates
        headers={"Content-Type": JSON_CONTENT_TYPE, **(headers or {})},
    )


def error_response(request: web.Request, request_id: str, error: errors.ApiError) -> web.Response:
    headers = {"x-acs-request-id": request_id}
    if error.retry_after is not None:
        headers["x-acs-retry-after"] = str(error.retry_after)
    body = {"RequestId": request_id, "HostId": request.host, "Code": error.code, "Message": error.message}
    return json_response(body, error.status, headers)


def drop_connection(request: web.Request) -> None:
    """Close the TCP connection with a reset (SO_LINGER 0) so the client sees a network error."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    transport.abort()
