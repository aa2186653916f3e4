"""Manifests that take existing PAI versions and models under management (`pai-operator import`,
`orphans --adopt-manifests`). Pure: no I/O.

Each manifest has `adoptionPolicy: IfExists` and a spec filled from the remote object, so that
the planner (`planning.PaiPlanner.repair`, `model_planning.ModelPlanner.repair`) finds nothing
to change but the missing ownership labels: the first pass writes one label call and no field.
`spec.labels` is set to the remote user labels (leaving it unset would manage nothing, but
setting it keeps them under GitOps from the start and equal to PAI today).

A remote value the spec cannot state as PAI has it (an Options string that is not a JSON
object, a format outside the documented enumeration) is left out of the spec, which leaves
that field unmanaged, and is reported in `Rendered.skipped` instead of being changed.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Any, Final

from pai_operator.normalize import parse_options
from pai_operator.pai.model_spec import KIND as MODEL_KIND
from pai_operator.pai.model_spec import ModelSpec
from pai_operator.pai.models import Model, ModelVersion
from pai_operator.pai.spec import (
    API_VERSION,
    KIND,
    RESERVED_LABEL_KEYS,
    ApprovalStatus,
    FormatType,
    FrameworkType,
    ModelVersionSpec,
    SourceType,
)
from pai_operator.pai.validation import JSON_FIELDS
from pai_operator.vocabulary import DeletionPolicy, manifest_names

_ENUMS: Final[dict[str, tuple[str, ...]]] = {
    "approval_status": typing.get_args(ApprovalStatus),
    "source_type": typing.get_args(SourceType),
    "format_type": typing.get_args(FormatType),
    "framework_type": typing.get_args(FrameworkType),
}


@dataclass(frozen=True)
class Rendered:
    """One manifest, and the remote fields it leaves unmanaged (spec name: why)."""

    manifest: dict[str, Any]
    skipped: dict[str, str] = field(default_factory=dict)


def user_labels(labels: list[tuple[str, str]]) -> dict[str, str]:
    """The labels that are not the operator's marks; a key PAI lists twice keeps its last value
    (the operator repairs such a duplicate to one label, as it would anyway)."""
    return {key: value for key, value in labels if key not in RESERVED_LABEL_KEYS}


def _metadata(name: str, namespace: str | None) -> dict[str, Any]:
    return {"name": name, **({"namespace": namespace} if namespace else {})}


def _policies(spec: dict[str, Any], deletion_policy: DeletionPolicy | None) -> None:
    spec["adoptionPolicy"] = "IfExists"
    if deletion_policy is not None:
        spec["deletionPolicy"] = deletion_policy


def version_manifest(
    model_id: str,
    remote: ModelVersion,
    *,
    name: str,
    namespace: str | None = None,
    region: str | None = None,
    deletion_policy: DeletionPolicy | None = None,
) -> Rendered:
    """A ModelVersion manifest for `remote` (a version of `model_id`), in `region` when given.
    ValueError when the version has no URI (the spec's one required remote field)."""
    if not remote.uri:
        raise ValueError(f"version {model_id}:{remote.version_name} has no URI in PAI; it cannot be imported")
    skipped: dict[str, str] = {}
    spec: dict[str, Any] = {"modelId": model_id, "uri": remote.uri, "versionName": remote.version_name}
    if region:
        spec["regionId"] = region
    for attr in ("format_type", "framework_type", "approval_status", "source_type"):
        value = getattr(remote, attr)
        alias = _alias(ModelVersionSpec, attr)
        if not value:
            continue
        if value in _ENUMS[attr]:
            spec[alias] = value
        else:
            skipped[alias] = f"PAI has {value!r}, which the spec does not accept"
    for attr in ("version_description", "source_id"):
        value = getattr(remote, attr)
        if value:
            spec[_alias(ModelVersionSpec, attr)] = value
    for attr in JSON_FIELDS:
        if attr == "options":
            continue
        value = getattr(remote, attr)
        if value:  # an absent or empty object compares equal to {} (normalize.object_equal)
            spec[_alias(ModelVersionSpec, attr)] = value
    options = parse_options(remote.options)
    if isinstance(options, dict):
        if options:
            spec["options"] = options
    elif remote.options and remote.options.strip():
        skipped["options"] = "PAI's Options string is not a JSON object"
    spec["labels"] = user_labels([(label.key, label.value) for label in remote.labels])
    _policies(spec, deletion_policy)
    ModelVersionSpec.model_validate(spec)  # what the CRD and the operator will accept
    return Rendered(
        {"apiVersion": API_VERSION, "kind": KIND, "metadata": _metadata(name, namespace), "spec": spec},
        skipped,
    )


def model_manifest(
    remote: Model,
    *,
    name: str,
    namespace: str | None = None,
    region: str | None = None,
    deletion_policy: DeletionPolicy | None = None,
) -> Rendered:
    """A Model manifest for `remote`, adopted by its ID (`spec.modelId`)."""
    skipped: dict[str, str] = {}
    spec: dict[str, Any] = {"modelName": remote.model_name or remote.model_id, "modelId": remote.model_id}
    if not remote.model_name:
        skipped["modelName"] = "PAI lists no name; the model's ID is used and will be written as its name"
    if remote.workspace_id:
        spec["workspaceId"] = remote.workspace_id
    if region:
        spec["regionId"] = region
    if remote.accessibility in ("PRIVATE", "PUBLIC"):
        spec["accessibility"] = remote.accessibility
    elif remote.accessibility:
        skipped["accessibility"] = f"PAI has {remote.accessibility!r}, which the spec does not accept"
    for attr in ("domain", "task", "origin", "model_type", "model_doc", "model_description"):
        value = getattr(remote, attr)
        if value:
            spec[_alias(ModelSpec, attr)] = value
    if remote.order_number is not None:
        spec["orderNumber"] = remote.order_number
    if remote.extra_info:
        spec["extraInfo"] = remote.extra_info
    spec["labels"] = user_labels([(label.key, label.value) for label in remote.labels])
    _policies(spec, deletion_policy)
    ModelSpec.model_validate(spec)
    return Rendered(
        {"apiVersion": API_VERSION, "kind": MODEL_KIND, "metadata": _metadata(name, namespace), "spec": spec},
        skipped,
    )


def _alias(model: type[ModelVersionSpec] | type[ModelSpec], attr: str) -> str:
    return manifest_names(model)[attr]
