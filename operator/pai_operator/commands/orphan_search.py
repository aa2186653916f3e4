"""The search behind `pai-operator orphans`: versions (and PAI models) whose ownership mark no
live object holds, in PAI and in TrueFoundry, and their careful deletion.

The marks: PAI's labels `pai.mlops.dev/owner-uid` and `owner-ref`; TrueFoundry's metadata key
`truefoundry.mlops.dev/owner` holding `{uid, ref}` (`truefoundry.planning.owner_mark`). A mark is
live when its UID is the UID of an object of that kind in the cluster, or when its
`<namespace>/<name>` names one: that object takes the version over by succession (a restore:
same name, new UID; `plans.claim_of`), so it is not an orphan.

Reads only, but for `delete_orphans`. PAI: ListModels, then ListModelVersions(Label=owner- key
prefix) per model. TrueFoundry: ListMlRepos (or the repos named), then ListModelVersions per repo
(or per model named): it has no metadata filter. Before each deletion the version (or model) is
read again and deleted only if it still carries the same mark, so an object adopting it
meanwhile keeps it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from pai_operator.errors import NotFoundError
from pai_operator.pai.client import PaiClient
from pai_operator.pai.labels import owner_ref_label
from pai_operator.pai.models import ListModelsRequest, ListModelVersionsRequest, Model, ModelVersion
from pai_operator.pai.spec import GROUP, OWNER_LABEL_KEY, OWNER_REF_LABEL_KEY
from pai_operator.truefoundry.client import TrueFoundryClient
from pai_operator.truefoundry.models import ModelVersion as TfyModelVersion
from pai_operator.truefoundry.planning import PLANNER as TFY_PLANNER

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
