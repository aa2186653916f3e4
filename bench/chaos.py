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

import argparse
import dataclasses
import json
import random
import shlex
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config

from bench.harness import RESULTS, Cluster, cluster, utc_now, wait_until, write_section
from bench.timeline import DATA, Timeline
from tests.support.emulator import DEFAULT_CREDENTIAL, AdminClient, EmulatorProcess
from tests.support.kube import controlplane
from tests.support.operator import GROUP, PLURAL, VERSION, OperatorProcess

URI = "oss://chaos-bucket.oss-cn-hangzhou-internal.aliyuncs.com/models/chaos/"
NAMESPACE = "chaos"
LEASE = "pai-operator-chaos"
T = TypeVar("T")


@dataclass(frozen=True)
class Scenario:
    objects: int = 1000
    seed: int = 0
    assigned_fraction: float = 0.25
    update_fraction: float = 0.2
    error_rate: float = 0.2
    throttle_rate: float = 0.1
    drop_rate: float = 0.05  # per write operation: committed, then the connection is reset
    latency_ms: tuple[float, float] = (5.0, 60.0)
    kill_every: tuple[float, float] = (15.0, 30.0)
    disruption_gap: float = 25.0  # seconds between the apiserver restart, etcd restart, PAI outage
    outage: float = 30.0
    delete_fault_time: float | None = (
        None  # faults during deletion; None: as long as the fault phase, <= 60 s
    )
    converge_timeout: float = 1200.0
    delete_timeout: float = 1200.0
    workers: int = 8  # client threads creating, updating and deleting objects
    operator_args: tuple[str, ...] = (
        "--backoff-base", "0.5", "--backoff-cap", "8", "--resync-interval", "60",
        "--model-missing-retry", "30",
    )  # fmt: skip
    verbose_operator: bool = False
    emulator_args: tuple[str, ...] = ()  # e.g. ("--label-upsert", "append", "--max-page-size", "10")
    replay: str = ""  # the command line that replays this run, for the report


QUICK_ARGS = ("--backoff-base", "0.5", "--backoff-cap", "4", "--resync-interval", "20",
              "--deletion-breaker-threshold", "10", "--deletion-breaker-fraction", "0")  # fmt: skip


DEFAULT_DIALECT = "the defaults (numeric not-found codes, status 400, label replace, no page cap)"


def quick(seed: int, objects: int = 50) -> Scenario:
    """The scenario at test scale (tests/integration/test_chaos.py, `--quick`): the same faults
    and disruptions, shorter intervals, so that it fits in about two minutes."""
    return Scenario(
        objects=objects,
        seed=seed,
        kill_every=(4.0, 8.0),
        disruption_gap=5.0,
        outage=5.0,
        delete_fault_time=8.0,
        converge_timeout=180.0,
        delete_timeout=180.0,
        # The deletion breaker trips at this size too (at 1,000 objects the defaults do): held
        # deletions must complete once confirmed, through kills and faults.
        operator_args=QUICK_ARGS,
        verbose_operator=True,  # the secret check then covers debug logging too
        replay=f"python -m bench.chaos --quick --objects {objects} --seed {seed}",
    )


@dataclass
class Report:
    scenario: Scenario
    converged: int = 0
    converge_after_faults: float = 0.0
    fault_phase: float = 0.0
    duplicates: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    lost_updates: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    not_deleted: int = 0
    delete_time: float = 0.0
    attempts: list[int] = field(default_factory=list)
    injected: Counter[str] = field(default_factory=Counter)
    delete_attempts: list[int] = field(default_factory=list)
    confirmed_batches: list[str] = field(default_factory=list)  # deletion breaker batches confirmed
    kills: int = 0
    starts: int = 0
    disruptions: list[str] = field(default_factory=list)
    secret_hits: list[str] = field(default_factory=list)
    scanned: str = ""
    total: float = 0.0
    timeline: Timeline = field(default_factory=lambda: Timeline("chaos", ""))

    @property
    def ok(self) -> bool:
        n = self.scenario.objects
        return (
            self.converged == n
            and not self.duplicates
            and not self.missing
            and not self.lost_updates
            and not self.orphans
            and self.not_deleted == 0
            and not self.secret_hits
        )


def log(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- Kubernetes access that survives the API server going away ------------------------------

_TRANSIENT = (urllib3.exceptions.HTTPError, OSError)


def retrying(what: str, call: Callable[[], T], timeout: float = 600.0) -> T:
    """`call` until it succeeds; connection errors and 5xx/429 from a restarting API server are
    retried, other API errors raised."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except client.ApiException as exc:
            if exc.status not in (0, 429, 500, 503, 504) or time.monotonic() > deadline:
                log(f"giving up on {what}: {exc.status} {exc.reason}")
                raise
        except _TRANSIENT:
            if time.monotonic() > deadline:
                log(f"giving up on {what}: the API server stayed away")
                raise
        time.sleep(0.5)


def api_client(kubeconfig: Path) -> client.ApiClient:
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)  # type: ignore[no-untyped-call]
    cfg.connection_pool_maxsize = 32
    cfg.retries = False
    return client.ApiClient(cfg)


class Objects:
    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)

    def create(self, name: str, spec: dict[str, Any]) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelVersion",
            "metadata": {"name": name},
            "spec": spec,
        }

        def call() -> None:
            try:
                self.custom.create_namespaced_custom_object(
                    GROUP, VERSION, NAMESPACE, PLURAL, body, _request_timeout=15
                )
            except client.ApiException as exc:
                if exc.status != 409:  # a create whose answer was lost: it is there
                    raise

        retrying(f"create {name}", call)

    def patch(self, name: str, body: dict[str, Any]) -> None:
        retrying(
            f"patch {name}",
            lambda: self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL, name, body, _request_timeout=15
            ),
        )

    def delete(self, name: str) -> None:
        def call() -> None:
            try:
                self.custom.delete_namespaced_custom_object(
                    GROUP, VERSION, NAMESPACE, PLURAL, name, _request_timeout=15
                )
            except client.ApiException as exc:
                if exc.status != 404:
                    raise

        retrying(f"delete {name}", call)

    def list(self) -> list[dict[str, Any]]:
        result = retrying(
            "list",
            lambda: self.custom.list_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL, _request_timeout=60
            ),
        )
        return list(result["items"])


def settled(obj: dict[str, Any]) -> bool:
    """Ready and Synced, both about the latest generation."""
    generation = obj["metadata"].get("generation")
    conditions = {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}
    return all(
        conditions.get(t, {}).get("status") == "True"
        and conditions[t].get("observedGeneration") == generation
        for t in ("Ready", "Synced")
    )


# --- The moving parts ---------------------------------------------------------------------------


class Supervisor(threading.Thread):
    """Keeps one operator running; while `killing` is set, SIGKILLs it every `kill_every` s."""

    def __init__(
        self, make: Callable[[], OperatorProcess], rng: random.Random, kill_every: tuple[float, float]
    ):
        super().__init__(name="chaos-supervisor", daemon=True)
        self.make = make
        self.rng = rng
        self.kill_every = kill_every
        self.killing = threading.Event()
        self.stopping = threading.Event()
        self.current: OperatorProcess | None = None
        self.all: list[OperatorProcess] = []
        self.kills = 0
        self.starts = 0

    def run(self) -> None:
        next_kill = time.monotonic() + self.rng.uniform(*self.kill_every)
        while not self.stopping.is_set():
            proc = self.current
            if proc is None or proc.proc is None or proc.proc.poll() is not None:
                candidate = self.make()
                self.all.append(candidate)
                try:
                    candidate.start(timeout=120)
                    self.current = candidate
                    self.starts += 1
                except (RuntimeError, TimeoutError) as exc:
                    log(f"operator did not start ({str(exc).splitlines()[0]}); again")
                    time.sleep(1)
                continue
            if self.killing.is_set() and time.monotonic() >= next_kill:
                proc.kill()
                self.kills += 1
                next_kill = time.monotonic() + self.rng.uniform(*self.kill_every)
            elif not self.killing.is_set():
                next_kill = max(next_kill, time.monotonic() + self.kill_every[0])
            time.sleep(0.2)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=180)
        for proc in self.all:
            proc.stop()


class Pai:
    """The emulator as a process on a fixed port, so that it can be stopped and started again
    from its state file at the address the operator knows."""

    def __init__(self, root: Path, seed: int, emulator_args: tuple[str, ...] = ()) -> None:
        self.port = controlplane.free_port()
        self.process = EmulatorProcess(
            models=(),
            state_file=root / "pai-state.json",
            extra_args=("--port", str(self.port), *emulator_args),
        )
        self.seed = seed
        self.journal: list[dict[str, Any]] = []
        self.faults: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin(self) -> AdminClient:
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
        """The journal so far (kept across restarts; the emulator's own starts empty)."""
        entries = self.admin.journal()
        self.admin.clear_journal()
        self.journal += entries
        return entries

    def outage(self, seconds: float) -> None:
        self.drain()
        self.process.stop()
        time.sleep(seconds)
        self.start()


def fault_rules(s: Scenario) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [
        {
            "operation": "*",
            "mode": "latency",
            "latency_ms": s.latency_ms[0],
            "latency_ms_max": s.latency_ms[1],
        },
    ]
    for operation in (
        "CreateModelVersion",
        "UpdateModelVersion",
        "CreateModelVersionLabels",
        "DeleteModelVersionLabels",
        "DeleteModelVersion",
    ):
        rules.append({"operation": operation, "mode": "commit_then_drop", "error_rate": s.drop_rate})
    rules.append(
        {
            "operation": "*",
            "mode": "error",
            "error_rate": s.error_rate,
            "code": "ServiceUnavailable",
            "http_status": 503,
        }
    )
    # Conditional on the 503 rule not firing: 0.1 / 0.8 of the rest makes 10 % of all calls.
    throttle = s.throttle_rate / max(1e-9, 1 - s.error_rate)
    rules.append(
        {
            "operation": "*",
            "mode": "error",
            "error_rate": min(1.0, throttle),
            "code": "Throttling.User",
            "http_status": 429,
        }
    )
    return rules


@dataclass
class Env:
    cluster: Cluster
    pai: Pai
    objects: Objects
    supervisor: Supervisor
    logs: Path


@contextmanager
def environment(s: Scenario, rng: random.Random) -> Iterator[Env]:
    with cluster("pai-chaos-", api_client) as found:
        pai = Pai(found.root, s.seed, s.emulator_args)
        supervisor: Supervisor | None = None
        logs = found.root / "operator-logs"
        logs.mkdir()
        try:
            log("starting the PAI emulator")
            pai.start()
            found.create_namespace(NAMESPACE)

            def make() -> OperatorProcess:
                args = list(s.operator_args) + (["--verbose"] if s.verbose_operator else [])
                return OperatorProcess(
                    found.plane.kubeconfig,
                    pai.url,
                    DEFAULT_CREDENTIAL,
                    namespaces=(NAMESPACE,),
                    extra_args=args,
                    log_dir=logs,
                    test_tuning=False,
                    # The same identity: a restarted process renews its Lease at once.
                    identity="chaos-operator",
                    lease_name=LEASE,
                )

            supervisor = Supervisor(make, random.Random(rng.random()), s.kill_every)
            supervisor.start()
            yield Env(found, pai, Objects(found.api), supervisor, logs)
        finally:
            if supervisor is not None:
                supervisor.stop()
            pai.process.stop()


# --- The scenario -------------------------------------------------------------------------------


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

    with environment(s, rng) as env, timeline.sampling(every=2.0):
        timeline.watch(lambda: census(env), CENSUS_UNITS)
        pai, objects, supervisor = env.pai, env.objects, env.supervisor
        for model in models.values():
            pai.admin.add_model(model)
        pai.drain()
        wait_until("first operator start", lambda: supervisor.starts > 0, 180)

        log(f"faults on; creating {s.objects} objects ({len(assigned)} with server-assigned names)")
        pai.set_faults(fault_rules(s))
        supervisor.killing.set()
        t_faults = time.monotonic()
        timeline.mark("faults on")
        disruptions = threading.Thread(target=disrupt, args=(env, s, report), name="chaos-disruptions")
        disruptions.start()
        with ThreadPoolExecutor(s.workers) as pool:
            list(pool.map(lambda n: objects.create(n, specs[n]), names))
        log(f"created; updating {len(updated)} objects")
        for name in updated:
            specs[name]["versionDescription"] = "second"
            specs[name]["labels"] = {"stage": "prod", "object": name}
        with ThreadPoolExecutor(s.workers) as pool:
            list(
                pool.map(
                    lambda n: objects.patch(
                        n, {"spec": {"versionDescription": "second", "labels": specs[n]["labels"]}}
                    ),
                    sorted(updated),
                )
            )
        disruptions.join()
        log("faults off; waiting for convergence")
        pai.set_faults([])
        supervisor.killing.clear()
        t_calm = time.monotonic()
        timeline.mark("faults off")
        report.fault_phase = t_calm - t_faults

        last: list[dict[str, Any]] = []

        def all_settled() -> bool:
            nonlocal last
            last = objects.list()
            report.converged = sum(1 for obj in last if settled(obj))
            return report.converged == s.objects

        try:
            wait_until(
                "every object Ready and Synced at its latest generation", all_settled, s.converge_timeout, 2.0
            )
        except TimeoutError as exc:
            log(str(exc))
        report.converge_after_faults = time.monotonic() - t_calm
        log(f"{report.converged}/{s.objects} settled after {report.converge_after_faults:.1f} s")

        journal = pai.journal + pai.drain()
        per_model = Counter(entry.get("ModelId") for entry in journal)
        report.attempts = [per_model.get(models[name], 0) for name in names]
        report.injected = Counter(
            f"{entry['Fault']} {entry.get('Code') or ''}".strip() for entry in journal if entry.get("Fault")
        )
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
        statuses = json.dumps([obj.get("status") for obj in last])

        log("deleting everything under faults")
        pai.journal = []
        pai.set_faults(fault_rules(s))
        supervisor.killing.set()
        t_delete = time.monotonic()
        timeline.mark("delete all, faults on")
        with ThreadPoolExecutor(s.workers) as pool:
            list(pool.map(objects.delete, names))
        # Faults for a while during deletion (as long as the creation phase had them, at most),
        # then calm, then wait for every finalizer.
        time.sleep(s.delete_fault_time if s.delete_fault_time is not None else min(report.fault_phase, 60.0))
        pai.set_faults([])
        supervisor.killing.clear()
        timeline.mark("faults off")

        def all_gone() -> bool:
            left = objects.list()
            report.not_deleted = len(left)
            confirm_held(env.cluster.api, left, report.confirmed_batches)
            return report.not_deleted == 0

        try:
            wait_until("every object deleted", all_gone, s.delete_timeout, 2.0)
        except TimeoutError as exc:
            log(str(exc))
        report.delete_time = time.monotonic() - t_delete
        events = retrying(
            "events",
            lambda: client.CoreV1Api(env.cluster.api).list_namespaced_event(NAMESPACE, _request_timeout=60),
        )
        delete_journal = pai.journal + pai.drain()
        per_model = Counter(entry.get("ModelId") for entry in delete_journal)
        report.delete_attempts = [per_model.get(models[name], 0) for name in names]
        for name in names:
            left = pai.admin.versions(models[name])
            report.orphans += [f"{models[name]}:{v['VersionName']}" for v in left]

        secret = DEFAULT_CREDENTIAL.access_key_secret
        log_files = sorted(env.logs.glob("*.log"))
        for path in log_files:
            if secret in path.read_text(errors="replace"):
                report.secret_hits.append(f"log {path.name}")
        messages = [f"{e.reason} {e.message}" for e in events.items]
        report.secret_hits += [f"event: {m[:80]}" for m in messages if secret in m]
        if secret in statuses:
            report.secret_hits.append("a status")
        report.scanned = f"{len(log_files)} operator logs, {len(messages)} events, {len(last)} statuses"
        report.kills, report.starts = supervisor.kills, supervisor.starts
        timeline.add_calls(journal + delete_journal, bucket=5.0, by=call_outcome, prefix="pai:")
    report.total = time.monotonic() - started
    return report


def disrupt(env: Env, s: Scenario, report: Report) -> None:
    """kube-apiserver restart, etcd restart, PAI outage, `disruption_gap` seconds apart."""
    for what in ("kube-apiserver", "etcd"):
        time.sleep(s.disruption_gap)
        t0 = time.monotonic()
        log(f"restarting {what}")
        report.timeline.mark(f"{what} restart")
        env.cluster.plane.restart(what)
        report.disruptions.append(f"{what} restarted (back in {time.monotonic() - t0:.1f} s)")
    time.sleep(s.disruption_gap)
    log(f"PAI outage: emulator stopped for {s.outage:.0f} s")
    report.timeline.mark("PAI outage")
    t0 = time.monotonic()
    env.pai.outage(s.outage)
    report.disruptions.append(
        f"PAI outage: emulator stopped, restarted from its state file after {time.monotonic() - t0:.1f} s"
    )


CENSUS_UNITS = {"settled": "objects", "present": "objects", "kills": "SIGKILLs so far"}


def census(env: Env) -> dict[str, float] | None:
    """Objects Ready and Synced at their latest generation, objects still there, operator kills
    so far; None while the API server does not answer (it is restarted on purpose)."""
    try:
        listing: dict[str, Any] = env.objects.custom.list_namespaced_custom_object(  # type: ignore[assignment]
            GROUP, VERSION, NAMESPACE, PLURAL, _request_timeout=10
        )
    except (client.ApiException, *_TRANSIENT):
        return None
    items = listing["items"]
    return {
        "settled": sum(1 for obj in items if settled(obj)),
        "present": len(items),
        "kills": env.supervisor.kills,
    }


def call_outcome(entry: Mapping[str, Any]) -> str:
    """What became of one PAI call: answered, an injected fault, or refused by the quota."""
    if entry.get("Fault"):
        return "injected fault"
    if entry.get("Status") == 429:
        return "throttled by quota"
    return "answered" if entry.get("Status") == 200 else f"{entry.get('Status')} {entry.get('Code')}"


def confirm_held(
    api: client.ApiClient,
    left: list[dict[str, Any]],
    confirmed: list[str],
    *,
    group: str = GROUP,
    lease: str = LEASE,
    namespace: str = NAMESPACE,
) -> None:
    """What a person does when the deletion breaker holds a bulk deletion: confirm the batch the
    DeletionHeld message names, on the operator's Lease (each batch once)."""
    for obj in left:
        for cond in (obj.get("status") or {}).get("conditions") or []:
            if cond.get("reason") != "DeletionHeld" or "confirm batch " not in cond.get("message", ""):
                continue
            batch = cond["message"].split("confirm batch ", 1)[1].split(":", 1)[0]
            if batch in confirmed:
                continue
            body = {"metadata": {"annotations": {f"{group}/confirm-deletions": batch}}}
            retrying(
                "confirm",
                lambda body=body: client.CoordinationV1Api(api).patch_namespaced_lease(
                    lease, namespace, body, _request_timeout=15
                ),
            )
            confirmed.append(batch)
            log(f"confirmed deletion batch {batch}")


# --- Report -------------------------------------------------------------------------------------


def render(r: Report) -> str:
    s = r.scenario
    n = s.objects

    def spread(values: list[int]) -> str:
        return f"mean {statistics.fmean(values):.1f}, max {max(values)}" if values else "n/a"

    def listed(items: list[str]) -> str:
        return str(len(items)) + (
            f" ({'; '.join(items[:5])}{' ...' if len(items) > 5 else ''})" if items else ""
        )

    rows = [
        ("converged (Ready and Synced at the latest generation)", f"{r.converged}/{n}", "100 %"),
        ("time to converge once the faults stopped", f"{r.converge_after_faults:.1f} s", ""),
        ("fault phase (creates, updates, restarts, outage)", f"{r.fault_phase:.1f} s", ""),
        ("duplicates (a model with more than one version)", listed(r.duplicates), "0"),
        ("versions missing", listed(r.missing), "0"),
        ("lost updates (remote description or labels differ from spec)", listed(r.lost_updates), "0"),
        ("orphans after deleting everything under faults", listed(r.orphans), "0"),
        ("objects not deleted", str(r.not_deleted), "0"),
        ("time until every object was deleted", f"{r.delete_time:.1f} s", ""),
        ("deletion breaker batches confirmed", str(len(r.confirmed_batches)), ""),
        ("PAI attempts per object, create + update phase", spread(r.attempts), "bounded"),
        ("PAI attempts per object, deletion phase", spread(r.delete_attempts), "bounded"),
        (
            "injected faults seen by the operator",
            ", ".join(f"{k} {v}" for k, v in r.injected.most_common()),
            "",
        ),
        ("operator SIGKILLs / starts", f"{r.kills} / {r.starts}", ""),
        (
            "access-key secret found in logs, events, statuses",
            listed(r.secret_hits) + f" (scanned {r.scanned})",
            "0",
        ),
    ]
    dialect = f' --emulator-args "{" ".join(s.emulator_args)}"' if s.emulator_args else ""
    replay = s.replay or f"make chaos CHAOS_ARGS='--objects {n} --seed {s.seed}{dialect}'"
    lines = [
        "<!-- chaos:start -->",
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
        "| measure | value | target |",
        "|---|---|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in rows),
        "",
        f"Result: {'PASS' if r.ok else 'FAIL'}. Total run time {r.total:.0f} s.",
        "<!-- chaos:end -->",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=None, help="replay a run (default: random, printed)")
    parser.add_argument("--outage", type=float, default=30.0, help="PAI outage in seconds (default 30)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true", help="print the report only")
    parser.add_argument("--quick", action="store_true", help="test-scale timings (as in make test)")
    parser.add_argument(
        "--emulator-args",
        default="",
        help="extra pai-emulator flags, e.g. '--label-upsert append --max-page-size 10'",
    )
    args = parser.parse_args(argv)
    emulator_args = tuple(shlex.split(args.emulator_args))
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    replay = f"python -m bench.chaos {'--quick ' if args.quick else ''}--objects {args.objects} --seed {seed}"
    if emulator_args:
        replay += f" --emulator-args {shlex.quote(args.emulator_args)}"
    print(f"chaos seed {seed} (replay: {replay})", flush=True)
    scenario = (
        quick(seed, args.objects)
        if args.quick
        else Scenario(objects=args.objects, seed=seed, outage=args.outage)
    )
    scenario = dataclasses.replace(scenario, emulator_args=emulator_args)
    report = run(scenario)
    section = render(report)
    print(section)
    if not args.no_write:
        write_section(args.out, "chaos", section)
        report.timeline.save(DATA / ("chaos-quick.json" if args.quick else "chaos.json"))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
