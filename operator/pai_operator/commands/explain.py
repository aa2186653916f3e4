"""`pai-operator explain NAMESPACE/NAME`: one screen on why an object is where it is. Its
conditions with their ages, its last Events, the remote version beside its spec (drift marked),
and what the next pass would do (the operator's own pass, read-only: `preview.ManifestPlanner`) and when
it is due.

When: the engine keeps its due times in memory only, so they are derived here from what status
and the settings say, with the engine's rules (`engine.py`): a spec newer than the last pass or a
pending reconcile request is handled at once; a transient failure is retried with backoff
(at most --backoff-cap); a missing model every --model-missing-retry; an object in sync is
observed by its group's list once per --resync-interval (+-10%); a terminal condition (InvalidSpec,
Conflict, ...) is looked at again at that pace, though nothing changes until the spec or the
registry does. Pass the operator's own timing flags (or PAI_OPERATOR_* variables) to see its
figures; the defaults are `run`'s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pai_operator.backend import Resource
from pai_operator.commands.context import (
    Cluster,
    ClusterReadError,
    add_cluster_arguments,
    add_registry_arguments,
    connect_cluster,
    failed,
    open_registries,
    quiet_logging,
    registry_settings,
)
from pai_operator.commands.fields import FieldChange, render_change
from pai_operator.commands.manifests import Manifest, served_resources
from pai_operator.commands.output import Output, add_output_argument
from pai_operator.commands.preview import CHANGES, ManifestPlanner, ObjectPlan, Outcome, headline, read_live
from pai_operator.core_settings import CoreSettings
from pai_operator.reconciler import LAST_HANDLED_RECONCILE_AT
from pai_operator.registry import OperatorSettings
from pai_operator.settings import OPTIONS, add_run_arguments
from pai_operator.vocabulary import Reason

EVENTS_SHOWN = 10
TIMING = ("resync_interval", "backoff_cap", "model_missing_retry")

_RETRIED = {Reason.RECONCILE_ERROR.value}
_TERMINAL = {
    Reason.INVALID_SPEC.value,
    Reason.ALREADY_EXISTS.value,
    Reason.CONFLICT.value,
    Reason.IMMUTABLE_FIELD_MISMATCH.value,
    Reason.AUTH_FAILED.value,
    Reason.NO_CREDENTIALS.value,
    Reason.RECONCILE_PAUSED.value,
}


def kinds() -> dict[str, Resource]:
    """Names `--kind` accepts: a short name (pmv, tfmv), `kind.group`, `plural.group`, and a
    kind, singular or plural where only one registry serves it (Model)."""
    names: dict[str, Resource] = {}
    ambiguous: set[str] = set()
    for resource in served_resources().values():
        for name in (resource.kind, resource.singular, resource.plural):
            key = name.lower()
            if key in names and names[key] is not resource:
                ambiguous.add(key)
            names[key] = resource
        for name in (*resource.short_names, f"{resource.kind}.{resource.group}", resource.crd_name):
            names[name.lower()] = resource
    for key in ambiguous:
        names.pop(key)
    return names


def age(timestamp: str | None, now: datetime) -> str:
    """`45s`, `12m`, `3h`, `5d`, as kubectl shows ages; `?` when unknown."""
    if not timestamp:
        return "?"
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "?"
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _seconds(value: float) -> str:
    return f"{int(value)}s" if value < 120 else f"{round(value / 60)}m"


@dataclass(frozen=True)
class Due:
    when: str  # "now", "within 10m", ...
    why: str


def next_due(body: Mapping[str, Any], resource: Resource, settings: CoreSettings) -> Due:
    """When the operator passes the object next, by the engine's rules (see the module doc)."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    annotations = meta.get("annotations") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, Mapping)}
    synced = conditions.get("Synced") or {}
    resync = f"within {_seconds(settings.resync_interval * 1.1)}"
    if meta.get("deletionTimestamp"):
        return Due("now", "the object is being deleted: deletion passes run until the finalizer goes")
    if status.get("observedGeneration") != meta.get("generation"):
        return Due("now", "the spec changed since the last pass (metadata.generation is newer)")
    requested = annotations.get(resource.reconcile_request_annotation)
    if requested is not None and requested != status.get(LAST_HANDLED_RECONCILE_AT):
        return Due("now", f"a reconcile was requested ({resource.reconcile_request_annotation})")
    reason = synced.get("reason")
    if reason in _RETRIED:
        return Due(
            f"within {_seconds(settings.backoff_cap)}",
            "retrying a transient failure with exponential backoff",
        )
    if reason == Reason.MODEL_NOT_FOUND.value:
        return Due(f"every {_seconds(settings.model_missing_retry)}", "the model does not exist (yet)")
    if reason == Reason.REFERENCE_NOT_READY.value:
        return Due("when the referenced object is Ready", f"else {resync} (the resync pace)")
    if reason in _TERMINAL:
        return Due(resync, f"{reason}: nothing changes until the spec, the registry or access does")
    return Due(
        resync,
        "in sync: observed by one list of its group per resync interval; a full pass only when "
        "the listed version calls for one",
    )


# --- gathering --------------------------------------------------------------------------------


async def explain(
    cluster: Cluster, resource: Resource, namespace: str, name: str, settings: OperatorSettings
) -> dict[str, Any] | None:
    body = await cluster.get(resource, namespace, name)
    if body is None:
        return None
    meta = body.get("metadata") or {}
    events = await cluster.events(namespace, str(meta.get("uid")))
    async with open_registries(settings, cluster.namespaces) as registries:
        planner = ManifestPlanner(registries, await read_live(cluster, registries))
        planned = await planner.plan(Manifest(resource, body, "cluster"))
    now = datetime.now(UTC)
    status = body.get("status") or {}
    due = next_due(body, resource, settings)
    if planned.outcome in CHANGES and due.when != "now":
        due = Due(due.when, f"{due.why}; the drift shown is repaired then")
    return {
        "object": {
            "apiVersion": resource.api_version,
            "kind": resource.kind,
            "namespace": namespace,
            "name": name,
            "uid": meta.get("uid"),
            "generation": meta.get("generation"),
            "observedGeneration": status.get("observedGeneration"),
            "paused": (meta.get("annotations") or {}).get(resource.paused_annotation) == "true",
            "deleting": bool(meta.get("deletionTimestamp")),
        },
        "conditions": [
            {**c, "age": age(c.get("lastTransitionTime"), now)}
            for c in status.get("conditions") or []
            if isinstance(c, Mapping)
        ],
        "events": [_event(e, now) for e in events[-EVENTS_SHOWN:]],
        "fields": _side_by_side(planned),
        "next": {**planned.as_json(), "headline": headline(planned), "due": due.when, "why": due.why},
    }


def _event(event: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    last = event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
    return {
        "type": event.get("type"),
        "reason": event.get("reason"),
        "message": event.get("message"),
        "count": event.get("count") or 1,
        "lastTimestamp": last,
        "age": age(last, now),
    }


def _side_by_side(planned: ObjectPlan) -> list[dict[str, Any]]:
    """Every field set in spec or present remotely (policies aside): spec, remote, and whether
    it drifted as the planner judges (`drift`); unset in spec means unmanaged."""
    policy = {"deletionPolicy", "managementPolicy", "adoptionPolicy"}
    remote = planned.remote or {}
    names = [n for n in planned.spec if n not in policy]
    names += [n for n in remote if n not in planned.spec and remote[n] not in (None, {}, [])]
    rows = []
    for name in names:
        managed = name in planned.spec
        rows.append(
            {
                "field": name,
                "spec": planned.spec.get(name),
                "remote": remote.get(name),
                "remoteHasField": name in remote,  # a version carries no modelId: not a difference
                "drift": name in planned.drift,
                "managed": managed,
            }
        )
    return rows


# --- reporting --------------------------------------------------------------------------------


def _short(value: Any, width: int = 60) -> str:
    text = "(unset)" if value is None else value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def render(out: Output, report: Mapping[str, Any]) -> None:
    if out.is_json:
        out.json(report)
        return
    obj, nxt = report["object"], report["next"]
    flags = [f for f in ("paused", "deleting") if obj[f]]
    out.line(
        f"{obj['kind']} {obj['namespace']}/{obj['name']} ({obj['apiVersion']}), generation "
        f"{obj['generation']}, last pass saw {obj['observedGeneration']}"
        + (f" [{', '.join(flags)}]" if flags else ""),
        style="bold",
    )
    if nxt.get("version"):
        out.line(f"Remote version: {nxt['registry']} {nxt['version']}")
    out.line()
    out.line("Conditions:", style="bold")
    conditions = report["conditions"]
    rows = [[c["type"], c["status"], c.get("reason", ""), c["age"], c.get("message", "")] for c in conditions]
    # Ready/Synced False is the trouble; Reconciling/Stalled True would be, but then Ready says so.
    styles = [
        None if c["status"] == "True" or c["type"] in ("Reconciling", "Stalled") else "red"
        for c in conditions
    ]
    if rows:
        out.table(["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"], rows, styles)
    else:
        out.line("  none yet: the operator has not passed this object")
    out.line()
    out.line("Spec beside the remote version (≠ drift, as the operator judges it):", style="bold")
    if report["fields"] and nxt["version"] is not None:
        fields = report["fields"]
        rows = [
            [
                "≠" if f["drift"] else "",
                f["field"],
                _short(f["spec"]) if f["managed"] else "(unmanaged)",
                _short(f["remote"]) if f["remoteHasField"] else "",
            ]
            for f in fields
        ]
        out.table(["", "FIELD", "SPEC", "REMOTE"], rows, ["yellow" if f["drift"] else None for f in fields])
    else:
        out.line("  no remote version was read")
    out.line()
    out.line(f"Next pass: {nxt['headline']}", style="bold")
    out.line(f"  {nxt['message']}")
    for change in nxt["changes"]:
        for line in render_change(FieldChange(change["field"], change["old"], change["new"])):
            out.line(f"  {line}")
    out.line(f"  due {nxt['due']}: {nxt['why']}")
    out.line()
    out.line(f"Events (last {EVENTS_SHOWN}):", style="bold")
    if report["events"]:
        out.table(
            ["AGE", "TYPE", "REASON", "MESSAGE"],
            [[e["age"], str(e["type"]), str(e["reason"]), str(e["message"])] for e in report["events"]],
            ["yellow" if e["type"] == "Warning" else None for e in report["events"]],
        )
    else:
        out.line("  none (Events expire after an hour by default)")


# --- the command ------------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="why an object is where it is: conditions, events, drift, the next pass (read-only)",
        description=(
            "Explain one object: its conditions with ages, its last Events, the remote version beside "
            "its spec (drift marked) and what the operator's next pass would do and when. Reads the "
            "cluster and the registry; writes nothing."
        ),
    )
    parser.add_argument("object", metavar="NAMESPACE/NAME")
    parser.add_argument(
        "-k",
        "--kind",
        default="pmv",
        metavar="KIND",
        help="pmv (PAI ModelVersion, the default), pmm or model (PAI Model), tfmv (TrueFoundry ModelVersion)",
    )
    add_output_argument(parser)
    add_cluster_arguments(parser, required=True)
    add_registry_arguments(parser)
    timing = parser.add_argument_group("the operator's timing (for when the next pass is due)")
    add_run_arguments(timing, [o for o in OPTIONS if o.name in TIMING])
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    quiet_logging()
    resource = kinds().get(str(args.kind).lower())
    if resource is None:
        return failed(f"unknown kind {args.kind!r}; one of {', '.join(sorted(kinds()))}")
    namespace, _, name = str(args.object).partition("/")
    if not namespace or not name:
        return failed(f"{args.object!r}: expected NAMESPACE/NAME")
    settings = registry_settings(args)
    cluster = connect_cluster(args, required=True)
    assert cluster is not None
    try:
        report = asyncio.run(explain(cluster, resource, namespace, name, settings))
    except ClusterReadError as exc:
        return failed(str(exc))
    if report is None:
        return failed(f"{resource.kind} {namespace}/{name} not found")
    render(Output.from_arguments(args), report)
    return 1 if report["next"]["action"] == Outcome.ERROR.value else 0


__all__ = ["Due", "age", "explain", "kinds", "next_due", "register"]
