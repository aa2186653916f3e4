"""`pai-operator orphans`: versions (and PAI models) that carry this operator's ownership mark
while no object in the cluster owns them any more, in PAI and in TrueFoundry.

That happens when the object went without the operator releasing its mark: a `Retain` deletion
whose mark removal failed (it is best effort: `plans.DeletionPlan.best_effort`), a cluster
lost or rebuilt, a finalizer removed by hand. Such a version is nobody's: no object repairs it,
and the next object that names it must adopt it.

The marks: PAI's labels `pai.mlops.dev/owner-uid` and `owner-ref`; TrueFoundry's metadata key
`truefoundry.mlops.dev/owner` holding `{uid, ref}` (`truefoundry.planning.owner_mark`). A mark is
live when its UID is the UID of an object of that kind in the cluster, or when its
`<namespace>/<name>` names one: that object takes the version over by succession (a restore:
same name, new UID; `plans.claim_of`), so it is not an orphan.

Reads only, but for `--delete`. PAI: ListModels, then ListModelVersions(Label=owner- key prefix)
per model. TrueFoundry: ListMlRepos (or the repos named), then ListModelVersions per repo (or
per model named): it has no metadata filter. Before each deletion the version (or model) is
read again and deleted only if it still carries the same mark, so an object adopting it
meanwhile keeps it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

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
from pai_operator.commands.output import Output, ProgressStep, add_output_argument
from pai_operator.errors import NotFoundError, RemoteError
from pai_operator.pai import adoption_manifests as pai_manifests
from pai_operator.pai.backend import PaiBackend
from pai_operator.pai.client import PaiClient
from pai_operator.pai.labels import owner_ref_label
from pai_operator.pai.model_spec import MODEL_RESOURCE
from pai_operator.pai.models import ListModelsRequest, ListModelVersionsRequest, Model, ModelVersion
from pai_operator.pai.spec import GROUP, OWNER_LABEL_KEY, OWNER_REF_LABEL_KEY
from pai_operator.pai.spec import RESOURCE as PAI_RESOURCE
from pai_operator.registry import OperatorSettings
from pai_operator.truefoundry import adoption_manifests as tfy_manifests
from pai_operator.truefoundry.backend import TrueFoundryBackend
from pai_operator.truefoundry.client import TrueFoundryClient
from pai_operator.truefoundry.models import ModelVersion as TfyModelVersion
from pai_operator.truefoundry.planning import PLANNER as TFY_PLANNER
from pai_operator.truefoundry.spec import RESOURCE as TFY_RESOURCE

MARK_KEY_PREFIX: Final = f"{GROUP}/owner-"
"""What both PAI ownership label keys start with (`owner-uid`, `owner-ref`)."""

Registry = Literal["PAI", "TrueFoundry"]


@dataclass(frozen=True)
class LiveObjects:
    """The objects of one kind in the cluster: their UIDs and their `<namespace>/<name>`."""

    uids: frozenset[str]
    refs: frozenset[str]

    @classmethod
    def of(cls, objects: Iterable[tuple[str, str, str]]) -> LiveObjects:
        """From (namespace, name, uid) triples."""
        listed = list(objects)
        refs = {f"{ns}/{name}" for ns, name, _ in listed}
        return cls(
            uids=frozenset(uid for _, _, uid in listed),
            # Marks carry the label spelling of a reference (its digest when long); releases
            # before it wrote long ones verbatim.
            refs=frozenset(refs | {owner_ref_label(ref) for ref in refs}),
        )

    def owns(self, uid: str | None, ref: str | None) -> bool:
        return (uid is not None and uid in self.uids) or (ref is not None and ref in self.refs)

    def orphans(self, uid: str | None, ref: str | None) -> bool:
        """A mark (either half set) that no live object holds."""
        return (uid is not None or ref is not None) and not self.owns(uid, ref)


@dataclass(frozen=True)
class Orphan:
    """`model_id`: PAI's model ID, or TrueFoundry's `<mlRepo>/<name>`; `version_name`: PAI's
    version name or TrueFoundry's version number (None for a PAI model)."""

    kind: Literal["ModelVersion", "Model"]
    model_id: str
    version_name: str | None
    owner_uid: str | None
    owner_ref: str | None
    remote: ModelVersion | Model | TfyModelVersion

    @property
    def registry(self) -> Registry:
        return "TrueFoundry" if isinstance(self.remote, TfyModelVersion) else "PAI"

    @property
    def ident(self) -> str:
        return f"{self.model_id}:{self.version_name}" if self.version_name else self.model_id


def _marks(labels: dict[str, str]) -> tuple[str | None, str | None]:
    return labels.get(OWNER_LABEL_KEY), labels.get(OWNER_REF_LABEL_KEY)


def is_marked(labels: dict[str, str]) -> bool:
    uid, ref = _marks(labels)
    return uid is not None or ref is not None


async def find_orphans(
    client: PaiClient,
    versions_owner: LiveObjects,
    models_owner: LiveObjects,
    *,
    model_ids: Sequence[str] = (),
    on_total: Callable[[int], None] | None = None,
    on_model_done: Callable[[], None] | None = None,
) -> list[Orphan]:
    """Orphaned PAI versions of every model (or of `model_ids`), then orphaned models."""
    if model_ids:
        models = [await client.get_model(model_id) for model_id in model_ids]
    else:
        models = [model async for model in client.iter_models(ListModelsRequest())]
    if on_total:
        on_total(len(models))
    orphans: list[Orphan] = []
    for model in models:
        # PAI's Label filter matches a substring of a key or a value: every version with either
        # mark's key (and a few false hits), then checked exactly.
        request = ListModelVersionsRequest(label=MARK_KEY_PREFIX)
        async for version in client.iter_model_versions(model.model_id, request):
            uid, ref = _marks(version.label_map())
            if versions_owner.orphans(uid, ref):
                orphans.append(
                    Orphan("ModelVersion", model.model_id, version.version_name, uid, ref, version)
                )
        if on_model_done:
            on_model_done()
    for model in models:
        uid, ref = _marks(model.label_map())
        if models_owner.orphans(uid, ref):
            orphans.append(Orphan("Model", model.model_id, None, uid, ref, model))
    return orphans


async def find_truefoundry_orphans(
    client: TrueFoundryClient,
    versions_owner: LiveObjects,
    *,
    ml_repos: Sequence[str] = (),
    names: Sequence[str] = (),
    on_total: Callable[[int], None] | None = None,
    on_model_done: Callable[[], None] | None = None,
) -> list[Orphan]:
    """Orphaned TrueFoundry versions in every ML repo (or in `ml_repos`; only models `names`
    when given). TrueFoundry filters no list by metadata: every version of the scope is read."""
    if ml_repos:
        repos = [await client.find_ml_repo(name) for name in ml_repos]
    else:
        repos = [repo async for repo in client.iter_ml_repos()]
    if on_total:
        on_total(len(repos))
    orphans: list[Orphan] = []
    for repo in repos:
        listed: list[TfyModelVersion] = []
        scopes: Sequence[str | None] = names or [None]
        for name in scopes:
            listed += [v async for v in client.iter_versions(ml_repo_id=repo.id, name=name)]
        for version in listed:
            if names and version.manifest.name not in names:
                continue  # the `name` filter's matching is not documented: only an exact name counts
            uid, ref = TFY_PLANNER.marked(version)
            if versions_owner.orphans(uid, ref):
                model = f"{repo.name}/{version.manifest.name}"
                orphans.append(Orphan("ModelVersion", model, str(version.version), uid, ref, version))
        if on_model_done:
            on_model_done()
    return orphans


# --- deletion -----------------------------------------------------------------------------


class Remover(Protocol):
    """One registry's part of `delete_orphans`."""

    async def marks(self, orphan: Orphan) -> tuple[str | None, str | None]:
        """The orphan's mark as it is now; NotFoundError when it is gone."""
        ...

    async def delete(self, orphan: Orphan) -> str | None:
        """Delete it: None when done, else why it is kept. NotFoundError when it is gone."""
        ...


@dataclass(frozen=True)
class PaiRemover:
    client: PaiClient

    async def marks(self, orphan: Orphan) -> tuple[str | None, str | None]:
        if orphan.version_name is not None:
            current = await self.client.get_model_version(orphan.model_id, orphan.version_name)
            return _marks(current.label_map())
        return _marks((await self.client.get_model(orphan.model_id)).label_map())

    async def delete(self, orphan: Orphan) -> str | None:
        if orphan.version_name is not None:
            await self.client.delete_model_version(orphan.model_id, orphan.version_name)
            return None
        left = await self.client.list_model_versions(orphan.model_id, ListModelVersionsRequest(page_size=1))
        if left.total_count:
            return f"it still has {left.total_count} version(s); PAI would delete them with it"
        await self.client.delete_model(orphan.model_id)
        return None


@dataclass(frozen=True)
class TrueFoundryRemover:
    client: TrueFoundryClient

    def _id(self, orphan: Orphan) -> str:
        assert isinstance(orphan.remote, TfyModelVersion)  # TrueFoundry orphans are its versions
        return orphan.remote.id

    async def marks(self, orphan: Orphan) -> tuple[str | None, str | None]:
        return TFY_PLANNER.marked(await self.client.get(self._id(orphan)))

    async def delete(self, orphan: Orphan) -> str | None:
        await self.client.delete(self._id(orphan))
        return None


@dataclass(frozen=True)
class Deletion:
    orphan: Orphan
    outcome: Literal["deleted", "gone", "kept"]
    reason: str = ""


async def delete_orphans(removers: Mapping[Registry, Remover], orphans: Sequence[Orphan]) -> list[Deletion]:
    """Delete `orphans`, versions first. Each is read again first: one whose mark changed (an
    object adopted it meanwhile) is kept. A PAI model is deleted only once it has no version
    left, since PAI's DeleteModel takes every version with it."""
    done: list[Deletion] = []
    for orphan in sorted(orphans, key=lambda o: o.kind != "ModelVersion"):
        remover = removers[orphan.registry]
        try:
            if await remover.marks(orphan) != (orphan.owner_uid, orphan.owner_ref):
                done.append(Deletion(orphan, "kept", "its ownership mark changed since it was listed"))
                continue
            kept = await remover.delete(orphan)
        except NotFoundError:
            done.append(Deletion(orphan, "gone"))
            continue
        done.append(Deletion(orphan, "kept", kept) if kept else Deletion(orphan, "deleted"))
    return done


# --- the command --------------------------------------------------------------------------


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
