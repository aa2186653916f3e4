"""Spec against remote: which fields drifted, what an update must send, which labels change,
and the status mirror of a remote version. Pure: no I/O. Comparison is semantic (see
`pai_operator.normalize`): key order, 1 vs 1.0 and the Options JSON string do not count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pai_operator.normalize import object_equal, options_equal, options_to_wire, text_equal
from pai_operator.pai.labels import LabelWrites, label_writes, owner_ref_label
from pai_operator.pai.models import ModelVersion
from pai_operator.pai.spec import (
    OWNER_LABEL_KEY,
    OWNER_REF_LABEL_KEY,
    RESERVED_LABEL_KEYS,
    AtProvider,
    ModelVersionSpec,
)
from pai_operator.pai.validation import JSON_FIELDS, SPEC_NAMES, spec_name


def owner_of(version: ModelVersion) -> str | None:
    return version.label_map().get(OWNER_LABEL_KEY)


def owner_ref_of(version: ModelVersion) -> str | None:
    return version.label_map().get(OWNER_REF_LABEL_KEY)


def at_provider(observed: ModelVersion) -> AtProvider:
    """The status.atProvider mirror of a remote version."""
    return AtProvider(
        gmt_create_time=observed.gmt_create_time,
        gmt_modified_time=observed.gmt_modified_time,
        approval_status=observed.approval_status,
        user_id=observed.user_id,
        owner_id=observed.owner_id,
        source_type=observed.source_type,
        source_id=observed.source_id,
        format_type=observed.format_type,
        framework_type=observed.framework_type,
        uri=observed.uri,
        labels=observed.label_map() or None,
    )


_TEXT_FIELDS: Final = ("version_description", "source_id")
_ENUM_FIELDS: Final = ("approval_status", "source_type")
_OBJECT_FIELDS: Final = JSON_FIELDS[:-1]  # options is an object in spec but a string remotely


def create_only_drift(spec: ModelVersionSpec, remote: ModelVersion) -> list[str]:
    drift = []
    if spec.uri != remote.uri:
        drift.append("uri")
    if spec.format_type is not None and spec.format_type != remote.format_type:
        drift.append("formatType")
    if spec.framework_type is not None and spec.framework_type.casefold() != (
        (remote.framework_type or "").casefold()
    ):
        drift.append("frameworkType")
    return drift


def update_fields(spec: ModelVersionSpec, remote: ModelVersion) -> dict[str, Any]:
    """The updatable fields that are set in spec and differ remotely, as wire-model kwargs."""
    changes: dict[str, Any] = {}
    for attr in _TEXT_FIELDS:
        value = getattr(spec, attr)
        if value is not None and not text_equal(value, getattr(remote, attr)):
            changes[attr] = value
    for attr in _ENUM_FIELDS:
        value = getattr(spec, attr)
        if value is not None and value != getattr(remote, attr):
            changes[attr] = value
    for attr in _OBJECT_FIELDS:
        value = getattr(spec, attr)
        if value is not None and not object_equal(value, getattr(remote, attr)):
            changes[attr] = value
    if spec.options is not None and not options_equal(spec.options, remote.options):
        changes["options"] = options_to_wire(spec.options)
    return changes


def label_changes(
    spec: ModelVersionSpec, remote: ModelVersion, uid: str, ref: str | None = None
) -> LabelWrites:
    """The label calls that make `remote` carry spec's labels (when set) and this object's
    ownership marks (`pai.labels.label_writes`: delete-then-add for a changed or duplicated key,
    never relying on what CreateModelVersionLabels does with an existing key, never both marks
    deleted at once). Only keys that go away or change are touched. Callers have already refused
    versions owned by another live object."""
    ownership = [(OWNER_LABEL_KEY, uid)]
    if ref is not None:
        ownership.append((OWNER_REF_LABEL_KEY, owner_ref_label(ref)))
    remote_labels = [(label.key, label.value) for label in remote.labels]
    return label_writes(remote_labels, spec.labels, ownership, RESERVED_LABEL_KEYS)


def _user_labels_differ(desired: Mapping[str, str] | None, remote_user: Mapping[str, str]) -> bool:
    return desired is not None and dict(desired) != dict(remote_user)


def compute_drift(spec: ModelVersionSpec, remote: ModelVersion) -> list[str]:
    """Every set spec field whose remote value differs, by spec name, in schema order."""
    drifted = set(create_only_drift(spec, remote))
    drifted.update(spec_name(attr) for attr in update_fields(spec, remote))
    remote_user = {k: v for k, v in remote.label_map().items() if k not in RESERVED_LABEL_KEYS}
    keys = [label.key for label in remote.labels if label.key not in RESERVED_LABEL_KEYS]
    duplicated = spec.labels is not None and len(keys) != len(set(keys))  # a service that appends
    if _user_labels_differ(spec.labels, remote_user) or duplicated:
        drifted.add("labels")
    return [name for name in SPEC_NAMES.values() if name in drifted]


def remote_value(remote: ModelVersion, spec_name: str) -> str | None:
    return {"uri": remote.uri, "formatType": remote.format_type, "frameworkType": remote.framework_type}[
        spec_name
    ]
