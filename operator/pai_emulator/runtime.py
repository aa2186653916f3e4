"""Shared runtime of one emulator application: its state holder and the JSON response helpers."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import tempfile
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from emulator_kit.faults import FaultInjector, Journal
from emulator_kit.quotas import Quotas
from pai_emulator import errors
from pai_emulator.config import Dialect, EmulatorConfig, parse_role_arn
from pai_emulator.signing import SignatureVerifier
from pai_emulator.store import Store

JSON_CONTENT_TYPE = "application/json;charset=utf-8"


class Emulator:
    """Everything the handlers share; one per application."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.default_account = config.owner_id
        self.roles = {role.arn: role for role in config.roles}
        # One running dialect shared by every account's store; the config keeps the start value.
        self.dialect = replace(config.dialect)
        # A role with an OIDC trust rule (--role-subject) exists too, as it does in RAM.
        for arn in config.role_subjects:
            role = parse_role_arn(arn)
            if role is not None:
                self.roles.setdefault(role.arn, role)
        self.oidc_providers = {provider.arn: provider for provider in config.oidc_providers}
        # One store per account: an account sees and changes only its own models and versions.
        self.stores: dict[str, Store] = {}
        for account, models in _models_by_account(config.models, config.owner_id).items():
            self.stores[account] = self._new_store(account, models)
        self.store = self.store_for(config.owner_id)
        self.verifier = SignatureVerifier(
            config.access_keys,
            config.sts_credentials,
            max_clock_skew_seconds=config.max_clock_skew_seconds,
            default_account=config.owner_id,
        )
        # PAI's quotas are per account: one account's traffic never throttles another's.
        self._quota_rates = dict(config.quotas)
        self._quotas: dict[str, Quotas] = {}
        self.faults = FaultInjector()
        self.journal = Journal(config.journal_limit)
        self._save_lock = asyncio.Lock()
        if config.state_file is not None and config.state_file.exists():
            self.load(json.loads(config.state_file.read_text()))

    def _new_store(self, account: str, models: list[str]) -> Store:
        return Store(models, account, clock=lambda: datetime.now(UTC), dialect=self.dialect)

    def store_for(self, account: str) -> Store:
        store = self.stores.get(account)
        if store is None:
            store = self.stores[account] = self._new_store(account, [])
        return store

    def quotas_for(self, account: str) -> Quotas:
        quotas = self._quotas.get(account)
        if quotas is None:
            quotas = self._quotas[account] = Quotas(self._quota_rates)
        return quotas

    def quota_rates(self) -> dict[str, float]:
        return dict(self._quota_rates)

    def configure_quotas(self, rates: dict[str, float]) -> None:
        """Set rates for every account (the ones seen so far and those to come)."""
        Quotas(rates)  # validates before anything changes
        self._quota_rates.update(rates)
        for quotas in self._quotas.values():
            quotas.configure(rates)

    def reset(self) -> None:
        """Back to the configured start: seeded models without versions, no faults, empty journal,
        the configured dialect."""
        self.configure_dialect(self.config.dialect)
        seeded = _models_by_account(self.config.models, self.default_account)
        self.stores = {account: self._new_store(account, models) for account, models in seeded.items()}
        self.store = self.store_for(self.default_account)
        self.faults.clear()
        self.journal.clear()
        self.verifier.nonces.clear()
        self._quota_rates = dict(self.config.quotas)
        self._quotas.clear()

    def configure_dialect(self, dialect: Dialect) -> None:
        """Switch the running dialect in place (every store holds this one instance)."""
        dialect.validate()
        for name, value in vars(dialect).items():
            setattr(self.dialect, name, value)

    def snapshot(self) -> dict[str, Any]:
        """The default account's state at the top level (the format before accounts existed, so
        older state files still load), other accounts under "Accounts"."""
        data = self.store.snapshot()
        others = {a: s for a, s in self.stores.items() if a != self.default_account}
        data["Accounts"] = {account: store.snapshot() for account, store in others.items()}
        return data

    def load(self, data: dict[str, Any]) -> None:
        self.store.load(data)
        for account, state in (data.get("Accounts") or {}).items():
            self.store_for(account).load(state)

    async def save(self) -> None:
        path = self.config.state_file
        if path is None:
            return
        # Serialised now (consistent with this moment's state), written off the event loop.
        data = json.dumps(self.snapshot(), indent=1)
        async with self._save_lock:
            await asyncio.to_thread(_atomic_write, path, data)


def _models_by_account(models: list[str], default_account: str) -> dict[str, list[str]]:
    """`MODEL_ID` belongs to the default account, `ACCOUNT/MODEL_ID` to ACCOUNT."""
    by_account: dict[str, list[str]] = {default_account: []}
    for item in models:
        account, sep, model_id = item.partition("/")
        if not sep:
            account, model_id = default_account, item
        by_account.setdefault(account, []).append(model_id)
    return by_account


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
