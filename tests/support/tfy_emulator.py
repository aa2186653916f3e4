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

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.support.emulator_process import AdminBase, AdminError, EmulatorSubprocess

DEFAULT_API_KEY = "tfy-emulator-test-key"
DEFAULT_SUBJECT = "operator@tfy-emulator.test"
DEFAULT_ML_REPO = "repo-test"
DEFAULT_TENANT = "tenant-test"
URL_PREFIX = "TFY_EMULATOR_URL="


TfyAdminError = AdminError  # the name the TrueFoundry tests catch


class TfyAdminClient(AdminBase):
    """The TrueFoundry emulator's admin API: the common part (faults, journal with Operation, Api,
    Method, Path, VersionId, ModelId, Fqn, Status, Message, Fault, UserAgent, Subject, LatencyMs,
    Time; reset; quotas) and ML repos, state, versions, dialect, metrics."""

    def add_ml_repo(self, name: str) -> str:
        """Create an ML repo (idempotent); returns its id (a numeric string)."""
        return str(self._call("POST", "/ml-repos", {"Name": name})["Id"])

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


class TfyEmulatorProcess(EmulatorSubprocess):
    """`python -m tfy_emulator.cli` on a free loopback port; a context manager that stops it on exit.

    `api_key` acts as `subject`; `other_api_keys` maps further tokens to their subjects."""

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
        args = ["--tenant", tenant, "--api-key", f"{api_key}:{subject}"]
        for token, other_subject in (other_api_keys or {}).items():
            args += ["--api-key", f"{token}:{other_subject}"]
        for repo in self.ml_repos:
            args += ["--ml-repo", repo]
        super().__init__(
            "tfy_emulator.cli",
            URL_PREFIX,
            args,
            admin=admin,
            state_file=state_file,
            quotas=quotas,
            host=host,
            extra_args=extra_args,
            startup_timeout=startup_timeout,
        )

    def __repr__(self) -> str:
        # The API keys are on the command line: never part of a repr (test output, logs).
        return f"TfyEmulatorProcess(url={getattr(self, 'url', None)!r}, tenant={self.tenant!r})"

    @property
    def admin(self) -> TfyAdminClient:
        if not isinstance(self._admin, TfyAdminClient):
            self._admin = TfyAdminClient(self.url)
        return self._admin

    def fqn(self, ml_repo: str, name: str, version: int | None = None) -> str:
        """The fqn this emulator gives a model (version None) or one of its versions."""
        model = f"model:{self.tenant}/{ml_repo}/{name}"
        return model if version is None else f"{model}:{version}"
