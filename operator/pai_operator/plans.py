"""Plans, and the decisions every registry shares: a pure function of (spec, policies, recorded
facts, observed remote) that says which remote calls to make.

No I/O here, and nothing of any one registry. A backend contributes a `Planner`: how its remote
versions are named, who owns one (its ownership mark), which fields drifted, which cannot change,
and which calls create, repair, delete or release a version. The skeleton below decides with
those answers, the same way for PAI and TrueFoundry:

    several owned versions -> Conflict      a fixed version whose owned one has another key -> Conflict
    Observe -> reads only                   nothing remote: paused -> Paused, else Create
    paused -> Paused (drift reported)       owned by another live object -> Conflict
    unowned and adoptionPolicy Never -> AlreadyExists
    a field the registry cannot change differs -> ImmutableFieldMismatch
    unowned / inherited -> Adopt (+ repair)  repairs -> Update   nothing -> InSync

Ownership: a create carries the object's UID and `<namespace>/<name>` in the registry (PAI: two
labels; TrueFoundry: a metadata key), so a create whose response is lost is found by the next
pass, never duplicated. A version recorded for this namespace/name by a UID that no longer
exists (a restore: same name, new UID) is this object's by succession (`claim`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Generic, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from pai_operator.vocabulary import AdoptionPolicy, DeletionPolicy, ManagementPolicy, Reason

S = TypeVar("S")
R = TypeVar("R")
C = TypeVar("C")
# The same, as a Planner protocol uses them: it takes specs and remote versions, returns calls.
S_in = TypeVar("S_in", contravariant=True)
R_in = TypeVar("R_in", contravariant=True)
C_out = TypeVar("C_out", covariant=True)


@dataclass(frozen=True)
class Policies:
    """The policies in effect for one object after defaults are applied."""

    deletion: DeletionPolicy
    management: ManagementPolicy
    adoption: AdoptionPolicy
    paused: bool


class DeclaresPolicies(Protocol):
    """A spec with the three policy fields every registry's resource has."""

    @property
    def deletion_policy(self) -> DeletionPolicy | None: ...

    @property
    def management_policy(self) -> ManagementPolicy: ...

    @property
    def adoption_policy(self) -> AdoptionPolicy: ...


_DELETION_POLICIES: Final[dict[str, DeletionPolicy]] = {"Delete": "Delete", "Retain": "Retain"}


def resolve_policies(
    spec: DeclaresPolicies,
    *,
    group: str,
    annotations: Mapping[str, str] | None = None,
    namespace_annotations: Mapping[str, str] | None = None,
    default_deletion: DeletionPolicy = "Delete",
) -> Policies:
    """spec.deletionPolicy, else the Namespace annotation `<group>/deletion-policy` (if valid),
    else the operator default; paused when the object is annotated `<group>/paused: "true"`.

    An unrecognised Namespace annotation value is ignored rather than failing every object in
    the namespace; the operator default is the safe reading of "no valid choice made".
    """
    ns_value = (namespace_annotations or {}).get(f"{group}/deletion-policy", "")
    deletion = spec.deletion_policy or _DELETION_POLICIES.get(ns_value.strip(), default_deletion)
    paused = (annotations or {}).get(f"{group}/paused", "").strip().lower() == "true"
    return Policies(
        deletion=deletion, management=spec.management_policy, adoption=spec.adoption_policy, paused=paused
    )


M = TypeVar("M", bound=BaseModel)


def parse_model(model: type[M], raw: Mapping[str, Any] | None) -> M | list[str]:
    """A spec, or InvalidSpec messages when it does not even match the schema (the API server
    normally prevents that; a CRD installed without validation or an older schema may not)."""
    try:
        return model.model_validate(raw or {})
    except ValidationError as exc:
        return [
            f"spec.{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors(include_url=False)
        ]


# --- ownership --------------------------------------------------------------------------------


def object_ref(namespace: str, name: str) -> str:
    """The ownership reference `<namespace>/<name>` (both DNS names, so no `/` in either)."""
    return f"{namespace}/{name}"


def _always_alive(_: str) -> bool:
    return True


@dataclass(frozen=True)
class Owner:
    """Who is asking, for ownership decisions. `alive` answers "does an object with this UID
    still exist?" (the engine knows the live objects); the default says yes to every UID, which
    never transfers anything. `ref` None: only the UID counts (no succession)."""

    uid: str
    ref: str | None = None
    alive: Callable[[str], bool] = _always_alive


class Claim(StrEnum):
    OURS = "ours"  # the mark's UID is this object's UID
    INHERITED = "inherited"  # the mark's ref is this object's namespace/name, and that UID is gone
    OTHER = "other"  # another object's: a different name, or the same name still alive
    NONE = "none"  # no ownership mark: adoptable (adoptionPolicy)


def claim_of(mark_uid: str | None, mark_ref: str | None, owner: Owner) -> Claim:
    """Ownership of a version marked (`mark_uid`, `mark_ref`) as seen by `owner`. Succession needs
    both: the version was recorded for this very namespace/name, and the UID it was recorded for
    no longer exists (a restore gives the object a new UID); two live objects never share one."""
    if mark_uid is None:
        return Claim.NONE
    if mark_uid == owner.uid:
        return Claim.OURS
    if owner.ref is not None and mark_ref == owner.ref and not owner.alive(mark_uid):
        return Claim.INHERITED
    return Claim.OTHER


# --- plans ------------------------------------------------------------------------------------


class Action(StrEnum):
    IN_SYNC = "InSync"  # remote matches spec: no calls
    CREATE = "Create"  # one create call
    ADOPT = "Adopt"  # take over an unowned remote version (marks it), then repair
    UPDATE = "Update"  # repair calls on a version this object owns
    OBSERVE = "Observe"  # managementPolicy Observe: reads only
    PAUSED = "Paused"  # paused annotation: reads only
    BLOCKED = "Blocked"  # a problem prevents any write; see Plan.problem


@dataclass(frozen=True)
class Problem:
    reason: Reason
    message: str


@dataclass(frozen=True)
class Plan(Generic[R, C]):
    action: Action
    message: str
    calls: tuple[C, ...] = ()
    # The remote version's name in its registry once the calls succeed (PAI: the version name;
    # TrueFoundry: the version number). None until a server-assigned create returns.
    version_name: str | None = None
    # The remote version this plan is about (from a read or the ownership search), as observed.
    observed: R | None = None
    # True when that version is owned by this object (or will be, once an adoption succeeds).
    ours: bool = False
    # spec field names whose remote value differs (repaired by `calls` unless Observe/paused/blocked).
    drift: list[str] = field(default_factory=list)
    problem: Problem | None = None

    @property
    def reason(self) -> Reason:
        return self.problem.reason if self.problem else Reason.RECONCILE_SUCCESS


class DeletionAction(StrEnum):
    DELETE = "Delete"  # delete each owned version (not found means done)
    RELEASE = "Release"  # Retain: remove the ownership mark, keep the version
    NOTHING = "Nothing"  # Observe, remote already gone, or not ours: just drop the finalizer


@dataclass(frozen=True)
class DeletionPlan(Generic[C]):
    action: DeletionAction
    message: str
    calls: tuple[C, ...] = ()
    # True when a failing call must not hold the finalizer: releasing (Retain) is a courtesy,
    # since a stale mark names a UID that will never exist again.
    best_effort: bool = False


class Planner(Protocol[S_in, R_in, C_out]):
    """What one registry contributes to planning. Pure: no I/O."""

    @property
    def registry(self) -> str:
        """The registry's name in messages ("PAI")."""
        ...

    @property
    def key_field(self) -> str:
        """The spec field that fixes a version's name ("spec.versionName")."""
        ...

    @property
    def mark(self) -> str:
        """How the ownership mark is named in messages ("its pai.mlops.dev/owner-uid label")."""
        ...

    def spec_key(self, spec: S_in) -> str | None:
        """The version name the spec fixes, or None: assigned by the registry at create."""
        ...

    def key(self, remote: R_in) -> str: ...

    def ident(self, spec: S_in, key: str | None) -> str | None:
        """How a version is named in messages (`model:version`), None while unknown."""
        ...

    def pending_ident(self, spec: S_in) -> str:
        """A version still to be created, in messages."""
        ...

    def parent(self, spec: S_in) -> str:
        """What the versions belong to, in messages ("model m-123")."""
        ...

    def marked(self, remote: R_in) -> tuple[str | None, str | None]:
        """The (UID, namespace/name) the remote version's ownership mark carries."""
        ...

    def created_order(self, remote: R_in) -> tuple[str, str]:
        """Sort key among several owned versions (oldest first)."""
        ...

    def drift(self, spec: S_in, remote: R_in) -> list[str]:
        """Spec names of set fields whose remote value differs (in schema order)."""
        ...

    def immutable_drift(self, spec: S_in, remote: R_in) -> list[tuple[str, object]]:
        """(spec name, remote value) of fields that differ and the registry cannot change."""
        ...

    def create(self, spec: S_in, owner: Owner) -> C_out | Problem:
        """The call that creates the version, or the problem that makes creating impossible."""
        ...

    def repair(self, spec: S_in, remote: R_in, owner: Owner) -> Sequence[C_out] | Problem:
        """The calls that make `remote` match spec and carry `owner`'s mark (none: in sync),
        or the problem that makes it impossible."""
        ...

    def delete(self, spec: S_in, remote: R_in) -> C_out: ...

    def release(self, spec: S_in, remote: R_in) -> C_out: ...


def marked_by(planner: Planner[S, R, C], versions: Iterable[R], owner: Owner) -> list[R]:
    """The versions whose ownership mark names this UID or this namespace/name: exact matches
    (a registry's search may match more, e.g. PAI's Label filter matches substrings); whether
    each one is this object's is `claim_of`'s judgement."""
    found = []
    for version in versions:
        uid, ref = planner.marked(version)
        if uid == owner.uid or (owner.ref is not None and ref == owner.ref):
            found.append(version)
    return found


def needs_key_to_observe(management: ManagementPolicy, spec_key: str | None, field: str) -> list[str]:
    """Observe reads a version it is told of; it never creates one, so it needs the key."""
    if management == "Observe" and spec_key is None:
        return [f"managementPolicy Observe needs spec.{field}: there is nothing to observe"]
    return []


def needs_owner_search(
    spec_key: str | None,
    recorded_key: str | None,
    observed: object | None,
    *,
    generation: int | None = None,
) -> bool:
    """Search by ownership mark when the version is not found by name and no name was recorded:
    server-assigned names whose version is not known (a lost create, a restore without status),
    and a fixed name whose status is empty, since a server-assigned create may have happened
    before the name was set in spec (its name never reached status). A fixed name with a recorded
    one is authoritative: a lost create is found by reading that name.

    `generation` 1 means the spec never changed since the object was created: a fixed name was
    there from the start, so no server-assigned create can have happened and the search (which
    would make every create cost more reads) is skipped. None: unknown, search."""
    if observed is not None:
        return False
    if spec_key is None:
        return True
    return recorded_key is None and generation != 1


def _select_remote(
    planner: Planner[S, R, C], owner: Owner, observed: R | None, owned: Sequence[R] | None
) -> R | list[R] | None:
    """The remote version this object refers to; a list when the search found several."""
    if observed is not None:
        return observed
    if owned is None:
        return None
    candidates = [v for v in owned if _is_ours(planner, v, owner)]
    if len(candidates) > 1:
        return sorted(candidates, key=planner.created_order)
    return candidates[0] if candidates else None


def _claim(planner: Planner[S, R, C], remote: R, owner: Owner) -> Claim:
    uid, ref = planner.marked(remote)
    return claim_of(uid, ref, owner)


def _is_ours(planner: Planner[S, R, C], remote: R, owner: Owner) -> bool:
    return _claim(planner, remote, owner) in (Claim.OURS, Claim.INHERITED)


def _describe_owner(planner: Planner[S, R, C], remote: R) -> str:
    uid, ref = planner.marked(remote)
    if uid is None:
        return "nobody (no ownership label)"
    return f"another object ({ref}, uid {uid})" if ref else f"another object (uid {uid})"


def plan_reconcile(
    planner: Planner[S, R, C],
    spec: S,
    *,
    owner: Owner,
    policies: Policies,
    recorded_key: str | None,
    observed: R | None,
    owned: Sequence[R] | None,
    problems: Sequence[str],
    paused_annotation: str,
    generation: int | None = None,
) -> Plan[R, C]:
    """Decide the remote calls for one reconcile pass.

    `observed` is the read of the known name (None when there was none or the registry said not
    found); `owned` is the ownership search result, or None when it was not performed (it must be
    when `needs_owner_search(...)` says so). `problems` is what the backend's validation found: any
    makes the plan BLOCKED (InvalidSpec) without a call.
    """
    spec_key = planner.spec_key(spec)
    if problems:
        return Plan(
            action=Action.BLOCKED,
            message="; ".join(problems),
            version_name=recorded_key or spec_key,
            problem=Problem(Reason.INVALID_SPEC, "; ".join(problems)),
        )
    if owned is None and needs_owner_search(spec_key, recorded_key, observed, generation=generation):
        raise ValueError("plan_reconcile needs the ownership search result (needs_owner_search is true)")

    selected = _select_remote(planner, owner, observed, owned)
    if isinstance(selected, list):
        names = ", ".join(planner.key(v) for v in selected)
        message = (
            f"several remote versions of {planner.parent(spec)} carry this "
            f"object's ownership label ({names}); delete the extra ones in {planner.registry} or "
            f"remove {planner.mark}"
        )
        return Plan(action=Action.BLOCKED, message=message, problem=Problem(Reason.CONFLICT, message))
    remote = selected
    if remote is not None and spec_key is not None and planner.key(remote) != spec_key:
        stray = planner.key(remote)
        message = (
            f"remote version {planner.ident(spec, stray)} carries this object's ownership label but "
            f"{planner.key_field} is {spec_key}: it was created with a server-assigned name before "
            f"{planner.key_field} was set. Set {planner.key_field}: {stray} to keep managing it, or "
            f"delete it in {planner.registry} (or remove {planner.mark}) to have {spec_key} created"
        )
        return Plan(action=Action.BLOCKED, message=message, problem=Problem(Reason.CONFLICT, message))
    ident = planner.ident(spec, planner.key(remote) if remote is not None else spec_key)

    if policies.management == "Observe":
        if remote is None:
            return Plan(
                action=Action.OBSERVE,
                message=f"remote version {ident} does not exist; Observe mode never creates it",
                version_name=spec_key,
            )
        drift = planner.drift(spec, remote)
        detail = f"drift in {', '.join(drift)}" if drift else "matches spec"
        return Plan(
            action=Action.OBSERVE,
            message=f"observing remote version {ident}: {detail}",
            version_name=planner.key(remote),
            observed=remote,
            ours=_is_ours(planner, remote, owner),
            drift=drift,
        )

    if remote is None:
        if policies.paused:
            return Plan(
                action=Action.PAUSED,
                message=f"paused ({paused_annotation}); the remote version has not been created",
                version_name=spec_key,
            )
        create = planner.create(spec, owner)
        if isinstance(create, Problem):
            return Plan(action=Action.BLOCKED, message=create.message, problem=create)
        return Plan(
            action=Action.CREATE,
            message=f"creating remote version {ident or planner.pending_ident(spec)}",
            calls=(create,),
            version_name=spec_key,
        )

    ownership = _claim(planner, remote, owner)
    drift = planner.drift(spec, remote)
    base: Plan[R, C] = Plan(
        action=Action.IN_SYNC, message="", version_name=planner.key(remote), observed=remote, drift=drift
    )

    if policies.paused:
        detail = f"; drift in {', '.join(drift)} is not repaired" if drift else ""
        ours = ownership is Claim.OURS
        return _with(base, Action.PAUSED, f"paused ({paused_annotation}){detail}", ours=ours)
    if ownership is Claim.OTHER:
        message = (
            f"remote version {ident} is owned by {_describe_owner(planner, remote)}; this object "
            "will not touch it. Delete one of the two objects or point this one at another version"
        )
        return _with(base, Action.BLOCKED, message, problem=Problem(Reason.CONFLICT, message))
    inheriting = ownership is Claim.INHERITED
    adopting = ownership is Claim.NONE
    if adopting and policies.adoption == "Never":
        short = planner.key_field.removeprefix("spec.")
        message = (
            f"remote version {ident} already exists and was not created by this object; set "
            f"spec.adoptionPolicy: IfExists to take it over, or choose another {short}"
        )
        return _with(base, Action.BLOCKED, message, problem=Problem(Reason.ALREADY_EXISTS, message))

    immutable = planner.immutable_drift(spec, remote)
    if immutable:
        details = ", ".join(f"{name} (remote: {value!r})" for name, value in immutable)
        message = (
            f"remote version {ident} differs in fields {planner.registry} cannot change: {details}; "
            "make spec match the remote values or create a new ModelVersion"
        )
        return _with(
            base,
            Action.BLOCKED,
            message,
            ours=not adopting,
            problem=Problem(Reason.IMMUTABLE_FIELD_MISMATCH, message),
        )

    calls = planner.repair(spec, remote, owner)
    if isinstance(calls, Problem):
        return _with(base, Action.BLOCKED, calls.message, problem=calls)

    if adopting or inheriting:
        detail = f"; repairing {', '.join(drift)}" if drift else ""
        verb = (
            f"taking over remote version {ident} from uid {planner.marked(remote)[0]}, an earlier "
            "object of the same namespace/name that no longer exists"
            if inheriting
            else f"adopting remote version {ident}"
        )
        return _with(base, Action.ADOPT, f"{verb}{detail}", calls=calls, ours=True)
    if calls:
        return _with(
            base,
            Action.UPDATE,
            f"updating remote version {ident}: {', '.join(drift)}",
            calls=calls,
            ours=True,
        )
    return _with(base, Action.IN_SYNC, f"remote version {ident} matches spec", ours=True)


def _with(
    base: Plan[R, C],
    action: Action,
    message: str,
    *,
    calls: Sequence[C] = (),
    ours: bool = False,
    problem: Problem | None = None,
) -> Plan[R, C]:
    return Plan(
        action=action,
        message=message,
        calls=tuple(calls),
        version_name=base.version_name,
        observed=base.observed,
        ours=ours,
        drift=base.drift,
        problem=problem,
    )


def plan_deletion(
    planner: Planner[S, R, C],
    spec: S,
    *,
    owner: Owner,
    policies: Policies,
    observed: R | None,
    owned: Sequence[R] | None,
) -> DeletionPlan[C]:
    """What deleting the Kubernetes object does remotely. Paused objects can still be deleted;
    the spec is not validated (a broken spec must never trap an object behind its finalizer).
    Only versions carrying this object's ownership mark are ever deleted or released."""
    if policies.management == "Observe":
        return DeletionPlan(DeletionAction.NOTHING, "Observe mode never deletes the remote version")
    targets: dict[str, R] = {}
    for version in ([observed] if observed is not None else []) + list(owned or []):
        if _is_ours(planner, version, owner):  # inherited ones too: nobody else would delete them
            targets.setdefault(planner.key(version), version)
    if not targets:
        if observed is not None:
            ident = planner.ident(spec, planner.key(observed))
            return DeletionPlan(
                DeletionAction.NOTHING,
                f"remote version {ident} is owned by {_describe_owner(planner, observed)}, not this "
                "object; left untouched",
            )
        return DeletionPlan(DeletionAction.NOTHING, "the remote version is already gone")
    keys = sorted(targets)
    idents = ", ".join(str(planner.ident(spec, k)) for k in keys)
    if policies.deletion == "Retain":
        return DeletionPlan(
            DeletionAction.RELEASE,
            f"retaining remote version {idents}; removing the ownership labels",
            calls=tuple(planner.release(spec, targets[k]) for k in keys),
            best_effort=True,
        )
    return DeletionPlan(
        DeletionAction.DELETE,
        f"deleting remote version {idents}",
        calls=tuple(planner.delete(spec, targets[k]) for k in keys),
    )
