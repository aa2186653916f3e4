"""Run the TrueFoundry emulator (`tfy-emulator`) for tests: as a subprocess over real HTTP
(`TfyEmulatorProcess`), with a small synchronous client for its admin API (`TfyAdminClient`, not
usable from an event loop that serves the emulator: it would block it).

Typical use:

    with TfyEmulatorProcess(api_key="tfy-test-key", ml_repos=["repo-a"], tenant="acme") as tfy:
        tfy.url                     # "http://127.0.0.1:PORT", the host root: the SDK's base_url
        tfy.admin.add_fault("ApplyModelVersion", "commit_then_drop", count=1)
        tfy.admin.journal("ApplyModelVersion")
        tfy.admin.versions("repo-a", "my-model")
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

DEFAULT_API_KEY = "tfy-emulator-test-key"
DEFAULT_SUBJECT = "operator@tfy-emulator.test"
DEFAULT_ML_REPO = "repo-test"
DEFAULT_TENANT = "tenant-test"
URL_PREFIX = "TFY_EMULATOR_URL="


class TfyAdminError(RuntimeError):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"admin API answered {status}: {body}")
        self.status = status
        self.body = body


class TfyAdminClient:
    """Synchronous client for /_emulator/ (the emulator must run with admin enabled)."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self._http = httpx.Client(base_url=f"{base_url.rstrip('/')}/_emulator", timeout=timeout)

    def _call(self, method: str, path: str, json: Any = None) -> Any:
        response = self._http.request(method, path, json=json)
        body = response.json()
        if response.status_code >= 400:
            raise TfyAdminError(response.status_code, body)
        return body

    def add_ml_repo(self, name: str) -> str:
        """Create an ML repo (idempotent); returns its id (a numeric string)."""
        return str(self._call("POST", "/ml-repos", {"Name": name})["Id"])

    def add_fault(
        self,
        operation: str,
        mode: str,
        *,
        error_rate: float = 1.0,
        http_status: int | None = None,
        code: str | None = None,
        latency_ms: float | None = None,
        latency_ms_max: float | None = None,
        count: int | None = None,
    ) -> list[dict[str, Any]]:
        """Add a rule (mode: error | reset | commit_then_drop | latency) for an operation name
        (e.g. "ApplyModelVersion") or "*"; returns all active rules."""
        rule: dict[str, Any] = {"Operation": operation, "Mode": mode, "ErrorRate": error_rate}
        optional = {
            "HttpStatus": http_status,
            "Code": code,
            "LatencyMs": latency_ms,
            "LatencyMsMax": latency_ms_max,
            "Count": count,
        }
        rule.update({key: value for key, value in optional.items() if value is not None})
        return list(self._call("POST", "/faults", rule)["Faults"])

    def faults(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/faults")["Faults"])

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def journal(self, operation: str | None = None) -> list[dict[str, Any]]:
        """Journal entries, oldest first (Operation, Api, Method, Path, VersionId, ModelId, Fqn,
        Status, Message, Fault, UserAgent, Subject, LatencyMs, Time), optionally of one operation."""
        entries = list(self._call("GET", "/journal")["Entries"])
        return [entry for entry in entries if operation is None or entry["Operation"] == operation]

    def clear_journal(self) -> None:
        self._call("DELETE", "/journal")

    def reset(self) -> None:
        """Back to the configured ML repos only; no faults, empty journal, configured quotas."""
        self._call("POST", "/reset")

    def state(self) -> dict[str, Any]:
        """The full state (MlRepos, Models, Versions, deleted ones with DeletedAt set)."""
        return dict(self._call("GET", "/state"))

    def versions(self, ml_repo: str, name: str) -> list[dict[str, Any]]:
        """Every version of a model ever created, deleted ones included (DeletedAt), in creation
        order, each as the API renders it (internal metadata included)."""
        return list(self._call("GET", f"/versions/{ml_repo}/{name}")["Versions"])

    def dialect(self) -> dict[str, Any]:
        """{"ErrorShape", "ConflictStatus", "DeletedVisible"} as the emulator speaks now."""
        return dict(self._call("GET", "/dialect"))

    def set_dialect(
        self,
        *,
        error_shape: str | None = None,
        conflict_status: int | None = None,
        deleted_visible: bool | None = None,
    ) -> dict[str, Any]:
        """Switch the emulator's dialect (the switches given; the others stay). A reset restores
        the one it was started with."""
        body = {
            "ErrorShape": error_shape,
            "ConflictStatus": conflict_status,
            "DeletedVisible": deleted_visible,
        }
        return dict(self._call("PUT", "/dialect", {k: v for k, v in body.items() if v is not None}))

    def set_metrics(self, version_id: str, metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The version's metrics as the service renders them (floats allowed)."""
        return list(self._call("PUT", f"/metrics/{version_id}", {"Metrics": metrics})["Metrics"])

    def quotas(self) -> dict[str, float]:
        return dict(self._call("GET", "/quotas")["Quotas"])

    def set_quotas(self, rates: Mapping[str, float]) -> dict[str, float]:
        """Requests per second per operation (0 = unlimited); returns all quotas."""
        return dict(self._call("PUT", "/quotas", dict(rates))["Quotas"])

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TfyEmulatorProcess:
    """`python -m tfy_emulator.cli` on a free loopback port; a context manager that stops it on exit.

    `api_key` acts as `subject`; `other_api_keys` maps further tokens to their subjects."""

    url: str

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        subject: str = DEFAULT_SUBJECT,
        other_api_keys: Mapping[str, str] | None = None,
        ml_repos: Iterable[str] = (DEFAULT_ML_REPO,),
        tenant: str = DEFAULT_TENANT,
        admin: bool = True,
        state_file: Path | None = None,
        quotas: Mapping[str, float] | None = None,
        host: str = "127.0.0.1",
        extra_args: Sequence[str] = (),
        startup_timeout: float = 30.0,
    ) -> None:
        self.api_key = api_key
        self.subject = subject
        self.tenant = tenant
        self.ml_repos = list(ml_repos)
        self._args = [sys.executable, "-m", "tfy_emulator.cli", "--host", host, "--port", "0"]
        self._args += ["--tenant", tenant, "--api-key", f"{api_key}:{subject}"]
        for token, other_subject in (other_api_keys or {}).items():
            self._args += ["--api-key", f"{token}:{other_subject}"]
        for repo in self.ml_repos:
            self._args += ["--ml-repo", repo]
        if admin:
            self._args.append("--admin")
        if state_file is not None:
            self._args += ["--state-file", str(state_file)]
        for operation, rate in (quotas or {}).items():
            self._args += ["--quota", f"{operation}={rate}"]
        self._args += list(extra_args)
        self._startup_timeout = startup_timeout
        self._dir = Path(tempfile.mkdtemp(prefix="tfy-emulator-"))
        self.log_path = self._dir / "stderr.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._admin: TfyAdminClient | None = None

    def __repr__(self) -> str:
        # The API keys are on the command line: never part of a repr (test output, logs).
        return f"TfyEmulatorProcess(url={getattr(self, 'url', None)!r}, tenant={self.tenant!r})"

    @property
    def admin(self) -> TfyAdminClient:
        if self._admin is None:
            self._admin = TfyAdminClient(self.url)
        return self._admin

    def fqn(self, ml_repo: str, name: str, version: int | None = None) -> str:
        """The fqn this emulator gives a model (version None) or one of its versions."""
        model = f"model:{self.tenant}/{ml_repo}/{name}"
        return model if version is None else f"{model}:{version}"

    def start(self) -> Self:
        stdout_path = self._dir / "stdout.log"
        with stdout_path.open("wb") as stdout, self.log_path.open("wb") as stderr:
            # Files, not pipes: nobody has to drain them, so the child can never block on a full pipe.
            self._process = subprocess.Popen(
                self._args, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            for line in stdout_path.read_text().splitlines():
                if line.startswith(URL_PREFIX):
                    self.url = line[len(URL_PREFIX) :].strip()
                    return self
            if self._process.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"tfy-emulator did not start; stderr:\n{self.log_text()[-4000:]}")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
