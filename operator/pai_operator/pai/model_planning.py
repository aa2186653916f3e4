"""What remote calls a Model needs: PAI's model as a `plans.Planner`. Pure: no I/O.

The shared skeleton (`plans.plan_reconcile`, `plans.plan_deletion`) decides; this module says
how a model is named (its server-assigned ModelId; spec.modelId only to adopt one), who owns it
(the same two labels as versions), which fields drifted and which calls repair them:
DeleteModelLabels, CreateModelLabels, then one UpdateModel with every changed field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from pai_operator.normalize import object_equal, text_equal
from pai_operator.pai.labels import owner_ref_label
from pai_operator.pai.model_spec import ModelAtProvider, ModelSpec
from pai_operator.pai.models import CreateModelRequest, Label, Model, UpdateModelRequest
from pai_operator.pai.spec import (
    MAX_REMOTE_LABELS,
    OWNER_LABEL_KEY,
    OWNER_REF_LABEL_KEY,
    RESERVED_LABEL_KEYS,
)
from pai_operator.plans import Owner, Problem
from pai_operator.vocabulary import Reason, manifest_names

# --- Remote calls ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateModel:
    request: CreateModelRequest


@dataclass(frozen=True)
class UpdateModel:
    model_id: str
    request: UpdateModelRequest
    fields: tuple[str, ...]  # spec names of the fields sent, for events and logs


@dataclass(frozen=True)
class AddModelLabels:
    model_id: str
    labels: tuple[Label, ...]


@dataclass(frozen=True)
class DeleteModelLabels:
    model_id: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class DeleteModel:
    model_id: str


ModelCall = CreateModel | UpdateModel | AddModelLabels | DeleteModelLabels | DeleteModel

# Managed fields compared as text (None in spec: not managed), then the others.
_TEXT_FIELDS: Final = (
    "model_name",
    "domain",
    "task",
    "origin",
    "model_type",
    "model_doc",
    "model_description",
)


_SPEC_NAMES: Final = manifest_names(ModelSpec)


def _spec_name(attr: str) -> str:
    return _SPEC_NAMES[attr]


def update_fields(spec: ModelSpec, remote: Model) -> dict[str, Any]:
    """The updatable fields set in spec that differ remotely, as UpdateModelRequest kwargs."""
    changes: dict[str, Any] = {}
    for attr in _TEXT_FIELDS:
        value = getattr(spec, attr)
        if value is not None and not text_equal(value, getattr(remote, attr)):
            changes[attr] = value
    if spec.accessibility is not None and spec.accessibility != remote.accessibility:
        changes["accessibility"] = spec.accessibility
    if spec.order_number is not None and spec.order_number != remote.order_number:
        changes["order_number"] = spec.order_number
    if spec.extra_info is not None and not object_equal(spec.extra_info, remote.extra_info):
        changes["extra_info"] = spec.extra_info
    return changes


def _user_labels(remote: Model) -> dict[str, str]:
    return {k: v for k, v in remote.label_map().items() if k not in RESERVED_LABEL_KEYS}


def compute_drift(spec: ModelSpec, remote: Model) -> list[str]:
    drifted = {_spec_name(attr) for attr in update_fields(spec, remote)}
    if spec.workspace_id is not None and spec.workspace_id != remote.workspace_id:
        drifted.add("workspaceId")
    if spec.labels is not None and dict(spec.labels) != _user_labels(remote):
        drifted.add("labels")
    return [name for name in _SPEC_NAMES.values() if name in drifted]


def at_provider(observed: Model) -> ModelAtProvider:
    return ModelAtProvider(
        model_name=observed.model_name,
        workspace_id=observed.workspace_id,
        accessibility=observed.accessibility,
        provider=observed.provider,
        owner_id=observed.owner_id,
        user_id=observed.user_id,
        gmt_create_time=observed.gmt_create_time,
        gmt_modified_time=observed.gmt_modified_time,
        latest_version=observed.latest_version.version_name if observed.latest_version else None,
        gmt_latest_version_modified_time=observed.gmt_latest_version_modified_time,
        labels=observed.label_map() or None,
    )


def ownership_labels(owner: Owner) -> list[Label]:
    labels = [Label(key=OWNER_LABEL_KEY, value=owner.uid)]
    if owner.ref is not None:
        # Within PAI's 128 bytes: a long <namespace>/<name> in its digest spelling (as versions).
        labels.append(Label(key=OWNER_REF_LABEL_KEY, value=owner_ref_label(owner.ref)))
    return labels


class ModelPlanner:
    """PAI models for the shared planning skeleton (`plans.Planner`)."""

    registry = "PAI"
    key_field = "spec.modelId"
    mark = f"its {OWNER_LABEL_KEY} label"

    def spec_key(self, spec: ModelSpec) -> str | None:
        return spec.model_id

    def key(self, remote: Model) -> str:
        return remote.model_id

    def ident(self, spec: ModelSpec, key: str | None) -> str | None:
        return f"model {key} ({spec.model_name})" if key else None

    def pending_ident(self, spec: ModelSpec) -> str:
        return f"model {spec.model_name!r} (ID assigned by PAI)"

    def parent(self, spec: ModelSpec) -> str:
        return f"workspace {spec.workspace_id}" if spec.workspace_id else "the default workspace"

    def marked(self, remote: Model) -> tuple[str | None, str | None]:
        labels = remote.label_map()
        return labels.get(OWNER_LABEL_KEY), labels.get(OWNER_REF_LABEL_KEY)

    def created_order(self, remote: Model) -> tuple[str, str]:
        return (remote.gmt_create_time or "", remote.model_id)

    def drift(self, spec: ModelSpec, remote: Model) -> list[str]:
        return compute_drift(spec, remote)

    def immutable_drift(self, spec: ModelSpec, remote: Model) -> list[tuple[str, object]]:
        if spec.workspace_id is not None and spec.workspace_id != remote.workspace_id:
            return [("workspaceId", remote.workspace_id)]
        return []

    def create(self, spec: ModelSpec, owner: Owner) -> CreateModel | Problem:
        if spec.model_id is not None:
            # PAI assigns model IDs: a named model that does not exist cannot be created.
            message = (
                f"PAI model {spec.model_id} does not exist; PAI assigns model IDs, so remove "
                "spec.modelId to create a new model"
            )
            return Problem(Reason.MODEL_NOT_FOUND, message)
        labels = ownership_labels(owner) + [
            Label(key=k, value=v) for k, v in sorted((spec.labels or {}).items())
        ]
        return CreateModel(
            CreateModelRequest(
                model_name=spec.model_name,
                workspace_id=spec.workspace_id,
                accessibility=spec.accessibility,
                domain=spec.domain,
                task=spec.task,
                origin=spec.origin,
                model_type=spec.model_type,
                model_doc=spec.model_doc,
                model_description=spec.model_description,
                order_number=spec.order_number,
                extra_info=spec.extra_info,
                labels=labels,
            )
        )

    def repair(self, spec: ModelSpec, remote: Model, owner: Owner) -> Sequence[ModelCall] | Problem:
        remote_labels = remote.label_map()
        remote_user = _user_labels(remote)
        delete: list[str] = []
        add: list[Label] = [
            label for label in ownership_labels(owner) if remote_labels.get(label.key) != label.value
        ]
        final_user = len(remote_user)
        if spec.labels is not None:
            delete = sorted(k for k in remote_user if k not in spec.labels)
            add += [Label(key=k, value=v) for k, v in sorted(spec.labels.items()) if remote_user.get(k) != v]
            final_user = len(spec.labels)
        reserved = {label.key for label in ownership_labels(owner)} | (
            remote_labels.keys() & set(RESERVED_LABEL_KEYS)
        )
        if final_user + len(reserved) > MAX_REMOTE_LABELS:
            message = (
                f"cannot add the ownership labels to {self.ident(spec, remote.model_id)}: it would have "
                f"{final_user + len(reserved)} labels and PAI allows {MAX_REMOTE_LABELS}; set spec.labels "
                f"to at most {MAX_REMOTE_LABELS - len(reserved)} labels"
            )
            return Problem(Reason.CONFLICT, message)
        calls: list[ModelCall] = []
        # DeleteModelLabels before CreateModelLabels keeps the model within the label limit.
        if delete:
            calls.append(DeleteModelLabels(remote.model_id, tuple(delete)))
        if add:
            calls.append(AddModelLabels(remote.model_id, tuple(add)))
        changes = update_fields(spec, remote)
        if changes:
            fields = tuple(_spec_name(attr) for attr in changes)
            # ModelName always goes along: Terraform's provider sends it on every UpdateModel.
            request = UpdateModelRequest(**{"model_name": spec.model_name, **changes})
            calls.append(UpdateModel(remote.model_id, request, fields))
        return calls

    def delete(self, spec: ModelSpec, remote: Model) -> ModelCall:
        return DeleteModel(remote.model_id)

    def release(self, spec: ModelSpec, remote: Model) -> ModelCall:
        return DeleteModelLabels(remote.model_id, RESERVED_LABEL_KEYS)


MODEL_PLANNER: Final = ModelPlanner()
