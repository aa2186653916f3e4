"""Chaos suite, Models: PAI Models with their versions (by `modelRef`) converge through faults.

    .venv/bin/python -m bench.chaos_models [--objects 200] [--versions 10] [--seed S] [--quick]
                                           [--out bench/RESULTS.md | --no-write]

The scenario of bench/chaos.py (its moving parts are shared in bench/chaos_harness.py) for the
`Model` kind (issue 23): `--objects` Models in one PAI workspace, each with `--versions`
ModelVersions that reference it by name (a quarter with server-assigned version names), all
applied at once while faults are on: 503 and 429 answers, lost answers after a committed write
(commit-then-drop) on every model and version write (`CreateModel` assigns the ID, so a lost
answer is exactly where a duplicate model would come from), added latency, the operator
SIGKILLed, kube-apiserver and etcd restarted, a PAI outage. A fifth of the Models is updated
mid-run (description and a label value). Everything is then deleted at once, as `kubectl delete
-f` of the whole directory or a namespace deletion does: versions must go first (PAI's
DeleteModel would take them with it), nothing may stay behind.

Measured from PAI itself (the emulator's state; the ownership labels say which object a remote
model or version belongs to): duplicates (a Model or version object with more than one remote
model or version), missing ones, lost updates, orphans (remote models and versions owned by no
object at convergence, and anything left after the deletion), faults injected, time.

Writes its section of bench/RESULTS.md between the `chaos-models` markers.
`tests/integration/test_chaos_models.py` runs the same scenario at 5 Models x 3 versions.
"""

from __future__ import annotations

import copy
import random
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from bench import chaos, chaos_harness
from bench.chaos_harness import Objects, Write, injected, listed, log
from bench.harness import utc_now
from tests.support.emulator import DEFAULT_CREDENTIAL
from tests.support.kube import REPO_ROOT
from tests.support.operator import GROUP

NAMESPACE = "chaos-models"
LEASE = "pai-operator-chaos-models"
WORKSPACE = "ws-chaos-models"
MODEL_CRD = REPO_ROOT / "crds" / "pai.mlops.dev_models.yaml"
URI = "oss://chaos-bucket.oss-cn-hangzhou-internal.aliyuncs.com/models/chaos-models/"
OWNER = f"{GROUP}/owner-uid"
# Every PAI write the two kinds make: each may lose its answer after the commit.
WRITES = (
    "CreateModel",
    "UpdateModel",
    "CreateModelLabels",
    "DeleteModelLabels",
    "DeleteModel",
    *chaos.VERSION_WRITES,
)


@dataclass
class Report(chaos_harness.Report):
    versions_per_model: int = 10
    remote_models: int = 0
    remote_versions: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    delete_order: list[str] = field(default_factory=list)  # models deleted in PAI with versions left
    tree: dict[str, set[str]] = field(default_factory=dict)  # remote model ID -> version names

    @property
    def expected(self) -> int:
        return self.scenario.objects * (1 + self.versions_per_model)

    @property
    def ok(self) -> bool:
        return super().ok and not self.delete_order


def owner(item: dict[str, Any]) -> str | None:
    return next((label["Value"] for label in item.get("Labels") or [] if label["Key"] == OWNER), None)


def run(s: chaos_harness.Scenario, versions_per_model: int = 10) -> Report:
    rng = random.Random(s.seed)
    report = Report(s, versions_per_model=versions_per_model)
    started = time.monotonic()
    model_names = [f"cm-{i:04d}" for i in range(s.objects)]
    version_names = {m: [f"{m}-v{j:02d}" for j in range(1, versions_per_model + 1)] for m in model_names}
    all_versions = [v for m in model_names for v in version_names[m]]
    assigned = set(rng.sample(all_versions, round(len(all_versions) * s.assigned_fraction)))
    updated = set(rng.sample(model_names, round(s.objects * s.update_fraction)))
    model_specs: dict[str, dict[str, Any]] = {
        m: {
            "modelName": f"chaos_{m}",
            "workspaceId": WORKSPACE,
            "modelDescription": "first",
            "labels": {"stage": "dev", "object": m},
        }
        for m in model_names
    }
    version_specs: dict[str, dict[str, Any]] = {}
    for m in model_names:
        for j, v in enumerate(version_names[m], start=1):
            spec: dict[str, Any] = {"modelRef": {"name": m}, "uri": f"{URI}{v}/"}
            if v not in assigned:
                spec["versionName"] = f"{j}.0.0"
            version_specs[v] = spec

    with chaos.environment(
        s, report, rng, prefix="pai-chaos-models-", namespace=NAMESPACE, lease=LEASE, writes=WRITES
    ) as run_:
        pai = run_.service
        run_.cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(MODEL_CRD))
        run_.cluster.kubectl(
            "wait", "--for=condition=Established", "crd/models.pai.mlops.dev", "--timeout=60s"
        )
        models = Objects(run_.cluster.api, GROUP, NAMESPACE, "models", "Model")
        versions = Objects(run_.cluster.api, GROUP, NAMESPACE)
        log(f"{len(model_names)} Models, {len(all_versions)} versions ({len(assigned)} server-named)")
        # As `kubectl apply -f` of a directory: a Model, then its versions, model after model.
        creates = [
            w
            for m in model_names
            for w in (
                Write(models, m, copy.deepcopy(model_specs[m])),
                *(Write(versions, v, version_specs[v]) for v in version_names[m]),
            )
        ]
        for m in updated:
            model_specs[m]["modelDescription"] = "second"
            model_specs[m]["labels"] = {"stage": "prod", "object": m}
        change = {"modelDescription": "second"}
        updates = [
            Write(models, m, {"spec": {**change, "labels": model_specs[m]["labels"]}})
            for m in sorted(updated)
        ]
        run_.under_faults(creates, updates)
        last = run_.converge(lambda: models.list() + versions.list())

        journal = pai.journal + pai.drain()
        report.calls = Counter(entry["Operation"] for entry in journal)
        report.injected = injected(journal)
        check_converged(report, pai.admin, last, model_specs, version_names)

        run_.delete_all(
            [(versions, all_versions), (models, model_names)], group=GROUP, lease=LEASE, namespace=NAMESPACE
        )
        delete_journal = pai.journal + pai.drain()
        report.delete_order = models_deleted_before_their_versions(delete_journal, report.tree)
        for remote in [m for m in pai.admin.models() if m.get("WorkspaceId") == WORKSPACE]:
            left = pai.admin.versions(remote["ModelId"])
            report.orphans += [f"left: {remote['ModelId']}"] + [
                f"left: {remote['ModelId']}:{v['VersionName']}" for v in left
            ]
        run_.scan_secrets(DEFAULT_CREDENTIAL.access_key_secret, NAMESPACE, last)
    report.total = time.monotonic() - started
    return report


def check_converged(
    report: Report,
    admin: Any,
    last: list[dict[str, Any]],
    model_specs: dict[str, dict[str, Any]],
    version_names: dict[str, list[str]],
) -> None:
    """Duplicates, missing ones, lost updates and orphans, from PAI's state against the objects."""
    uid_of = {(o["kind"], o["metadata"]["name"]): o["metadata"]["uid"] for o in last}
    model_object = {uid_of.get(("Model", m)): m for m in model_specs}
    version_object = {uid_of.get(("ModelVersion", v)): v for vs in version_names.values() for v in vs}
    remote_models = [m for m in admin.models() if m.get("WorkspaceId") == WORKSPACE]
    report.remote_models = len(remote_models)
    by_owner: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for remote in remote_models:
        by_owner[owner(remote)].append(remote)
    versions_by_owner: dict[str | None, list[str]] = defaultdict(list)
    for remote in remote_models:
        remote_versions = admin.versions(remote["ModelId"])
        report.remote_versions += len(remote_versions)
        report.tree[remote["ModelId"]] = {v["VersionName"] for v in remote_versions}
        for version in remote_versions:
            name = f"{remote['ModelId']}:{version['VersionName']}"
            versions_by_owner[owner(version)].append(name)
            if owner(version) not in version_object:
                report.orphans.append(f"unowned version {name}")
    for uid, remotes in by_owner.items():
        if uid not in model_object:
            report.orphans += [f"unowned model {r['ModelId']}" for r in remotes]
    for uid, m in model_object.items():
        remotes = by_owner.get(uid, [])
        if len(remotes) > 1:
            report.duplicates.append(f"Model {m}: {[r['ModelId'] for r in remotes]}")
        if not remotes:
            report.missing.append(f"Model {m}")
            continue
        remote, want = remotes[0], model_specs[m]
        user = {label["Key"]: label["Value"] for label in remote.get("Labels") or []}
        user = {k: v for k, v in user.items() if not k.startswith(f"{GROUP}/")}
        if remote.get("ModelDescription") != want["modelDescription"] or user != want["labels"]:
            report.lost_updates.append(f"Model {m}: {remote.get('ModelDescription')!r} {user}")
    for uid, v in version_object.items():
        found = versions_by_owner.get(uid, [])
        if len(found) > 1:
            report.duplicates.append(f"version {v}: {found}")
        if not found:
            report.missing.append(f"version {v}")


def models_deleted_before_their_versions(
    journal: list[dict[str, Any]], tree: dict[str, set[str]]
) -> list[str]:
    """Models (of `tree`: model ID -> its version names at convergence) deleted in PAI while a
    version of theirs had not been deleted: PAI's cascade took the version, not its object. A
    write whose answer was dropped after the commit counts as done."""
    deleted: set[tuple[str, str]] = set()
    early = []
    for entry in journal:
        done = entry.get("Status") == 200 or entry.get("Fault") == "commit_then_drop"
        model = entry.get("ModelId") or ""
        if entry["Operation"] == "DeleteModelVersion" and done:
            deleted.add((model, entry.get("VersionName") or ""))
        if entry["Operation"] == "DeleteModel" and done:
            pending = sorted(v for v in tree.get(model, ()) if (model, v) not in deleted)
            if pending:
                early.append(f"{model} ({pending[:3]})")
    return early


def render(r: Report) -> str:
    s, n, k = r.scenario, r.scenario.objects, r.versions_per_model
    rows = [
        *chaos_harness.opening_rows(r),
        (
            "remote models / versions at convergence",
            f"{r.remote_models} / {r.remote_versions}",
            f"{n} / {n * k}",
        ),
        ("duplicates (an object with more than one remote model or version)", listed(r.duplicates), "0"),
        ("missing (an object with no remote model or version)", listed(r.missing), "0"),
        ("lost updates (remote description or labels differ from spec)", listed(r.lost_updates), "0"),
        (
            "orphans (owned by no object at convergence; left after deleting everything)",
            listed(r.orphans),
            "0",
        ),
        ("models deleted in PAI before their versions", listed(r.delete_order), "0"),
        ("objects not deleted", str(r.not_deleted), "0"),
        ("time until every object was deleted", f"{r.delete_time:.1f} s", ""),
        ("deletion breaker batches confirmed", str(len(r.confirmed_batches)), ""),
        ("PAI calls, create + update phase", ", ".join(f"{a} {b}" for a, b in r.calls.most_common()), ""),
        *chaos_harness.closing_rows(r, "access-key secret"),
    ]
    head = [
        f"## Chaos, Models: {n} Models with {k} versions each under faults (seed {s.seed})\n",
        f"Date: {utc_now()}. Reproduce: `{s.replay}` (bench/chaos_models.py; 5 Models x 3 versions run "
        "in `make test`, tests/integration/test_chaos_models.py).\n",
        f"Faults: {s.error_rate:.0%} 503, {s.throttle_rate:.0%} throttling (429), {s.drop_rate:.0%} "
        "commit-then-drop on every model and version write, latency "
        f"{s.latency_ms[0]:.0f}-{s.latency_ms[1]:.0f} ms; operator SIGKILLed every "
        f"{s.kill_every[0]:.0f}-{s.kill_every[1]:.0f} s; {'; '.join(r.disruptions) or 'no restarts'}. "
        f"Versions by `modelRef`, {round(n * k * s.assigned_fraction)} with server-assigned names; "
        f"{round(n * s.update_fraction)} Models updated mid-run (description and a label value); "
        "everything applied at once and deleted at once (versions and Models together). "
        "Operator flags: " + " ".join(s.operator_args) + ".\n",
    ]
    return chaos_harness.section("chaos-models", head, rows, r)


def main(argv: list[str] | None = None) -> int:
    parser = chaos_harness.arguments(__doc__.splitlines()[0], objects=200, service="PAI")
    parser.add_argument("--versions", type=int, default=10, help="versions per Model (default 10)")
    args = parser.parse_args(argv)
    scenario = chaos_harness.scenario_of(args, "bench.chaos_models", f"--versions {args.versions}")
    report = run(scenario, versions_per_model=args.versions)
    return chaos_harness.publish(render(report), args, "chaos-models", report.ok)


if __name__ == "__main__":
    sys.exit(main())
