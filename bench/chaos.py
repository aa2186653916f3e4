"""Chaos suite: many ModelVersions converge through what real clusters and PAI do to them.

    .venv/bin/python -m bench.chaos [--objects 1000] [--seed S] [--out bench/RESULTS.md | --no-write]

Everything is real and runs on loopback as processes: etcd + kube-apiserver (bench/harness.py),
the PAI emulator with a state file, the operator (leader election on, as shipped). The seed is
printed first; the same seed replays the same plan (which objects get server-assigned names and
updates, fault dice in the emulator, kill times), though process timing is never identical.

The scenario:

1. Faults on: 20 % ServiceUnavailable (503), 10 % throttling (429), lost responses after the
   write was committed (commit-then-drop) on create, update, label and delete calls, added latency.
   The operator is SIGKILLed every 15-30 s and started again (a supervisor also restarts it when
   it exits by itself, e.g. after losing its Lease while the API server was away).
2. N objects are created (a quarter with server-assigned names), one PAI model each, so every PAI
   call is attributed to its object through the journal's ModelId. Meanwhile kube-apiserver is
   restarted, then etcd, then PAI has an outage: the emulator is stopped for `--outage` seconds and
   started again from its state file.
3. Updates to a fifth of the objects mid-run (a new description, and a label whose value changes).
4. Faults stop (no more injected errors or kills). Measured: the time until every object is Ready
   and Synced at its latest generation; then, from PAI itself, duplicates (a model holding more
   than one version), missing versions and lost updates (remote description or labels differ
   from spec); PAI attempts per object.
5. Everything is deleted under faults again (kills included); once every object is gone and the
   faults stop, orphans are the versions left in PAI.
6. The access-key secret is searched for in every operator log, every Event and every status.

Writes its section of bench/RESULTS.md between the `chaos` markers (the rest of the file is kept),
and its curves (objects settled and present, operator kills, PAI calls by outcome) to
chaos.json in bench/data/ (chaos-quick.json with `--quick`) for bench/plots.py.
`tests/integration/test_chaos.py` runs the same scenario at 50 objects with shorter timings.
"""

from __future__ import annotations

import copy
import dataclasses
import random
import shlex
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client

from bench.chaos_harness import (
    Chaos,
    Objects,
    Restartable,
    Scenario,
    Write,
    api_client,
    arguments,
    closing_rows,
    fault_rules,
    injected,
    listed,
    log,
    opening_rows,
    publish,
    quick,
    scenario_of,
    section,
    settled,
    supervised_operator,
)
from bench.chaos_harness import Report as BaseReport
from bench.harness import cluster, utc_now
from bench.timeline import DATA, Timeline
from tests.support.emulator import DEFAULT_CREDENTIAL, EmulatorProcess
from tests.support.kube import controlplane
from tests.support.operator import GROUP

__all__ = ["Report", "Scenario", "environment", "quick", "render", "run"]

URI = "oss://chaos-bucket.oss-cn-hangzhou-internal.aliyuncs.com/models/chaos/"
NAMESPACE = "chaos"
LEASE = "pai-operator-chaos"
# PAI's write operations on versions: a lost answer after the commit is where duplicates come from.
VERSION_WRITES = (
    "CreateModelVersion",
    "UpdateModelVersion",
    "CreateModelVersionLabels",
    "DeleteModelVersionLabels",
    "DeleteModelVersion",
)
DEFAULT_DIALECT = "the defaults (numeric not-found codes, status 400, label replace, no page cap)"


@dataclass
class Report(BaseReport):
    attempts: list[int] = field(default_factory=list)
    delete_attempts: list[int] = field(default_factory=list)
    timeline: Timeline = field(default_factory=lambda: Timeline("chaos", ""))


CENSUS_UNITS = {"settled": "objects", "present": "objects", "kills": "SIGKILLs so far"}


def census(run_: Chaos, objects: Objects) -> dict[str, float] | None:
    """Objects Ready and Synced at their latest generation, objects still there, operator kills
    so far; None while the API server does not answer (it is restarted on purpose)."""
    try:
        listing: dict[str, Any] = objects.custom.list_namespaced_custom_object(
            *objects.args, _request_timeout=10
        )
    except (client.ApiException, urllib3.exceptions.HTTPError, OSError):
        return None
    items = listing["items"]
    return {
        "settled": sum(1 for obj in items if settled(obj)),
        "present": len(items),
        "kills": run_.supervisor.kills,
    }


def call_outcome(entry: Mapping[str, Any]) -> str:
    """What became of one PAI call: answered, an injected fault, or refused by the quota."""
    if entry.get("Fault"):
        return "injected fault"
    if entry.get("Status") == 429:
        return "throttled by quota"
    return "answered" if entry.get("Status") == 200 else f"{entry.get('Status')} {entry.get('Code')}"


def pai_emulator(root: Path, emulator_args: tuple[str, ...] = ()) -> Restartable:
    """The PAI emulator on a fixed port with a state file, so that an outage can stop it and
    start it again at the address the operator knows."""
    port = controlplane.free_port()
    process = EmulatorProcess(
        models=(), state_file=root / "pai-state.json", extra_args=("--port", str(port), *emulator_args)
    )
    return Restartable(process, port)


@contextmanager
def environment(s: Scenario, report: BaseReport, rng: random.Random, prefix: str = "pai-chaos-",
                namespace: str = NAMESPACE, lease: str = LEASE,
                writes: tuple[str, ...] = VERSION_WRITES) -> Iterator[Chaos]:  # fmt: skip
    """A control plane, the PAI emulator and the supervised operator watching `namespace`."""
    with cluster(prefix, api_client) as found:
        pai = pai_emulator(found.root, s.emulator_args)
        logs = found.root / "operator-logs"
        logs.mkdir()
        try:
            log("starting the PAI emulator")
            pai.start()
            found.create_namespace(namespace)
            with supervised_operator(
                found,
                s,
                rng,
                logs,
                endpoint=pai.url,
                namespace=namespace,
                identity="chaos-operator",
                lease=lease,
            ) as supervisor:
                rules = fault_rules(s, writes, "ServiceUnavailable", "Throttling.User")
                yield Chaos(s, report, found, pai, "PAI", rules, supervisor, logs)
        finally:
            pai.process.stop()


def run(s: Scenario) -> Report:
    rng = random.Random(s.seed)
    timeline = Timeline(
        "chaos", f"{s.objects} objects, seed {s.seed}", objects=s.objects, outage_s=s.outage,
        kill_every=f"{s.kill_every[0]:g}-{s.kill_every[1]:g} s",
    )  # fmt: skip
    report = Report(s, timeline=timeline)
    started = time.monotonic()
    names = [f"mv-{i:04d}" for i in range(s.objects)]
    models = {name: f"model-chaos-{i:04d}" for i, name in enumerate(names)}
    assigned = set(rng.sample(names, round(s.objects * s.assigned_fraction)))
    updated = set(rng.sample(names, round(s.objects * s.update_fraction)))
    specs: dict[str, dict[str, Any]] = {}
    for name in names:
        spec: dict[str, Any] = {
            "modelId": models[name],
            "uri": URI + name + "/",
            "versionDescription": "first",
            "labels": {"stage": "dev", "object": name},
        }
        if name not in assigned:
            spec["versionName"] = "1.0.0"
        specs[name] = spec

    with environment(s, report, rng) as run_, timeline.sampling(every=2.0):
        pai = run_.service
        objects = Objects(run_.cluster.api, GROUP, NAMESPACE)
        run_.mark = timeline.mark
        timeline.watch(lambda: census(run_, objects), CENSUS_UNITS)
        for model in models.values():
            pai.admin.add_model(model)

        log(f"{len(assigned)} objects with server-assigned names")
        creates = [Write(objects, n, copy.deepcopy(specs[n])) for n in names]
        for name in updated:
            specs[name]["versionDescription"] = "second"
            specs[name]["labels"] = {"stage": "prod", "object": name}
        change = {"versionDescription": "second"}
        updates = [
            Write(objects, n, {"spec": {**change, "labels": specs[n]["labels"]}}) for n in sorted(updated)
        ]
        run_.under_faults(creates, updates)
        last = run_.converge(objects.list)

        journal = pai.journal + pai.drain()
        per_model = Counter(entry.get("ModelId") for entry in journal)
        report.attempts = [per_model.get(models[name], 0) for name in names]
        report.injected = injected(journal)
        for name in names:
            versions = pai.admin.versions(models[name])
            if len(versions) > 1:
                report.duplicates.append(f"{name}: {[v['VersionName'] for v in versions]}")
            if not versions:
                report.missing.append(name)
                continue
            remote = versions[0]
            pairs = [(item["Key"], item["Value"]) for item in remote.get("Labels", [])]
            labels = dict(pairs)
            user = {k: v for k, v in labels.items() if not k.startswith("pai.mlops.dev/")}
            want = specs[name]
            # A key carried twice (a service that appends on an existing key) counts too: a dict
            # of the labels would hide it.
            duplicated = len(pairs) != len(labels)
            if (
                remote.get("VersionDescription") != want["versionDescription"]
                or user != want["labels"]
                or duplicated
            ):
                report.lost_updates.append(f"{name}: {remote.get('VersionDescription')!r} {pairs}")

        run_.delete_all([(objects, names)], group=GROUP, lease=LEASE, namespace=NAMESPACE)
        delete_journal = pai.journal + pai.drain()
        per_model = Counter(entry.get("ModelId") for entry in delete_journal)
        report.delete_attempts = [per_model.get(models[name], 0) for name in names]
        for name in names:
            left = pai.admin.versions(models[name])
            report.orphans += [f"{models[name]}:{v['VersionName']}" for v in left]
        run_.scan_secrets(DEFAULT_CREDENTIAL.access_key_secret, NAMESPACE, last)
        timeline.add_calls(journal + delete_journal, bucket=5.0, by=call_outcome, prefix="pai:")
    report.total = time.monotonic() - started
    return report


# --- Report -------------------------------------------------------------------------------------


def render(r: Report) -> str:
    s = r.scenario
    n = s.objects

    def spread(values: list[int]) -> str:
        return f"mean {statistics.fmean(values):.1f}, max {max(values)}" if values else "n/a"

    rows = [
        *opening_rows(r),
        ("duplicates (a model with more than one version)", listed(r.duplicates), "0"),
        ("versions missing", listed(r.missing), "0"),
        ("lost updates (remote description or labels differ from spec)", listed(r.lost_updates), "0"),
        ("orphans after deleting everything under faults", listed(r.orphans), "0"),
        ("objects not deleted", str(r.not_deleted), "0"),
        ("time until every object was deleted", f"{r.delete_time:.1f} s", ""),
        ("deletion breaker batches confirmed", str(len(r.confirmed_batches)), ""),
        ("PAI attempts per object, create + update phase", spread(r.attempts), "bounded"),
        ("PAI attempts per object, deletion phase", spread(r.delete_attempts), "bounded"),
        *closing_rows(r, "access-key secret"),
    ]
    dialect = f' --emulator-args "{" ".join(s.emulator_args)}"' if s.emulator_args else ""
    replay = s.replay or f"make chaos CHAOS_ARGS='--objects {n} --seed {s.seed}{dialect}'"
    head = [
        f"## Chaos: {n} objects under faults (seed {s.seed})\n",
        f"Date: {utc_now()}. Reproduce: "
        f"`{replay}` (bench/chaos.py; a "
        "50-object version runs in `make test`, tests/integration/test_chaos.py).\n",
        f"Faults: {s.error_rate:.0%} 503, {s.throttle_rate:.0%} throttling (429), {s.drop_rate:.0%} "
        "commit-then-drop on every write operation (create, update, labels, delete), latency "
        f"{s.latency_ms[0]:.0f}-{s.latency_ms[1]:.0f} ms; operator SIGKILLed every "
        f"{s.kill_every[0]:.0f}-{s.kill_every[1]:.0f} s; {'; '.join(r.disruptions) or 'no restarts'}. "
        f"{round(n * s.assigned_fraction)} objects with server-assigned names, "
        f"{round(n * s.update_fraction)} updated mid-run (description and a label value). "
        "Operator flags: " + " ".join(s.operator_args) + "; PAI quotas at the emulator defaults; "
        f"emulator dialect: {' '.join(s.emulator_args) or DEFAULT_DIALECT}.\n",
    ]
    return section("chaos", head, rows, r)


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__.splitlines()[0], objects=1000, service="PAI")
    parser.add_argument(
        "--emulator-args",
        default="",
        help="extra pai-emulator flags, e.g. '--label-upsert append --max-page-size 10'",
    )
    args = parser.parse_args(argv)
    emulator_args = tuple(shlex.split(args.emulator_args))
    extra = [f"--emulator-args {shlex.quote(args.emulator_args)}"] if emulator_args else []
    scenario = dataclasses.replace(scenario_of(args, "bench.chaos", *extra), emulator_args=emulator_args)
    report = run(scenario)
    if not args.no_write:
        report.timeline.save(DATA / ("chaos-quick.json" if args.quick else "chaos.json"))
    return publish(render(report), args, "chaos", report.ok)


if __name__ == "__main__":
    sys.exit(main())
