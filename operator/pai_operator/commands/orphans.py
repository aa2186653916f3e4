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

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from pai_operator.errors import NotFoundError
from pai_operator.pai.client import PaiClient
from pai_operator.pai.labels import owner_ref_label
from pai_operator.pai.models import ListModelsRequest, ListModelVersionsRequest, Model, ModelVersion
from pai_operator.pai.spec import GROUP, OWNER_LABEL_KEY, OWNER_REF_LABEL_KEY

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
        return cls(
            uids=frozenset(uid for _, _, uid in listed),
            # Marks carry the label spelling of a reference (its digest when long).
            refs=frozenset(owner_ref_label(f"{ns}/{name}") for ns, name, _ in listed),
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
