"""`pai-operator import`: manifests for versions and models that already exist, so that
`kubectl apply` takes them under management with nothing written to the registry but the
ownership marks (`pai.adoption_manifests`, `truefoundry.adoption_manifests`).

Reads only: GetModelVersion / ListModelVersions / GetModel for PAI, the versions list for
TrueFoundry. Identities come from the flags, a Terraform state or a Pulumi export
(`pai.foreign_state`); the fields always come from the registry as it is now.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from pai_operator.errors import NotFoundError
from pai_operator.pai import adoption_manifests as pai_manifests
from pai_operator.pai.client import PaiClient
from pai_operator.pai.foreign_state import ForeignObject
from pai_operator.truefoundry import adoption_manifests as tfy_manifests
from pai_operator.truefoundry.client import TrueFoundryClient
from pai_operator.vocabulary import DeletionPolicy

MAX_NAME: Final = 253
_NOT_NAME: Final = re.compile(r"[^a-z0-9.-]+")


def object_name(*parts: str) -> str:
    """A Kubernetes object name (DNS-1123 subdomain) made of `parts`: lower case, runs of
    anything else as one `-`, ends trimmed to a letter or digit."""
    text = _NOT_NAME.sub("-", "-".join(parts).lower()).strip("-.")
    text = re.sub(r"-{2,}", "-", text)[:MAX_NAME].rstrip("-.")
    return text or "imported"


class Names:
    """Hands out object names, unique per kind: a second `x` becomes `x-2`."""

    def __init__(self) -> None:
        self._taken: set[tuple[str, str]] = set()

    def take(self, kind: str, wanted: str) -> str:
        name, n = wanted, 1
        while (kind, name) in self._taken:
            n += 1
            suffix = f"-{n}"
            name = wanted[: MAX_NAME - len(suffix)].rstrip("-.") + suffix
        self._taken.add((kind, name))
        return name


@dataclass(frozen=True)
class Imported:
    """One manifest and where it came from (a comment above it in the output)."""

    manifest: dict[str, Any]
    source: str
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Failed:
    """An identity that could not be imported, and why (on stderr; the exit code says so)."""

    source: str
    reason: str


Outcome = Imported | Failed


@dataclass(frozen=True)
class ImportOptions:
    namespace: str | None = None
    region: str | None = None
    deletion_policy: DeletionPolicy | None = None


def render_documents(outcomes: Iterable[Outcome]) -> str:
    """The manifests as one YAML stream, each preceded by comments: its source, and the remote
    fields left unmanaged because the spec cannot state them."""
    documents = []
    for outcome in outcomes:
        if not isinstance(outcome, Imported):
            continue
        lines = [f"# imported from {outcome.source}"]
        lines += [f"# not managed: {name}: {why}" for name, why in sorted(outcome.skipped.items())]
        body = yaml.safe_dump(outcome.manifest, sort_keys=False, allow_unicode=True)
        documents.append("\n".join(lines) + "\n" + body)
    return "---\n".join(documents)


# --- PAI ----------------------------------------------------------------------------------


async def pai_versions(
    client: PaiClient,
    model_id: str,
    version: str | None,
    options: ImportOptions,
    names: Names,
    *,
    on_total: Callable[[int], None] | None = None,
) -> AsyncIterator[Outcome]:
    """The versions of `model_id` (only `version` when given), one manifest each."""
    if version is not None:
        remote = await client.get_model_version(model_id, version)
        if on_total:
            on_total(1)
        yield _pai_version(model_id, remote, options, names, f"PAI {model_id}:{version}", None)
        return
    listed = [v async for v in client.iter_model_versions(model_id)]
    if on_total:
        on_total(len(listed))
    # Oldest first, so that names and output order do not depend on PAI's list order.
    for remote in sorted(listed, key=lambda v: (v.gmt_create_time or "", v.version_name)):
        yield _pai_version(model_id, remote, options, names, f"PAI {model_id}:{remote.version_name}", None)


def _pai_version(
    model_id: str,
    remote: Any,
    options: ImportOptions,
    names: Names,
    source: str,
    suggested: str | None,
) -> Outcome:
    name = names.take("ModelVersion", object_name(suggested or f"{model_id}-{remote.version_name}"))
    try:
        rendered = pai_manifests.version_manifest(
            model_id,
            remote,
            name=name,
            namespace=options.namespace,
            region=options.region,
            deletion_policy=options.deletion_policy,
        )
    except ValueError as exc:  # pydantic's ValidationError is a ValueError too
        return Failed(source, _one_line(exc))
    return Imported(rendered.manifest, source, rendered.skipped)


async def pai_foreign(
    client: PaiClient, objects: Sequence[ForeignObject], options: ImportOptions, names: Names
) -> AsyncIterator[Outcome]:
    """One manifest per object of a Terraform state or Pulumi export, read from PAI now. An
    object PAI no longer has is reported, not rendered: its state is stale."""
    for found in objects:
        source = f"{found.address} ({found.model_id}{':' + found.version_name if found.version_name else ''})"
        try:
            if found.version_name is None:
                model = await client.get_model(found.model_id)
                name = names.take("Model", object_name(found.suggested_name))
                try:
                    rendered = pai_manifests.model_manifest(
                        model,
                        name=name,
                        namespace=options.namespace,
                        region=options.region,
                        deletion_policy=options.deletion_policy,
                    )
                except ValueError as exc:
                    yield Failed(source, _one_line(exc))
                    continue
                yield Imported(rendered.manifest, source, rendered.skipped)
            else:
                version = await client.get_model_version(found.model_id, found.version_name)
                yield _pai_version(found.model_id, version, options, names, source, found.suggested_name)
        except NotFoundError:
            yield Failed(source, "not found in PAI (the state is stale, or another region or account)")


# --- TrueFoundry --------------------------------------------------------------------------


async def truefoundry_versions(
    client: TrueFoundryClient,
    ml_repo: str,
    name: str,
    version: int | None,
    options: ImportOptions,
    names: Names,
    *,
    on_total: Callable[[int], None] | None = None,
) -> AsyncIterator[Outcome]:
    """The versions of model `name` in `ml_repo` (only `version` when given)."""
    repo = await client.find_ml_repo(ml_repo)
    listed = [v async for v in client.iter_versions(ml_repo_id=repo.id, name=name, version=version)]
    listed = [v for v in listed if v.manifest.name == name and (version is None or v.version == version)]
    if on_total:
        on_total(len(listed))
    for remote in sorted(listed, key=lambda v: v.version or 0):
        source = f"TrueFoundry {ml_repo}/{name}:{remote.version}"
        object_ = names.take("truefoundry/ModelVersion", object_name(ml_repo, name, f"v{remote.version}"))
        try:
            rendered = tfy_manifests.version_manifest(
                remote, name=object_, namespace=options.namespace, deletion_policy=options.deletion_policy
            )
        except ValueError as exc:
            yield Failed(source, _one_line(exc))
            continue
        yield Imported(rendered.manifest, source, rendered.skipped)


def _one_line(exc: Exception) -> str:
    """The message on one line (pydantic's run over several: which spec field, and why)."""
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
