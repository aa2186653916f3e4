"""`pai-operator orphans`: PAI versions and models that carry this operator's ownership labels
while no object in the cluster owns them any more.

That happens when the object went without the operator releasing its mark: a `Retain` deletion
whose label removal failed (it is best effort: `plans.DeletionPlan.best_effort`), a cluster
lost or rebuilt, a finalizer removed by hand. Such a version is nobody's: no object repairs it,
and the next object that names it must adopt it.

A mark is live when its UID (`pai.mlops.dev/owner-uid`) is the UID of an object of that kind in
the cluster, or when its `<namespace>/<name>` (`pai.mlops.dev/owner-ref`) names one: that object
takes the version over by succession (a restore: same name, new UID; `plans.claim_of`), so it
is not an orphan.

Reads only, but for `--delete`: ListModels, then ListModelVersions(Label=owner-uid key) per model.
Before each deletion the version (or model) is read again and deleted only if it still carries
the same mark, so an object adopting it meanwhile keeps it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

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
from pai_operator.commands.importing import Failed, Imported, Names, Outcome, object_name, render_documents
from pai_operator.commands.manifests import DEFAULT_NAMESPACE
from pai_operator.commands.output import Output, ProgressStep, add_output_argument
from pai_operator.errors import NotFoundError, RemoteError
from pai_operator.kube import get_json
from pai_operator.pai import adoption_manifests as pai_manifests
from pai_operator.pai.backend import PaiBackend
from pai_operator.pai.client import PaiClient
from pai_operator.pai.labels import owner_ref_label
from pai_operator.pai.model_spec import MODEL_RESOURCE
from pai_operator.pai.models import ListModelsRequest, ListModelVersionsRequest, Model, ModelVersion
from pai_operator.pai.spec import GROUP, OWNER_LABEL_KEY, OWNER_REF_LABEL_KEY, RESOURCE
from pai_operator.registry import OperatorSettings

MARK_KEY_PREFIX: Final = f"{GROUP}/owner-"
"""What both ownership label keys start with (`owner-uid`, `owner-ref`)."""


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


@dataclass(frozen=True)
class Orphan:
    kind: Literal["ModelVersion", "Model"]
    model_id: str
    version_name: str | None
    owner_uid: str | None
    owner_ref: str | None
    remote: ModelVersion | Model

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
    """Orphaned versions of every model (or of `model_ids`), then orphaned models."""
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
            labels = version.label_map()
            uid, ref = _marks(labels)
            if is_marked(labels) and not versions_owner.owns(uid, ref):
                orphans.append(
                    Orphan("ModelVersion", model.model_id, version.version_name, uid, ref, version)
                )
        if on_model_done:
            on_model_done()
    for model in models:
        labels = model.label_map()
        uid, ref = _marks(labels)
        if is_marked(labels) and not models_owner.owns(uid, ref):
            orphans.append(Orphan("Model", model.model_id, None, uid, ref, model))
    return orphans


@dataclass(frozen=True)
class Deletion:
    orphan: Orphan
    outcome: Literal["deleted", "gone", "kept"]
    reason: str = ""


async def delete_orphans(client: PaiClient, orphans: Sequence[Orphan]) -> list[Deletion]:
    """Delete `orphans`, versions first. Each is read again first: one whose mark changed (an
    object adopted it meanwhile) is kept. A model is deleted only once it has no version left,
    since PAI's DeleteModel takes every version with it."""
    done: list[Deletion] = []
    for orphan in sorted(orphans, key=lambda o: o.kind != "ModelVersion"):
        try:
            if orphan.version_name is not None:
                current_labels = (
                    await client.get_model_version(orphan.model_id, orphan.version_name)
                ).label_map()
            else:
                current_labels = (await client.get_model(orphan.model_id)).label_map()
        except NotFoundError:
            done.append(Deletion(orphan, "gone"))
            continue
        if _marks(current_labels) != (orphan.owner_uid, orphan.owner_ref):
            done.append(Deletion(orphan, "kept", "its ownership labels changed since it was listed"))
            continue
        try:
            if orphan.version_name is not None:
                await client.delete_model_version(orphan.model_id, orphan.version_name)
            else:
                left = await client.list_model_versions(
                    orphan.model_id, ListModelVersionsRequest(page_size=1)
                )
                if left.total_count:
                    reason = f"it still has {left.total_count} version(s); PAI would delete them with it"
                    done.append(Deletion(orphan, "kept", reason))
                    continue
                await client.delete_model(orphan.model_id)
        except NotFoundError:
            done.append(Deletion(orphan, "gone"))
            continue
        done.append(Deletion(orphan, "deleted"))
    return done


# --- the command --------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "orphans",
        help="list PAI versions and models marked by this operator whose object is gone",
        description=(
            "List the PAI versions and models that carry this operator's ownership labels while no "
            "object in the cluster owns them (a Retain deletion whose label removal failed, a lost "
            "cluster, a finalizer removed by hand). Reads only, unless --delete."
        ),
    )
    parser.add_argument(
        "--model",
        dest="model_ids",
        metavar="MODEL_ID",
        action="append",
        default=[],
        help="look in this PAI model only (repeatable; default: every model ListModels returns)",
    )
    parser.add_argument(
        "--delete",
        action="store_true",
        help="delete the orphans from PAI (versions first; a model only once it has no version left)",
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
    if args.delete and not args.yes and not sys.stdin.isatty():
        return failed("--delete asks before deleting; without a terminal, add --yes")
    settings = registry_settings(args)
    cluster = connect_cluster(args, required=True)
    assert cluster is not None  # required=True connects or raises
    # The report on stderr when stdout carries the manifests.
    output = Output.from_arguments(args, sys.stderr if args.adopt_manifests else None)
    try:
        return asyncio.run(_run(args, settings, cluster, output))
    except RemoteError as exc:
        return failed(str(exc))


async def _run(args: argparse.Namespace, settings: OperatorSettings, cluster: Cluster, output: Output) -> int:
    crd = await asyncio.to_thread(
        get_json,
        cluster.api_client,
        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{RESOURCE.crd_name}",
    )
    if crd is None:
        # Every marked version would look orphaned: refuse rather than report (or delete) them all.
        return failed(f"the cluster has no {RESOURCE.crd_name} CRD: is the operator installed there?")
    versions_owner = LiveObjects.of(_triples(await cluster.list(RESOURCE)))
    models_owner = LiveObjects.of(_triples(await cluster.list(MODEL_RESOURCE)))
    async with open_registries(settings, cluster.namespaces) as registries:
        backend = registries.backend(RESOURCE)
        if not isinstance(backend, PaiBackend):
            return failed(registries.why_off(RESOURCE))
        client = await backend.client(DEFAULT_NAMESPACE, settings.region)
        bar: ProgressStep | None = None
        with contextlib.ExitStack() as stack:

            def on_total(total: int) -> None:
                nonlocal bar
                bar = stack.enter_context(output.progress(total, "listing PAI models"))

            def on_model_done() -> None:
                if bar is not None:
                    bar.step()

            orphans = await find_orphans(
                client,
                versions_owner,
                models_owner,
                model_ids=args.model_ids,
                on_total=on_total,
                on_model_done=on_model_done,
            )
        report(output, orphans)
        if args.adopt_manifests:
            sys.stdout.write(render_documents(adoption_documents(orphans, settings.region)))
            return 0
        if not args.delete or not orphans:
            return 0
        if not args.yes and not _confirm(orphans):
            output.line("nothing deleted")
            return 1
        deletions = await delete_orphans(client, orphans)
    for deletion in deletions:
        why = f": {deletion.reason}" if deletion.reason else ""
        output.line(f"{deletion.outcome} {deletion.orphan.kind} {deletion.orphan.ident}{why}")
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
                    "kind": o.kind,
                    "modelId": o.model_id,
                    "versionName": o.version_name,
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
        [o.kind, o.model_id, o.version_name or "-", o.owner_ref or "-", o.owner_uid or "-"] for o in orphans
    ]
    output.table(["KIND", "MODEL", "VERSION", "OWNER (namespace/name)", "OWNER UID"], rows)


def _confirm(orphans: Sequence[Orphan]) -> bool:
    versions = sum(1 for o in orphans if o.kind == "ModelVersion")
    models = len(orphans) - versions
    sys.stderr.write(f"Delete {versions} version(s) and {models} model(s) from PAI? [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def adoption_documents(orphans: Sequence[Orphan], region: str) -> list[Outcome]:
    """Manifests that take each orphan back: under its old namespace and name when its mark
    says them (not a digest), so that the object it had comes back as it was."""
    names = Names()
    outcomes: list[Outcome] = []
    for orphan in orphans:
        namespace, name = _old_place(orphan.owner_ref)
        source = f"orphan {orphan.kind} {orphan.ident} (owner {orphan.owner_ref or orphan.owner_uid})"
        try:
            if isinstance(orphan.remote, ModelVersion):
                wanted = name or object_name(orphan.model_id, orphan.remote.version_name)
                rendered = pai_manifests.version_manifest(
                    orphan.model_id,
                    orphan.remote,
                    name=names.take(f"{namespace}/ModelVersion", wanted),
                    namespace=namespace,
                    region=region,
                )
            else:
                wanted = name or object_name(orphan.remote.model_name or orphan.model_id)
                rendered = pai_manifests.model_manifest(
                    orphan.remote,
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
