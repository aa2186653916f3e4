"""Run `pai-operator run` as a real process against a cluster and a PAI endpoint."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
from kubernetes import client

from tests.support.emulator import Credential

GROUP, VERSION, PLURAL = "pai.mlops.dev", "v1alpha1", "modelversions"
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OperatorProcess:
    """The operator as users run it: the console entry point in a subprocess, nothing mocked."""

    def __init__(
        self,
        kubeconfig: Path,
        endpoint: str,
        credential: Credential | None,
        *,
        namespaces: Sequence[str] = (),
        resync_interval: float = 3.0,
        extra_args: Sequence[str] = (),
        extra_env: dict[str, str] | None = None,
        log_dir: Path | None = None,
        test_tuning: bool = True,
        identity: str | None = None,
        lease_name: str | None = None,
        lease_namespace: str | None = None,
    ) -> None:
        """`test_tuning` (the default for tests): --verbose logs and a 0.5 s back-off base so
        retries in tests take seconds; False runs with the shipped defaults (benchmarks).

        Leader election is on, as shipped. `identity` is the replica's POD_NAME (default: host
        name + pid). Each process gets a Lease of its own unless `lease_name` is given (replicas
        of one "Deployment" share one), in the first watched namespace unless `lease_namespace`
        is given: tests never queue behind each other's leases."""
        self.kubeconfig = kubeconfig
        self.endpoint = endpoint
        self.credential = credential
        self.namespaces = tuple(namespaces)
        self.resync_interval = resync_interval
        self.extra_args = tuple(extra_args)
        self.extra_env = dict(extra_env or {})
        self.test_tuning = test_tuning
        self.identity = identity
        self.lease_name = lease_name or f"pai-operator-{uuid.uuid4().hex[:8]}"
        self.lease_namespace = lease_namespace or (self.namespaces[0] if self.namespaces else None)
        self.health_port = _free_port()
        self.metrics_port = _free_port()
        directory = log_dir or Path(tempfile.mkdtemp(prefix="pai-operator-"))
        self.log_path = directory / f"operator-{self.health_port}.log"
        self._log = self.log_path.open("wb")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> OperatorProcess:
        scope = [arg for ns in self.namespaces for arg in ("--namespace", ns)] or ["--all-namespaces"]
        argv = [
            sys.executable, "-m", "pai_operator.cli", "run", *scope,
            "--endpoint", self.endpoint,
            "--resync-interval", str(self.resync_interval),
            "--health-port", str(self.health_port), "--metrics-port", str(self.metrics_port),
        ]  # fmt: skip
        argv += ["--leader-elect-lease-name", self.lease_name]
        if self.lease_namespace:
            argv += ["--leader-elect-namespace", self.lease_namespace]
        if self.test_tuning:
            argv += ["--backoff-base", "0.5", "--backoff-cap", "4", "--model-missing-retry", "5", "--verbose"]
        argv += self.extra_args
        # Only what the operator should see: no stray Alibaba credentials from the developer's shell.
        hidden = ("ALIBABA_CLOUD_", "PAI_OPERATOR_", "POD_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(hidden)}
        if self.identity:
            env["POD_NAME"] = self.identity
        env.update(
            KUBECONFIG=str(self.kubeconfig),
            # Never let a misconfigured test fall through the chain to the ECS metadata address.
            ALIBABA_CLOUD_ECS_METADATA_DISABLED="true",
        )
        if self.credential is not None:  # None: the identity comes from extra_env (e.g. RRSA)
            env["ALIBABA_CLOUD_ACCESS_KEY_ID"] = self.credential.access_key_id
            env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = self.credential.access_key_secret
        env.update(self.extra_env)
        if self.credential is not None and self.credential.security_token:
            env["ALIBABA_CLOUD_SECURITY_TOKEN"] = self.credential.security_token
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"operator exited with {self.proc.returncode}:\n{self.log_text()[-4000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.health_port}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"operator not healthy after {timeout}s:\n{self.log_text()[-4000:]}")

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def kill(self) -> None:
        """A crash: SIGKILL, no cleanup, no final status write."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text

    def is_leader(self) -> bool:
        """The pai_operator_leader gauge; False when the process is gone or not answering."""
        if self.proc is None or self.proc.poll() is not None:
            return False
        try:
            return "\npai_operator_leader 1.0" in self.metrics()
        except httpx.HTTPError:
            return False

    def healthy(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.25) -> T:
    """Poll `probe` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


class ModelVersions:
    """Thin helpers over CustomObjectsApi for one namespace."""

    def __init__(
        self, api: client.ApiClient, namespace: str, kind: str = "ModelVersion", plural: str = PLURAL
    ) -> None:
        self.api = client.CustomObjectsApi(api)
        self.namespace = namespace
        self.kind = kind
        self.plural = plural

    def create(
        self, name: str, spec: dict[str, Any], annotations: dict[str, str] | None = None
    ) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": self.kind,
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": spec,
        }
        return self.api.create_namespaced_custom_object(GROUP, VERSION, self.namespace, self.plural, body)  # type: ignore[no-any-return]

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            return self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace, self.plural, name)  # type: ignore[no-any-return]
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def patch(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.api.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, self.plural, name, body
        )  # type: ignore[no-any-return]

    def delete(self, name: str) -> None:
        self.api.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, self.plural, name)

    def condition(self, name: str, ctype: str) -> dict[str, Any] | None:
        obj = self.get(name) or {}
        for cond in (obj.get("status") or {}).get("conditions") or []:
            if cond["type"] == ctype:
                return cond  # type: ignore[no-any-return]
        return None

    def wait_condition(
        self, name: str, ctype: str, status: str = "True", reason: str | None = None, timeout: float = 60.0
    ) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            cond = self.condition(name, ctype)
            if cond and cond["status"] == status and (reason is None or cond["reason"] == reason):
                obj = self.get(name)
                # Only a condition about the current generation counts.
                if obj and cond.get("observedGeneration") == obj["metadata"]["generation"]:
                    return obj
            return None

        return wait_for(f"{name} {ctype}={status} {reason or ''}", probe, timeout)

    def wait_gone(self, name: str, timeout: float = 60.0) -> None:
        wait_for(f"{name} deleted", lambda: self.get(name) is None, timeout)
