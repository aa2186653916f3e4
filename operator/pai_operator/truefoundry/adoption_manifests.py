"""Manifests that take existing TrueFoundry versions under management (`pai-operator import
--ml-repo/--name`, `orphans --adopt-manifests`). Pure: no I/O.

As for PAI (`pai.adoption_manifests`): `adoptionPolicy: IfExists`, `spec.version` naming the
version, and every mutable field filled from the remote manifest, so that the planner
(`planning.TrueFoundryPlanner.repair`) finds nothing to change but the missing ownership key:
the first pass is one PUT that adds `truefoundry.mlops.dev/owner` to the metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from pai_operator.truefoundry.models import ModelVersion
from pai_operator.truefoundry.planning import user_metadata
from pai_operator.truefoundry.spec import (
    GROUP,
    KIND,
    VERSION,
    Environment,
    Framework,
    TrueFoundryModelVersionSpec,
)
from pai_operator.vocabulary import DeletionPolicy


@dataclass(frozen=True)
class Rendered:
    """One manifest, and the remote fields it leaves unmanaged (spec name: why)."""

    manifest: dict[str, Any]
    skipped: dict[str, str] = field(default_factory=dict)


def version_manifest(
    remote: ModelVersion,
    *,
    name: str,
    namespace: str | None = None,
    deletion_policy: DeletionPolicy | None = None,
) -> Rendered:
    """A TrueFoundry ModelVersion manifest for `remote`. ValueError when its source cannot be
    stated in a spec (no URI, or a source type other than external and truefoundry)."""
    manifest = remote.manifest
    source = manifest.source.to_wire()
    where = f"{manifest.ml_repo}/{manifest.name}:{remote.version}"
    if source.get("type") not in ("external", "truefoundry") or not source.get("uri"):
        raise ValueError(f"version {where} has a source the spec cannot state ({source.get('type')!r})")
    skipped: dict[str, str] = {}
    spec: dict[str, Any] = {
        "mlRepo": manifest.ml_repo,
        "name": manifest.name,
        "version": remote.version,
        "source": {"type": source["type"], "uri": source["uri"]},
    }
    if manifest.description:
        spec["description"] = manifest.description
    if manifest.version_alias:
        spec["versionAlias"] = manifest.version_alias
    spec["metadata"] = user_metadata(manifest.metadata)
    if manifest.framework is not None:
        wire = manifest.framework.to_wire()
        try:
            spec["framework"] = Framework.model_validate(wire).model_dump(by_alias=True, exclude_none=True)
        except ValidationError:
            skipped["framework"] = (
                f"TrueFoundry has framework type {wire.get('type')!r}, which the spec does not accept"
            )
    if manifest.environment is not None:
        environment = Environment.model_validate(manifest.environment.to_wire())
        dumped = environment.model_dump(by_alias=True, exclude_none=True)
        if dumped:
            spec["environment"] = dumped
    if manifest.run_id:
        # TrueFoundry keeps a step only with its run (the CRD refuses a step without runId).
        spec["runId"] = manifest.run_id
        spec["step"] = manifest.step
    spec["adoptionPolicy"] = "IfExists"
    if deletion_policy is not None:
        spec["deletionPolicy"] = deletion_policy
    TrueFoundryModelVersionSpec.model_validate(spec)
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return Rendered(
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": metadata, "spec": spec}, skipped
    )
