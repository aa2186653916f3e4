"""Emulator settings: plain dataclasses with documented defaults.

Secrets are excluded from reprs so that logging a config never leaks them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

API_VERSION = "2021-02-04"

READ_OPERATIONS = ("GetModelVersion", "ListModelVersions", "GetModel", "ListModels")
WRITE_OPERATIONS = (
    "DeleteModel",
    "CreateModel",
    "UpdateModel",
    "CreateModelLabels",
    "DeleteModelLabels",
    "CreateModelVersion",
    "UpdateModelVersion",
    "DeleteModelVersion",
    "CreateModelVersionLabels",
    "DeleteModelVersionLabels",
)
OPERATIONS = READ_OPERATIONS + WRITE_OPERATIONS

# Published pattern for AIWorkSpace: reads 50/s, writes 20/s (per account, per API).
DEFAULT_READ_RATE = 50.0
DEFAULT_WRITE_RATE = 20.0


def default_quotas() -> dict[str, float]:
    quotas = dict.fromkeys(READ_OPERATIONS, DEFAULT_READ_RATE)
    quotas.update(dict.fromkeys(WRITE_OPERATIONS, DEFAULT_WRITE_RATE))
    return quotas


ErrorDialect = Literal["numeric", "named"]
LabelUpsert = Literal["replace", "append", "reject"]
ERROR_DIALECTS: tuple[ErrorDialect, ...] = ("numeric", "named")
NOT_FOUND_STATUSES = (400, 404)
LABEL_UPSERTS: tuple[LabelUpsert, ...] = ("replace", "append", "reject")


@dataclass
class Dialect:
    """How the emulator answers where PAI's public docs are silent (README "Dialects" cites the
    evidence for each default). Mutable: the admin API switches it per test, and every account's
    store reads the one shared instance."""

    error_dialect: ErrorDialect = "numeric"
    """numeric: 201900002 (model) / 201900003 (version), as Terraform's provider matches them;
    named: InvalidModel.NotFound / InvalidModelVersion.NotFound (this emulator's earlier guess)."""
    not_found_status: int = 400
    """The HTTP status of a model/version not-found answer (unpublished; 400 or 404)."""
    label_upsert: LabelUpsert = "replace"
    """CreateModelVersionLabels on a key the version already has: replace its value, append a
    second label with that key, or refuse the request."""
    max_page_size: int | None = None
    """Pages of ListModelVersions are silently capped at this many items; None: as asked."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.error_dialect not in ERROR_DIALECTS:
            raise ValueError(f"error_dialect must be one of {list(ERROR_DIALECTS)}")
        if self.not_found_status not in NOT_FOUND_STATUSES:
            raise ValueError(f"not_found_status must be one of {list(NOT_FOUND_STATUSES)}")
        if self.label_upsert not in LABEL_UPSERTS:
            raise ValueError(f"label_upsert must be one of {list(LABEL_UPSERTS)}")
        if self.max_page_size is not None and self.max_page_size < 1:
            raise ValueError("max_page_size must be at least 1")


@dataclass(frozen=True)
class AccessKey:
    """A long-lived access key. `user_id` is what versions created with it report as UserId."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    user_id: str | None = None
    account: str | None = None
    """The account the key belongs to; None: the default account (`EmulatorConfig.owner_id`)."""


@dataclass(frozen=True)
class Role:
    """A RAM role that AssumeRole may assume. Any configured key may assume it (no trust policy):
    the emulator tests the operator's side of role assumption, not RAM's trust rules."""

    arn: str
    account: str
    name: str


ROLE_ARN_RE = re.compile(r"acs:ram::(\d+):role/([A-Za-z0-9.@_-]{1,64})")


def parse_role_arn(arn: str) -> Role | None:
    """`acs:ram::<account>:role/<name>`; None when the ARN is not of that form. Role names are
    case-insensitive in RAM, so the stored ARN is lower-cased (ARNs compare equal either way)."""
    match = ROLE_ARN_RE.fullmatch(arn.strip())
    if match is None:
        return None
    account, name = match[1], match[2].lower()
    return Role(arn=f"acs:ram::{account}:role/{name}", account=account, name=name)


OIDC_PROVIDER_ARN_RE = re.compile(r"acs:ram::(\d+):oidc-provider/([A-Za-z0-9._-]{1,128})")


@dataclass(frozen=True)
class OidcProvider:
    """An OIDC identity provider as registered in RAM (ACK's RRSA registers `ack-rrsa-<cluster>`):
    the issuer its tokens must name and the public keys (a JWKS document) they are signed with."""

    arn: str
    account: str
    issuer: str
    jwks: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class StsCredential:
    """A temporary credential: it is only valid together with its security token."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(repr=False)
    expires_at: datetime | None = None
    user_id: str | None = None
    account: str | None = None


@dataclass
class EmulatorConfig:
    access_keys: list[AccessKey] = field(default_factory=list)
    sts_credentials: list[StsCredential] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    """Model ids of the default account, or `ACCOUNT/MODEL_ID` for another account."""
    roles: list[Role] = field(default_factory=list)
    # AssumeRoleWithOIDC: the registered providers, and who may assume which role through them
    # (role ARN -> token subjects, e.g. system:serviceaccount:<namespace>:<name>).
    oidc_providers: list[OidcProvider] = field(default_factory=list)
    role_subjects: dict[str, list[str]] = field(default_factory=dict)
    # Lifetime of credentials AssumeRole issues, overriding the requested DurationSeconds (which
    # must still be valid, 900-43200): tests make tokens expire mid-run. None: as requested.
    sts_token_lifetime: float | None = None
    # Admin endpoints (/_emulator/...) are off unless asked for: they bypass authentication.
    admin: bool = False
    state_file: Path | None = None
    # Requests per second per operation; 0 disables throttling for that operation.
    quotas: dict[str, float] = field(default_factory=default_quotas)
    owner_id: str = "1000000000000001"
    """The default account: keys given without @ACCOUNT and models without ACCOUNT/ belong to it."""
    # x-acs-date may differ from the server clock by at most this much, either way.
    max_clock_skew_seconds: float = 15 * 60
    # Only the last N requests are kept in the journal (benchmarks would otherwise grow it forever).
    journal_limit: int = 100_000
    dialect: Dialect = field(default_factory=Dialect)
    """The configured dialect; the admin API may change the running one, reset restores this."""
