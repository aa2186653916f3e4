"""`pai-operator import`: manifests for versions and models that already exist, so that
`kubectl apply` takes them under management with nothing written to the registry but the
ownership marks (`pai.adoption_manifests`, `truefoundry.adoption_manifests`).

Reads only: GetModelVersion / ListModelVersions / GetModel for PAI, the versions list for
TrueFoundry. Identities come from the flags, a Terraform state or a Pulumi export
(`pai.foreign_state`); the fields always come from the registry as it is now.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from pai_operator.commands.context import (
    Cluster,
    add_cluster_arguments,
    add_registry_arguments,
    connect_cluster,
    failed,
    open_registries,
    quiet_logging,
    registry_settings,
)
from pai_operator.commands.manifests import DEFAULT_NAMESPACE
from pai_operator.commands.output import Output
from pai_operator.errors import NotFoundError, RemoteError
from pai_operator.pai import adoption_manifests as pai_manifests
from pai_operator.pai.backend import PaiBackend
from pai_operator.pai.client import PaiClient
from pai_operator.pai.foreign_state import ForeignObject, pulumi_objects, terraform_objects
from pai_operator.pai.models import ListModelVersionsRequest
from pai_operator.pai.spec import RESOURCE as PAI_RESOURCE
from pai_operator.registry import OperatorSettings
from pai_operator.truefoundry import adoption_manifests as tfy_manifests
from pai_operator.truefoundry.backend import TrueFoundryBackend
from pai_operator.truefoundry.client import TrueFoundryClient
from pai_operator.truefoundry.spec import RESOURCE as TFY_RESOURCE
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


class CannotImport(Exception):
    """The command line asks for something that cannot be imported (exit 1, one line)."""


@dataclass(frozen=True)
class ImportOptions:
    namespace: str | None = None
    region: str | None = None
    deletion_policy: DeletionPolicy | None = None


class _KubectlSafeDumper(yaml.SafeDumper):
    """YAML that kubectl reads back as written. kubectl's YAML (sigs.k8s.io/yaml over go-yaml v2)
    takes YAML 1.1's `y`, `Y`, `n` and `N` for booleans, which PyYAML does not: unquoted, a key
    `n` in spec.options would arrive as `false` and the first pass would "repair" it. Resolving
    them as booleans here makes PyYAML quote such strings."""


_KubectlSafeDumper.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:y|Y|n|N)$"), list("yYnN"))


def render_documents(outcomes: Iterable[Outcome]) -> str:
    """The manifests as one YAML stream, each preceded by comments: its source, and the remote
    fields left unmanaged because the spec cannot state them."""
    documents = []
    for outcome in outcomes:
        if not isinstance(outcome, Imported):
            continue
        lines = [f"# imported from {outcome.source}"]
        lines += [f"# not managed: {name}: {why}" for name, why in sorted(outcome.skipped.items())]
        body = yaml.dump(outcome.manifest, Dumper=_KubectlSafeDumper, sort_keys=False, allow_unicode=True)
        documents.append("\n".join(lines) + "\n" + body)
    return "---\n".join(documents)


# --- PAI ----------------------------------------------------------------------------------


async def pai_versions(
    client: PaiClient,
    model_id: str,
    version: str | None,
    options: ImportOptions,
    names: Names,
    on_listed: Callable[[], None] | None = None,
) -> AsyncIterator[Outcome]:
    """The versions of `model_id` (only `version` when given), one manifest each; `on_listed`
    is called as each version arrives from the (paged) listing."""
    if version is not None:
        remote = await client.get_model_version(model_id, version)
        yield _pai_version(model_id, remote, options, names, f"PAI {model_id}:{version}", None)
        return
    listed = []
    async for remote in client.iter_model_versions(model_id):
        listed.append(remote)
        if on_listed:
            on_listed()
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
) -> AsyncIterator[Outcome]:
    """The versions of model `name` in `ml_repo` (only `version` when given)."""
    repo = await client.find_ml_repo(ml_repo)
    listed = [v async for v in client.iter_versions(ml_repo_id=repo.id, name=name, version=version)]
    listed = [v for v in listed if v.manifest.name == name and (version is None or v.version == version)]
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


# --- the command --------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "import",
        help="print manifests that take existing versions (and models) under management",
        description=(
            "Print manifests for versions that already exist, each with adoptionPolicy IfExists and its "
            "spec filled from the registry, so that `kubectl apply` makes the operator write nothing "
            "but its ownership marks. Reads only. Manifests go to stdout, problems to stderr (exit 1 "
            "when any identity could not be imported)."
        ),
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", metavar="MODEL_ID", help="a PAI model: all its versions (or --version)")
    what.add_argument("--ml-repo", metavar="NAME", help="a TrueFoundry ML repo (with --name)")
    what.add_argument(
        "--from-terraform-state",
        metavar="FILE",
        help="every alicloud_pai_workspace_model_version and alicloud_pai_workspace_model in a v4 state",
    )
    what.add_argument(
        "--from-pulumi-export",
        metavar="FILE",
        help="every PAI WorkspaceModelVersion and WorkspaceModel in a `pulumi stack export`",
    )
    parser.add_argument("--name", metavar="MODEL", help="TrueFoundry: the model's name in the ML repo")
    parser.add_argument(
        "--version",
        dest="import_version",
        metavar="V",
        help="only this version: a PAI version name (1.0.0) or a TrueFoundry version number",
    )
    parser.add_argument("-n", "--namespace", help="metadata.namespace of the manifests (default: none)")
    parser.add_argument(
        "--deletion-policy",
        choices=("Delete", "Retain"),
        help="spec.deletionPolicy of the manifests (default: unset, the namespace's or the operator's)",
    )
    add_registry_arguments(parser)
    add_cluster_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    quiet_logging()
    if args.ml_repo and not args.name:
        return failed("--ml-repo needs --name (the model in the ML repo)")
    if args.name and not args.ml_repo:
        return failed("--name goes with --ml-repo")
    if args.import_version and not (args.model or args.ml_repo):
        return failed("--version goes with --model or --ml-repo")
    objects: list[ForeignObject] | None = None
    try:
        if args.from_terraform_state:
            objects = terraform_objects(_read_json(args.from_terraform_state))
        elif args.from_pulumi_export:
            objects = pulumi_objects(_read_json(args.from_pulumi_export))
    except (OSError, ValueError) as exc:  # unreadable, not JSON, not the format
        return failed(_one_line(exc))
    settings = registry_settings(args)
    cluster = connect_cluster(args)
    output = Output("text")
    try:
        outcomes = asyncio.run(_collect(args, settings, cluster, objects, output))
    except (RemoteError, CannotImport) as exc:
        return failed(str(exc))
    sys.stdout.write(render_documents(outcomes))
    problems = [o for o in outcomes if isinstance(o, Failed)]
    for problem in problems:
        sys.stderr.write(f"pai-operator: not imported: {problem.source}: {problem.reason}\n")
    if not outcomes:
        sys.stderr.write("pai-operator: nothing to import\n")
    return 1 if problems else 0


def _read_json(path: str) -> Any:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    return json.loads(text)


async def _collect(
    args: argparse.Namespace,
    settings: OperatorSettings,
    cluster: Cluster | None,
    objects: list[ForeignObject] | None,
    output: Output,
) -> list[Outcome]:
    options = ImportOptions(
        namespace=args.namespace,
        region=settings.region if not args.ml_repo else None,
        deletion_policy=args.deletion_policy,
    )
    names = Names()
    namespaces = cluster.namespaces if cluster is not None else None
    async with open_registries(settings, namespaces) as registries:
        if args.ml_repo:
            backend = registries.backend(TFY_RESOURCE)
            if not isinstance(backend, TrueFoundryBackend):
                raise CannotImport(registries.why_off(TFY_RESOURCE))
            version = _version_number(args.import_version)
            tfy_client = await backend.client(args.namespace or DEFAULT_NAMESPACE, "")
            found = truefoundry_versions(tfy_client, args.ml_repo, args.name, version, options, names)
            return [outcome async for outcome in found]
        pai = registries.backend(PAI_RESOURCE)
        if not isinstance(pai, PaiBackend):
            raise CannotImport(registries.why_off(PAI_RESOURCE))
        # The identity the target namespace acts as (its RAM role, with --kubeconfig), else the
        # credentials chain's own.
        client = await pai.client(args.namespace or DEFAULT_NAMESPACE, settings.region)
        if objects is None:
            total = 1
            if args.import_version is None:  # one extra read: how many versions the walk will list
                first = await client.list_model_versions(args.model, ListModelVersionsRequest(page_size=1))
                total = first.total_count
            with output.progress(total, f"listing {args.model}") as progress:
                found = pai_versions(client, args.model, args.import_version, options, names, progress.step)
                return [outcome async for outcome in found]
        outcomes: list[Outcome] = []
        with output.progress(len(objects), "reading PAI") as progress:
            async for outcome in pai_foreign(client, objects, options, names):
                outcomes.append(outcome)
                progress.step()
        return outcomes


def _version_number(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isdigit():
        raise CannotImport(f"a TrueFoundry version is a number, not {text!r}")
    return int(text)
