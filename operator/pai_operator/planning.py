"""What remote calls to make: a pure function of (spec, policies, status facts, observed remote).

No I/O here. The reconciler drives one pass like this (parsing, policies and validation live in
`pai_operator.validation`, field comparison in `pai_operator.comparison`):

    spec = parse_spec(body["spec"])                            # a list of messages: InvalidSpec, no call
    policies = resolve_policies(spec, annotations=..., namespace_annotations=..., default_deletion=...)
    recorded = Recorded.from_status(body.get("status"))
    problems = validate_spec(spec, policies, recorded)        # InvalidSpec: no PAI call at all
    name = lookup_name(spec, recorded)                         # GET it when not None (404 -> None)
    owned = search(...) if needs_owner_search(spec, recorded, observed) else None
            # ListModelVersions(Label=uid), (Label=<ns>/<name>), then filter_owned(): a substring match
    plan = plan_reconcile(spec, uid=..., policies=..., recorded=..., observed=..., owned=...)
    for call in plan.calls: execute in order (DeleteLabels before AddLabels keeps within PAI's 20)
    deletion: plan_deletion(...) with the same reads; DeletionPlan.best_effort says whether a failed
              call may be ignored (Retain: a stale ownership label names a UID that will never exist again)

Identity: spec.versionName, else status.versionName (recorded), else the ownership-label search.
Ownership: the remote labels OWNER_LABEL_KEY=<object UID> and OWNER_REF_LABEL_KEY=<namespace>/<name>,
set in the same CreateModelVersion call so a create whose response is lost is found by the next
pass, never duplicated. A version recorded for this namespace/name by a UID that no longer exists
(a restore: same name, new UID) is this object's by succession (`comparison.claim`); whether a
UID exists is an input (`owner_alive`), so planning stays pure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from pai_operator.comparison import (
    Claim,
    Owner,
    claim,
    compute_drift,
    create_only_drift,
    is_ours,
    label_changes,
    owner_of,
    owner_ref_of,
    remote_value,
    update_fields,
)
from pai_operator.normalize import options_to_wire
from pai_operator.pai.models import (
    CreateModelVersionRequest,
    Label,
    ModelVersion,
    UpdateModelVersionRequest,
)
from pai_operator.spec import (
    MAX_REMOTE_LABELS,
    OWNER_LABEL_KEY,
    OWNER_REF_LABEL_KEY,
    PAUSED_ANNOTATION,
    RESERVED_LABEL_KEYS,
    ModelVersionSpec,
    Reason,
)
from pai_operator.validation import Policies, Recorded, spec_name, validate_spec


def resource_id(model_id: str, version_name: str | None) -> str | None:
    """The Terraform/ROS identity `<ModelId>:<VersionName>`."""
    return f"{model_id}:{version_name}" if version_name else None


# --- Remote calls ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateVersion:
    model_id: str
    request: CreateModelVersionRequest


@dataclass(frozen=True)
class UpdateVersion:
    model_id: str
    version_name: str
    request: UpdateModelVersionRequest
    fields: tuple[str, ...]  # spec names of the fields sent, for events and logs


@dataclass(frozen=True)
class AddLabels:
    model_id: str
    version_name: str
    labels: tuple[Label, ...]


@dataclass(frozen=True)
class DeleteLabels:
    model_id: str
    version_name: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class DeleteVersion:
    model_id: str
    version_name: str


RemoteCall = CreateVersion | UpdateVersion | AddLabels | DeleteLabels | DeleteVersion


# --- Plans ----------------------------------------------------------------------------------


class Action(StrEnum):
    IN_SYNC = "InSync"  # remote matches spec: no calls
    CREATE = "Create"  # one CreateVersion call
    ADOPT = "Adopt"  # take over an unowned remote version (adds the ownership label), then repair
    UPDATE = "Update"  # label and/or update calls on a version this object owns
    OBSERVE = "Observe"  # managementPolicy Observe: reads only
    PAUSED = "Paused"  # paused annotation: reads only
    BLOCKED = "Blocked"  # a problem prevents any write; see Plan.problem


@dataclass(frozen=True)
class Problem:
    reason: Reason
    message: str


@dataclass(frozen=True)
class Plan:
    action: Action
    message: str
    calls: tuple[RemoteCall, ...] = ()
    # The remote version's name once the calls succeed (None until a server-assigned create returns).
    version_name: str | None = None
    # The remote version this plan is about (from GET or the ownership search), as observed.
    observed: ModelVersion | None = None
    # True when that version is owned by this object (or will be, once an adoption succeeds).
    ours: bool = False
    # spec field names whose remote value differs (repaired by `calls` unless Observe/paused/blocked).
    drift: list[str] = field(default_factory=list)
    problem: Problem | None = None

    @property
    def reason(self) -> Reason:
        return self.problem.reason if self.problem else Reason.RECONCILE_SUCCESS


class DeletionAction(StrEnum):
    DELETE = "Delete"  # DeleteVersion for each owned version (404 means done)
    RELEASE = "Release"  # Retain: remove the ownership label, keep the version
    NOTHING = "Nothing"  # Observe, remote already gone, or not ours: just drop the finalizer


@dataclass(frozen=True)
class DeletionPlan:
    action: DeletionAction
    message: str
    calls: tuple[RemoteCall, ...] = ()
    # True when a failing call must not hold the finalizer (see module docstring).
    best_effort: bool = False


# --- Reads ----------------------------------------------------------------------------------


def lookup_name(spec: ModelVersionSpec, recorded: Recorded) -> str | None:
    """The version name to GET, or None when only the ownership search can find it."""
    return spec.version_name or recorded.version_name


def needs_owner_search(
    spec: ModelVersionSpec,
    recorded: Recorded,
    observed: ModelVersion | None,
    *,
    generation: int | None = None,
) -> bool:
    """Search by ownership label when the version is not found by name and no name was recorded:
    server-assigned names whose version is not known (a lost create, a restore without status),
    and a fixed name whose status is empty, since a server-assigned create may have happened
    before spec.versionName was set (its name never reached status). A fixed name with a recorded
    one is authoritative: a lost create is found by GET under that name.

    `generation` 1 means the spec never changed since the object was created: a fixed name was
    there from the start, so no server-assigned create can have happened and the search (two
    Lists, which would make every create cost four reads) is skipped. None: unknown, search."""
    if observed is not None:
        return False
    if spec.version_name is None:
        return True
    return recorded.version_name is None and generation != 1


def filter_owned(versions: Sequence[ModelVersion], owner: Owner | str) -> list[ModelVersion]:
    """The versions that carry this object's UID or its namespace/name (the candidates the
    planner then judges with `claim`); exact matches, since PAI's `Label` query matches
    substrings of keys and values."""
    who = owner if isinstance(owner, Owner) else Owner(owner)
    return [
        v for v in versions if owner_of(v) == who.uid or (who.ref is not None and owner_ref_of(v) == who.ref)
    ]


def _create_request(spec: ModelVersionSpec, owner: Owner) -> CreateModelVersionRequest:
    labels = [Label(key=OWNER_LABEL_KEY, value=owner.uid)]
    if owner.ref is not None:
        labels.append(Label(key=OWNER_REF_LABEL_KEY, value=owner.ref))
    labels += [Label(key=k, value=v) for k, v in sorted((spec.labels or {}).items())]
    return CreateModelVersionRequest(
        uri=spec.uri,
        version_name=spec.version_name,
        format_type=spec.format_type,
        framework_type=spec.framework_type,
        version_description=spec.version_description,
        approval_status=spec.approval_status,
        source_type=spec.source_type,
        source_id=spec.source_id,
        metrics=spec.metrics,
        training_spec=spec.training_spec,
        inference_spec=spec.inference_spec,
        evaluation_spec=spec.evaluation_spec,
        compression_spec=spec.compression_spec,
        distillation_spec=spec.distillation_spec,
        extra_info=spec.extra_info,
        options=options_to_wire(spec.options) if spec.options is not None else None,
        labels=labels,
    )


# --- Planning -------------------------------------------------------------------------------


def _describe_owner(version: ModelVersion) -> str:
    owner = owner_of(version)
    if owner is None:
        return "nobody (no ownership label)"
    ref = owner_ref_of(version)
    return f"another object ({ref}, uid {owner})" if ref else f"another object (uid {owner})"


def _select_remote(
    spec: ModelVersionSpec, owner: Owner, observed: ModelVersion | None, owned: Sequence[ModelVersion] | None
) -> ModelVersion | list[ModelVersion] | None:
    """The remote version this object refers to; a list when the search found several."""
    if observed is not None:
        return observed
    if owned is None:
        return None
    candidates = [v for v in owned if is_ours(v, owner)]
    if len(candidates) > 1:
        return sorted(candidates, key=lambda v: (v.gmt_create_time or "", v.version_name))
    return candidates[0] if candidates else None


def _stray_message(spec: ModelVersionSpec, stray: ModelVersion) -> str:
    """A version of ours under another name than spec.versionName: created with a server-assigned
    name, then versionName was set before that name reached status. Reported, never guessed at:
    it may already be in use under its assigned name."""
    ident = resource_id(spec.model_id, stray.version_name)
    return (
        f"remote version {ident} carries this object's ownership label but spec.versionName is "
        f"{spec.version_name}: it was created with a server-assigned name before spec.versionName "
        f"was set. Set spec.versionName: {stray.version_name} to keep managing it, or delete it in "
        f"PAI (or remove its {OWNER_LABEL_KEY} label) to have {spec.version_name} created"
    )


def plan_reconcile(
    spec: ModelVersionSpec,
    *,
    uid: str,
    policies: Policies,
    recorded: Recorded,
    observed: ModelVersion | None,
    owned: Sequence[ModelVersion] | None,
    problems: Sequence[str] | None = None,
    ref: str | None = None,
    owner_alive: Callable[[str], bool] | None = None,
    generation: int | None = None,
) -> Plan:
    """Decide the remote calls for one reconcile pass.

    `observed` is the GET result for `lookup_name(...)` (None when there was no name or PAI said
    404); `owned` is the ownership-label search result, or None when it was not performed
    (it must be performed when `needs_owner_search(...)` says so). `problems` is what
    `validate_spec` returned when the caller ran it already (it decides whether to read at all).
    `ref` is this object's `<namespace>/<name>` and `owner_alive(uid)` says whether an object
    with that UID exists: together they let a restored object (same name, new UID) take over
    its version. Without them only the UID counts.
    """
    owner = Owner(uid, ref, owner_alive) if owner_alive is not None else Owner(uid, ref)
    if problems is None:
        problems = validate_spec(spec, policies, recorded)
    if problems:
        return Plan(
            action=Action.BLOCKED,
            message="; ".join(problems),
            version_name=recorded.version_name or spec.version_name,
            problem=Problem(Reason.INVALID_SPEC, "; ".join(problems)),
        )
    if owned is None and needs_owner_search(spec, recorded, observed, generation=generation):
        raise ValueError("plan_reconcile needs the ownership search result (needs_owner_search is true)")

    selected = _select_remote(spec, owner, observed, owned)
    if isinstance(selected, list):
        names = ", ".join(v.version_name for v in selected)
        message = (
            f"several remote versions of model {spec.model_id} carry this object's ownership label "
            f"({names}); delete the extra ones in PAI or remove their {OWNER_LABEL_KEY} label"
        )
        return Plan(action=Action.BLOCKED, message=message, problem=Problem(Reason.CONFLICT, message))
    remote = selected
    if remote is not None and spec.version_name is not None and remote.version_name != spec.version_name:
        message = _stray_message(spec, remote)
        return Plan(action=Action.BLOCKED, message=message, problem=Problem(Reason.CONFLICT, message))
    ident = resource_id(spec.model_id, remote.version_name if remote else spec.version_name)

    if policies.management == "Observe":
        if remote is None:
            return Plan(
                action=Action.OBSERVE,
                message=f"remote version {ident} does not exist; Observe mode never creates it",
                version_name=spec.version_name,
            )
        drift = compute_drift(spec, remote)
        detail = f"drift in {', '.join(drift)}" if drift else "matches spec"
        return Plan(
            action=Action.OBSERVE,
            message=f"observing remote version {ident}: {detail}",
            version_name=remote.version_name,
            observed=remote,
            ours=is_ours(remote, owner),
            drift=drift,
        )

    if remote is None:
        if policies.paused:
            return Plan(
                action=Action.PAUSED,
                message=f"paused ({PAUSED_ANNOTATION}); the remote version has not been created",
                version_name=spec.version_name,
            )
        target = ident or f"{spec.model_id}:<assigned by PAI>"
        return Plan(
            action=Action.CREATE,
            message=f"creating remote version {target}",
            calls=(CreateVersion(spec.model_id, _create_request(spec, owner)),),
            version_name=spec.version_name,
        )

    ownership = claim(remote, owner)
    drift = compute_drift(spec, remote)
    base = Plan(
        action=Action.IN_SYNC, message="", version_name=remote.version_name, observed=remote, drift=drift
    )

    if policies.paused:
        detail = f"; drift in {', '.join(drift)} is not repaired" if drift else ""
        ours = ownership is Claim.OURS
        return _with(base, Action.PAUSED, f"paused ({PAUSED_ANNOTATION}){detail}", ours=ours)
    if ownership is Claim.OTHER:
        message = (
            f"remote version {ident} is owned by {_describe_owner(remote)}; this object "
            "will not touch it. Delete one of the two objects or point this one at another version"
        )
        return _with(base, Action.BLOCKED, message, problem=Problem(Reason.CONFLICT, message))
    inheriting = ownership is Claim.INHERITED
    adopting = ownership is Claim.NONE
    if adopting and policies.adoption == "Never":
        message = (
            f"remote version {ident} already exists and was not created by this object; set "
            "spec.adoptionPolicy: IfExists to take it over, or choose another versionName"
        )
        return _with(base, Action.BLOCKED, message, problem=Problem(Reason.ALREADY_EXISTS, message))

    immutable = create_only_drift(spec, remote)
    if immutable:
        details = ", ".join(f"{name} (remote: {remote_value(remote, name)!r})" for name in immutable)
        message = (
            f"remote version {ident} differs in fields PAI cannot change: {details}; make spec "
            "match the remote values or create a new ModelVersion"
        )
        return _with(
            base,
            Action.BLOCKED,
            message,
            ours=not adopting,
            problem=Problem(Reason.IMMUTABLE_FIELD_MISMATCH, message),
        )

    labels = label_changes(spec, remote, uid, owner.ref)
    if labels.final_count > MAX_REMOTE_LABELS:
        reserved = len(RESERVED_LABEL_KEYS) if owner.ref is not None else 1
        message = (
            f"cannot add the ownership labels to {ident}: it would have {labels.final_count} "
            f"labels and PAI allows {MAX_REMOTE_LABELS}; set spec.labels to at most "
            f"{MAX_REMOTE_LABELS - reserved} labels"
        )
        return _with(base, Action.BLOCKED, message, problem=Problem(Reason.CONFLICT, message))

    name = remote.version_name
    calls: list[RemoteCall] = []
    if labels.delete:
        calls.append(DeleteLabels(spec.model_id, name, labels.delete))
    if labels.add:
        calls.append(AddLabels(spec.model_id, name, labels.add))
    changes = update_fields(spec, remote)
    if changes:
        fields = tuple(spec_name(attr) for attr in changes)
        calls.append(UpdateVersion(spec.model_id, name, UpdateModelVersionRequest(**changes), fields))

    if adopting or inheriting:
        detail = f"; repairing {', '.join(drift)}" if drift else ""
        verb = (
            f"taking over remote version {ident} from uid {owner_of(remote)}, an earlier object of the "
            "same namespace/name that no longer exists"
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
    base: Plan,
    action: Action,
    message: str,
    *,
    calls: Sequence[RemoteCall] = (),
    ours: bool = False,
    problem: Problem | None = None,
) -> Plan:
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
    spec: ModelVersionSpec,
    *,
    uid: str,
    policies: Policies,
    observed: ModelVersion | None,
    owned: Sequence[ModelVersion] | None,
    ref: str | None = None,
    owner_alive: Callable[[str], bool] | None = None,
) -> DeletionPlan:
    """What deleting the Kubernetes object does remotely. Paused objects can still be deleted;
    the spec is not validated (a broken spec must never trap an object behind its finalizer).
    Only versions carrying this object's ownership label are ever deleted or released."""
    if policies.management == "Observe":
        return DeletionPlan(DeletionAction.NOTHING, "Observe mode never deletes the remote version")
    owner = Owner(uid, ref, owner_alive) if owner_alive is not None else Owner(uid, ref)
    targets: dict[str, ModelVersion] = {}
    for version in ([observed] if observed else []) + list(owned or []):
        if is_ours(version, owner):  # inherited ones too: nobody else would ever delete them
            targets.setdefault(version.version_name, version)
    if not targets:
        if observed is not None:
            ident = resource_id(spec.model_id, observed.version_name)
            return DeletionPlan(
                DeletionAction.NOTHING,
                f"remote version {ident} is owned by {_describe_owner(observed)}, not this object; "
                "left untouched",
            )
        return DeletionPlan(DeletionAction.NOTHING, "the remote version is already gone")
    names = sorted(targets)
    idents = ", ".join(f"{spec.model_id}:{n}" for n in names)
    if policies.deletion == "Retain":
        return DeletionPlan(
            DeletionAction.RELEASE,
            f"retaining remote version {idents}; removing the ownership labels",
            calls=tuple(DeleteLabels(spec.model_id, n, RESERVED_LABEL_KEYS) for n in names),
            best_effort=True,
        )
    return DeletionPlan(
        DeletionAction.DELETE,
        f"deleting remote version {idents}",
        calls=tuple(DeleteVersion(spec.model_id, n) for n in names),
    )
