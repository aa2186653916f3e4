"""The vocabulary every registry's resource shares: conditions and their reasons, the three
policies, the camelCase model base, the CRD helpers (preserve-unknown-fields, immutability
rules) and the status fields every kind has.

Registry-neutral: a registry's spec module (`pai/spec.py`, `truefoundry/spec.py`) builds its
resource from these, so that one engine can reason about every kind the same way. Field
descriptions become `kubectl explain` text and the generated CRDs: the factories below take the
registry's words, so each CRD still names its own registry.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic.alias_generators import to_camel


class ConditionType(StrEnum):
    READY = "Ready"
    SYNCED = "Synced"
    # kstatus's standard pair (sigs.k8s.io/cli-utils/pkg/kstatus), "abnormal-true": what Flux's
    # health checks and `kpt live status` read before anything else.
    RECONCILING = "Reconciling"
    STALLED = "Stalled"


class Reason(StrEnum):
    """Condition reasons: Crossplane's names for the common ones, specific ones for terminal problems."""

    # Ready
    AVAILABLE = "Available"
    CREATING = "Creating"
    DELETING = "Deleting"
    UNAVAILABLE = "Unavailable"
    UPDATE_FAILED = "UpdateFailed"  # the remote version exists; updating it to this generation failed
    NOT_APPLIED = "NotApplied"  # the remote version exists; this generation is not (and cannot yet be) on it
    # Reconciling False
    APPLIED = "Applied"
    STALLED = "Stalled"
    # Synced
    RECONCILE_SUCCESS = "ReconcileSuccess"
    RECONCILE_ERROR = "ReconcileError"
    RECONCILE_PAUSED = "ReconcilePaused"
    INVALID_SPEC = "InvalidSpec"
    ALREADY_EXISTS = "AlreadyExists"
    CONFLICT = "Conflict"
    IMMUTABLE_FIELD_MISMATCH = "ImmutableFieldMismatch"
    MODEL_NOT_FOUND = "ModelNotFound"
    AUTH_FAILED = "AuthFailed"
    NO_CREDENTIALS = "NoCredentials"
    DELETION_BLOCKED = "DeletionBlocked"
    DELETION_HELD = "DeletionHeld"  # the deletion breaker holds it until the batch is confirmed
    REFERENCE_NOT_READY = "ReferenceNotReady"  # waits for an object it refers to (no remote call)


DeletionPolicy = Literal["Delete", "Retain"]
ManagementPolicy = Literal["Manage", "Observe"]
AdoptionPolicy = Literal["Never", "IfExists"]

JsonObject = dict[str, Any]

PRESERVE_UNKNOWN_FIELDS: Final[dict[str, Any]] = {"x-kubernetes-preserve-unknown-fields": True}
"""`json_schema_extra` of a free-form JSON field: the API server keeps it as given."""


def immutable_once_set(field: str, why: str) -> JsonValue:
    """A CEL transition rule on `spec`: a field, once set, can be neither changed nor removed.

    Setting a previously unset field is allowed by the API server (a user may pin the name the
    registry assigned); the operator then checks the new value against the remote version and
    reports a terminal condition if they differ, because the registry cannot change it.
    """
    changed = f"has(self.{field}) && self.{field} == oldSelf.{field}"
    return _rule(f"!has(oldSelf.{field}) || ({changed})", field, why)


def immutable(field: str, why: str) -> JsonValue:
    """A CEL transition rule on `spec`: the field can be neither changed, removed nor added later."""
    same = f"!has(self.{field}) || self.{field} == oldSelf.{field}"
    return _rule(f"has(self.{field}) == has(oldSelf.{field}) && ({same})", field, why)


def _rule(rule: str, field: str, why: str) -> JsonValue:
    # reason: clients (and Argo CD) see "spec.<field>: Forbidden".
    return {
        "rule": rule,
        "message": f"spec.{field} is immutable: {why}",
        "fieldPath": f".{field}",
        "reason": "FieldValueForbidden",
    }


class CamelModel(BaseModel):
    """Python names in snake_case, Kubernetes names as their camelCase aliases."""

    # extra="ignore": a newer CRD may carry fields an older operator does not know yet.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


# --- The policy fields every kind's spec has. ------------------------------------------------


def deletion_policy_field(*, deletes: str, retains: str, namespace_annotation: str) -> Any:
    """`deletionPolicy`: `deletes`/`retains` say what Delete and Retain do to the remote object."""
    return Field(
        default=None,
        description=(
            f"What deleting this object does remotely: Delete {deletes}, Retain {retains}. When "
            f"unset: the Namespace annotation {namespace_annotation}, else the operator's default (Delete)."
        ),
    )


def management_policy_field(*, observe: str) -> Any:
    """`managementPolicy`: `observe` says what Observe reads and what it requires."""
    return Field(
        default="Manage",
        description=(
            "Manage creates, updates and deletes the remote version. Observe only reads it and "
            f"reports drift in status; {observe}"
        ),
    )


def adoption_policy_field(*, when: str, takes: str) -> Any:
    """`adoptionPolicy`: `when` names the situation, `takes` what IfExists does."""
    return Field(
        default="Never",
        description=(
            f"What to do when {when}: Never reports a conflict (reason AlreadyExists); IfExists "
            f"takes it over{takes}. A version owned by another object is never taken."
        ),
    )


# --- The status fields every kind has. -------------------------------------------------------


class Condition(CamelModel):
    """A standard Kubernetes condition (metav1.Condition shape)."""

    type: str = Field(description="Condition type: Ready, Synced, Reconciling or Stalled.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="Machine-readable reason in CamelCase, e.g. ReconcileSuccess.")
    message: str = Field(default="", description="Human-readable explanation.")
    last_transition_time: str | None = Field(
        default=None, description="When status last changed (RFC 3339); unchanged by reason/message updates."
    )
    observed_generation: int | None = Field(
        default=None, description="metadata.generation of the spec this condition describes."
    )


class StatusBase(CamelModel):
    """The head of every kind's status (its own fields follow, then `conditions_field()`)."""

    observed_generation: int | None = Field(default=None, description="metadata.generation last reconciled.")

    def to_k8s(self) -> dict[str, Any]:
        """The status as stored in Kubernetes: camelCase keys, unset fields omitted."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def conditions_field() -> Any:
    """`status.conditions`, a list map keyed by type (server-side apply merges by type)."""
    return Field(
        default=None,
        description=(
            "Ready: the remote version exists and this generation's spec is applied to it (Observe: "
            "observed). Synced: did the last pass succeed? Reconciling: this generation is still being "
            "applied (kstatus InProgress). Stalled: applying it needs a human (kstatus Failed)."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


def last_handled_reconcile_at_field() -> Any:
    """`status.lastHandledReconcileAt`, after `conditions` (the reconciler writes it)."""
    return Field(
        default=None,
        description=(
            "The value of the <group>/reconcile-requested-at annotation the operator last handled "
            "with a full pass (the registry read again, drift repaired): Flux's requestedAt convention."
        ),
    )


@functools.cache
def manifest_names(model: type[BaseModel]) -> Mapping[str, str]:
    """Each field's name in a manifest (its alias, else its attribute name), by attribute, in
    schema order. Computed once per model: pydantic's `model_fields` is a property, and one drift
    comparison asked it 23 times (9 % of a listed item's comparison, bench.profile_observation)."""
    return MappingProxyType({name: info.alias or name for name, info in model.model_fields.items()})


def status_keys(model: type[BaseModel]) -> tuple[str, ...]:
    """The status keys a kind's status model owns: `conditions.status_patch` nulls any that vanish."""
    return tuple(manifest_names(model).values())


AtProviderT = TypeVar("AtProviderT", bound=BaseModel)


def last_observation(
    model: type[AtProviderT], previous: Mapping[str, Any], *, keep: bool
) -> AtProviderT | None:
    """`status.atProvider` of a pass that observed nothing: unknown is not "gone", so a failed
    pass (`keep`) keeps the last observation rather than erase it."""
    kept = previous.get("atProvider") if keep else None
    return model.model_validate(kept) if isinstance(kept, Mapping) else None
