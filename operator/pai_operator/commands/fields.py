"""Spec against remote, field by field, for people: a remote version seen in spec terms (spec
names, spec shapes) and the changes a plan makes as old -> new, JSON fields as a unified diff.

Which fields differ is never decided here: the registry's planner says so (`Plan.drift`, the very
list the operator repairs). This module only shows the two values of each such field, so it may
be generic: a remote wire model carries a spec field under the same snake_case name (PAI; for
TrueFoundry inside the version's `manifest`), lists of key/value labels read as a mapping, and a
JSON document the registry keeps as a string (PAI's Options) is parsed when the spec holds an
object. Keys the operator writes itself (its ownership marks, under the resource's group) and a
registry's reserved keys (TrueFoundry's leading ".") are left out: no spec sets them.
"""

from __future__ import annotations

import contextlib
import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.alias_generators import to_camel

_MISSING = object()


def plain(value: Any) -> Any:
    """A value as JSON would carry it, models with their spec (camelCase) field names, unset
    fields left out: comparable with what a manifest says."""
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        return {
            to_camel(name): plain(getattr(value, name)) for name in fields if getattr(value, name) is not None
        }
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if value and all(
            isinstance(v, BaseModel) and {"key", "value"} <= set(type(v).model_fields) for v in value
        ):
            return {str(v.key): plain(v.value) for v in value}
        return [plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _without_reserved(value: Any, prefix: str) -> Any:
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if not k.startswith(prefix) and not k.startswith(".")}
    return value


def remote_fields(spec_model: type[BaseModel], remote: Any, prefix: str) -> dict[str, Any]:
    """The remote version's value of every spec field it carries, by spec name. `prefix`: the
    resource's annotation prefix (`pai.mlops.dev/`), whose keys are the operator's own marks."""
    sources = [remote]
    manifest = getattr(remote, "manifest", None)
    if isinstance(manifest, BaseModel):
        sources.insert(0, manifest)
    found: dict[str, Any] = {}
    for name, info in spec_model.model_fields.items():
        value = _MISSING
        for source in sources:
            if isinstance(source, BaseModel) and name in type(source).model_fields:
                value = getattr(source, name)
                break
        if value is _MISSING:
            continue
        found[info.alias or to_camel(name)] = _without_reserved(plain(value), prefix)
    return found


def spec_fields(spec: BaseModel) -> dict[str, Any]:
    """The fields a parsed spec sets, by spec name (unset: not managed)."""
    return {
        info.alias or to_camel(name): plain(getattr(spec, name))
        for name, info in type(spec).model_fields.items()
        if getattr(spec, name) is not None
    }


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any  # None: the remote has no value
    new: Any

    def as_json(self) -> dict[str, Any]:
        return {"field": self.field, "old": self.old, "new": self.new}


def changes(drift: Sequence[str], spec: Mapping[str, Any], remote: Mapping[str, Any]) -> list[FieldChange]:
    """old -> new for each drifted field (the planner's list, in its order)."""
    found = []
    for name in drift:
        new = spec.get(name)
        old = remote.get(name)
        if isinstance(old, str) and isinstance(new, dict | list):
            with contextlib.suppress(ValueError):  # JSON kept as a string remotely (PAI's Options)
                old = json.loads(old)
        found.append(FieldChange(name, old, new))
    return found


def _scalar(value: Any) -> str:
    return "(unset)" if value is None else json.dumps(value, ensure_ascii=False)


def render_change(change: FieldChange) -> list[str]:
    """Lines for a person: `field: old → new` for scalars; a mapping of scalars (labels) key by
    key; other JSON as a unified diff of its indented form (remote → spec)."""
    old, new = change.old, change.new
    if not isinstance(old, dict | list) and not isinstance(new, dict | list):
        return [f"{change.field}: {_scalar(old)} → {_scalar(new)}"]
    if _flat_mapping(old) and _flat_mapping(new):
        before, after = old or {}, new or {}
        lines = [f"{change.field}:"]
        for key in sorted(set(before) | set(after)):
            if key not in after:
                lines.append(f"  - {key}: {_scalar(before[key])}")
            elif key not in before:
                lines.append(f"  + {key}: {_scalar(after[key])}")
            elif before[key] != after[key]:
                lines.append(f"  ~ {key}: {_scalar(before[key])} → {_scalar(after[key])}")
        return lines
    return [f"{change.field}:", *(f"  {line}" for line in json_diff(old, new))]


def _flat_mapping(value: Any) -> bool:
    return value is None or (
        isinstance(value, dict) and not any(isinstance(v, dict | list) for v in value.values())
    )


def json_diff(old: Any, new: Any) -> list[str]:
    """A unified diff of two JSON values, keys sorted (order never counts as a change)."""

    def lines(value: Any) -> list[str]:
        if value is None:
            return []
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()

    diff = difflib.unified_diff(lines(old), lines(new), fromfile="remote", tofile="spec", lineterm="", n=2)
    return list(diff)
