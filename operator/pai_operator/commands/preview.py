"""`pai-operator plan -f FILE|DIR|-`: what applying manifests would do in the registry, before
they are merged. Read-only: the registry sees only the reads a reconcile pass starts with.

Every object goes through the operator's own pass (`Reconciler.prepare`, `.read`, `.plan`: the
same resolution, validation, reads and pure planner as `run`), so plan and apply never disagree;
only the calls are not made. Without a cluster an object's UID is unknown: a remote version whose
ownership mark names the object's namespace/name is taken to be its own (it is, unless another
cluster uses the same namespace/name against the same registry). With `--kubeconfig` the live
object's UID and status are used (a recorded server-assigned name, the ownership it holds), and
UIDs that no longer exist are known (a restored object takes its version over).

Models are planned with the versions that name them (`spec.modelRef`): a version whose Model is in
the same manifests sees it as it will be once applied; one whose Model would first be created is
reported as waiting for it.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from pai_operator.backend import Waiting
from pai_operator.commands import fields
from pai_operator.commands.context import (
    AnyBackend,
    Cluster,
    ClusterReadError,
    Registries,
    add_cluster_arguments,
    add_registry_arguments,
    connect_cluster,
    failed,
    open_registries,
    quiet_logging,
    registry_settings,
)
from pai_operator.commands.manifests import Manifest, ManifestError, ManifestSet, load_manifests
from pai_operator.commands.output import Output, add_output_argument
from pai_operator.conditions import conditions_for_plan, merge_conditions
from pai_operator.errors import RemoteError
from pai_operator.plans import Action, Plan, object_ref
from pai_operator.reconciler import ObjectState, ObjectView, Prepared, Reconciler, describe_error
from pai_operator.refs import ref_matches
from pai_operator.vocabulary import Reason


@runtime_checkable
class AssignsKeys(Protocol):
    """A planner that can tell the name its registry gives a version created without one."""

    def assigned_key(self, existing: Sequence[Any]) -> str: ...


class Outcome(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    ADOPT = "adopt"
    NONE = "no-change"
    OBSERVE = "observe"  # managementPolicy Observe: drift is reported, never repaired
    PAUSED = "paused"
    WAITING = "waiting"  # for an object it refers to (a Model this plan creates, or not Ready)
    BLOCKED = "blocked"  # the pass would end in a terminal condition (see `reason`)
    ERROR = "error"  # the registry could not be read


CHANGES = frozenset({Outcome.CREATE, Outcome.UPDATE, Outcome.ADOPT, Outcome.WAITING})
FAILURES = frozenset({Outcome.BLOCKED, Outcome.ERROR})

_ACTIONS = {
    Action.CREATE: Outcome.CREATE,
    Action.UPDATE: Outcome.UPDATE,
    Action.ADOPT: Outcome.ADOPT,
    Action.IN_SYNC: Outcome.NONE,
    Action.OBSERVE: Outcome.OBSERVE,
    Action.PAUSED: Outcome.PAUSED,
    Action.BLOCKED: Outcome.BLOCKED,
}


@dataclass
class ObjectPlan:
    """What applying one manifest would do."""

    manifest: Manifest
    outcome: Outcome
    message: str
    reason: str | None = None  # the condition reason a blocked or failed pass ends in
    version: str | None = None  # the remote version's name, when known
    version_predicted: bool = False  # a name the registry would assign (not fixed by the spec)
    changes: list[fields.FieldChange] = field(default_factory=list)
    # Spec and remote side by side (spec names; `drift`: the planner's list of differing fields).
    spec: dict[str, Any] = field(default_factory=dict)
    remote: dict[str, Any] | None = None
    drift: list[str] = field(default_factory=list)

    @property
    def ownership_only(self) -> bool:
        """An adoption that writes the ownership marks and nothing else (freshly imported)."""
        return self.outcome is Outcome.ADOPT and not self.changes

    @property
    def changes_something(self) -> bool:
        """Whether applying changes the version: an adoption that only writes the ownership
        marks changes none of its fields, so imported manifests plan clean (exit 0)."""
        return self.outcome in CHANGES and not self.ownership_only

    def as_json(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "apiVersion": m.resource.api_version,
            "kind": m.resource.kind,
            "namespace": m.namespace,
            "name": m.name,
            "source": m.origin,
            "registry": m.resource.registry,
            "action": self.outcome.value,
            "ownershipOnly": self.ownership_only,
            "version": self.version,
            "versionPredicted": self.version_predicted,
            "reason": self.reason,
            "message": self.message,
            "changes": [c.as_json() for c in self.changes],
        }


# --- planning ---------------------------------------------------------------------------------


@dataclass
class Live:
    """What the cluster says, when one is named: the objects by (kind, namespace, name) and the
    UIDs that exist (for succession: a version marked by a UID that is gone may be taken over)."""

    objects: dict[tuple[str, str, str], Mapping[str, Any]] = field(default_factory=dict)
    uids: set[str] = field(default_factory=set)


async def read_live(cluster: Cluster | None, registries: Registries) -> Live | None:
    if cluster is None:
        return None
    live = Live()
    for crd_name, backend in registries.backends.items():
        for body in await cluster.list(backend.names):
            meta = body.get("metadata") or {}
            live.objects[(crd_name, str(meta.get("namespace")), str(meta.get("name")))] = body
            live.uids.add(str(meta.get("uid")))
            # References between kinds (a version's modelRef) resolve as the operator sees them.
            backend.watched(str(meta.get("namespace")), str(meta.get("name")), body)
    return live


def _inherited_uid(backend: AnyBackend, ref: str, reads: Sequence[Any]) -> str | None:
    """Without a cluster: the UID in the ownership mark of a version read for this object whose
    mark names this namespace/name (one UID only; several are the planner's Conflict to report)."""
    uids = set()
    for version in reads:
        uid, mark_ref = backend.planner.marked(version)
        if uid is not None and ref_matches(mark_ref, ref):
            uids.add(uid)
    return uids.pop() if len(uids) == 1 else None


class ManifestPlanner:
    """Plans manifests one by one with the operator's reconcilers; never calls `run`."""

    def __init__(self, registries: Registries, live: Live | None) -> None:
        self.registries = registries
        self.live = live
        self._reconcilers: dict[str, Reconciler[Any, Any, Any, Any]] = {}
        for crd_name, backend in registries.backends.items():
            reconciler: Reconciler[Any, Any, Any, Any] = Reconciler(
                registries.settings, backend, _NoNamespaces()
            )
            if live is not None:
                reconciler.owner_alive = live.uids.__contains__
            self._reconcilers[crd_name] = reconciler

    def _object(self, manifest: Manifest) -> tuple[ObjectView, bool]:
        """The object as a pass would see it, and whether its UID is known."""
        key = (manifest.resource.crd_name, manifest.namespace, manifest.name)
        live = self.live.objects.get(key) if self.live is not None else None
        meta = dict(manifest.body.get("metadata") or {})
        live_meta = (live or {}).get("metadata") or {}
        uid = live_meta.get("uid") or meta.get("uid")
        return (
            ObjectView(
                # A UID no object has: it matches no ownership mark (a new object's is unknown).
                uid=str(uid or f"plan-{uuid.uuid4()}"),
                namespace=manifest.namespace,
                name=manifest.name,
                generation=None,  # unknown: apply may bump it (None never skips a search)
                spec=dict(manifest.body.get("spec") or {}),
                status=dict((live or {}).get("status") or {}),
                annotations={str(k): str(v) for k, v in (meta.get("annotations") or {}).items()},
            ),
            bool(uid) or self.live is not None,
        )

    async def plan(self, manifest: Manifest) -> ObjectPlan:
        backend = self.registries.backend(manifest.resource)
        if backend is None:
            message = self.registries.why_off(manifest.resource)
            return ObjectPlan(manifest, Outcome.ERROR, message, reason="NotConfigured")
        reconciler = self._reconcilers[manifest.resource.crd_name]
        obj, uid_known = self._object(manifest)
        state = ObjectState()
        prepared = reconciler.prepare(obj, state)
        if isinstance(prepared, Waiting):
            return ObjectPlan(manifest, Outcome.WAITING, prepared.message, reason=Reason.REFERENCE_NOT_READY)
        if isinstance(prepared, list):
            return ObjectPlan(manifest, Outcome.BLOCKED, "; ".join(prepared), reason=Reason.INVALID_SPEC)
        try:
            client = await backend.client(obj.namespace, prepared.location)
            observed, owned = await reconciler.read(client, prepared)
        except RemoteError as error:
            reason, _ = reconciler.classify(error, 1)
            return ObjectPlan(manifest, Outcome.ERROR, describe_error(error), reason=reason.value)
        if not uid_known:
            reads = [v for v in [observed, *(owned or [])] if v is not None]
            uid = _inherited_uid(backend, object_ref(obj.namespace, obj.name), reads)
            if uid is not None:
                again = reconciler.prepare(replace(obj, uid=uid), state)
                assert isinstance(again, Prepared)  # the same spec prepared a moment ago
                prepared = again
        plan = reconciler.plan(prepared, observed, owned)
        self._record(backend, manifest, prepared, plan)
        planned = _object_plan(manifest, backend, prepared, plan)
        if plan.action is Action.CREATE and plan.version_name is None:
            await self._predict_name(backend, prepared, planned)
        return planned

    async def _predict_name(self, backend: AnyBackend, prepared: Prepared[Any], planned: ObjectPlan) -> None:
        """The name the registry would assign a create, when its planner can tell (PAI: from the
        model's versions, one more list call); unknown otherwise, or when the list fails."""
        planner = backend.planner
        if not isinstance(planner, AssignsKeys):
            return
        obj = prepared.obj
        try:
            group = backend.group_of(obj.spec, obj.status, await backend.resolve_identity(obj.namespace))
            existing = await backend.list_group(group) if group is not None else None
        except RemoteError:
            return
        if existing is None:
            return
        key = planner.assigned_key(existing)
        planned.version = backend.planner.ident(prepared.spec, key) or key
        planned.version_predicted = True
        planned.message = f"{planned.message}; {backend.names.registry} would name it {key}"

    def _record(
        self, backend: AnyBackend, manifest: Manifest, prepared: Prepared[Any], plan: Plan[Any, Any]
    ) -> None:
        """Tell the backends of the object as it will be once applied (its status as the pass
        would write it), so that objects referring to it (a version's modelRef) resolve."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        status = backend.status(
            raw_spec=prepared.obj.spec,
            previous=prepared.obj.status,
            generation=None,
            key=plan.version_name,
            location=prepared.location,
            observed=plan.observed,
            keep_at_provider=False,
            drift=[],
            conditions=merge_conditions([], conditions_for_plan(plan, None), now),
        )
        backend.watched(manifest.namespace, manifest.name, {**manifest.body, "status": status})


class _NoNamespaces:
    """The reconciler reads Namespace annotations only when deleting, which plan never does."""

    async def get(self, namespace: str) -> Mapping[str, str]:
        return {}


def _object_plan(
    manifest: Manifest, backend: AnyBackend, prepared: Prepared[Any], plan: Plan[Any, Any]
) -> ObjectPlan:
    outcome = _ACTIONS[plan.action]
    version = plan.version_name
    if version is not None:
        version = backend.planner.ident(prepared.spec, version) or version
    changes: list[fields.FieldChange] = []
    spec: dict[str, Any] = {}
    remote: dict[str, Any] | None = None
    if isinstance(prepared.spec, BaseModel):
        spec = fields.spec_fields(prepared.spec)
        if plan.observed is not None:
            prefix = backend.names.annotation_prefix
            remote = fields.remote_fields(type(prepared.spec), plan.observed, prefix)
            changes = fields.changes(plan.drift, spec, remote)
    message = plan.message
    if outcome is Outcome.CREATE and version is None:
        message += f" (its name is assigned by {backend.names.registry})"  # see ManifestPlanner._predict_name
    reason = plan.problem.reason.value if plan.problem else None
    return ObjectPlan(
        manifest,
        outcome,
        message,
        reason=reason,
        version=version,
        changes=changes,
        spec=spec,
        remote=remote,
        drift=list(plan.drift),
    )


async def plan_manifests(
    manifests: ManifestSet, registries: Registries, cluster: Cluster | None
) -> list[ObjectPlan]:
    """Every manifest's plan, in the order given. Objects that wait for another (a version for
    its Model) are planned again once every other object has been: a Model in the same manifests
    then resolves as it will be after the apply."""
    planner = ManifestPlanner(registries, await read_live(cluster, registries))
    plans = [await planner.plan(m) for m in manifests.objects]
    for index, planned in enumerate(plans):
        if planned.outcome is Outcome.WAITING:
            plans[index] = await planner.plan(planned.manifest)
    return plans


# --- reporting --------------------------------------------------------------------------------

_SYMBOLS = {
    Outcome.CREATE: ("+", "green"),
    Outcome.UPDATE: ("~", "yellow"),
    Outcome.ADOPT: ("*", "cyan"),
    Outcome.NONE: ("=", "dim"),
    Outcome.OBSERVE: ("?", "blue"),
    Outcome.PAUSED: ("-", "dim"),
    Outcome.WAITING: ("…", "magenta"),
    Outcome.BLOCKED: ("!", "bold red"),
    Outcome.ERROR: ("!", "bold red"),
}


def headline(planned: ObjectPlan) -> str:
    """`create`, `update`, `adopt: ownership labels only`, `blocked: AlreadyExists` ..."""
    if planned.ownership_only:
        return "adopt: ownership labels only"
    if planned.outcome in FAILURES or planned.outcome is Outcome.WAITING:
        return f"{planned.outcome.value}: {planned.reason}"
    return planned.outcome.value


def summary(plans: Sequence[ObjectPlan]) -> dict[str, int]:
    counts = Counter(p.outcome.value for p in plans)
    return {outcome.value: counts.get(outcome.value, 0) for outcome in Outcome}


def render(out: Output, plans: Sequence[ObjectPlan], notes: Sequence[str]) -> None:
    if out.is_json:
        out.json(
            {
                "summary": summary(plans),
                "changes": sum(p.changes_something for p in plans),
                "failures": sum(p.outcome in FAILURES for p in plans),
                "objects": [p.as_json() for p in plans],
                "ignored": list(notes),
            }
        )
        return
    for note in notes:
        out.line(f"# {note}", style="dim")
    for planned in plans:
        symbol, style = _SYMBOLS[planned.outcome]
        m = planned.manifest
        where = f" ({m.resource.registry} {planned.version})" if planned.version else ""
        out.line(
            f"{symbol} {m.resource.kind} {m.namespace}/{m.name}{where}: {headline(planned)}", style=style
        )
        out.line(f"    {planned.message}")
        for change in planned.changes:
            for line in fields.render_change(change):
                out.line(f"    {line}", style=_line_style(line))
    counts = summary(plans)
    parts = [f"{n} {outcome}" for outcome, n in counts.items() if n]
    out.line(f"Plan: {', '.join(parts) or 'nothing to plan'}.", style="bold")


def _line_style(line: str) -> str | None:
    stripped = line.lstrip()
    if stripped.startswith(("+", "@@")) and not stripped.startswith("+++"):
        return "green" if stripped.startswith("+") else "cyan"
    if stripped.startswith("-") and not stripped.startswith("---"):
        return "red"
    return "yellow" if stripped.startswith("~") else None


def exit_code(plans: Sequence[ObjectPlan], *, detailed: bool) -> int:
    """Terraform's: 1 when anything failed (a read, or a pass that would end blocked: apply
    would leave that object stuck), else with `--detailed-exitcode` 2 when applying changes
    something, 0 when it changes nothing (ownership marks alone change no field)."""
    if any(p.outcome in FAILURES for p in plans):
        return 1
    return 2 if detailed and any(p.changes_something for p in plans) else 0


# --- the command ------------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="show what applying manifests would do in the registry (read-only)",
        description=(
            "Show what applying ModelVersion and Model manifests (pai.mlops.dev, truefoundry.mlops.dev) "
            "would do: create, update field by field, adopt, or the condition the object would end "
            "in. Runs the operator's own planner with read-only registry calls; needs no cluster."
        ),
    )
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="FILE|DIR|-",
        help="manifests: a file, a directory (every .yaml/.yml/.json below it) or - for stdin; repeatable",
    )
    parser.add_argument("-n", "--namespace", help="namespace of manifests that name none (default: default)")
    parser.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 when nothing would change, 2 when something would, 1 on error (as Terraform's)",
    )
    add_output_argument(parser)
    add_cluster_arguments(parser)
    add_registry_arguments(parser)
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    quiet_logging()
    try:
        manifests = load_manifests(args.filename, namespace=args.namespace)
    except ManifestError as exc:
        return failed(str(exc))
    settings = registry_settings(args)
    cluster = connect_cluster(args)
    out = Output.from_arguments(args)

    async def planned() -> list[ObjectPlan]:
        namespaces = cluster.namespaces if cluster is not None else None
        async with open_registries(settings, namespaces) as registries:
            return await plan_manifests(manifests, registries, cluster)

    try:
        plans = asyncio.run(planned())
    except ClusterReadError as exc:
        return failed(str(exc))
    render(out, plans, manifests.notes)
    return exit_code(plans, detailed=args.detailed_exitcode)
