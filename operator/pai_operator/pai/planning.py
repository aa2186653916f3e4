"""What remote calls to make: a pure function of (spec, policies, status facts, observed remote).

No I/O here. The reconciler drives one pass like this (parsing, policies and validation live in
`pai_operator.pai.validation`, field comparison in `pai_operator.pai.comparison`):

    spec = parse_spec(body["spec"])                            # a list of messages: InvalidSpec, no call
    policies = resolve_policies(spec, annotations=..., namespace_annotations=..., default_deletion=...)
    recorded = Recorded.from_status(body.get("status"))
    problems = validate_spec(spec, policies, recorded)        # InvalidSpec: no PAI call at all
    name = lookup_name(spec, recorded)                         # GET it when not None (404 -> None)
    owned = search(...) if needs_owner_search(spec, recorded, observed) else None
            # ListModelVersions(Label=uid), (Label=<ns>/<name>), then filter_owned(): a substring match
    plan = plan_reconcile(spec, uid=..., policies=..., recorded=..., observed=..., owned=...)
    for call in plan.calls: execute in order (DeleteLabels before AddLabels keeps within PAI's 20)
    deletion: plan_deletion(...) with the same reads; DeletionPlan.best_effort says whether a failed
              call may be ignored (Retain: a stale ownership label names a UID that will never exist again)

Identity: spec.versionName, else status.versionName (recorded), else the ownership-label search.
Ownership: the remote labels OWNER_LABEL_KEY=<object UID> and OWNER_REF_LABEL_KEY=<namespace>/<name>,
set in the same CreateModelVersion call so a create whose response is lost is found by the next
pass, never duplicated. A version recorded for this namespace/name by a UID that no longer exists
(a restore: same name, new UID) is this object's by succession (`plans.claim_of`); whether a
UID exists is an input (`owner_alive`), so planning stays pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from pai_operator import plans
from pai_operator.normalize import options_to_wire
from pai_operator.pai.comparison import (
    compute_drift,
    create_only_drift,
    label_changes,
    owner_of,
    owner_ref_of,
    remote_value,
    update_fields,
)
from pai_operator.pai.labels import owner_ref_label
from pai_operator.pai.models import (
    CreateModelVersionRequest,
    Label,
    ModelVersion,
    UpdateModelVersionRequest,
)
from pai_operator.pai.spec import (
    MAX_REMOTE_LABELS,
    OWNER_LABEL_KEY,
    OWNER_REF_LABEL_KEY,
    RESERVED_LABEL_KEYS,
    ModelVersionSpec,
)
from pai_operator.pai.validation import Recorded, spec_name
from pai_operator.plans import (
    Action,
    DeletionAction,
    DeletionPlan,
    Owner,
    Plan,
    Problem,
)
from pai_operator.vocabulary import Reason


def resource_id(model_id: str, version_name: str | None) -> str | None:
    """The Terraform/ROS identity `<ModelId>:<VersionName>`."""
    return f"{model_id}:{version_name}" if version_name else None


# --- Remote calls ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateVersion:
    model_id: str
    request: CreateModelVersionRequest


@dataclass(frozen=True)
class UpdateVersion:
    model_id: str
    version_name: str
    request: UpdateModelVersionRequest
    fields: tuple[str, ...]  # spec names of the fields sent, for events and logs


@dataclass(frozen=True)
class AddLabels:
    model_id: str
    version_name: str
    labels: tuple[Label, ...]


@dataclass(frozen=True)
class DeleteLabels:
    model_id: str
    version_name: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class DeleteVersion:
    model_id: str
    version_name: str


RemoteCall = CreateVersion | UpdateVersion | AddLabels | DeleteLabels | DeleteVersion


# --- Reads ----------------------------------------------------------------------------------


def lookup_name(spec: ModelVersionSpec, recorded: Recorded) -> str | None:
    """The version name to GET, or None when only the ownership search can find it."""
    return spec.version_name or recorded.version_name


def needs_owner_search(
    spec: ModelVersionSpec,
    recorded: Recorded,
    observed: ModelVersion | None,
    *,
    generation: int | None = None,
) -> bool:
    """`plans.needs_owner_search` for PAI: the search is two Lists (by UID and by namespace/name),
    which would make every named create cost four reads."""
    return plans.needs_owner_search(spec.version_name, recorded.version_name, observed, generation=generation)


def filter_owned(versions: Sequence[ModelVersion], owner: Owner | str) -> list[ModelVersion]:
    """The versions that carry this object's UID or its namespace/name (the candidates the
    planner then judges with `claim`); exact matches, since PAI's `Label` query matches
    substrings of keys and values."""
    return plans.marked_by(PLANNER, versions, owner if isinstance(owner, Owner) else Owner(owner))


def _create_request(spec: ModelVersionSpec, owner: Owner) -> CreateModelVersionRequest:
    labels = [Label(key=OWNER_LABEL_KEY, value=owner.uid)]
    if owner.ref is not None:
        labels.append(Label(key=OWNER_REF_LABEL_KEY, value=owner_ref_label(owner.ref)))
    labels += [Label(key=k, value=v) for k, v in sorted((spec.labels or {}).items())]
    return CreateModelVersionRequest(
        uri=spec.uri,
        version_name=spec.version_name,
        format_type=spec.format_type,
        framework_type=spec.framework_type,
        version_description=spec.version_description,
        approval_status=spec.approval_status,
        source_type=spec.source_type,
        source_id=spec.source_id,
        metrics=spec.metrics,
        training_spec=spec.training_spec,
        inference_spec=spec.inference_spec,
        evaluation_spec=spec.evaluation_spec,
        compression_spec=spec.compression_spec,
        distillation_spec=spec.distillation_spec,
        extra_info=spec.extra_info,
        options=options_to_wire(spec.options) if spec.options is not None else None,
        labels=labels,
    )


# --- Planning -------------------------------------------------------------------------------


# PAI's VersionName format; names outside it (none can be created) do not count.
_NUMBERED: Final = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:_\w+)?$")


def assigned_version_name(existing: Iterable[str]) -> str:
    """The name PAI gives a version created without one: 0.1.0 first, then the highest
    major.minor among the model's versions with its minor number incremented (PAI's VersionName:
    "if omitted on create the server assigns one"; the emulator assigns names the same way)."""
    numbered = [tuple(int(part) for part in m.groups()) for m in map(_NUMBERED.match, existing) if m]
    if not numbered:
        return "0.1.0"
    major, minor, _ = max(numbered)
    return f"{major}.{minor + 1}.0"


class PaiPlanner:
    """PAI's part of planning (`plans.Planner`): versions are named by versionName within a
    model, owned through two labels, repaired by label and UpdateModelVersion calls."""

    registry = "PAI"
    key_field = "spec.versionName"
    mark = f"its {OWNER_LABEL_KEY} label"

    def assigned_key(self, existing: Sequence[ModelVersion]) -> str:
        """The name a create without spec.versionName would get, given the model's versions
        (`pai-operator plan` shows it; the operator itself never needs to know in advance)."""
        return assigned_version_name(v.version_name for v in existing)

    def spec_key(self, spec: ModelVersionSpec) -> str | None:
        return spec.version_name

    def key(self, remote: ModelVersion) -> str:
        return remote.version_name

    def ident(self, spec: ModelVersionSpec, key: str | None) -> str | None:
        return resource_id(spec.model_id, key)

    def pending_ident(self, spec: ModelVersionSpec) -> str:
        return f"{spec.model_id}:<assigned by PAI>"

    def parent(self, spec: ModelVersionSpec) -> str:
        return f"model {spec.model_id}"

    def marked(self, remote: ModelVersion) -> tuple[str | None, str | None]:
        return owner_of(remote), owner_ref_of(remote)

    def created_order(self, remote: ModelVersion) -> tuple[str, str]:
        return (remote.gmt_create_time or "", remote.version_name)

    def drift(self, spec: ModelVersionSpec, remote: ModelVersion) -> list[str]:
        return compute_drift(spec, remote)

    def immutable_drift(self, spec: ModelVersionSpec, remote: ModelVersion) -> list[tuple[str, object]]:
        return [(name, remote_value(remote, name)) for name in create_only_drift(spec, remote)]

    def create(self, spec: ModelVersionSpec, owner: Owner) -> RemoteCall:
        return CreateVersion(spec.model_id, _create_request(spec, owner))

    def repair(
        self, spec: ModelVersionSpec, remote: ModelVersion, owner: Owner
    ) -> list[RemoteCall] | Problem:
        labels = label_changes(spec, remote, owner.uid, owner.ref)
        if labels.final_count > MAX_REMOTE_LABELS:
            reserved = len(RESERVED_LABEL_KEYS) if owner.ref is not None else 1
            message = (
                f"cannot add the ownership labels to {self.ident(spec, remote.version_name)}: it would "
                f"have {labels.final_count} labels and PAI allows {MAX_REMOTE_LABELS}; set spec.labels "
                f"to at most {MAX_REMOTE_LABELS - reserved} labels"
            )
            return Problem(Reason.CONFLICT, message)
        name = remote.version_name
        calls: list[RemoteCall] = []
        # In each step DeleteLabels goes before AddLabels: a changed key is deleted and added
        # again (PAI's answer to a write on an existing key is undocumented), and the version
        # stays within PAI's label limit.
        for delete, add in labels.steps:
            if delete:
                calls.append(DeleteLabels(spec.model_id, name, delete))
            if add:
                calls.append(AddLabels(spec.model_id, name, tuple(Label(key=k, value=v) for k, v in add)))
        changes = update_fields(spec, remote)
        if changes:
            fields = tuple(spec_name(attr) for attr in changes)
            calls.append(UpdateVersion(spec.model_id, name, UpdateModelVersionRequest(**changes), fields))
        return calls

    def delete(self, spec: ModelVersionSpec, remote: ModelVersion) -> RemoteCall:
        return DeleteVersion(spec.model_id, remote.version_name)

    def release(self, spec: ModelVersionSpec, remote: ModelVersion) -> RemoteCall:
        return DeleteLabels(spec.model_id, remote.version_name, RESERVED_LABEL_KEYS)


PLANNER: Final = PaiPlanner()


__all__ = [
    "Action",
    "AddLabels",
    "CreateVersion",
    "DeleteLabels",
    "DeleteVersion",
    "DeletionAction",
    "DeletionPlan",
    "PaiPlanner",
    "Plan",
    "Problem",
    "RemoteCall",
    "UpdateVersion",
    "filter_owned",
    "lookup_name",
    "needs_owner_search",
    "resource_id",
]
