"""TrueFoundry as a backend of the shared reconciler and engine (`pai_operator.backend.Backend`).

One client per configured host, with the operator's API key (TrueFoundry tokens are per tenant,
not per namespace: every namespace acts as the operator's identity). Reads find a version by the
ID status recorded (one GET), else by (ML repo, model, number) through the list's filters; the
ownership search lists the model's versions and keeps those whose metadata carries this object's
mark. A group is one model (`<mlRepo>/<name>`), observed with one list of all its versions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from pai_operator.backend import GroupKey, Standalone
from pai_operator.core_settings import CoreSettings
from pai_operator.errors import NotFoundError
from pai_operator.observation import ObservationPacer
from pai_operator.plans import (
    Owner,
    Policies,
    marked_by,
    needs_key_to_observe,
    needs_owner_search,
    parse_model,
    resolve_policies,
)
from pai_operator.truefoundry.client import DEFAULT_PAGE_SIZE, TrueFoundryClient, TrueFoundryClientConfig
from pai_operator.truefoundry.models import ModelVersion
from pai_operator.truefoundry.planning import (
    PLANNER,
    Apply,
    TrueFoundryCall,
    TrueFoundryPlanner,
)
from pai_operator.truefoundry.spec import (
    OWNER_METADATA_KEY,
    RESOURCE,
    STATUS_KEYS,
    TrueFoundryAtProvider,
    TrueFoundryModelVersionSpec,
    TrueFoundryModelVersionStatus,
    is_reserved_metadata_key,
)
from pai_operator.vocabulary import Condition, DeletionPolicy, last_observation


def _recorded_version(status: Mapping[str, Any]) -> str | None:
    version = status.get("version")
    return str(version) if isinstance(version, int) and not isinstance(version, bool) else None


def at_provider(remote: ModelVersion) -> TrueFoundryAtProvider:
    subject = remote.created_by_subject
    return TrueFoundryAtProvider(
        created_at=remote.created_at.isoformat().replace("+00:00", "Z") if remote.created_at else None,
        updated_at=remote.updated_at.isoformat().replace("+00:00", "Z") if remote.updated_at else None,
        created_by=subject.subject_slug or subject.subject_id,
        model_id=remote.model_id,
        ml_repo_id=remote.ml_repo_id,
        version_alias=remote.manifest.version_alias,
        tags=list(remote.tags) or None,
        metrics=[m.to_wire() for m in remote.metrics] or None,
        deployable=remote.deployable,
    )


class TrueFoundryBackend(Standalone):
    names: Final = RESOURCE
    list_page_size: Final = DEFAULT_PAGE_SIZE
    planner: Final[TrueFoundryPlanner] = PLANNER
    status_keys: Final[Sequence[str]] = STATUS_KEYS

    def __init__(self, client: TrueFoundryClient, observation_budget: float | None = None) -> None:
        self._client = client
        # TrueFoundry's one identity per host: the client's read rate is the whole quota.
        budget = (
            observation_budget
            if observation_budget is not None
            else float(CoreSettings.model_fields["observation_budget"].default)
        )
        # TrueFoundry publishes no quota; an unlimited client still observes at the declared rate's share.
        read_rate = client.config.read_rate or float(
            TrueFoundryClientConfig.model_fields["read_rate"].default
        )
        self.observation_pacer = ObservationPacer(budget * read_rate)
        # ML repo name -> id. An ML repo's id never changes while it exists; a repo deleted and
        # made again under the same name is looked up afresh when a lookup by id finds nothing.
        self._repo_ids: dict[str, str] = {}

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- a pass's inputs --------------------------------------------------------------------

    def parse(self, raw: Mapping[str, Any]) -> TrueFoundryModelVersionSpec | list[str]:
        return parse_model(TrueFoundryModelVersionSpec, raw)

    def policies(
        self,
        spec: TrueFoundryModelVersionSpec,
        *,
        annotations: Mapping[str, str],
        namespace_annotations: Mapping[str, str] | None,
        default_deletion: DeletionPolicy,
    ) -> Policies:
        return resolve_policies(
            spec,
            group=RESOURCE.group,
            annotations=annotations,
            namespace_annotations=namespace_annotations,
            default_deletion=default_deletion,
        )

    def recorded_key(self, status: Mapping[str, Any]) -> str | None:
        return _recorded_version(status)

    def validate(
        self,
        spec: TrueFoundryModelVersionSpec,
        policies: Policies,
        status: Mapping[str, Any],
        recorded_key: str | None,
    ) -> list[str]:
        problems: list[str] = []
        if spec.metadata is not None and OWNER_METADATA_KEY in spec.metadata:
            problems.append(f"spec.metadata must not contain {OWNER_METADATA_KEY}: the operator reserves it")
        reserved = sorted(k for k in spec.metadata or {} if is_reserved_metadata_key(k))
        if reserved:
            problems.append(
                f"spec.metadata must not contain {', '.join(reserved)}: keys starting with '.' are "
                "TrueFoundry's own (its client writes .truefoundry); the operator keeps them as they are"
            )
        problems += needs_key_to_observe(policies.management, self.planner.spec_key(spec), "version")
        if spec.version is not None and recorded_key and str(spec.version) != recorded_key:
            problems.append(
                f"spec.version {spec.version} differs from the version this object already manages "
                f"({recorded_key}); set it to {recorded_key} or remove it"
            )
        return problems

    def location(self, spec: TrueFoundryModelVersionSpec, status: Mapping[str, Any]) -> str:
        return ""  # the configured host

    # --- remote I/O -------------------------------------------------------------------------

    async def _repo_id(self, name: str) -> str:
        repo_id = self._repo_ids.get(name)
        if repo_id is None:
            repo_id = self._repo_ids[name] = (await self._client.find_ml_repo(name)).id
        return repo_id

    async def _by_number(self, spec: TrueFoundryModelVersionSpec, key: str) -> ModelVersion | None:
        repo_id = await self._repo_id(spec.ml_repo)
        page = await self._client.list_versions(ml_repo_id=repo_id, name=spec.name, version=int(key), limit=1)
        return page.data[0] if page.data else None

    async def client(self, namespace: str, location: str) -> TrueFoundryClient:
        return self._client  # one host, one key: every namespace acts as the operator

    async def read(
        self,
        client: TrueFoundryClient,
        spec: TrueFoundryModelVersionSpec,
        recorded_key: str | None,
        status: Mapping[str, Any],
        owner: Owner,
        *,
        generation: int | None,
    ) -> tuple[ModelVersion | None, list[ModelVersion] | None]:
        key = self.planner.spec_key(spec) or recorded_key
        observed: ModelVersion | None = None
        recorded_id = status.get("id")
        if key and isinstance(recorded_id, str) and _recorded_version(status) == key:
            try:
                found = await client.get(recorded_id)
                observed = found if str(found.version) == key else None
            except NotFoundError:
                observed = None
        elif key:
            observed = await self._by_number(spec, key)
        owned = None
        if needs_owner_search(self.planner.spec_key(spec), recorded_key, observed, generation=generation):
            owned = await self._search_owned(spec, owner)
        return observed, owned

    async def _search_owned(self, spec: TrueFoundryModelVersionSpec, owner: Owner) -> list[ModelVersion]:
        """The model's versions whose metadata mark names this UID or this namespace/name. There is
        no metadata filter: the model's versions are listed (page size 100)."""
        repo_id = await self._repo_id(spec.ml_repo)
        versions = [v async for v in self._client.iter_versions(ml_repo_id=repo_id, name=spec.name)]
        return marked_by(self.planner, versions, owner)

    async def run(
        self, client: TrueFoundryClient, spec: TrueFoundryModelVersionSpec, call: TrueFoundryCall
    ) -> str | None:
        if isinstance(call, Apply):
            applied = await client.apply(call.manifest)
            return str(applied.version) if call.creates else None
        await client.delete(call.version_id)
        return None

    async def reread(
        self, client: TrueFoundryClient, spec: TrueFoundryModelVersionSpec, key: str
    ) -> ModelVersion:
        found = await self._by_number(spec, key)
        if found is None:
            raise NotFoundError(f"version {key} of model {spec.ml_repo}/{spec.name} not found after a write")
        return found

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
        version = key or _recorded_version(previous)
        remote_id = observed.id if observed is not None else previous.get("id")
        fqn = observed.fqn if observed is not None else previous.get("fqn")
        same_version = version is not None and _recorded_version(previous) == version
        status = TrueFoundryModelVersionStatus(
            observed_generation=generation,
            id=remote_id if (observed is not None or same_version) else None,
            fqn=fqn if (observed is not None or same_version) else None,
            version=int(version) if version else None,
            at_provider=at_provider(observed)
            if observed is not None
            else last_observation(TrueFoundryAtProvider, previous, keep=keep_at_provider),
            drift=list(drift) or None,
            conditions=conditions or None,
        )
        return status.to_k8s()

    # --- batched observation ----------------------------------------------------------------

    def group_of(self, spec: Mapping[str, Any], status: Mapping[str, Any], identity: str) -> GroupKey | None:
        repo, name = spec.get("mlRepo"), spec.get("name")
        if isinstance(repo, str) and repo and isinstance(name, str) and name:
            return (identity, "", f"{repo}/{name}")
        return None

    def key_of(self, spec: Mapping[str, Any], status: Mapping[str, Any]) -> str | None:
        version = spec.get("version")
        if isinstance(version, int) and not isinstance(version, bool):
            return str(version)
        return _recorded_version(status)

    def identity_key(self, namespace: str) -> str:
        return ""

    async def resolve_identity(self, namespace: str) -> str:
        return ""

    async def list_group(self, group: GroupKey) -> list[ModelVersion]:
        repo, _, name = group[2].partition("/")
        repo_id = await self._repo_id(repo)
        return [v async for v in self._client.iter_versions(ml_repo_id=repo_id, name=name)]

    def complete_listed(
        self,
        listed: ModelVersion,
        spec: TrueFoundryModelVersionSpec,
        owner: Owner,
        status: Mapping[str, Any],
    ) -> ModelVersion:
        # A list item is the whole version (the SDK parses list and get answers as the same
        # ModelVersion type, every field included): nothing to fill in.
        return listed
