"""What a pass starts from: the spec parsed and checked beyond the schema, the policies in
effect, and the facts status recorded. Pure: no I/O.

An invalid spec is found here, before any PAI call: `validate_spec` returning problems means a
terminal InvalidSpec condition and no remote call until the spec (or status) changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pai_operator import plans
from pai_operator.normalize import compact_json
from pai_operator.pai.labels import label_problems
from pai_operator.pai.spec import (
    GROUP,
    MAX_METRICS_CHARS,
    MAX_REMOTE_LABELS,
    RESERVED_LABEL_KEYS,
    ModelVersionSpec,
)
from pai_operator.plans import Policies
from pai_operator.vocabulary import DeletionPolicy, manifest_names


def resolve_policies(
    spec: ModelVersionSpec,
    *,
    annotations: Mapping[str, str] | None = None,
    namespace_annotations: Mapping[str, str] | None = None,
    default_deletion: DeletionPolicy = "Delete",
) -> Policies:
    """`plans.resolve_policies` for PAI's group (annotations under `pai.mlops.dev/`)."""
    return plans.resolve_policies(
        spec,
        group=GROUP,
        annotations=annotations,
        namespace_annotations=namespace_annotations,
        default_deletion=default_deletion,
    )


@dataclass(frozen=True)
class Recorded:
    """Facts the operator wrote into status earlier and needs again."""

    version_name: str | None = None
    region_id: str | None = None

    @classmethod
    def from_status(cls, status: Mapping[str, Any] | None) -> Recorded:
        status = status or {}
        name, region = status.get("versionName"), status.get("regionId")
        return cls(
            version_name=name if isinstance(name, str) and name else None,
            region_id=region if isinstance(region, str) and region else None,
        )


def effective_region(spec: ModelVersionSpec, recorded: Recorded, default_region: str) -> str:
    """The recorded region wins over the operator default so that changing the default never
    makes an existing object look for (or create) its version elsewhere."""
    return spec.region_id or recorded.region_id or default_region


JSON_FIELDS: Final = (
    "metrics",
    "training_spec",
    "inference_spec",
    "evaluation_spec",
    "compression_spec",
    "distillation_spec",
    "extra_info",
    "options",
)


SPEC_NAMES: Final = manifest_names(ModelVersionSpec)
"""Each spec field's name in the manifest, by attribute, in schema order."""


def spec_name(attr: str) -> str:
    return SPEC_NAMES[attr]


def parse_spec(raw: Mapping[str, Any] | None) -> ModelVersionSpec | list[str]:
    """PAI's spec, or InvalidSpec messages (`plans.parse_model`)."""
    return plans.parse_model(ModelVersionSpec, raw)


_EXACT_INTEGERS: Final = 2**53
URI_SCHEMES: Final = ("oss://", "http://", "https://")


def _inexact_integer(value: Any, where: str = "") -> tuple[str, int] | None:
    """The first integer a float64 cannot hold exactly, with its path (e.g. `.a[2]`)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return (where, value) if abs(value) > _EXACT_INTEGERS else None
    if isinstance(value, Mapping):
        items: Iterable[tuple[str, Any]] = ((f"{where}.{k}", v) for k, v in value.items())
    elif isinstance(value, list):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for path, item in items:
        found = _inexact_integer(item, path)
        if found is not None:
            return found
    return None


def validate_spec(spec: ModelVersionSpec, policies: Policies, recorded: Recorded) -> list[str]:
    """Problems the CRD schema cannot catch, as human messages. Non-empty means: terminal
    InvalidSpec, no PAI call, nothing retried until the spec (or status) changes."""
    problems: list[str] = []
    if not spec.uri.startswith(URI_SCHEMES):
        problems.append(
            f"spec.uri {spec.uri!r} must start with {', '.join(URI_SCHEMES)}: "
            "PAI accepts no other storage URI"
        )
    for attr in JSON_FIELDS:
        value = getattr(spec, attr)
        if value is None:
            continue
        try:
            text = compact_json(value)
        except (TypeError, ValueError) as exc:
            problems.append(f"spec.{spec_name(attr)} is not serialisable as JSON: {exc}")
            continue
        inexact = _inexact_integer(value)
        if inexact is not None:
            where, number = inexact
            problems.append(
                f"spec.{spec_name(attr)}{where} is the integer {number}, beyond +-2^53: PAI keeps JSON "
                "numbers as 64-bit floats and would store another number (endless drift); write it as "
                "a string"
            )
        if attr == "metrics" and len(text) > MAX_METRICS_CHARS:
            problems.append(
                f"spec.metrics is {len(text)} characters as compact JSON; PAI accepts at most "
                f"{MAX_METRICS_CHARS}"
            )
    if spec.labels is not None:
        for key in RESERVED_LABEL_KEYS:
            if key in spec.labels:
                problems.append(f"spec.labels must not contain {key}: the operator reserves it")
        if "" in spec.labels:
            problems.append("spec.labels must not contain an empty key")
        # The CRD refuses these at admission; an object admitted by an older CRD still gets a
        # message that names the key, rather than a remote error.
        problems += label_problems(spec.labels)
        user = len(spec.labels.keys() - set(RESERVED_LABEL_KEYS))
        total = user + len(RESERVED_LABEL_KEYS)
        if total > MAX_REMOTE_LABELS:
            problems.append(
                f"spec.labels has {user} labels; with the {len(RESERVED_LABEL_KEYS)} ownership "
                f"labels that is {total}, PAI allows at most {MAX_REMOTE_LABELS}"
            )
    problems += plans.needs_key_to_observe(policies.management, spec.version_name, "versionName")
    if spec.version_name and recorded.version_name and spec.version_name != recorded.version_name:
        problems.append(
            f"spec.versionName {spec.version_name} differs from the version this object already "
            f"manages ({recorded.version_name}); set it to {recorded.version_name} or remove it"
        )
    if spec.region_id and recorded.region_id and spec.region_id != recorded.region_id:
        problems.append(
            f"spec.regionId {spec.region_id} differs from the region the remote version lives in "
            f"({recorded.region_id}); set it to {recorded.region_id} or remove it"
        )
    return problems
