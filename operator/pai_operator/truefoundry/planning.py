"""TrueFoundry's part of planning (`plans.Planner`). Pure: no I/O.

A version is named by its number within (ML repo, model); the service assigns it at create
(`PUT model-versions` without `version` makes the next one), so a fixed `spec.version` can only
be adopted or observed, never created. Ownership is a key in the version's `metadata`
(`OWNER_METADATA_KEY`: the object's UID and namespace/name), written by the create itself, so
a create whose response was lost is found by listing the model's versions before creating again.

Updates are the same PUT with `version`: TrueFoundry replaces every mutable field from the
manifest sent, so the manifest is the remote one with the fields the spec sets laid over it;
fields the spec leaves unset keep their remote values (unset means unmanaged).

TrueFoundry's reserved metadata keys (`.truefoundry`: `spec.is_reserved_metadata_key`) are never
compared and always sent back as read, so a version logged with `truefoundry` and then adopted
keeps its internal metadata. `step` is compared only with a `runId`: TrueFoundry stores no step
without a run (the CRD refuses one; an object admitted before that rule is not stuck drifting).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pai_operator.normalize import object_equal
from pai_operator.plans import Owner, Problem
from pai_operator.truefoundry.models import ModelManifest, ModelVersion
from pai_operator.truefoundry.spec import (
    OWNER_METADATA_KEY,
    TrueFoundryModelVersionSpec,
    is_reserved_metadata_key,
)
from pai_operator.vocabulary import Reason


@dataclass(frozen=True)
class Apply:
    """PUT model-versions. `creates`: no version in the manifest, the service assigns the next."""

    manifest: ModelManifest
    creates: bool = False


@dataclass(frozen=True)
class Delete:
    version_id: str
    version: str


TrueFoundryCall = Apply | Delete

# Spec names of the fields compared, in schema order.
_MUTABLE: Final = ("description", "versionAlias", "metadata", "framework", "environment")


def owner_mark(owner: Owner) -> dict[str, str]:
    return {"uid": owner.uid, **({"ref": owner.ref} if owner.ref is not None else {})}


def user_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """What a spec's metadata is compared with: neither the ownership key nor TrueFoundry's own."""
    return {k: v for k, v in metadata.items() if k != OWNER_METADATA_KEY and not is_reserved_metadata_key(k)}


def _reserved_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metadata.items() if is_reserved_metadata_key(k)}


def _wire(value: Any) -> Any:
    """A spec sub-model as the service spells it (snake_case, unset fields dropped)."""
    if value is None:
        return None
    dumped: dict[str, Any] = value.model_dump(by_alias=False, exclude_none=True, mode="json")
    return dumped


def _desired(spec: TrueFoundryModelVersionSpec) -> dict[str, Any]:
    """The mutable fields the spec sets, as wire values (unset: not managed)."""
    wanted: dict[str, Any] = {}
    if spec.description is not None:
        wanted["description"] = spec.description
    if spec.version_alias is not None:
        wanted["version_alias"] = spec.version_alias
    if spec.metadata is not None:
        wanted["metadata"] = dict(spec.metadata)
    if spec.framework is not None:
        wanted["framework"] = _wire(spec.framework)
    if spec.environment is not None:
        wanted["environment"] = _wire(spec.environment)
    return wanted


def _remote(remote: ModelVersion) -> dict[str, Any]:
    manifest = remote.manifest.to_wire()
    manifest["metadata"] = user_metadata(remote.manifest.metadata)
    return manifest


_SPEC_NAMES: Final = {
    "description": "description",
    "version_alias": "versionAlias",
    "metadata": "metadata",
    "framework": "framework",
    "environment": "environment",
}


def _differs(field: str, wanted: Any, remote: Mapping[str, Any]) -> bool:
    current = remote.get(field)
    if field == "environment" and isinstance(wanted, Mapping) and isinstance(current, Mapping):
        # Only the sub-fields the spec sets are managed.
        return any(not object_equal(v, current.get(k)) for k, v in wanted.items())
    return not object_equal(wanted, current)


class TrueFoundryPlanner:
    registry = "TrueFoundry"
    key_field = "spec.version"
    mark = f"the {OWNER_METADATA_KEY} key from its metadata"

    def spec_key(self, spec: TrueFoundryModelVersionSpec) -> str | None:
        return str(spec.version) if spec.version is not None else None

    def key(self, remote: ModelVersion) -> str:
        return str(remote.version)

    def ident(self, spec: TrueFoundryModelVersionSpec, key: str | None) -> str | None:
        return f"{spec.ml_repo}/{spec.name}:{key}" if key else None

    def pending_ident(self, spec: TrueFoundryModelVersionSpec) -> str:
        return f"{spec.ml_repo}/{spec.name}:<assigned by TrueFoundry>"

    def parent(self, spec: TrueFoundryModelVersionSpec) -> str:
        return f"model {spec.ml_repo}/{spec.name}"

    def marked(self, remote: ModelVersion) -> tuple[str | None, str | None]:
        mark = remote.manifest.metadata.get(OWNER_METADATA_KEY)
        if not isinstance(mark, Mapping):
            return None, None
        uid, ref = mark.get("uid"), mark.get("ref")
        return (uid if isinstance(uid, str) else None), (ref if isinstance(ref, str) else None)

    def created_order(self, remote: ModelVersion) -> tuple[str, str]:
        created = remote.created_at.isoformat() if remote.created_at else ""
        return (created, f"{remote.version or 0:012d}")

    def drift(self, spec: TrueFoundryModelVersionSpec, remote: ModelVersion) -> list[str]:
        current = _remote(remote)
        changed = {f for f, v in _desired(spec).items() if _differs(f, v, current)}
        drifted = [_SPEC_NAMES[f] for f in changed]
        drifted += [name for name, _ in self.immutable_drift(spec, remote)]
        order = ["source", "step", "runId", *_MUTABLE]
        return [name for name in order if name in drifted]

    def immutable_drift(
        self, spec: TrueFoundryModelVersionSpec, remote: ModelVersion
    ) -> list[tuple[str, object]]:
        manifest = remote.manifest
        found: list[tuple[str, object]] = []
        source = manifest.source.to_wire()
        if (source.get("type"), source.get("uri")) != (spec.source.type, spec.source.uri):
            found.append(("source", source))
        if spec.step is not None and spec.run_id is not None and spec.step != manifest.step:
            found.append(("step", manifest.step))
        if spec.run_id is not None and spec.run_id != manifest.run_id:
            found.append(("runId", manifest.run_id))
        return found

    def create(self, spec: TrueFoundryModelVersionSpec, owner: Owner) -> TrueFoundryCall | Problem:
        if spec.version is not None:
            message = (
                f"version {spec.version} of model {spec.ml_repo}/{spec.name} does not exist, and "
                "TrueFoundry assigns version numbers itself: remove spec.version to have the next "
                "version created, or point it at an existing version"
            )
            return Problem(Reason.CONFLICT, message)
        if spec.source.type == "truefoundry":
            # The CRD refuses this; an object admitted before that rule gets the same answer.
            message = (
                "source.type truefoundry cannot be created by the operator: TrueFoundry-managed "
                "files exist only after truefoundry's log_model staged and uploaded them. Use "
                "source.type external, or set spec.version to adopt or observe a version logged "
                "with truefoundry"
            )
            return Problem(Reason.INVALID_SPEC, message)
        wire: dict[str, Any] = {
            "name": spec.name,
            "ml_repo": spec.ml_repo,
            "source": {"type": spec.source.type, "uri": spec.source.uri},
            **_desired(spec),
            "step": spec.step or 0,
        }
        if spec.run_id is not None:
            wire["run_id"] = spec.run_id
        wire["metadata"] = {**wire.get("metadata", {}), OWNER_METADATA_KEY: owner_mark(owner)}
        return Apply(ModelManifest.model_validate(wire), creates=True)

    def repair(
        self, spec: TrueFoundryModelVersionSpec, remote: ModelVersion, owner: Owner
    ) -> Sequence[TrueFoundryCall] | Problem:
        current = _remote(remote)
        wanted = {**current, **_desired(spec)}
        if spec.environment is not None and isinstance(current.get("environment"), Mapping):
            wanted["environment"] = {**current["environment"], **_desired(spec)["environment"]}
        mark = owner_mark(owner)
        in_sync = all(not _differs(f, v, current) for f, v in _desired(spec).items())
        if in_sync and remote.manifest.metadata.get(OWNER_METADATA_KEY) == mark:
            return []
        reserved = _reserved_metadata(remote.manifest.metadata)
        wanted["metadata"] = {**wanted["metadata"], **reserved, OWNER_METADATA_KEY: mark}
        wanted["version"] = remote.version
        return [Apply(ModelManifest.model_validate(wanted))]

    def delete(self, spec: TrueFoundryModelVersionSpec, remote: ModelVersion) -> TrueFoundryCall:
        return Delete(remote.id, str(remote.version))

    def release(self, spec: TrueFoundryModelVersionSpec, remote: ModelVersion) -> TrueFoundryCall:
        wanted = _remote(remote)  # the metadata without the ownership key, all else unchanged
        wanted["metadata"] = {**wanted["metadata"], **_reserved_metadata(remote.manifest.metadata)}
        wanted["version"] = remote.version
        return Apply(ModelManifest.model_validate(wanted))


PLANNER: Final = TrueFoundryPlanner()
