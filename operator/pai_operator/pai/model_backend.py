"""PAI models as a backend of the shared reconciler and engine (`pai_operator.backend.Backend`).

The key is the model's ID (server-assigned; spec.modelId only to adopt). A lost CreateModel
response is found by ListModels(Label=<uid>), then (Label=<namespace>/<name>), filtered to exact
label matches. Settled Models are observed in groups of (identity, region, workspace): one
ListModels walk per group and resync interval. Deleting a model with policy Delete waits while
it has versions (PAI's DeleteModel would take them along) unless the Model is annotated
`pai.mlops.dev/delete-versions: "true"`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from pai_operator import plans
from pai_operator.backend import GroupKey, Standalone
from pai_operator.observation import ObservationPacer
from pai_operator.pai import (
    ListModelsRequest,
    ListModelVersionsRequest,
    Model,
    ModelNotFoundError,
    NotFoundError,
    PaiClient,
)
from pai_operator.pai.backend import PaiClients
from pai_operator.pai.labels import label_problems, owner_ref_needles
from pai_operator.pai.model_planning import (
    MODEL_PLANNER,
    AddModelLabels,
    CreateModel,
    DeleteModel,
    DeleteModelLabels,
    ModelCall,
    ModelPlanner,
    UpdateModel,
    at_provider,
)
from pai_operator.pai.model_refs import ModelDirectory
from pai_operator.pai.model_spec import (
    DELETE_VERSIONS_ANNOTATION,
    MODEL_RESOURCE,
    MODEL_STATUS_KEYS,
    ModelAtProvider,
    ModelSpec,
    ModelStatus,
)
from pai_operator.pai.observation import observation_pacer
from pai_operator.pai.spec import GROUP, MAX_REMOTE_LABELS, RESERVED_LABEL_KEYS
from pai_operator.plans import Owner, Policies
from pai_operator.vocabulary import Condition, DeletionPolicy, last_observation

LIST_PAGE_SIZE: Final = 100
"""ListModels' largest page (the emulator's and ListModelVersions' documented maximum)."""
BLOCKING_VERSIONS_SHOWN: Final = 5


class ModelBackend(Standalone):
    names: Final = MODEL_RESOURCE
    list_page_size: Final = LIST_PAGE_SIZE
    planner: Final[ModelPlanner] = MODEL_PLANNER
    status_keys: Final[Sequence[str]] = MODEL_STATUS_KEYS

    def __init__(
        self,
        clients: PaiClients,
        default_region: str,
        directory: ModelDirectory,
        pacer: ObservationPacer | None = None,
    ) -> None:
        self.clients = clients
        self.observation_pacer = pacer or observation_pacer()
        self.default_region = default_region
        self.directory = directory

    # --- a pass's inputs --------------------------------------------------------------------

    def parse(self, raw: Mapping[str, Any]) -> ModelSpec | list[str]:
        return plans.parse_model(ModelSpec, raw)

    def policies(
        self,
        spec: ModelSpec,
        *,
        annotations: Mapping[str, str],
        namespace_annotations: Mapping[str, str] | None,
        default_deletion: DeletionPolicy,
    ) -> Policies:
        return plans.resolve_policies(
            spec,
            group=GROUP,
            annotations=annotations,
            namespace_annotations=namespace_annotations,
            default_deletion=default_deletion,
        )

    def recorded_key(self, status: Mapping[str, Any]) -> str | None:
        model_id = status.get("modelId")
        return model_id if isinstance(model_id, str) and model_id else None

    def validate(
        self, spec: ModelSpec, policies: Policies, status: Mapping[str, Any], recorded_key: str | None
    ) -> list[str]:
        problems = plans.needs_key_to_observe(policies.management, spec.model_id, "modelId")
        if spec.model_id and recorded_key and spec.model_id != recorded_key:
            problems.append(
                f"spec.modelId {spec.model_id} differs from the model this object already manages "
                f"({recorded_key}); set it to {recorded_key} or remove it"
            )
        region = status.get("regionId")
        if spec.region_id and isinstance(region, str) and region and spec.region_id != region:
            problems.append(
                f"spec.regionId {spec.region_id} differs from the region the model lives in ({region}); "
                f"set it to {region} or remove it"
            )
        if spec.labels is not None:
            for key in RESERVED_LABEL_KEYS:
                if key in spec.labels:
                    problems.append(f"spec.labels must not contain {key}: the operator reserves it")
            problems += label_problems(spec.labels)
            if len(spec.labels) + len(RESERVED_LABEL_KEYS) > MAX_REMOTE_LABELS:
                problems.append(
                    f"spec.labels has {len(spec.labels)} labels; with the ownership labels PAI's "
                    f"limit of {MAX_REMOTE_LABELS} is exceeded"
                )
        return problems

    def location(self, spec: ModelSpec, status: Mapping[str, Any]) -> str:
        region = status.get("regionId")
        recorded = region if isinstance(region, str) and region else None
        return spec.region_id or recorded or self.default_region

    # --- references -------------------------------------------------------------------------

    def watched(self, namespace: str, name: str, body: Mapping[str, Any] | None) -> None:
        self.directory.record(namespace, name, body)

    # --- remote I/O -------------------------------------------------------------------------

    async def client(self, namespace: str, location: str) -> PaiClient:
        return await self.clients.for_object(namespace, location)

    async def read(
        self,
        client: PaiClient,
        spec: ModelSpec,
        recorded_key: str | None,
        status: Mapping[str, Any],
        owner: Owner,
        *,
        generation: int | None,
    ) -> tuple[Model | None, list[Model] | None]:
        model_id = spec.model_id or recorded_key
        observed = await _get_or_none(client, model_id) if model_id else None
        owned = None
        if plans.needs_owner_search(spec.model_id, recorded_key, observed, generation=generation):
            owned = await search_owned(client, spec, owner)
        return observed, owned

    async def run(self, client: PaiClient, spec: ModelSpec, call: ModelCall) -> str | None:
        if isinstance(call, CreateModel):
            return (await client.create_model(call.request)).model_id
        if isinstance(call, UpdateModel):
            await client.update_model(call.model_id, call.request)
        elif isinstance(call, AddModelLabels):
            await client.create_model_labels(call.model_id, list(call.labels))
        elif isinstance(call, DeleteModelLabels):
            await client.delete_model_labels(call.model_id, list(call.keys))
        elif isinstance(call, DeleteModel):
            # Gone already (201900002, a NotFoundError) is what deleting wanted: skipped.
            await client.delete_model(call.model_id)
        return None

    async def reread(self, client: PaiClient, spec: ModelSpec, key: str) -> Model:
        return await client.get_model(key)

    async def deletion_blockers(
        self, client: PaiClient, spec: ModelSpec, calls: Sequence[Any], annotations: Mapping[str, str]
    ) -> str | None:
        """PAI's DeleteModel deletes every version with it: refuse while any exists, unless the
        Model says so explicitly. One ListModelVersions page per model answers it."""
        if annotations.get(DELETE_VERSIONS_ANNOTATION, "").strip().lower() == "true":
            return None
        for call in calls:
            if not isinstance(call, DeleteModel):
                continue
            try:
                page = await client.list_model_versions(
                    call.model_id, ListModelVersionsRequest(page_size=BLOCKING_VERSIONS_SHOWN)
                )
            except ModelNotFoundError:
                continue
            if page.total_count:
                names = ", ".join(v.version_name for v in page.versions)
                more = (
                    f" and {page.total_count - len(page.versions)} more"
                    if page.total_count > len(page.versions)
                    else ""
                )
                return (
                    f"PAI model {call.model_id} still has {page.total_count} version(s) ({names}{more}); "
                    "deleting it would delete them too. Delete those versions (their ModelVersion "
                    f'objects) first, or annotate this Model {DELETE_VERSIONS_ANNOTATION}="true" to '
                    "delete the model with its versions"
                )
        return None

    # --- status -----------------------------------------------------------------------------

    def status(
        self,
        *,
        raw_spec: Mapping[str, Any],
        previous: Mapping[str, Any],
        generation: int | None,
        key: str | None,
        location: str | None,
        observed: Model | None,
        keep_at_provider: bool,
        drift: Sequence[str],
        conditions: list[Condition],
    ) -> dict[str, Any]:
        status = ModelStatus(
            observed_generation=generation,
            model_id=key or self.recorded_key(previous),
            region_id=location or previous.get("regionId"),
            at_provider=at_provider(observed)
            if observed is not None
            else last_observation(ModelAtProvider, previous, keep=keep_at_provider),
            drift=list(drift) or None,
            conditions=conditions or None,
        )
        return status.to_k8s()

    # --- batched observation ----------------------------------------------------------------

    def group_of(self, spec: Mapping[str, Any], status: Mapping[str, Any], identity: str) -> GroupKey | None:
        """Models of one workspace (as spec or the last observation names it) in one region."""
        region = spec.get("regionId") or status.get("regionId") or self.default_region
        at = status.get("atProvider")
        workspace = spec.get("workspaceId") or (at.get("workspaceId") if isinstance(at, Mapping) else None)
        return (identity, str(region), str(workspace or ""))

    def key_of(self, spec: Mapping[str, Any], status: Mapping[str, Any]) -> str | None:
        model_id = status.get("modelId") or spec.get("modelId")
        return model_id if isinstance(model_id, str) and model_id else None

    def identity_key(self, namespace: str) -> str:
        return self.clients.identity_key(namespace)

    async def resolve_identity(self, namespace: str) -> str:
        return await self.clients.resolve(namespace)

    async def list_group(self, group: GroupKey) -> list[Model]:
        identity, region, workspace = group
        client = self.clients.for_identity(identity, region)
        request = ListModelsRequest(page_size=LIST_PAGE_SIZE, workspace_id=workspace or None)
        return [model async for model in client.iter_models(request)]

    def complete_listed(
        self, listed: Model, spec: ModelSpec, owner: Owner, status: Mapping[str, Any]
    ) -> Model:
        """ListModels returns whole models (the SDK's `Model`: the same fields as GetModel)."""
        return listed


async def _get_or_none(client: PaiClient, model_id: str) -> Model | None:
    try:
        return await client.get_model(model_id)
    except NotFoundError:  # ModelNotFoundError included: for a Model that is "gone"
        return None


async def search_owned(client: PaiClient, spec: ModelSpec, owner: Owner) -> list[Model]:
    """Models carrying this UID or this namespace/name in their ownership labels. ListModels'
    Label filter matches substrings of keys and values, so exact labels are checked after."""
    found: dict[str, Model] = {}
    for needle in (owner.uid, *(owner_ref_needles(owner.ref) if owner.ref is not None else ())):
        request = ListModelsRequest(label=needle, workspace_id=spec.workspace_id, page_size=LIST_PAGE_SIZE)
        async for model in client.iter_models(request):
            found.setdefault(model.model_id, model)
    return plans.marked_by(MODEL_PLANNER, found.values(), owner)
