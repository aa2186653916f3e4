"""`pai-operator orphans`: versions (and PAI models) in PAI and TrueFoundry that carry this
operator's ownership mark while no object in the cluster owns them any more.

That happens when the object went without the operator releasing its mark: a `Retain` deletion
whose mark removal failed (it is best effort: `plans.DeletionPlan.best_effort`), a cluster
lost or rebuilt, a finalizer removed by hand. Such a version is nobody's: no object repairs it,
and the next object that names it must adopt it. The search and the deletion are in
`commands.orphan_search`; here the scope, the report, the question and the manifests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pai_operator.backend import Resource
from pai_operator.commands.context import (
    Cluster,
    ClusterReadError,
    add_cluster_arguments,
    add_registry_arguments,
    connect_cluster,
    failed,
    open_registries,
    quiet_logging,
    registry_settings,
)
from pai_operator.commands.importing import Failed, Imported, Names, Outcome, object_name, render_documents
from pai_operator.commands.manifests import DEFAULT_NAMESPACE
from pai_operator.commands.orphan_search import (
    LiveObjects,
    Orphan,
    PaiRemover,
    Registry,
    Remover,
    TrueFoundryRemover,
    delete_orphans,
    find_orphans,
    find_truefoundry_orphans,
)
from pai_operator.commands.output import Output, ProgressStep, add_output_argument
from pai_operator.errors import RemoteError
from pai_operator.pai import adoption_manifests as pai_manifests
from pai_operator.pai.backend import PaiBackend
from pai_operator.pai.model_spec import MODEL_RESOURCE
from pai_operator.pai.models import ModelVersion
from pai_operator.pai.spec import RESOURCE as PAI_RESOURCE
from pai_operator.registry import OperatorSettings
from pai_operator.truefoundry import adoption_manifests as tfy_manifests
from pai_operator.truefoundry.backend import TrueFoundryBackend
from pai_operator.truefoundry.models import ModelVersion as TfyModelVersion
from pai_operator.truefoundry.spec import RESOURCE as TFY_RESOURCE


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "orphans",
        help="list versions (and PAI models) marked by this operator whose object is gone",
        description=(
            "List the PAI versions and models and the TrueFoundry versions that carry this "
            "operator's ownership mark while no object in the cluster owns them (a Retain deletion "
            "whose mark removal failed, a lost cluster, a finalizer removed by hand). Without "
            "--model or --ml-repo, every registry configured is scanned. Reads only, unless --delete."
        ),
    )
    scopes = (
        (
            "--model",
            "model_ids",
            "MODEL_ID",
            "look in this PAI model only (default: every model ListModels returns)",
        ),
        (
            "--ml-repo",
            "ml_repos",
            "NAME",
            "look in this TrueFoundry ML repo only (default: every one the key sees)",
        ),
        ("--name", "names", "MODEL", "with --ml-repo: only this TrueFoundry model of the repos"),
    )
    for flag, dest, metavar, text in scopes:
        parser.add_argument(
            flag, dest=dest, metavar=metavar, action="append", default=[], help=f"{text} (repeatable)"
        )
    parser.add_argument(
        "--delete",
        action="store_true",
        help="delete the orphans (versions first; a PAI model only once it has no version left)",
    )
    parser.add_argument("--yes", "-y", action="store_true", help="with --delete: do not ask")
    parser.add_argument(
        "--adopt-manifests",
        action="store_true",
        help="print manifests that take the orphans back (stdout; the report then goes to stderr)",
    )
    add_output_argument(parser)
    add_registry_arguments(parser)
    add_cluster_arguments(parser, required=True)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    quiet_logging()
    if args.adopt_manifests and args.output == "json":
        return failed("--adopt-manifests prints YAML manifests; it does not go with -o json")
    if args.delete and args.adopt_manifests:
        return failed("--delete and --adopt-manifests exclude each other")
    if args.names and not args.ml_repos:
        return failed("--name goes with --ml-repo (the TrueFoundry ML repo the model is in)")
    if args.delete and not args.yes and not sys.stdin.isatty():
        return failed("--delete asks before deleting; without a terminal, add --yes")
    settings = registry_settings(args)
    cluster = connect_cluster(args, required=True)
    assert cluster is not None  # required=True connects or raises
    # The report on stderr when stdout carries the manifests.
    output = Output.from_arguments(args, sys.stderr if args.adopt_manifests else None)
    try:
        return asyncio.run(_run(args, settings, cluster, output))
    except (RemoteError, ClusterReadError) as exc:
        return failed(str(exc))


class _Refused(Exception):
    """The command cannot scan what it was asked to (message for the user)."""


async def _require_crd(cluster: Cluster, resource: Resource) -> None:
    if not await cluster.serves(resource):
        # Every marked version would look orphaned: refuse rather than report (or delete) them all.
        raise _Refused(f"the cluster has no {resource.crd_name} CRD: is the operator installed there?")


@dataclass
class _Progress:
    """One progress bar per registry scanned, opened once the scan knows its total."""

    output: Output
    stack: contextlib.ExitStack
    description: str
    bar: ProgressStep | None = None

    def on_total(self, total: int) -> None:
        self.bar = self.stack.enter_context(self.output.progress(total, self.description))

    def on_model_done(self) -> None:
        if self.bar is not None:
            self.bar.step()


async def _run(args: argparse.Namespace, settings: OperatorSettings, cluster: Cluster, output: Output) -> int:
    # Named scopes pick their registry; none names every registry that is configured.
    pai_wanted = bool(args.model_ids) or not args.ml_repos
    tfy_wanted = bool(args.ml_repos) or not args.model_ids
    orphans: list[Orphan] = []
    removers: dict[Registry, Remover] = {}
    async with open_registries(settings, cluster.namespaces) as registries:
        pai = registries.backend(PAI_RESOURCE) if pai_wanted else None
        tfy = registries.backend(TFY_RESOURCE) if tfy_wanted else None
        try:
            if args.model_ids and not isinstance(pai, PaiBackend):
                raise _Refused(registries.why_off(PAI_RESOURCE))
            if args.ml_repos and not isinstance(tfy, TrueFoundryBackend):
                raise _Refused(registries.why_off(TFY_RESOURCE))
            if not isinstance(pai, PaiBackend) and not isinstance(tfy, TrueFoundryBackend):
                raise _Refused(f"{registries.why_off(PAI_RESOURCE)}; {registries.why_off(TFY_RESOURCE)}")
            with contextlib.ExitStack() as stack:
                if isinstance(pai, PaiBackend):
                    await _require_crd(cluster, PAI_RESOURCE)
                    versions_owner = LiveObjects.of(_triples(await cluster.list(PAI_RESOURCE)))
                    models_owner = LiveObjects.of(_triples(await cluster.list(MODEL_RESOURCE)))
                    client = await pai.client(DEFAULT_NAMESPACE, settings.region)
                    removers["PAI"] = PaiRemover(client)
                    progress = _Progress(output, stack, "listing PAI models")
                    orphans += await find_orphans(
                        client,
                        versions_owner,
                        models_owner,
                        model_ids=args.model_ids,
                        on_total=progress.on_total,
                        on_model_done=progress.on_model_done,
                    )
                if isinstance(tfy, TrueFoundryBackend):
                    await _require_crd(cluster, TFY_RESOURCE)
                    tfy_owner = LiveObjects.of(_triples(await cluster.list(TFY_RESOURCE)))
                    tfy_client = await tfy.client(DEFAULT_NAMESPACE, "")
                    removers["TrueFoundry"] = TrueFoundryRemover(tfy_client)
                    progress = _Progress(output, stack, "listing TrueFoundry ML repos")
                    orphans += await find_truefoundry_orphans(
                        tfy_client,
                        tfy_owner,
                        ml_repos=args.ml_repos,
                        names=args.names,
                        on_total=progress.on_total,
                        on_model_done=progress.on_model_done,
                    )
        except _Refused as exc:
            return failed(str(exc))
        report(output, orphans)
        if args.adopt_manifests:
            sys.stdout.write(render_documents(adoption_documents(orphans, settings.region)))
            return 0
        if not args.delete or not orphans:
            return 0
        if not args.yes and not _confirm(orphans):
            output.line("nothing deleted")
            return 1
        deletions = await delete_orphans(removers, orphans)
    for deletion in deletions:
        why = f": {deletion.reason}" if deletion.reason else ""
        orphan = deletion.orphan
        output.line(f"{deletion.outcome} {orphan.registry} {orphan.kind} {orphan.ident}{why}")
    return 0 if all(d.outcome != "kept" for d in deletions) else 1


def _triples(items: Iterable[dict[str, Any]]) -> list[tuple[str, str, str]]:
    triples = []
    for item in items:
        metadata = item.get("metadata") or {}
        triples.append((str(metadata.get("namespace")), str(metadata.get("name")), str(metadata.get("uid"))))
    return triples


def report(output: Output, orphans: Sequence[Orphan]) -> None:
    if output.is_json:
        output.json(
            [
                {
                    "registry": o.registry,
                    "kind": o.kind,
                    "modelId": o.model_id,
                    "versionName": o.version_name,
                    "fqn": o.remote.fqn if isinstance(o.remote, TfyModelVersion) else None,
                    "ownerUid": o.owner_uid,
                    "ownerRef": o.owner_ref,
                }
                for o in orphans
            ]
        )
        return
    if not orphans:
        output.line("no orphans: every marked version and model has its object in the cluster", "green")
        return
    rows = [
        [o.registry, o.kind, o.model_id, o.version_name or "-", o.owner_ref or "-", o.owner_uid or "-"]
        for o in orphans
    ]
    output.table(["REGISTRY", "KIND", "MODEL", "VERSION", "OWNER (namespace/name)", "OWNER UID"], rows)


def _confirm(orphans: Sequence[Orphan]) -> bool:
    counts: dict[str, int] = {}
    for o in orphans:
        what = f"{o.registry} {'version' if o.kind == 'ModelVersion' else 'model'}(s)"
        counts[what] = counts.get(what, 0) + 1
    listed = ", ".join(f"{n} {what}" for what, n in counts.items())
    sys.stderr.write(f"Delete {listed}? [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def adoption_documents(orphans: Sequence[Orphan], region: str) -> list[Outcome]:
    """Manifests that take each orphan back: under its old namespace and name when its mark
    says them (not a digest), so that the object it had comes back as it was."""
    names = Names()
    outcomes: list[Outcome] = []
    for orphan in orphans:
        namespace, name = _old_place(orphan.owner_ref)
        owner = orphan.owner_ref or orphan.owner_uid
        source = f"orphan {orphan.registry} {orphan.kind} {orphan.ident} (owner {owner})"
        remote = orphan.remote
        try:
            if isinstance(remote, TfyModelVersion):
                wanted = name or object_name(orphan.model_id.replace("/", "-"), f"v{remote.version}")
                rendered: pai_manifests.Rendered | tfy_manifests.Rendered = tfy_manifests.version_manifest(
                    remote,
                    name=names.take(f"{namespace}/truefoundry/ModelVersion", wanted),
                    namespace=namespace,
                )
            elif isinstance(remote, ModelVersion):
                wanted = name or object_name(orphan.model_id, remote.version_name)
                rendered = pai_manifests.version_manifest(
                    orphan.model_id,
                    remote,
                    name=names.take(f"{namespace}/ModelVersion", wanted),
                    namespace=namespace,
                    region=region,
                )
            else:
                wanted = name or object_name(remote.model_name or orphan.model_id)
                rendered = pai_manifests.model_manifest(
                    remote,
                    name=names.take(f"{namespace}/Model", wanted),
                    namespace=namespace,
                    region=region,
                )
        except ValueError as exc:
            outcomes.append(Failed(source, str(exc).splitlines()[0]))
            continue
        outcomes.append(Imported(rendered.manifest, source, rendered.skipped))
    return outcomes


def _old_place(ref: str | None) -> tuple[str | None, str | None]:
    if not ref or "~" in ref or ref.count("/") != 1:
        return None, None
    namespace, name = ref.split("/")
    return namespace, name
