"""Emulator settings: plain dataclasses with documented defaults.

API keys are excluded from reprs so that logging a config never leaks them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

# Operation names: what the journal records and what fault rules and quotas select. They follow
# the services' operationIds (e.g. `apply_model_version_v1_model_versions_put`) in PascalCase.
READ_OPERATIONS = (
    "GetModelVersion",
    "ListModelVersions",
    "GetModel",
    "ListModels",
    "GetMlRepo",
    "ListMlRepos",
)
WRITE_OPERATIONS = (
    "StageArtifactVersion",
    "MarkStageFailure",
    "GetSignedUrls",
    "ApplyModelVersion",
    "ApplyModelVersionTags",
    "DeleteModelVersion",
    "DeleteModel",
    "ApplyMlRepo",
)
OPERATIONS = READ_OPERATIONS + WRITE_OPERATIONS

DEFAULT_TENANT = "truefoundry"
DEFAULT_SUBJECT_SLUG = "emulator-user@tfy-emulator.local"
DEFAULT_STORAGE_INTEGRATION_FQN = "truefoundry:emulator:blob-storage:default"


def default_quotas() -> dict[str, float]:
    """TrueFoundry publishes no rate limits, so none is invented: every operation is unlimited (0)
    until a quota is set (`--quota`, or PUT /_emulator/quotas)."""
    return dict.fromkeys(OPERATIONS, 0.0)


def subject_for(slug: str) -> dict[str, Any]:
    """The `Subject` a token acts as. A slug with "@" is a user (TrueFoundry user slugs are e-mail
    addresses), anything else a virtual account (what CI and operators use). The id is stable: a
    UUID derived from the slug, so a restarted emulator reports the same creator."""
    return {
        "subjectId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"tfy-emulator:subject:{slug}")),
        "subjectType": "user" if "@" in slug else "virtualaccount",
        "subjectSlug": slug,
        "subjectDisplayName": slug,
    }


@dataclass(frozen=True)
class ApiKey:
    """A bearer token and the subject it acts as (`created_by_subject` of what it creates)."""

    token: str = field(repr=False)
    subject_slug: str = DEFAULT_SUBJECT_SLUG


ErrorShape = Literal["mlflow", "current"]
ERROR_SHAPES: tuple[ErrorShape, ...] = ("mlflow", "current")
CONFLICT_STATUSES = (400, 409)


@dataclass
class Dialect:
    """The behaviours public sources leave open, each a switch (README "Dialect switches"). The
    defaults are the evidence-backed ones."""

    error_shape: ErrorShape = "mlflow"
    """`mlflow`: the fork's `{"error_code", "message"}` (tfy-mlflow-client's `MlflowException`);
    `current`: servicefoundry's `HttpError` `{"statusCode", "message", "code"?}`."""
    conflict_status: int = 400
    """The status of a conflict (alias or tag in use) in the `mlflow` shape: 400, the fork's
    RESOURCE_ALREADY_EXISTS, or 409, TrueFoundry's API notes. The `current` shape always says 400."""
    deleted_visible: bool = False
    """Get by id returns a deleted version (with `status: DELETED`) instead of a 404, as the fork's
    `get_artifact_version_by_id` (no status filter) would. Lists never show deleted versions."""


@dataclass
class EmulatorConfig:
    api_keys: list[ApiKey] = field(default_factory=list)
    ml_repos: list[str] = field(default_factory=list)
    """ML repo names that exist at start (and again after a reset), with ids in this order."""
    tenant: str = DEFAULT_TENANT
    """The tenant name in every fqn (`model:{tenant}/{ml_repo}/{name}:{version}`)."""
    # Admin endpoints (/_emulator/...) are off unless asked for: they bypass authentication.
    admin: bool = False
    state_file: Path | None = None
    # Requests per second per operation; 0 disables throttling for that operation.
    quotas: dict[str, float] = field(default_factory=default_quotas)
    # Only the last N requests are kept in the journal (benchmarks would otherwise grow it forever).
    journal_limit: int = 100_000
    dialect: Dialect = field(default_factory=Dialect)
    """Where the emulator starts and returns to on reset; the admin API changes it at run time."""
