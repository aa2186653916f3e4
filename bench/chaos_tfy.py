"""Chaos suite, TrueFoundry: many truefoundry.mlops.dev ModelVersions converge through faults.

    .venv/bin/python -m bench.chaos_tfy [--objects 200] [--seed S] [--quick] [--out F | --no-write]

The scenario of bench/chaos.py (its moving parts are reused: control plane, supervisor, timings),
against tfy-emulator instead of PAI's: 20 % 503 (TEMPORARILY_UNAVAILABLE), 10 % 429
(REQUEST_LIMIT_EXCEEDED), lost answers after a committed write (commit-then-drop) on
ApplyModelVersion and DeleteModelVersion, added latency; the operator SIGKILLed every 15-30 s;
kube-apiserver and etcd restarted; a TrueFoundry outage (the emulator stopped, started again from
its state file). Every object is a model of its own with a server-assigned version number: a
`PUT model-versions` without `version` is not idempotent, so a lost create answer is exactly
where a duplicate would come from. A fifth of the objects is updated mid-run (description and
metadata). Measured, from the emulator's own state: duplicates (a model with more than one
version), missing versions, lost updates, and, after deleting everything under faults again,
orphans (versions left). The API key is searched for in every operator log, Event and status.

Writes its section of bench/RESULTS.md between the `chaos-truefoundry` markers.
`tests/integration/test_chaos_tfy.py` runs the same scenario at 20 objects with shorter timings.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kubernetes import client

from bench import chaos
from bench.harness import RESULTS, Cluster, cluster, utc_now, wait_until, write_section
from tests.support.emulator import DEFAULT_CREDENTIAL, EmulatorProcess
from tests.support.kube import REPO_ROOT, controlplane
from tests.support.operator import OperatorProcess
from tests.support.tfy_emulator import TfyAdminClient, TfyAdminError, TfyEmulatorProcess

GROUP, VERSION, PLURAL = "truefoundry.mlops.dev", "v1alpha1", "modelversions"
CRD_FILE = REPO_ROOT / "crds" / f"{GROUP}_{PLURAL}.yaml"  # PAI's comes with the cluster
NAMESPACE = "chaos-tfy"
LEASE = "pai-operator-chaos-tfy"
REPO = "chaos-repo"
API_KEY = "tfy-chaos-api-key-d0n0tl0g"
URI = "s3://chaos-bucket/models/"
OWNER_KEY = f"{GROUP}/owner"


@dataclass
class Report:
    scenario: chaos.Scenario
    converged: int = 0
    converge_after_faults: float = 0.0
    fault_phase: float = 0.0
    duplicates: list[str] = field(default_factory=list)
    created_then_deleted: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    lost_updates: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    not_deleted: int = 0
    delete_time: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    starts: int = 0
    disruptions: list[str] = field(default_factory=list)
    secret_hits: list[str] = field(default_factory=list)
    scanned: str = ""
    total: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            self.converged == self.scenario.objects
            and not self.duplicates
            and not self.missing
            and not self.lost_updates
            and not self.orphans
            and self.not_deleted == 0
            and not self.secret_hits
        )


class Objects:
    """truefoundry.mlops.dev ModelVersions, through an API server that may be restarting."""

    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.args = (GROUP, VERSION, NAMESPACE, PLURAL)

    def create(self, name: str, spec: dict[str, Any]) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelVersion",
            "metadata": {"name": name},
            "spec": spec,
        }

        def call() -> None:
            try:
                self.custom.create_namespaced_custom_object(*self.args, body, _request_timeout=15)
            except client.ApiException as exc:
                if exc.status != 409:  # a create whose answer was lost: it is there
                    raise

        chaos.retrying(f"create {name}", call)

    def patch(self, name: str, body: dict[str, Any]) -> None:
        chaos.retrying(
            f"patch {name}",
            lambda: self.custom.patch_namespaced_custom_object(*self.args, name, body, _request_timeout=15),
        )

    def delete(self, name: str) -> None:
        def call() -> None:
            try:
                self.custom.delete_namespaced_custom_object(*self.args, name, _request_timeout=15)
            except client.ApiException as exc:
                if exc.status != 404:
                    raise

        chaos.retrying(f"delete {name}", call)

    def list(self) -> list[dict[str, Any]]:
        found = chaos.retrying(
            "list", lambda: self.custom.list_namespaced_custom_object(*self.args, _request_timeout=60)
        )
        return list(found["items"])


class TrueFoundry:
    """tfy-emulator on a fixed port with a state file: stopped and started again at the address
    the operator knows, its journal kept across restarts."""

    def __init__(self, root: Path) -> None:
        self.port = controlplane.free_port()
        self.process = TfyEmulatorProcess(
            api_key=API_KEY,
            ml_repos=[REPO],
            state_file=root / "tfy-state.json",
            extra_args=("--port", str(self.port)),
        )
        self.journal: list[dict[str, Any]] = []
        self.faults: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin(self) -> TfyAdminClient:
        return self.process.admin

    def start(self) -> None:
        self.process.start()
        for rule in self.faults:
            self.admin.add_fault(**rule)

    def set_faults(self, rules: list[dict[str, Any]]) -> None:
        self.faults = rules
        self.admin.clear_faults()
        for rule in rules:
            self.admin.add_fault(**rule)

    def drain(self) -> list[dict[str, Any]]:
        entries = self.admin.journal()
        self.admin.clear_journal()
        self.journal += entries
        return entries

    def outage(self, seconds: float) -> None:
        self.drain()
        self.process.stop()
        time.sleep(seconds)
        self.start()

    def versions(self, model: str) -> list[dict[str, Any]]:
        try:
            return self.admin.versions(REPO, model)
        except TfyAdminError as exc:
            if exc.status == 404:  # never created
                return []
            raise


def fault_rules(s: chaos.Scenario) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [
        {
            "operation": "*",
            "mode": "latency",
            "latency_ms": s.latency_ms[0],
            "latency_ms_max": s.latency_ms[1],
        }
    ]
    for operation in ("ApplyModelVersion", "DeleteModelVersion"):
        rules.append({"operation": operation, "mode": "commit_then_drop", "error_rate": s.drop_rate})
    rules.append(
        {
            "operation": "*",
            "mode": "error",
            "error_rate": s.error_rate,
            "code": "TEMPORARILY_UNAVAILABLE",
            "http_status": 503,
        }
    )
    throttle = s.throttle_rate / max(1e-9, 1 - s.error_rate)  # of the calls the 503 rule let through
    rules.append(
        {
            "operation": "*",
            "mode": "error",
            "error_rate": min(1.0, throttle),
            "code": "REQUEST_LIMIT_EXCEEDED",
            "http_status": 429,
        }
    )
    return rules


@dataclass
class Env:
    cluster: Cluster
    tfy: TrueFoundry
    objects: Objects
    supervisor: chaos.Supervisor
    logs: Path

    @property
    def plane(self) -> controlplane.ControlPlane:
        return self.cluster.plane


@contextmanager
def environment(s: chaos.Scenario, rng: random.Random) -> Iterator[Env]:
    with cluster("tfy-chaos-", chaos.api_client) as found:
        tfy = TrueFoundry(found.root)
        pai = EmulatorProcess(models=())  # the operator always runs PAI's controller too
        supervisor: chaos.Supervisor | None = None
        logs = found.root / "operator-logs"
        logs.mkdir()
        try:
            chaos.log("starting the PAI and TrueFoundry emulators")
            pai.start()
            tfy.start()
            found.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
            found.kubectl("wait", "--for=condition=Established", f"crd/{PLURAL}.{GROUP}", "--timeout=60s")
            found.create_namespace(NAMESPACE)

            def make() -> OperatorProcess:
                args = list(s.operator_args) + (["--verbose"] if s.verbose_operator else [])
                return OperatorProcess(
                    found.plane.kubeconfig,
                    pai.url,
                    DEFAULT_CREDENTIAL,
                    namespaces=(NAMESPACE,),
                    extra_args=args,
                    extra_env={"PAI_OPERATOR_TRUEFOUNDRY_HOST": tfy.url, "TFY_API_KEY": API_KEY},
                    log_dir=logs,
                    test_tuning=False,
                    identity="chaos-tfy-operator",
                    lease_name=LEASE,
                )

            supervisor = chaos.Supervisor(make, random.Random(rng.random()), s.kill_every)
            supervisor.start()
            yield Env(found, tfy, Objects(found.api), supervisor, logs)
        finally:
            if supervisor is not None:
                supervisor.stop()
            tfy.process.stop()
            pai.stop()


def disrupt(env: Env, s: chaos.Scenario, report: Report) -> None:
    for what in ("kube-apiserver", "etcd"):
        time.sleep(s.disruption_gap)
        t0 = time.monotonic()
        chaos.log(f"restarting {what}")
        env.plane.restart(what)
        report.disruptions.append(f"{what} restarted (back in {time.monotonic() - t0:.1f} s)")
    time.sleep(s.disruption_gap)
    chaos.log(f"TrueFoundry outage: emulator stopped for {s.outage:.0f} s")
    t0 = time.monotonic()
    env.tfy.outage(s.outage)
    back = time.monotonic() - t0
    report.disruptions.append(
        f"TrueFoundry outage: emulator stopped, restarted from its state file after {back:.1f} s"
    )


def run(s: chaos.Scenario) -> Report:
    rng = random.Random(s.seed)
    report = Report(s)
    started = time.monotonic()
    names = [f"tfmv-{i:04d}" for i in range(s.objects)]
    models = {name: f"chaos-{i:04d}" for i, name in enumerate(names)}
    updated = set(rng.sample(names, round(s.objects * s.update_fraction)))
    specs = {
        name: {
            "mlRepo": REPO,
            "name": models[name],
            "source": {"type": "external", "uri": f"{URI}{name}/"},
            "description": "first",
            "metadata": {"object": name, "stage": "dev"},
        }
        for name in names
    }

    with environment(s, rng) as env:
        tfy, objects, supervisor = env.tfy, env.objects, env.supervisor
        tfy.drain()
        wait_until("first operator start", lambda: supervisor.starts > 0, 180)

        chaos.log(f"faults on; creating {s.objects} objects (every version number server-assigned)")
        tfy.set_faults(fault_rules(s))
        supervisor.killing.set()
        t_faults = time.monotonic()
        disruptions = threading.Thread(target=disrupt, args=(env, s, report), name="chaos-disruptions")
        disruptions.start()
        with ThreadPoolExecutor(s.workers) as pool:
            list(pool.map(lambda n: objects.create(n, specs[n]), names))
        chaos.log(f"created; updating {len(updated)} objects")
        for name in updated:
            specs[name]["description"] = "second"
            specs[name]["metadata"] = {"object": name, "stage": "prod"}
        with ThreadPoolExecutor(s.workers) as pool:
            change = {"description": "second"}
            list(
                pool.map(
                    lambda n: objects.patch(n, {"spec": {**change, "metadata": specs[n]["metadata"]}}),
                    sorted(updated),
                )
            )
        disruptions.join()
        chaos.log("faults off; waiting for convergence")
        tfy.set_faults([])
        supervisor.killing.clear()
        t_calm = time.monotonic()
        report.fault_phase = t_calm - t_faults

        last: list[dict[str, Any]] = []

        def all_settled() -> bool:
            nonlocal last
            last = objects.list()
            report.converged = sum(1 for obj in last if chaos.settled(obj))
            return report.converged == s.objects

        try:
            wait_until("every object Ready and Synced", all_settled, s.converge_timeout, 2.0)
        except TimeoutError as exc:
            chaos.log(str(exc))
        report.converge_after_faults = time.monotonic() - t_calm
        chaos.log(f"{report.converged}/{s.objects} settled after {report.converge_after_faults:.1f} s")

        journal = tfy.journal + tfy.drain()
        report.calls = Counter(entry["Operation"] for entry in journal)
        report.injected = Counter(
            f"{entry['Fault']} {entry['Status']}" for entry in journal if entry.get("Fault")
        )
        for name in names:
            versions = tfy.versions(models[name])
            live = [v for v in versions if v.get("DeletedAt") is None]
            if len(live) > 1:
                report.duplicates.append(f"{name}: {[v['manifest']['version'] for v in live]}")
            if len(versions) > len(live):
                report.created_then_deleted.append(name)
            if not live:
                report.missing.append(name)
                continue
            manifest = live[0]["manifest"]
            user = {k: v for k, v in manifest["metadata"].items() if k != OWNER_KEY}
            if manifest.get("description") != specs[name]["description"] or user != specs[name]["metadata"]:
                report.lost_updates.append(f"{name}: {manifest.get('description')!r} {user}")
        statuses = json.dumps([obj.get("status") for obj in last])

        chaos.log("deleting everything under faults")
        tfy.journal = []
        tfy.set_faults(fault_rules(s))
        supervisor.killing.set()
        t_delete = time.monotonic()
        with ThreadPoolExecutor(s.workers) as pool:
            list(pool.map(objects.delete, names))
        time.sleep(s.delete_fault_time if s.delete_fault_time is not None else min(report.fault_phase, 60.0))
        tfy.set_faults([])
        supervisor.killing.clear()

        confirmed: list[str] = []

        def all_gone() -> bool:
            left = objects.list()
            report.not_deleted = len(left)
            # At scale the deletion breaker holds the bulk deletion: confirm it, as a person would.
            chaos.confirm_held(
                env.cluster.api, left, confirmed, group=GROUP, lease=LEASE, namespace=NAMESPACE
            )
            return report.not_deleted == 0

        try:
            wait_until("every object deleted", all_gone, s.delete_timeout, 2.0)
        except TimeoutError as exc:
            chaos.log(str(exc))
        report.delete_time = time.monotonic() - t_delete
        for name in names:
            left = [v for v in tfy.versions(models[name]) if v.get("DeletedAt") is None]
            report.orphans += [f"{models[name]}:{v['manifest']['version']}" for v in left]

        events = chaos.retrying(
            "events",
            lambda: client.CoreV1Api(env.cluster.api).list_namespaced_event(NAMESPACE, _request_timeout=60),
        )
        log_files = sorted(env.logs.glob("*.log"))
        report.secret_hits = [f"log {p.name}" for p in log_files if API_KEY in p.read_text(errors="replace")]
        messages = [f"{e.reason} {e.message}" for e in events.items]
        report.secret_hits += [f"event: {m[:80]}" for m in messages if API_KEY in m]
        if API_KEY in statuses:
            report.secret_hits.append("a status")
        report.scanned = f"{len(log_files)} operator logs, {len(messages)} events, {len(last)} statuses"
        report.kills, report.starts = supervisor.kills, supervisor.starts
    report.total = time.monotonic() - started
    return report


def render(r: Report) -> str:
    s, n = r.scenario, r.scenario.objects

    def listed(items: list[str]) -> str:
        return str(len(items)) + (
            f" ({'; '.join(items[:5])}{' ...' if len(items) > 5 else ''})" if items else ""
        )

    rows = [
        ("converged (Ready and Synced at the latest generation)", f"{r.converged}/{n}", "100 %"),
        ("time to converge once the faults stopped", f"{r.converge_after_faults:.1f} s", ""),
        ("fault phase (creates, updates, restarts, outage)", f"{r.fault_phase:.1f} s", ""),
        ("duplicates (a model with more than one live version)", listed(r.duplicates), "0"),
        ("models with a version created and deleted again", listed(r.created_then_deleted), "0"),
        ("versions missing", listed(r.missing), "0"),
        ("lost updates (remote description or metadata differ from spec)", listed(r.lost_updates), "0"),
        ("orphans after deleting everything under faults", listed(r.orphans), "0"),
        ("objects not deleted", str(r.not_deleted), "0"),
        ("time until every object was deleted", f"{r.delete_time:.1f} s", ""),
        (
            "TrueFoundry calls, create + update phase",
            ", ".join(f"{k} {v}" for k, v in r.calls.most_common()),
            "",
        ),
        (
            "injected faults seen by the operator",
            ", ".join(f"{k} {v}" for k, v in r.injected.most_common()),
            "",
        ),
        ("operator SIGKILLs / starts", f"{r.kills} / {r.starts}", ""),
        ("API key found in logs, events, statuses", listed(r.secret_hits) + f" (scanned {r.scanned})", "0"),
    ]
    lines = [
        "<!-- chaos-truefoundry:start -->",
        f"## Chaos, TrueFoundry: {n} objects under faults (seed {s.seed})\n",
        f"Date: {utc_now()}. Reproduce: `{s.replay}` (bench/chaos_tfy.py; a 20-object version runs "
        "in `make test`, tests/integration/test_chaos_tfy.py).\n",
        f"Faults: {s.error_rate:.0%} 503, {s.throttle_rate:.0%} 429, {s.drop_rate:.0%} commit-then-drop on "
        f"ApplyModelVersion and DeleteModelVersion, latency {s.latency_ms[0]:.0f}-{s.latency_ms[1]:.0f} ms; "
        f"operator SIGKILLed every {s.kill_every[0]:.0f}-{s.kill_every[1]:.0f} s; "
        f"{'; '.join(r.disruptions) or 'no restarts'}. Every version number server-assigned; "
        f"{round(n * s.update_fraction)} objects updated mid-run (description and metadata).\n",
        "| measure | value | target |",
        "|---|---|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in rows),
        "",
        f"Result: {'PASS' if r.ok else 'FAIL'}. Total run time {r.total:.0f} s.",
        "<!-- chaos-truefoundry:end -->",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--seed", type=int, default=None, help="replay a run (default: random, printed)")
    parser.add_argument("--outage", type=float, default=30.0, help="TrueFoundry outage in seconds")
    parser.add_argument("--quick", action="store_true", help="test-scale timings")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true", help="print the report only")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    quick = "--quick " if args.quick else ""
    replay = f"python -m bench.chaos_tfy {quick}--objects {args.objects} --seed {seed}"
    print(f"chaos seed {seed} (replay: {replay})", flush=True)
    base = (
        chaos.quick(seed, args.objects)
        if args.quick
        else chaos.Scenario(objects=args.objects, seed=seed, outage=args.outage)
    )
    report = run(replace(base, replay=replay))
    section = render(report)
    print(section)
    if not args.no_write:
        write_section(args.out, "chaos-truefoundry", section)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
