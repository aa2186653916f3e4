"""Shared runtime of one emulator application: its state holder, authentication and the JSON
response helpers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import secrets
import socket
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from emulator_kit.faults import FaultInjector, Journal
from emulator_kit.quotas import Quotas
from tfy_emulator import errors
from tfy_emulator.config import Dialect, EmulatorConfig, subject_for
from tfy_emulator.store import Store

JSON_CONTENT_TYPE = "application/json"
# Which server a path belongs to: /api/ml is the FastAPI "mlfoundry" server, /api/svc the
# "servicefoundry" one. They share handlers; only the shape of validation errors differs.
Api = Literal["ml", "svc"]


class Emulator:
    """Everything the handlers share; one per application."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self._subjects = [(key.token.encode(), subject_for(key.subject_slug)) for key in config.api_keys]
        self.store = Store(config.tenant, config.ml_repos, clock=lambda: datetime.now(UTC))
        self.quotas = Quotas(config.quotas)
        self.faults = FaultInjector()
        self.journal = Journal(config.journal_limit)
        self.dialect: Dialect = replace(config.dialect)
        # Signs upload URLs; per process, as a bucket's signing key would be.
        self._upload_key = secrets.token_bytes(32)
        self._save_lock = asyncio.Lock()
        if config.state_file is not None and config.state_file.exists():
            self.store.load(json.loads(config.state_file.read_text()))

    def authenticate(self, authorization: str | None) -> dict[str, Any]:
        """The subject of a `Bearer <token>` header, or a 401."""
        if not authorization:
            raise errors.unauthorized("missing Authorization header")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise errors.unauthorized("expected 'Authorization: Bearer <token>'")
        presented = token.strip().encode()
        found = None
        for known, subject in self._subjects:
            # Compare against every key, in constant time, so timing says nothing about the keys.
            if hmac.compare_digest(presented, known):
                found = subject
        if found is None:
            raise errors.unauthorized("invalid or expired token")
        return found

    def upload_signature(self, staged_id: str, path: str) -> str:
        return hmac.new(self._upload_key, f"{staged_id}/{path}".encode(), hashlib.sha256).hexdigest()

    def reset(self) -> None:
        """Back to the configured start: the seeded ML repos and nothing else, no faults, an empty
        journal, the configured quotas."""
        self.store.reset()
        self.faults.clear()
        self.journal.clear()
        self.quotas = Quotas(self.config.quotas)
        self.dialect = replace(self.config.dialect)

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


EMULATOR: web.AppKey[Emulator] = web.AppKey("tfy_emulator", Emulator)


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(payload).encode(),
        headers={"Content-Type": JSON_CONTENT_TYPE, **(headers or {})},
    )


def error_status(error: errors.ApiError, dialect: Dialect) -> int:
    if error.conflict and dialect.error_shape == "mlflow":
        return dialect.conflict_status
    return error.status


def error_body(api: Api, error: errors.ApiError, dialect: Dialect) -> dict[str, Any]:
    """Validation errors keep the request layer's shape in every dialect (FastAPI validates a
    request before any handler runs): `{"detail": [...]}` on /api/ml, `HttpError` with `details`
    on /api/svc. Every other error is the dialect's: the fork's `{"error_code", "message"}`
    (`mlflow`) or servicefoundry's `HttpError` (`current`)."""
    issues = [issue.as_json() for issue in error.issues]
    if api == "ml" and issues:
        return {"detail": issues}
    if dialect.error_shape == "mlflow" and not issues:
        return {"error_code": error.error_code, "message": error.message}
    body: dict[str, Any] = {"statusCode": error.status, "message": error.message}
    if error.code is not None:
        body["code"] = error.code
    if issues:
        body["details"] = issues
    return body


def error_response(api: Api, error: errors.ApiError, dialect: Dialect) -> web.Response:
    headers = {} if error.retry_after is None else {"Retry-After": str(error.retry_after)}
    return json_response(error_body(api, error, dialect), error_status(error, dialect), headers)


def drop_connection(request: web.Request) -> None:
    """Close the TCP connection with a reset (SO_LINGER 0) so the client sees a network error."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    transport.abort()
