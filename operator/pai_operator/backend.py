"""What a registry (PAI, TrueFoundry) contributes to the shared reconciler and engine.

The reconciler (`pai_operator.reconciler`) and the engine (`pai_operator.engine`) own everything
registries have in common: when passes run, policies (pause, Observe, Retain, adoption),
conditions and their reasons, failure classification and backoff, deletion, events, batched
observation. A backend supplies the rest, behind `Backend`: its resource's names, its spec model
and validation, its reads and writes (through its own client), its planner (`plans.Planner`,
pure), its status fields, and how its versions are grouped and listed for observation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from pai_operator.observation import ObservationPacer
from pai_operator.plans import Owner, Planner, Policies
from pai_operator.vocabulary import Condition, DeletionPolicy

S = TypeVar("S")
R = TypeVar("R")
C = TypeVar("C")
K = TypeVar("K")

GroupKey = tuple[str, str, str]
"""(identity, location, parent): one list serves every settled object of a group. The identity
(PAI: the namespace's RAM role, "" for the operator's own) keeps lists from mixing accounts; the
location is PAI's region or TrueFoundry's host; the parent is what one list call enumerates
(PAI: a model id; TrueFoundry: `<ml repo>/<model name>`)."""


@dataclass(frozen=True)
class Waiting:
    """A pass cannot start yet: an object this one refers to is not ready. `message` names it;
    the object waits (no remote call, no error streak) until the referent changes."""

    message: str


Requeue = Callable[[str, Callable[[Mapping[str, Any]], bool]], int]
"""The engine's `requeue(namespace, matches)`: pass now every object of the namespace whose raw
spec `matches`; returns how many. A backend that depends on another kind keeps it (`bind`)."""


def column(name: str, json_path: str, description: str, type_: str = "string") -> dict[str, Any]:
    """A printer column of a kind's CRD (`kubectl get` shows Ready, Synced and Age after these)."""
    return {"name": name, "type": type_, "jsonPath": json_path, "description": description}


@dataclass(frozen=True)
class Resource:
    """One kind a registry manages: its fixed public names (a public contract: never renamed),
    its spec and status models and the prose of its generated CRD (`pai_operator.crd`). The one
    place a kind's names are written down; the engine, the kopf adapter, the CRD generator and
    the metrics read them from here."""

    registry: str  # "PAI", "TrueFoundry": logs, events, the metrics' `registry` label
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    categories: tuple[str, ...]
    spec_model: type[BaseModel]
    status_model: type[BaseModel]
    description: str
    spec_description: str
    status_description: str
    columns: tuple[dict[str, Any], ...]  # registry-specific printer columns (see `column`)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def finalizer(self) -> str:
        return f"{self.group}/finalizer"

    @property
    def annotation_prefix(self) -> str:
        return f"{self.group}/"

    @property
    def paused_annotation(self) -> str:
        return f"{self.group}/paused"

    @property
    def reconcile_request_annotation(self) -> str:
        """Any new value makes the engine pass the object at once (Flux's requestedAt convention);
        status.lastHandledReconcileAt records the value handled."""
        return f"{self.group}/reconcile-requested-at"

    @property
    def deletion_policy_annotation(self) -> str:
        """On a Namespace: the deletionPolicy for objects that leave spec.deletionPolicy unset."""
        return f"{self.group}/deletion-policy"

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"

    @property
    def crd_filename(self) -> str:
        """The generated CRD's file in crds/ and the chart."""
        return f"{self.group}_{self.plural}.yaml"


class Backend(Protocol[S, R, C, K]):
    """One registry. S: its parsed spec; R: a remote version as its client returns it; C: one
    planned remote call; K: its client. Methods without `async` do no I/O."""

    @property
    def names(self) -> Resource: ...

    @property
    def planner(self) -> Planner[S, R, C]: ...

    @property
    def list_page_size(self) -> int:
        """Versions per page of `list_group`'s walk (observation weighs a list against GETs)."""
        ...

    @property
    def observation_pacer(self) -> ObservationPacer:
        """The read budget drift observation spends (`--observation-budget` of the registry's read
        rate, per identity); shared by the backends whose clients share a quota."""
        ...

    # --- a pass's inputs (pure) -------------------------------------------------------------

    def parse(self, raw: Mapping[str, Any]) -> S | list[str]:
        """The spec, or InvalidSpec messages when it does not match the schema."""
        ...

    def policies(
        self,
        spec: S,
        *,
        annotations: Mapping[str, str],
        namespace_annotations: Mapping[str, str] | None,
        default_deletion: DeletionPolicy,
    ) -> Policies: ...

    def recorded_key(self, status: Mapping[str, Any]) -> str | None:
        """The version name status recorded (None: not yet)."""
        ...

    def validate(
        self, spec: S, policies: Policies, status: Mapping[str, Any], recorded_key: str | None
    ) -> list[str]:
        """Problems the schema cannot catch: any means InvalidSpec and no remote call."""
        ...

    def location(self, spec: S, status: Mapping[str, Any]) -> str:
        """Where the version lives (PAI: its region; TrueFoundry: "", the configured host)."""
        ...

    def resolve(
        self, namespace: str, spec: Mapping[str, Any], status: Mapping[str, Any], *, deleting: bool
    ) -> Mapping[str, Any] | Waiting:
        """The raw spec with its references to other objects resolved (in memory only: never
        written to spec), or Waiting while a referent is not ready. `deleting`: a deletion
        pass, which uses what status recorded instead of waiting."""
        ...

    def watched(self, namespace: str, name: str, body: Mapping[str, Any] | None) -> None:
        """A watch event of this backend's kind (None: deleted), for backends that other kinds
        refer to: no I/O, called for every event."""
        ...

    def bind(self, requeue: Requeue) -> None:
        """The engine's requeue, for a backend whose objects wait for another kind's objects."""
        ...

    # --- remote I/O ---------------------------------------------------------------------------

    async def client(self, namespace: str, location: str) -> K:
        """The client a pass of an object in `namespace` uses (looked up once per pass; the
        namespace's identity, never one the object chooses). May raise NoCredentialsError."""
        ...

    async def read(
        self,
        client: K,
        spec: S,
        recorded_key: str | None,
        status: Mapping[str, Any],
        owner: Owner,
        *,
        generation: int | None,
    ) -> tuple[R | None, list[R] | None]:
        """The reads a pass starts with: (the version by its known name, the ownership search
        when `plans.needs_owner_search` says so, else None)."""
        ...

    async def run(self, client: K, spec: S, call: C) -> str | None:
        """Perform one planned call; returns the version name a create produced."""
        ...

    async def reread(self, client: K, spec: S, key: str) -> R:
        """The version as it is after this pass's writes (status.atProvider must be exact)."""
        ...

    async def deletion_blockers(
        self, client: K, spec: S, calls: Sequence[C], annotations: Mapping[str, str]
    ) -> str | None:
        """Why the planned deletion `calls` must not run yet (None: go ahead), e.g. a PAI
        model that still has versions. The object keeps its finalizer and is looked at again
        soon; the message goes to its DeletionBlocked condition."""
        ...

    # --- status (pure) ------------------------------------------------------------------------

    @property
    def status_keys(self) -> Sequence[str]:
        """Status keys this operator owns (a key that vanishes is sent as null)."""
        ...

    def status(
        self,
        *,
        raw_spec: Mapping[str, Any],
        previous: Mapping[str, Any],
        generation: int | None,
        key: str | None,
        location: str | None,
        observed: R | None,
        keep_at_provider: bool,
        drift: Sequence[str],
        conditions: list[Condition],
    ) -> dict[str, Any]:
        """The wanted status as stored in Kubernetes (camelCase, unset keys omitted). `key` and
        `location` None: keep what status recorded. `keep_at_provider`: a failed pass that read
        nothing keeps the last observation (unknown is not gone)."""
        ...

    # --- batched observation ------------------------------------------------------------------

    def group_of(self, spec: Mapping[str, Any], status: Mapping[str, Any], identity: str) -> GroupKey | None:
        """The group whose list observes this object (None: observed by its own passes)."""
        ...

    def key_of(self, spec: Mapping[str, Any], status: Mapping[str, Any]) -> str | None:
        """The version name of a tracked object (spec's, else status's), without parsing."""
        ...

    def identity_key(self, namespace: str) -> str:
        """The namespace's identity as last read (no I/O)."""
        ...

    async def resolve_identity(self, namespace: str) -> str:
        """The namespace's identity, read through the cache."""
        ...

    async def list_group(self, group: GroupKey) -> list[R]:
        """Every version of the group's parent (all pages), as the group's identity sees them.
        Raises ModelNotFoundError when the parent is gone, AuthError/InvalidRequestError when the
        list is refused (the engine then observes with each object's own reads)."""
        ...

    def complete_listed(self, listed: R, spec: S, owner: Owner, status: Mapping[str, Any]) -> R:
        """A listed version with every field a list item does not carry filled as "unchanged"
        (from status.atProvider, else the spec): unknown is not drift."""
        ...


class Standalone:
    """The defaults of a backend whose kind refers to no other and blocks no deletion: mixed
    into backends so that the `Backend` hooks for references cost them nothing."""

    def resolve(
        self, namespace: str, spec: Mapping[str, Any], status: Mapping[str, Any], *, deleting: bool
    ) -> Mapping[str, Any] | Waiting:
        return spec

    def watched(self, namespace: str, name: str, body: Mapping[str, Any] | None) -> None:
        return None

    def bind(self, requeue: Requeue) -> None:
        return None

    async def deletion_blockers(
        self, client: Any, spec: Any, calls: Sequence[Any], annotations: Mapping[str, str]
    ) -> str | None:
        return None
