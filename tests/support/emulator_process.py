"""What running either registry emulator for tests shares: the CLI as a child process on a free
loopback port (`EmulatorSubprocess`) and the synchronous client of the admin API's common part
(`AdminBase`: faults, journal, reset, quotas). tests/support/emulator.py (PAI) and
tests/support/tfy_emulator.py (TrueFoundry) add what each registry has of its own."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx


class AdminError(RuntimeError):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"admin API answered {status}: {body}")
        self.status = status
        self.body = body


class AdminBase:
    """Synchronous client for /_emulator/ (the emulator must run with admin enabled); not usable
    from an event loop that serves the emulator: it would block it."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self._http = httpx.Client(base_url=f"{base_url.rstrip('/')}/_emulator", timeout=timeout)

    def _call(self, method: str, path: str, json: Any = None) -> Any:
        response = self._http.request(method, path, json=json)
        body = response.json()
        if response.status_code >= 400:
            raise AdminError(response.status_code, body)
        return body

    def add_fault(
        self,
        operation: str,
        mode: str,
        *,
        error_rate: float = 1.0,
        code: str | None = None,
        http_status: int | None = None,
        latency_ms: float | None = None,
        latency_ms_max: float | None = None,
        count: int | None = None,
    ) -> list[dict[str, Any]]:
        """Add a rule (mode: error | reset | commit_then_drop | latency) for an operation name
        (e.g. "CreateModelVersion", "ApplyModelVersion") or "*"; returns all active rules."""
        rule: dict[str, Any] = {"Operation": operation, "Mode": mode, "ErrorRate": error_rate}
        optional = {
            "Code": code,
            "HttpStatus": http_status,
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
        """Journal entries, oldest first, optionally of one operation (the fields each emulator
        records: its README)."""
        entries = list(self._call("GET", "/journal")["Entries"])
        return [entry for entry in entries if operation is None or entry["Operation"] == operation]

    def clear_journal(self) -> None:
        self._call("DELETE", "/journal")

    def reset(self) -> None:
        """Back to the configured state: no faults, an empty journal, the configured quotas."""
        self._call("POST", "/reset")

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


class EmulatorSubprocess:
    """`python -m <module>` on a free loopback port (it prints `<url_prefix><url>` once it
    listens); a context manager that stops it on exit."""

    url: str
    _admin: AdminBase | None = None

    def __init__(
        self,
        module: str,
        url_prefix: str,
        registry_args: Sequence[str],
        *,
        admin: bool,
        state_file: Path | None,
        quotas: Mapping[str, float] | None,
        host: str,
        extra_args: Sequence[str],
        startup_timeout: float,
    ) -> None:
        self._name = module.split(".")[0].replace("_", "-")
        self._url_prefix = url_prefix
        self._args = [sys.executable, "-m", module, "--host", host, "--port", "0", *registry_args]
        if admin:
            self._args.append("--admin")
        if state_file is not None:
            self._args += ["--state-file", str(state_file)]
        for operation, rate in (quotas or {}).items():
            self._args += ["--quota", f"{operation}={rate}"]
        self._args += list(extra_args)
        self._startup_timeout = startup_timeout
        self._dir = Path(tempfile.mkdtemp(prefix=f"{self._name}-"))
        self.log_path = self._dir / "stderr.log"
        self._process: subprocess.Popen[bytes] | None = None

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
                if line.startswith(self._url_prefix):
                    self.url = line[len(self._url_prefix) :].strip()
                    return self
            if self._process.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{self._name} did not start; stderr:\n{self.log_text()[-4000:]}")

    def _close_admin(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        self._close_admin()
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
