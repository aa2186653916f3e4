"""Run the PAI emulator for tests: as a subprocess (`EmulatorProcess`, the real CLI over real HTTP),
in this process on a background thread (`InProcessEmulator`, fast, any EmulatorConfig, for
synchronous tests), or in the caller's own event loop (`emulator_in_loop`, for async tests: no
thread, and its state may be touched between awaits), plus a small synchronous client for its
admin API (`AdminClient`, not usable from the emulator's own loop: it would block it).

Typical use:

    with EmulatorProcess(models=["model-a"]) as emulator:
        emulator.endpoint            # "127.0.0.1:PORT" for an SDK/our client endpoint override
        emulator.admin.add_fault("CreateModelVersion", "commit_then_drop", count=1)
        emulator.admin.journal()
"""

from __future__ import annotations

import asyncio
import hashlib
import json as jsonlib
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

import httpx

from tests.support.emulator_process import AdminBase, EmulatorSubprocess
from tests.support.emulator_process import AdminError as AdminError  # tests catch it from here

if TYPE_CHECKING:
    from pai_emulator.config import EmulatorConfig

DEFAULT_ACCESS_KEY_ID = "test-access-key-id"
DEFAULT_ACCESS_KEY_SECRET = "test-access-key-secret"
DEFAULT_MODEL_ID = "model-test"
URL_PREFIX = "PAI_EMULATOR_URL="


@dataclass(frozen=True)
class Credential:
    """An access key (security_token None) or an STS credential for the emulator."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


DEFAULT_CREDENTIAL = Credential(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET)


class AdminClient(AdminBase):
    """The PAI emulator's admin API: the common part (faults, journal with Operation, ModelId,
    VersionName, Status, Code, LatencyMs, Time, Fault, UserAgent; reset; quotas) and models,
    versions, dialect."""

    def add_model(self, model_id: str, account: str | None = None) -> bool:
        """Register a model (of the default account, or of `account`); True if it was new."""
        body = {"ModelId": model_id, **({"Account": account} if account else {})}
        return bool(self._call("POST", "/models", body)["Created"])

    def versions(self, model_id: str, account: str | None = None) -> list[dict[str, Any]]:
        """The full stored state of a model's versions (default account, or `account`), in
        creation order."""
        query = f"?Account={account}" if account else ""
        return list(self._call("GET", f"/versions/{model_id}{query}")["Versions"])

    def models(self, account: str | None = None) -> list[dict[str, Any]]:
        """Every model of the account as GetModel answers it (seeded ones included)."""
        suffix = f"?Account={account}" if account else ""
        models: list[dict[str, Any]] = self._call("GET", f"/models{suffix}")["Models"]
        return models

    def delete_model(self, model_id: str, account: str | None = None) -> None:
        """DeleteModel (its versions go with it) without a signed request."""
        query = f"?Account={account}" if account else ""
        self._call("DELETE", f"/models/{model_id}{query}")

    def dialect(self) -> dict[str, Any]:
        """{"ErrorDialect", "NotFoundStatus", "LabelUpsert", "MaxPageSize"} now in force."""
        return dict(self._call("GET", "/dialect")["Dialect"])

    def set_dialect(
        self,
        *,
        error_dialect: str | None = None,
        not_found_status: int | None = None,
        label_upsert: str | None = None,
        max_page_size: int | Literal["keep"] | None = "keep",
    ) -> dict[str, Any]:
        """Switch the running dialect (reset() restores the configured one); None leaves a
        setting as it is, except max_page_size=None, which removes the cap."""
        body: dict[str, Any] = {
            key: value
            for key, value in (
                ("ErrorDialect", error_dialect),
                ("NotFoundStatus", not_found_status),
                ("LabelUpsert", label_upsert),
            )
            if value is not None
        }
        if max_page_size != "keep":
            body["MaxPageSize"] = max_page_size
        return dict(self._call("PUT", "/dialect", body)["Dialect"])

    def set_quota(self, operation: str, rate: float) -> dict[str, float]:
        """Requests per second for one operation (0 = unlimited); returns all quotas."""
        return self.set_quotas({operation: rate})


class _RunningEmulator:
    url: str
    _admin: Any = None  # an AdminClient once asked for

    @property
    def host(self) -> str:
        return httpx.URL(self.url).host

    @property
    def port(self) -> int:
        port = httpx.URL(self.url).port
        assert port is not None
        return port

    @property
    def endpoint(self) -> str:
        """host:port, the form the SDK's Config(endpoint=...) and our client's override expect."""
        return f"{self.host}:{self.port}"

    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient(self.url)
        return self._admin

    def _close_admin(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None


class EmulatorProcess(_RunningEmulator, EmulatorSubprocess):
    """`python -m pai_emulator.cli` on a free port; a context manager that stops it on exit."""

    def __init__(
        self,
        *,
        credentials: Iterable[Credential] = (DEFAULT_CREDENTIAL,),
        models: Iterable[str] = (DEFAULT_MODEL_ID,),
        admin: bool = True,
        state_file: Path | None = None,
        quotas: Mapping[str, float] | None = None,
        host: str = "127.0.0.1",
        extra_args: Sequence[str] = (),
        startup_timeout: float = 30.0,
    ) -> None:
        self.credentials = list(credentials)
        self.models = list(models)
        args: list[str] = []
        for cred in self.credentials:
            if cred.security_token is None:
                args += ["--access-key", f"{cred.access_key_id}:{cred.access_key_secret}"]
            else:
                args += [
                    "--sts-token",
                    f"{cred.access_key_id}:{cred.access_key_secret}:{cred.security_token}",
                ]
        for model in self.models:
            args += ["--model", model]
        super().__init__(
            "pai_emulator.cli",
            URL_PREFIX,
            args,
            admin=admin,
            state_file=state_file,
            quotas=quotas,
            host=host,
            extra_args=extra_args,
            startup_timeout=startup_timeout,
        )


class InProcessEmulator(_RunningEmulator):
    """The emulator app on a background event loop in this process, listening on loopback.

    For configurations the CLI cannot express (expiring STS tokens, a fake clock) and for fast
    property tests. `app` gives direct access for assertions; touch it only between requests.
    """

    def __init__(self, config: EmulatorConfig, host: str = "127.0.0.1") -> None:
        from pai_emulator.server import create_app

        self.app = create_app(config)
        self._host = host
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="pai-emulator", daemon=True)
        self._runner: Any = None

    async def _start(self) -> str:
        from aiohttp import web

        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://{self._host}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self._close_admin()
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@asynccontextmanager
async def emulator_in_loop(config: EmulatorConfig, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """The emulator app on `host` (a free port), served by the running event loop; yields its URL.

    Close clients first: the server's shutdown then has no open connection to wait for."""
    from aiohttp import web

    from pai_emulator.server import create_app

    runner = web.AppRunner(create_app(config), access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, 0).start()
        bound_host, port = runner.addresses[0][:2]
        yield f"http://{bound_host}:{port}"
    finally:
        await runner.cleanup()


@dataclass
class SignedRequest:
    """A request signed by the official SDK's own signer, ready to send with httpx (or to tamper with)."""

    method: str
    url: str
    headers: dict[str, str]
    content: bytes

    def send(self, http: httpx.Client | None = None, timeout: float = 10.0) -> httpx.Response:
        if http is not None:
            return http.request(self.method, self.url, headers=self.headers, content=self.content)
        with httpx.Client(timeout=timeout) as own:
            return own.request(self.method, self.url, headers=self.headers, content=self.content)


def sdk_signed_request(
    base_url: str,
    method: str,
    path: str,
    action: str,
    *,
    credential: Credential = DEFAULT_CREDENTIAL,
    query: Mapping[str, str] | None = None,
    body: Any = None,
    date: str | None = None,
    nonce: str | None = None,
    unsigned_headers: Iterable[str] = (),
    extra_headers: Mapping[str, str] | None = None,
) -> SignedRequest:
    """Build a request the way the SDK does (headers, urlencoded query, JSON body) and sign it with
    the SDK's `Utils.get_authorization`. Headers named in `unsigned_headers` are sent but not signed."""
    from urllib.parse import urlencode

    from alibabacloud_tea_openapi.utils import Utils
    from darabonba.request import DaraRequest

    url = httpx.URL(base_url)
    content = b"" if body is None else jsonlib.dumps(body).encode()
    headers = {
        "host": f"{url.host}:{url.port}",
        "x-acs-version": "2021-02-04",
        "x-acs-action": action,
        "user-agent": "pai-emulator-tests",
        "x-acs-date": date or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
        "accept": "application/json",
        "x-acs-content-sha256": hashlib.sha256(content).hexdigest(),
    }
    if body is not None:
        headers["content-type"] = "application/json; charset=utf-8"
    if credential.security_token is not None:
        headers["x-acs-security-token"] = credential.security_token
    headers.update(extra_headers or {})
    skipped = {name.lower() for name in unsigned_headers}
    to_sign = DaraRequest()
    to_sign.method = method
    to_sign.pathname = path
    to_sign.query = dict(query or {})
    to_sign.headers = {name: value for name, value in headers.items() if name not in skipped}
    headers["Authorization"] = Utils.get_authorization(
        to_sign,
        "ACS3-HMAC-SHA256",
        headers["x-acs-content-sha256"],
        credential.access_key_id,
        credential.access_key_secret,
    )
    target = f"{base_url.rstrip('/')}{path}"
    if query:
        target += "?" + urlencode(dict(query))  # what the SDK sends: spaces as '+'
    return SignedRequest(method, target, headers, content)
