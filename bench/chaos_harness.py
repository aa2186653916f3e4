"""What the chaos suites share (bench/chaos.py for PAI versions, bench/chaos_models.py for PAI
Models with their versions, bench/chaos_tfy.py for TrueFoundry): the scenario and its timings,
Kubernetes access that survives the API server going away, the supervisor that SIGKILLs and
restarts the operator, an emulator that can be stopped and started again from its state file,
the fault rules, the disruptions, and the phases every suite runs (faults on while creating and
updating, convergence once they stop, deletion under faults, the secret scan).

The suites differ only in what they create and how they read the remote side back.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

import urllib3
from kubernetes import client, config

from bench.harness import RESULTS, Cluster, wait_until, write_section
from tests.support.emulator import DEFAULT_CREDENTIAL
from tests.support.operator import OperatorProcess

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


def quick(seed: int, objects: int = 50) -> Scenario:
    """The scenario at test scale (tests/integration/test_chaos*.py, `--quick`): the same faults
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
    """The figures every suite has; a suite adds its own fields in a subclass."""

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
    injected: Counter[str] = field(default_factory=Counter)
    confirmed_batches: list[str] = field(default_factory=list)  # deletion breaker batches confirmed
    kills: int = 0
    starts: int = 0
    disruptions: list[str] = field(default_factory=list)
    secret_hits: list[str] = field(default_factory=list)
    scanned: str = ""
    total: float = 0.0

    @property
    def expected(self) -> int:
        """How many objects must converge."""
        return self.scenario.objects

    @property
    def ok(self) -> bool:
        return (
            self.converged == self.expected
            and not self.duplicates
            and not self.missing
            and not self.lost_updates
            and not self.orphans
            and self.not_deleted == 0
            and not self.secret_hits
        )


def log(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def listed(items: list[str]) -> str:
    """A count, and the first few for the report."""
    return str(len(items)) + (f" ({'; '.join(items[:5])}{' ...' if len(items) > 5 else ''})" if items else "")


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
    """Custom objects of one kind in one namespace, through an API server that may be restarting."""

    def __init__(
        self, api: client.ApiClient, group: str, namespace: str, plural: str = "modelversions",
        kind: str = "ModelVersion", version: str = "v1alpha1",
    ) -> None:  # fmt: skip
        self.custom = client.CustomObjectsApi(api)
        self.api_version = f"{group}/{version}"
        self.kind = kind
        self.args = (group, version, namespace, plural)

    def create(self, name: str, spec: dict[str, Any]) -> None:
        body = {"apiVersion": self.api_version, "kind": self.kind, "metadata": {"name": name}, "spec": spec}

        def call() -> None:
            try:
                self.custom.create_namespaced_custom_object(*self.args, body, _request_timeout=15)
            except client.ApiException as exc:
                if exc.status != 409:  # a create whose answer was lost: it is there
                    raise

        retrying(f"create {name}", call)

    def patch(self, name: str, body: dict[str, Any]) -> None:
        retrying(
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

        retrying(f"delete {name}", call)

    def list(self) -> list[dict[str, Any]]:
        found = retrying(
            "list", lambda: self.custom.list_namespaced_custom_object(*self.args, _request_timeout=60)
        )
        return list(found["items"])


def settled(obj: dict[str, Any]) -> bool:
    """Ready and Synced, both about the latest generation."""
    generation = obj["metadata"].get("generation")
    conditions = {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}
    return all(
        conditions.get(t, {}).get("status") == "True"
        and conditions[t].get("observedGeneration") == generation
        for t in ("Ready", "Synced")
    )


def confirm_held(
    api: client.ApiClient, left: list[dict[str, Any]], confirmed: list[str], *, group: str, lease: str,
    namespace: str,
) -> None:  # fmt: skip
    """What a person does when the deletion breaker holds a bulk deletion: confirm the batch the
    DeletionHeld messages name, on the operator's Lease. Only the newest: an operator restarted
    mid-deletion trips again with a new batch while objects still name the old one, and the
    annotation holds one value (confirming an old batch last would hold the new one for ever).
    Batch names start with their UTC time, so the newest sorts last."""
    batches = {
        cond["message"].split("confirm batch ", 1)[1].split(":", 1)[0]
        for obj in left
        for cond in (obj.get("status") or {}).get("conditions") or []
        if cond.get("reason") == "DeletionHeld" and "confirm batch " in cond.get("message", "")
    }
    if not batches or max(batches) in confirmed:
        return
    batch = max(batches)
    body = {"metadata": {"annotations": {f"{group}/confirm-deletions": batch}}}
    leases = client.CoordinationV1Api(api)
    retrying("confirm", lambda: leases.patch_namespaced_lease(lease, namespace, body, _request_timeout=15))
    confirmed.append(batch)
    log(f"confirmed deletion batch {batch}")


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


@contextmanager
def supervised_operator(
    found: Cluster, s: Scenario, rng: random.Random, logs: Path, *, endpoint: str, namespace: str,
    identity: str, lease: str, extra_env: dict[str, str] | None = None,
) -> Iterator[Supervisor]:  # fmt: skip
    """The operator as a process watching `namespace`, under a started Supervisor."""

    def make() -> OperatorProcess:
        args = list(s.operator_args) + (["--verbose"] if s.verbose_operator else [])
        return OperatorProcess(
            found.plane.kubeconfig,
            endpoint,
            DEFAULT_CREDENTIAL,
            namespaces=(namespace,),
            extra_args=args,
            extra_env=extra_env,
            log_dir=logs,
            test_tuning=False,
            # The same identity: a restarted process renews its Lease at once.
            identity=identity,
            lease_name=lease,
        )

    supervisor = Supervisor(make, random.Random(rng.random()), s.kill_every)
    supervisor.start()
    try:
        yield supervisor
    finally:
        supervisor.stop()


class EmulatorLike(Protocol):
    @property
    def admin(self) -> Any: ...
    def start(self) -> object: ...
    def stop(self) -> object: ...


class Restartable:
    """An emulator process on a fixed port with a state file: stopped and started again at the
    address the operator knows, its faults re-installed and its journal kept across restarts."""

    def __init__(self, process: EmulatorLike, port: int) -> None:
        self.process = process
        self.port = port
        self.journal: list[dict[str, Any]] = []
        self.faults: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin(self) -> Any:
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
        entries: list[dict[str, Any]] = self.admin.journal()
        self.admin.clear_journal()
        self.journal += entries
        return entries

    def outage(self, seconds: float) -> None:
        self.drain()
        self.process.stop()
        time.sleep(seconds)
        self.start()


def fault_rules(s: Scenario, writes: Sequence[str], unavailable: str, throttled: str) -> list[dict[str, Any]]:
    """Latency on every call, commit-then-drop on the `writes`, then 503 and 429 answers."""
    rules: list[dict[str, Any]] = [
        {
            "operation": "*",
            "mode": "latency",
            "latency_ms": s.latency_ms[0],
            "latency_ms_max": s.latency_ms[1],
        }
    ]
    for operation in writes:
        rules.append({"operation": operation, "mode": "commit_then_drop", "error_rate": s.drop_rate})
    rules.append(
        {
            "operation": "*",
            "mode": "error",
            "error_rate": s.error_rate,
            "code": unavailable,
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
            "code": throttled,
            "http_status": 429,
        }
    )
    return rules


# --- The phases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    """One create (body: the spec) or update (body: the patch) of the fault phase."""

    objects: Objects
    name: str
    body: dict[str, Any]


@dataclass
class Chaos:
    """One suite's run: what it drives, and how faults are switched on for it."""

    s: Scenario
    report: Report
    cluster: Cluster
    service: Restartable  # the remote API's emulator
    service_name: str  # "PAI", "TrueFoundry"
    rules: list[dict[str, Any]]
    supervisor: Supervisor
    logs: Path
    mark: Callable[[str], None] = lambda _what: None  # a moment worth marking on a timeline

    def faults(self, on: bool) -> None:
        self.service.set_faults(self.rules if on else [])
        if on:
            self.supervisor.killing.set()
        else:
            self.supervisor.killing.clear()

    def each(self, action: Callable[[str], object], names: Sequence[str]) -> None:
        with ThreadPoolExecutor(self.s.workers) as pool:
            list(pool.map(action, names))

    def disrupt(self) -> None:
        """kube-apiserver restart, etcd restart, an outage of the remote API, `disruption_gap`
        seconds apart."""
        s, disruptions = self.s, self.report.disruptions
        for what in ("kube-apiserver", "etcd"):
            time.sleep(s.disruption_gap)
            t0 = time.monotonic()
            log(f"restarting {what}")
            self.mark(f"{what} restart")
            self.cluster.plane.restart(what)
            disruptions.append(f"{what} restarted (back in {time.monotonic() - t0:.1f} s)")
        time.sleep(s.disruption_gap)
        log(f"{self.service_name} outage: emulator stopped for {s.outage:.0f} s")
        self.mark(f"{self.service_name} outage")
        t0 = time.monotonic()
        self.service.outage(s.outage)
        disruptions.append(
            f"{self.service_name} outage: emulator stopped, restarted from its state file after "
            f"{time.monotonic() - t0:.1f} s"
        )

    def under_faults(self, creates: Sequence[Write], updates: Sequence[Write]) -> None:
        """Faults, kills and the disruptions on while the objects are created and then updated
        (each by `workers` threads); off after."""
        self.service.drain()
        wait_until("first operator start", lambda: self.supervisor.starts > 0, 180)
        self.faults(True)
        t_faults = time.monotonic()
        self.mark("faults on")
        disruptions = threading.Thread(target=self.disrupt, name="chaos-disruptions")
        disruptions.start()
        log(f"faults on; creating {len(creates)} objects")
        with ThreadPoolExecutor(self.s.workers) as pool:
            list(pool.map(lambda w: w.objects.create(w.name, w.body), creates))
            log(f"created; updating {len(updates)} objects")
            list(pool.map(lambda w: w.objects.patch(w.name, w.body), updates))
        disruptions.join()
        log("faults off; waiting for convergence")
        self.faults(False)
        self.mark("faults off")
        self.report.fault_phase = time.monotonic() - t_faults

    def converge(self, list_all: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """Waits until every object is settled (or the timeout); returns the objects last seen."""
        report, last = self.report, []
        t_calm = time.monotonic()

        def all_settled() -> bool:
            nonlocal last
            last = list_all()
            report.converged = sum(1 for obj in last if settled(obj))
            return report.converged == report.expected

        try:
            wait_until(
                "every object Ready and Synced at its latest generation",
                all_settled,
                self.s.converge_timeout,
                2.0,
            )
        except TimeoutError as exc:
            log(str(exc))
        report.converge_after_faults = time.monotonic() - t_calm
        log(f"{report.converged}/{report.expected} settled after {report.converge_after_faults:.1f} s")
        return last

    def delete_all(
        self, kinds: Sequence[tuple[Objects, Sequence[str]]], *, group: str, lease: str, namespace: str
    ) -> None:
        """Deletes every named object of every kind at once (as `kubectl delete -f` of a directory
        does) under faults, kills included, then waits for every finalizer, confirming what the
        deletion breaker holds as a person would."""
        log("deleting everything under faults")
        self.service.journal = []
        self.faults(True)
        t_delete = time.monotonic()
        self.mark("delete all, faults on")
        with ThreadPoolExecutor(self.s.workers) as pool:
            list(
                pool.map(lambda pair: pair[0].delete(pair[1]), [(o, n) for o, names in kinds for n in names])
            )
        # Faults for a while during deletion (as long as the creation phase had them, at most),
        # then calm, then wait for every finalizer.
        s = self.s
        time.sleep(
            s.delete_fault_time if s.delete_fault_time is not None else min(self.report.fault_phase, 60.0)
        )
        self.faults(False)
        self.mark("faults off")

        def all_gone() -> bool:
            left = [obj for objects, _ in kinds for obj in objects.list()]
            self.report.not_deleted = len(left)
            confirm_held(
                self.cluster.api,
                left,
                self.report.confirmed_batches,
                group=group,
                lease=lease,
                namespace=namespace,
            )
            return self.report.not_deleted == 0

        try:
            wait_until("every object deleted", all_gone, s.delete_timeout, 2.0)
        except TimeoutError as exc:
            log(str(exc))
        self.report.delete_time = time.monotonic() - t_delete

    def scan_secrets(self, secret: str, namespace: str, seen: list[dict[str, Any]]) -> None:
        """The secret searched for in every operator log, every Event of the namespace and the
        statuses seen at convergence."""
        report = self.report
        events = retrying(
            "events",
            lambda: client.CoreV1Api(self.cluster.api).list_namespaced_event(namespace, _request_timeout=60),
        )
        log_files = sorted(self.logs.glob("*.log"))
        report.secret_hits += [f"log {p.name}" for p in log_files if secret in p.read_text(errors="replace")]
        messages = [f"{e.reason} {e.message}" for e in events.items]
        report.secret_hits += [f"event: {m[:80]}" for m in messages if secret in m]
        if secret in json.dumps([obj.get("status") for obj in seen]):
            report.secret_hits.append("a status")
        report.scanned = f"{len(log_files)} operator logs, {len(messages)} events, {len(seen)} statuses"
        report.kills, report.starts = self.supervisor.kills, self.supervisor.starts


def injected(journal: list[dict[str, Any]], detail: str = "Code") -> Counter[str]:
    """The faults the operator met, by kind and `detail` (the error code or the HTTP status)."""
    return Counter(
        f"{entry['Fault']} {entry.get(detail) or ''}".strip() for entry in journal if entry.get("Fault")
    )


# --- The report and the command line ------------------------------------------------------------


Row = tuple[str, str, str]  # measure, value, target


def opening_rows(r: Report) -> list[Row]:
    n = r.expected
    return [
        ("converged (Ready and Synced at the latest generation)", f"{r.converged}/{n}", "100 %"),
        ("time to converge once the faults stopped", f"{r.converge_after_faults:.1f} s", ""),
        ("fault phase (creates, updates, restarts, outage)", f"{r.fault_phase:.1f} s", ""),
    ]


def closing_rows(r: Report, secret: str) -> list[Row]:
    return [
        (
            "injected faults seen by the operator",
            ", ".join(f"{k} {v}" for k, v in r.injected.most_common()),
            "",
        ),
        ("operator SIGKILLs / starts", f"{r.kills} / {r.starts}", ""),
        (f"{secret} found in logs, events, statuses", listed(r.secret_hits) + f" (scanned {r.scanned})", "0"),
    ]


def section(marker: str, head: Sequence[str], rows: Sequence[Row], r: Report) -> str:
    """A suite's section of bench/RESULTS.md between its markers: `head` (title, date, the
    faults), the table of `rows` (measure, value, target) and the verdict."""
    lines = [
        f"<!-- {marker}:start -->",
        *head,
        "| measure | value | target |",
        "|---|---|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in rows),
        "",
        f"Result: {'PASS' if r.ok else 'FAIL'}. Total run time {r.total:.0f} s.",
        f"<!-- {marker}:end -->",
    ]
    return "\n".join(lines) + "\n"


def arguments(description: str, objects: int, service: str) -> argparse.ArgumentParser:
    """The options every suite takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--objects", type=int, default=objects)
    parser.add_argument("--seed", type=int, default=None, help="replay a run (default: random, printed)")
    parser.add_argument(
        "--outage", type=float, default=30.0, help=f"{service} outage in seconds (default 30)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true", help="print the report only")
    parser.add_argument("--quick", action="store_true", help="test-scale timings (as in make test)")
    return parser


def scenario_of(args: argparse.Namespace, module: str, *extra: str) -> Scenario:
    """The scenario the command line asks for, a fresh seed when it names none (printed first,
    with the command that replays the run)."""
    seed = int(args.seed) if args.seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    replay = " ".join(
        [
            "python -m",
            module,
            *(["--quick"] if args.quick else []),
            f"--objects {args.objects}",
            *extra,
            f"--seed {seed}",
        ]
    )
    print(f"chaos seed {seed} (replay: {replay})", flush=True)
    base = (
        quick(seed, args.objects)
        if args.quick
        else Scenario(objects=args.objects, seed=seed, outage=args.outage)
    )
    return replace(base, replay=replay)


def publish(text: str, args: argparse.Namespace, marker: str, ok: bool) -> int:
    """Prints a suite's section, writes it into bench/RESULTS.md unless told not to; the exit code."""
    print(text)
    if not args.no_write:
        write_section(args.out, marker, text)
    return 0 if ok else 1
