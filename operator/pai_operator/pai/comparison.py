"""Spec against remote: which fields drifted, what an update must send, which labels change,
and the status mirror of a remote version. Pure: no I/O. Comparison is semantic (see
`pai_operator.normalize`): key order, 1 vs 1.0 and the Options JSON string do not count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pai_operator.normalize import object_equal, options_equal, options_to_wire, text_equal
from pai_operator.pai.models import Label, ModelVersion
from pai_operator.pai.spec import (
    OWNER_LABEL_KEY,
    OWNER_REF_LABEL_KEY,
    RESERVED_LABEL_KEYS,
    AtProvider,
    ModelVersionSpec,
)
from pai_operator.pai.validation import JSON_FIELDS, spec_name


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


@dataclass(frozen=True)
class LabelChanges:
    delete: tuple[str, ...]
    add: tuple[Label, ...]
    final_count: int  # remote labels once both calls succeed, ownership label included


def label_changes(
    spec: ModelVersionSpec, remote: ModelVersion, uid: str, ref: str | None = None
) -> LabelChanges:
    """Set difference, never delete-all-then-add. Only keys that go away are deleted; a key whose
    value changes is one upsert (CreateModelVersionLabels replaces an existing key's value, see
    the emulator README), so the label is never missing in between, and a failed upsert leaves
    the old value rather than none. The ownership labels are upserted the same way, which is
    also how a successor takes a version over: one call rewrites the UID. Callers have already
    refused versions owned by another live object."""
    remote_labels = remote.label_map()
    remote_user = {k: v for k, v in remote_labels.items() if k not in RESERVED_LABEL_KEYS}
    delete: list[str] = []
    add: list[Label] = []
    if spec.labels is not None:
        desired = spec.labels
        delete = sorted(k for k in remote_user if k not in desired)
        add = [Label(key=k, value=v) for k, v in sorted(desired.items()) if remote_user.get(k) != v]
        final_user = len(desired)
    else:
        final_user = len(remote_user)
    ownership = [Label(key=OWNER_LABEL_KEY, value=uid)]
    if ref is not None:
        ownership.append(Label(key=OWNER_REF_LABEL_KEY, value=ref))
    add[:0] = [label for label in ownership if remote_labels.get(label.key) != label.value]
    reserved = len({label.key for label in ownership} | (remote_labels.keys() & set(RESERVED_LABEL_KEYS)))
    return LabelChanges(delete=tuple(delete), add=tuple(add), final_count=final_user + reserved)


def _user_labels_differ(desired: Mapping[str, str] | None, remote_user: Mapping[str, str]) -> bool:
    return desired is not None and dict(desired) != dict(remote_user)


def compute_drift(spec: ModelVersionSpec, remote: ModelVersion) -> list[str]:
    """Every set spec field whose remote value differs, by spec name, in schema order."""
    drifted = set(create_only_drift(spec, remote))
    drifted.update(spec_name(attr) for attr in update_fields(spec, remote))
    remote_user = {k: v for k, v in remote.label_map().items() if k not in RESERVED_LABEL_KEYS}
    if _user_labels_differ(spec.labels, remote_user):
        drifted.add("labels")
    order = [spec_name(attr) for attr in ModelVersionSpec.model_fields]
    return [name for name in order if name in drifted]


def remote_value(remote: ModelVersion, spec_name: str) -> str | None:
    return {"uri": remote.uri, "formatType": remote.format_type, "frameworkType": remote.framework_type}[
        spec_name
    ]
