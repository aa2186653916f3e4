"""PAI as a backend of the shared reconciler and engine (`pai_operator.backend.Backend`).

Reads, writes and lists go through the namespace's client (`identities`: the identity is the
Namespace's RAM role, never chosen by the object); planning is `planning.PaiPlanner`; the spec,
its validation and the status shape are PAI's (`spec`, `validation`, `comparison`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

from pai_operator.backend import GroupKey, Requeue, Standalone, Waiting
from pai_operator.observation import ObservationPacer
from pai_operator.pai import (
    ListModelVersionsRequest,
    ModelNotFoundError,
    ModelVersion,
    NotFoundError,
    PaiClient,
)
from pai_operator.pai.comparison import at_provider
from pai_operator.pai.labels import owner_ref_needles
from pai_operator.pai.model_refs import ModelDirectory
from pai_operator.pai.observation import LIST_PAGE_SIZE, complete_listed, observation_pacer
from pai_operator.pai.planning import (
    PLANNER,
    AddLabels,
    CreateVersion,
    DeleteLabels,
    DeleteVersion,
    PaiPlanner,
    RemoteCall,
    UpdateVersion,
    filter_owned,
    lookup_name,
    needs_owner_search,
    resource_id,
)
from pai_operator.pai.spec import RESOURCE, STATUS_KEYS, AtProvider, ModelVersionSpec, ModelVersionStatus
from pai_operator.pai.validation import (
    Recorded,
    effective_region,
    parse_spec,
    resolve_policies,
    validate_spec,
)
from pai_operator.plans import Owner, Policies
from pai_operator.vocabulary import Condition, DeletionPolicy, last_observation


class PaiClients(Protocol):
    """`pai_operator.pai.identities.ClientPool`."""

    async def for_object(self, namespace: str, region_id: str) -> PaiClient:
        """The client of the object's namespace identity (never chosen by the object itself)."""
        ...

    def identity_key(self, namespace: str) -> str: ...

    async def resolve(self, namespace: str) -> str: ...

    def for_identity(self, identity: str, region_id: str) -> PaiClient: ...


class PaiBackend(Standalone):
    names: Final = RESOURCE
    list_page_size: Final = LIST_PAGE_SIZE
    planner: Final[PaiPlanner] = PLANNER
    status_keys: Final[Sequence[str]] = STATUS_KEYS

    def __init__(
        self,
        clients: PaiClients,
        default_region: str,
        models: ModelDirectory | None = None,
        pacer: ObservationPacer | None = None,
    ) -> None:
        self.clients = clients
        self.observation_pacer = pacer or observation_pacer()
        self.default_region = default_region
        # The Model controller's view of Models, for spec.modelRef (a fresh, empty one when the
        # operator runs versions alone: a reference then waits).
        self.models = models or ModelDirectory()
        # One key per group, shared by every record in it: each record would otherwise hold a
        # tuple and strings of its own, decoded from its spec (~180 bytes per object; 20,000
        # objects in 200 groups need 200 of them).
        self._groups: dict[GroupKey, GroupKey] = {}

    # --- references (spec.modelRef) ---------------------------------------------------------

    def resolve(
        self, namespace: str, spec: Mapping[str, Any], status: Mapping[str, Any], *, deleting: bool
    ) -> Mapping[str, Any] | Waiting:
        return self.models.resolve(namespace, spec, status, deleting=deleting)

    def bind(self, requeue: Requeue) -> None:
        self.models.bind_dependents(requeue)

    # --- a pass's inputs --------------------------------------------------------------------

    def parse(self, raw: Mapping[str, Any]) -> ModelVersionSpec | list[str]:
        return parse_spec(raw)

    def policies(
        self,
        spec: ModelVersionSpec,
        *,
        annotations: Mapping[str, str],
        namespace_annotations: Mapping[str, str] | None,
        default_deletion: DeletionPolicy,
    ) -> Policies:
        return resolve_policies(
            spec,
            annotations=annotations,
            namespace_annotations=namespace_annotations,
            default_deletion=default_deletion,
        )

    def recorded_key(self, status: Mapping[str, Any]) -> str | None:
        return Recorded.from_status(status).version_name

    def validate(
        self, spec: ModelVersionSpec, policies: Policies, status: Mapping[str, Any], recorded_key: str | None
    ) -> list[str]:
        return validate_spec(spec, policies, _recorded(status, recorded_key))

    def location(self, spec: ModelVersionSpec, status: Mapping[str, Any]) -> str:
        return effective_region(spec, Recorded.from_status(status), self.default_region)

    # --- remote I/O -------------------------------------------------------------------------

    async def client(self, namespace: str, location: str) -> PaiClient:
        return await self.clients.for_object(namespace, location)

    async def read(
        self,
        client: PaiClient,
        spec: ModelVersionSpec,
        recorded_key: str | None,
        status: Mapping[str, Any],
        owner: Owner,
        *,
        generation: int | None,
    ) -> tuple[ModelVersion | None, list[ModelVersion] | None]:
        recorded = _recorded(status, recorded_key)
        name = lookup_name(spec, recorded)
        observed = await _get_or_none(client, spec.model_id, name) if name else None
        owned = None
        if needs_owner_search(spec, recorded, observed, generation=generation):
            owned = await search_owned(client, spec.model_id, owner)
        return observed, owned

    async def run(self, client: PaiClient, spec: ModelVersionSpec, call: RemoteCall) -> str | None:
        if isinstance(call, CreateVersion):
            response = await client.create_model_version(call.model_id, call.request)
            return response.version_name
        if isinstance(call, UpdateVersion):
            await client.update_model_version(call.model_id, call.version_name, call.request)
        elif isinstance(call, AddLabels):
            await client.create_model_version_labels(call.model_id, call.version_name, list(call.labels))
        elif isinstance(call, DeleteLabels):
            await client.delete_model_version_labels(call.model_id, call.version_name, list(call.keys))
        elif isinstance(call, DeleteVersion):
            await client.delete_model_version(call.model_id, call.version_name)
        return None

    async def reread(self, client: PaiClient, spec: ModelVersionSpec, key: str) -> ModelVersion:
        return await client.get_model_version(spec.model_id, key)

    # --- status -----------------------------------------------------------------------------

    def status(
        self,
        *,
        raw_spec: Mapping[str, Any],
        previous: Mapping[str, Any],
        generation: int | None,
        key: str | None,
        location: str | None,
        observed: ModelVersion | None,
        keep_at_provider: bool,
        drift: Sequence[str],
        conditions: list[Condition],
    ) -> dict[str, Any]:
        recorded = Recorded.from_status(previous)
        name = key or recorded.version_name
        # What spec.modelRef resolved to (`raw_spec` carries it resolved; a pass that waits for
        # the Model keeps what status recorded). spec.modelId users have it in spec already.
        model_id = str(raw_spec.get("modelId") or previous.get("modelId") or "")
        status = ModelVersionStatus(
            observed_generation=generation,
            model_id=(model_id or None) if "modelRef" in raw_spec else None,
            id=resource_id(model_id, name) if model_id else None,
            version_name=name,
            region_id=location or recorded.region_id,
            at_provider=at_provider(observed)
            if observed is not None
            else last_observation(AtProvider, previous, keep=keep_at_provider),
            drift=list(drift) or None,
            conditions=conditions or None,
        )
        return status.to_k8s()

    # --- batched observation ----------------------------------------------------------------

    def group_of(self, spec: Mapping[str, Any], status: Mapping[str, Any], identity: str) -> GroupKey | None:
        model = spec.get("modelId") or status.get("modelId")
        region = spec.get("regionId") or status.get("regionId") or self.default_region
        if not isinstance(model, str) or not model:
            return None
        group = (identity, str(region), model)
        return self._groups.setdefault(group, group)

    def key_of(self, spec: Mapping[str, Any], status: Mapping[str, Any]) -> str | None:
        name = status.get("versionName") or spec.get("versionName")
        return name if isinstance(name, str) and name else None

    def identity_key(self, namespace: str) -> str:
        return self.clients.identity_key(namespace)

    async def resolve_identity(self, namespace: str) -> str:
        return await self.clients.resolve(namespace)

    async def list_group(self, group: GroupKey) -> list[ModelVersion]:
        identity, region, model_id = group
        client = self.clients.for_identity(identity, region)
        request = ListModelVersionsRequest(page_size=LIST_PAGE_SIZE)
        return [v async for v in client.iter_model_versions(model_id, request)]

    def complete_listed(
        self, listed: ModelVersion, spec: ModelVersionSpec, owner: Owner, status: Mapping[str, Any]
    ) -> ModelVersion:
        last_seen = status.get("atProvider")
        return complete_listed(
            listed,
            spec,
            uid=owner.uid,
            ref=owner.ref,
            last_seen=AtProvider.model_validate(last_seen) if isinstance(last_seen, Mapping) else None,
        )


def _recorded(status: Mapping[str, Any], key: str | None) -> Recorded:
    return Recorded(version_name=key, region_id=Recorded.from_status(status).region_id)


async def _get_or_none(client: PaiClient, model_id: str, name: str) -> ModelVersion | None:
    try:
        return await client.get_model_version(model_id, name)
    except ModelNotFoundError:
        raise
    except NotFoundError:
        return None


async def search_owned(client: PaiClient, model_id: str, owner: Owner | str) -> list[ModelVersion]:
    """Versions of the model whose ownership labels name this UID or this namespace/name (the
    latter finds a version of a restored object's predecessor; the former, versions created
    before the namespace/name label existed). PAI's Label filter is a substring match on key or
    value, so the exact labels are checked by `filter_owned`."""
    who = owner if isinstance(owner, Owner) else Owner(owner)
    found: dict[str, ModelVersion] = {}
    needles = (who.uid, *(owner_ref_needles(who.ref) if who.ref is not None else ()))
    for needle in needles:
        request = ListModelVersionsRequest(label=needle)
        async for version in client.iter_model_versions(model_id, request):
            found.setdefault(version.version_name, version)
    return filter_owned(list(found.values()), who)
