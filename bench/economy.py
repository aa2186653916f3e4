"""Measure the operator's economy and speed against a real control plane and the PAI emulator.

    .venv/bin/python -m bench.economy [--objects N] [--out FILE]

Sections 1-4 and 6 of bench/RESULTS.md; the environment is bench/harness.py's. Prints a Markdown report
and rewrites bench/RESULTS.md with it, keeping the marked sections of the other programs.

What is measured, and how:

* PAI calls per create / in-sync resync / update / delete, from the emulator journal. Each
  benchmark object gets a PAI model of its own, so journal entries are attributed by ModelId.
* Kubernetes writes, from a watch on the namespace: every MODIFIED/DELETED event after the
  user's own write is one write by the operator (each write bumps resourceVersion). Events
  (core/v1) are counted by listing them per object.
* Latency (apply -> Ready for the current generation) is timed from just before the create call
  to the watch event that first shows Ready=True for that generation.

Section 5 (per-call cost of the client against the official SDK) is bench/client_cost.py's.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from bench.harness import (
    RESULTS,
    URI,
    Env,
    Recorder,
    cpu_seconds,
    create_batch,
    environment,
    fmt_counts,
    marked_sections,
    metric_sum,
    utc_now,
)
from tests.support.kube import controlplane
from tests.support.operator import ModelVersions

RATE_WAIT = "pai_operator_rate_limit_wait_seconds_total"
RESYNC = 2.0  # the short interval of the economy section: several resyncs fit in a few seconds
SETTLE = 1.0  # quiet time after a phase ends, to catch trailing writes (shorter than RESYNC*0.9)


# --- small helpers ------------------------------------------------------------------------------


# The throughput runs delete all their objects at once; the deletion breaker (on by default)
# would hold that bulk deletion for confirmation, and the row measures deletion speed.
NO_BREAKER = ("--deletion-breaker-threshold", "0")
SINGLE = 100  # objects applied one at a time (each waits for the previous one's Ready): p99 needs 100


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for an empty list."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def event_delta(
    before: dict[str, list[tuple[str, str, int]]], after: dict[str, list[tuple[str, str, int]]], name: str
) -> Counter[str]:
    """Event occurrences (new Event objects plus count increments) by reason, for one object."""
    old = {uid: count for uid, _, count in before.get(name, [])}
    delta: Counter[str] = Counter()
    for uid, reason, count in after.get(name, []):
        delta[reason] += count - old.get(uid, 0)
    return delta


# --- 1 + 2: calls and writes per lifecycle step --------------------------------------------------


@dataclass
class Step:
    label: str
    calls: Counter[str]
    writes: list[str]
    events: Counter[str]
    passes: Counter[str] = field(default_factory=Counter)
    sequence: list[str] = field(default_factory=list)


def log_passes(log: str, namespace: str, name: str) -> Counter[str]:
    """Reconcile passes of one object by trigger, from the operator's debug log."""
    return Counter(trigger.split(":")[0] for trigger in pass_sequence(log, namespace, name))


def pass_sequence(log: str, namespace: str, name: str) -> list[str]:
    """`trigger:outcome` of each reconcile pass of one object, in log order."""
    found = re.findall(rf"(\w+) pass of {re.escape(namespace)}/{re.escape(name)}: (\w+);", log)
    return [f"{trigger}:{outcome}" for trigger, outcome in found]


def economy(env: Env, out: list[str]) -> list[str]:
    """Sections 1 and 2. Returns anomalies noticed."""
    ns = "bench-economy"
    mvs, rec = env.namespace(ns)
    operator = env.start_operator([ns], RESYNC)
    anomalies: list[str] = []
    objects = {
        "fixed-name": ("bench-fixed", env.new_model(), {"versionName": "1.0.0"}),
        "server-named": ("bench-server", env.new_model(), {}),
    }
    steps: dict[str, list[Step]] = {kind: [] for kind in objects}

    def measure(
        kind: str, label: str, action: Callable[[str], object], done: Callable[[str, float], bool]
    ) -> None:
        name, model, _ = objects[kind]
        j0, ev0, log0 = env.journal_len(), env.events_of(ns), len(operator.log_text())
        t0 = time.monotonic()
        action(name)
        rec.wait(f"{name} {label}", lambda: done(name, t0), timeout=60)
        time.sleep(SETTLE)
        t1 = time.monotonic()
        calls = Counter(e["Operation"] for e in env.journal_since(j0) if e["ModelId"] == model)
        seen = rec.between(name, t0, t1)
        # The user's own write (create, spec patch, delete request) is not the operator's.
        user_kind = {"create": "ADDED", "update": "MODIFIED", "delete": "MODIFIED"}[label]
        writes = [f"{s.kind}:{s.parts}" for s in seen]
        if writes and seen[0].kind == user_kind:
            writes = writes[1:]
        log = operator.log_text()[log0:]
        events = event_delta(ev0, env.events_of(ns), name)
        steps[kind].append(
            Step(label, calls, writes, events, log_passes(log, ns, name), pass_sequence(log, ns, name))
        )

    specs = {
        kind: {"modelId": model, "uri": URI, "versionDescription": "bench", "labels": {"k": "v1"}, **extra}
        for kind, (_, model, extra) in objects.items()
    }
    by_name = {name: specs[kind] for kind, (name, _, _) in objects.items()}
    for kind in objects:
        measure(
            kind,
            "create",
            lambda name: mvs.create(name, by_name[name]),
            lambda name, t0: rec.ready_time(name, t0) is not None,
        )

    # In-sync resyncs: both objects idle for 4 intervals; nothing may be written.
    window = 4 * RESYNC + 0.5
    j0, ev0, log0 = env.journal_len(), env.events_of(ns), len(operator.log_text())
    cpu0, t0 = cpu_seconds(operator.proc.pid), time.monotonic()  # type: ignore[union-attr]
    time.sleep(window)
    t1, cpu1 = time.monotonic(), cpu_seconds(operator.proc.pid)  # type: ignore[union-attr]
    journal, ev1, log = env.journal_since(j0), env.events_of(ns), operator.log_text()[log0:]
    for kind, (name, model, _) in objects.items():
        seen = rec.between(name, t0, t1)
        steps[kind].append(
            Step(
                "in-sync resync",
                Counter(e["Operation"] for e in journal if e["ModelId"] == model),
                [f"{s.kind}:{s.parts}" for s in seen],
                event_delta(ev0, ev1, name),
                log_passes(log, ns, name),
            )
        )
    idle_cpu = (cpu1 - cpu0) / (t1 - t0)

    def updated(name: str, t0: float) -> bool:
        spec_changed = any(
            s.kind == "MODIFIED" and "spec" in s.parts for s in rec.between(name, t0, time.monotonic())
        )
        return spec_changed and rec.ready_time(name, t0) is not None

    for kind in objects:
        measure(
            kind,
            "update",
            lambda name: mvs.patch(name, {"spec": {"versionDescription": "bench v2", "labels": {"k": "v2"}}}),
            updated,
        )
    for kind in objects:
        measure(kind, "delete", mvs.delete, lambda name, _t0: rec.gone(name))
    env.stop_operator()

    out.append("## 1-2. PAI calls and Kubernetes writes per lifecycle step\n")
    out.append(
        f"Operator resync interval {RESYNC:g} s (±10 % jitter). Calls from the emulator journal "
        "(one PAI model per object). Writes = watch events on the object after the user's own write "
        "(what the write changed in brackets; DELETED = the finalizer removal). Events = core/v1 Event "
        f"occurrences. Passes = reconcile passes in the operator log. Each step window ends {SETTLE:g} s "
        "after the step converged.\n"
    )
    out.append("| object | step | PAI calls | K8s writes | Events | passes |")
    out.append("|---|---|---|---|---|---|")
    for kind, kind_steps in steps.items():
        for s in kind_steps:
            writes = f"{len(s.writes)} ({', '.join(s.writes)})" if s.writes else "0"
            calls = f"{sum(s.calls.values())} ({fmt_counts(s.calls)})"
            out.append(
                f"| {kind} | {s.label} | {calls} | {writes} | {sum(s.events.values())} "
                f"({fmt_counts(s.events)}) | {fmt_counts(s.passes)} |"
            )
            if s.label == "in-sync resync":
                resyncs = s.passes.get("resync", 0)
                if s.writes:
                    anomalies.append(
                        f"{kind}: {len(s.writes)} Kubernetes writes during {resyncs} in-sync resyncs"
                    )
                if sum(s.events.values()):
                    anomalies.append(f"{kind}: {sum(s.events.values())} Events during in-sync resyncs")
                extra_calls = sum(s.calls.values()) - resyncs
                if resyncs and extra_calls:
                    anomalies.append(
                        f"{kind}: {sum(s.calls.values())} PAI calls for {resyncs} in-sync resync passes"
                    )
            elif sum(s.passes.values()) > 1:
                anomalies.append(
                    f"{kind} {s.label}: {sum(s.passes.values())} reconcile passes for one step, in order "
                    f"{' -> '.join(s.sequence)}; PAI calls in the step: {fmt_counts(s.calls)}"
                )
    for kind, kind_steps in steps.items():
        resync = next(s for s in kind_steps if s.label == "in-sync resync")
        n = resync.passes.get("resync", 0)
        if n:
            per = sum(resync.calls.values()) / n
            out.append(
                f"\n{kind}: {n} in-sync resync passes in {window:.1f} s → {per:.2f} PAI calls and "
                f"{len(resync.writes) / n:.2f} Kubernetes writes per resync."
            )
    out.append(
        f"\nOperator CPU while idle (2 objects, resync {RESYNC:g} s): {100 * idle_cpu:.1f} % of one core.\n"
    )
    return anomalies


# --- 3, 4, 6: latency, throughput, faults -------------------------------------------------------


def delete_all(mvs: ModelVersions, rec: Recorder, names: list[str], timeout: float = 90) -> float:
    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(mvs.delete, names))
    rec.wait("objects deleted", lambda: all(rec.gone(n) for n in names), timeout)
    return time.monotonic() - t0


def latencies(rec: Recorder, sent: dict[str, float]) -> list[float]:
    return [rec.ready_time(n, t) - t for n, t in sent.items()]  # type: ignore[operator]


def latency(env: Env, mvs: ModelVersions, rec: Recorder, batch: int, out: list[str]) -> None:
    single: list[float] = []
    for i in range(SINGLE):
        model = env.new_model()
        name = f"single-{i}"
        sent = create_batch(mvs, {name: {"modelId": model, "uri": URI}})
        rec.wait(f"{name} Ready", lambda name=name: rec.ready_time(name, 0) is not None, 30)  # type: ignore[misc]
        single += latencies(rec, sent)
        delete_all(mvs, rec, [name], 30)
    models = {f"batch-{i}": env.new_model() for i in range(batch)}
    t0 = time.monotonic()
    sent = create_batch(mvs, {n: {"modelId": model, "uri": URI} for n, model in models.items()})
    rec.wait("batch Ready", lambda: all(rec.ready_time(n, 0) is not None for n in models), 120)
    wall = max(rec.ready_time(n, 0) or 0 for n in models) - t0
    many = latencies(rec, sent)
    delete_all(mvs, rec, list(models))
    out.append("## 3. apply → Ready latency\n")
    out.append("From just before the create call to the watch event showing Ready=True for the generation.\n")
    out.append("| case | n | median | p95 | p99 | max | target (one at a time) |")
    out.append("|---|---|---|---|---|---|---|")
    for case, values, target in (
        ("one object at a time", single, "p50 ≤ 0.2 s, p99 ≤ 1 s"),
        (f"{batch} created at once", many, ""),
    ):
        out.append(
            f"| {case} | {len(values)} | {median(values):.3f} s | {pct(values, 95):.3f} s "
            f"| {pct(values, 99):.3f} s | {max(values):.3f} s | {target} |"
        )
    out.append(f"\n{batch} objects at once: all Ready {wall:.2f} s after the first create was sent.\n")


def throughput(env: Env, mvs: ModelVersions, rec: Recorder, n: int, anomalies: list[str]) -> dict[str, str]:
    """Create n objects together, wait for all Ready, then measure idle cost and delete them all."""
    assert env.operator is not None
    models = {f"tput-{i}": env.new_model() for i in range(n)}
    metrics0, j0, cpu0 = env.operator.metrics(), env.journal_len(), env.cpu()
    t0 = time.monotonic()
    create_batch(
        mvs, {n: {"modelId": model, "uri": URI, "versionName": "1.0.0"} for n, model in models.items()}
    )
    created = time.monotonic() - t0
    rec.wait("throughput batch Ready", lambda: all(rec.ready_time(m, 0) is not None for m in models), 180)
    converged = max(rec.ready_time(m, 0) or 0 for m in models) - t0
    cpu1 = env.cpu()
    time.sleep(SETTLE)
    journal = env.journal_since(j0)
    calls = Counter(e["Operation"] for e in journal)
    throttled = sum(1 for e in journal if e["Status"] == 429)
    wait_s = metric_sum(env.operator.metrics(), RATE_WAIT) - metric_sum(metrics0, RATE_WAIT)
    seen = [x for m in models for x in rec.between(m, t0, time.monotonic()) if x.kind != "ADDED"]
    writes, write_parts = len(seen), Counter(x.parts for x in seen)
    # Idle: everything converged, resync far away; what remains is the per-object timer.
    idle0, i0 = env.cpu(), time.monotonic()
    time.sleep(4.0)
    idle = (env.cpu().get("operator", 0) - idle0.get("operator", 0)) / (time.monotonic() - i0)
    j1 = env.journal_len()
    delete_s = delete_all(mvs, rec, list(models), 120)
    del_journal = env.journal_since(j1)
    del_calls = Counter(e["Operation"] for e in del_journal)
    del_throttled = sum(1 for e in del_journal if e["Status"] == 429)
    if calls.get("CreateModelVersion", 0) != n:
        anomalies.append(
            f"throughput: {calls.get('CreateModelVersion', 0)} CreateModelVersion calls for {n} objects"
        )
    cpu = {k: (cpu1[k] - cpu0.get(k, 0)) / converged for k in cpu1}
    return {
        "create requests sent (8 threads)": f"{created:.2f} s",
        f"all {n} Ready after": f"{converged:.2f} s ({n / converged:.1f} objects/s)",
        "PAI calls": f"{sum(calls.values())} = {sum(calls.values()) / n:.2f}/object ({fmt_counts(calls)})",
        "PAI answers 429 (emulator quota)": str(throttled),
        "rate-limiter wait (`pai_operator_rate_limit_wait_seconds_total`)": f"{wait_s:.2f} s",
        "Kubernetes writes by the operator": f"{writes} ({writes / n:.2f}/object: {fmt_counts(write_parts)})",
        "CPU while converging (share of one core)": ", ".join(
            f"{k} {100 * v:.0f} %" for k, v in sorted(cpu.items())
        ),
        f"operator CPU idle with {n} Ready objects": f"{100 * idle:.1f} % of one core",
        f"delete all {n} until gone": (
            f"{delete_s:.2f} s ({fmt_counts(del_calls)}; 429 answers {del_throttled})"
        ),
    }


def render_throughput(n: int, runs: dict[str, dict[str, str]], out: list[str]) -> None:
    out.append(f"## 4. Throughput: {n} objects created together\n")
    out.append(
        "Client limits and emulator quotas at PAI's defaults (50 reads/s, 20 writes/s per operation); "
        "kopf worker limit 20; resync far away (no drift checks during the run). *production-like*: "
        "the shipped defaults (no --verbose, timer tick 1 s). *test harness*: how tests/support runs it "
        "(--verbose, back-off base 0.5 s so the timer ticks every 0.25 s). All three with the "
        "deletion breaker off (`--deletion-breaker-threshold 0`): the last row deletes every object "
        "at once, which the breaker would hold for a person's confirmation past 50 (README, deletion "
        "safety).\n"
    )
    labels = list(runs)
    out.append("| measure | " + " | ".join(labels) + " |")
    out.append("|---" * (len(labels) + 1) + "|")
    for key in next(iter(runs.values())):
        out.append(f"| {key} | " + " | ".join(runs[label][key] for label in labels) + " |")
    out.append("")


def faults(env: Env, mvs: ModelVersions, rec: Recorder, n: int, out: list[str], anomalies: list[str]) -> None:
    admin = env.emulator.admin
    models = {f"fault-{i}": env.new_model() for i in range(n)}
    j0 = env.journal_len()
    admin.add_fault("*", "error", error_rate=0.3, code="ServiceUnavailable", http_status=503)
    try:
        t0 = time.monotonic()
        create_batch(
            mvs, {n: {"modelId": model, "uri": URI, "versionName": "1.0.0"} for n, model in models.items()}
        )
        rec.wait("fault batch Ready", lambda: all(rec.ready_time(m, 0) is not None for m in models), 120)
        converged = max(rec.ready_time(m, 0) or 0 for m in models) - t0
        time.sleep(SETTLE)
    finally:
        admin.clear_faults()
    journal = [e for e in env.journal_since(j0) if e["ModelId"] in set(models.values())]
    attempts = Counter(e["Operation"] for e in journal)
    failed = Counter(e["Operation"] for e in journal if e["Fault"])
    versions = {m: len(admin.versions(m)) for m in models.values()}
    duplicates = sum(1 for count in versions.values() if count != 1)
    delete_all(mvs, rec, list(models))
    out.append(f"## 6. Convergence under 30 % ServiceUnavailable on every operation ({n} objects)\n")
    out.append("Operator backoff base 0.5 s, cap 4 s; client retries reads up to 4 attempts.\n")
    out.append("| measure | value |")
    out.append("|---|---|")
    out.append(f"| all {n} Ready | {converged:.2f} s |")
    out.append(f"| PAI attempts | {sum(attempts.values())} ({fmt_counts(attempts)}) |")
    out.append(f"| of which injected 503 | {sum(failed.values())} ({fmt_counts(failed)}) |")
    per_model = sorted(set(versions.values()))
    out.append(f"| remote versions per model | {per_model} (models without exactly one: {duplicates}) |")
    out.append("")
    if duplicates:
        anomalies.append(f"faults: {duplicates} models do not hold exactly one version: {versions}")


# --- main ---------------------------------------------------------------------------------------


def versions_line() -> str:
    def v(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "?"

    return (
        f"Python {platform.python_version()}; kube-apiserver {controlplane.VERSIONS['KUBERNETES_VERSION']}, "
        f"etcd {controlplane.VERSIONS['ETCD_VERSION']}; pai-model-operator {v('pai-model-operator')}, "
        f"kopf {v('kopf')}, httpx {v('httpx')}, aiohttp {v('aiohttp')}, kubernetes {v('kubernetes')}, "
        f"alibabacloud-aiworkspace20210204 {v('alibabacloud-aiworkspace20210204')}, "
        f"alibabacloud-tea-openapi {v('alibabacloud-tea-openapi')}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=50, help="objects in the throughput run (default 50)")
    parser.add_argument(
        "--batch", type=int, default=20, help="objects created at once for latency (default 20)"
    )
    parser.add_argument("--fault-objects", type=int, default=10, help="objects in the fault run (default 10)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    started = time.monotonic()
    out = [
        "# pai-model-operator benchmark\n",
        f"Date: {utc_now()}. Machine: {os.cpu_count()} cores "
        f"({platform.machine()}, {platform.system()} {platform.release()}), everything on loopback.\n",
        f"Versions: {versions_line()}.\n",
        "Reproduce: `.venv/bin/python -m bench.economy` (writes this file).\n",
    ]
    anomalies: list[str] = []
    with environment() as env:
        print("1-2. economy ...", file=sys.stderr)
        anomalies += economy(env, out)
        spaces = {
            name: env.namespace(name)
            for name in ("bench-latency", "bench-tput-a", "bench-tput-b", "bench-tput-c", "bench-faults")
        }
        runs: dict[str, dict[str, str]] = {}
        env.start_operator(["bench-latency", "bench-tput-a"], 600.0, production_like=True, extra=NO_BREAKER)
        print("3. latency ...", file=sys.stderr)
        latency(env, *spaces["bench-latency"], args.batch, out)
        print("4. throughput (production-like) ...", file=sys.stderr)
        runs["production-like"] = throughput(env, *spaces["bench-tput-a"], args.objects, anomalies)
        # The same with kopf's per-object worker limit (--concurrency) out of the way: shows
        # whether that limit, not PAI or CPU, is what bounds the rate.
        env.start_operator(
            ["bench-tput-c"], 600.0, production_like=True, extra=("--concurrency", "1000", *NO_BREAKER)
        )
        print("4. throughput (production-like, --concurrency 1000) ...", file=sys.stderr)
        runs["production-like, --concurrency 1000"] = throughput(
            env, *spaces["bench-tput-c"], args.objects, anomalies
        )
        env.start_operator(["bench-tput-b", "bench-faults"], 600.0, extra=NO_BREAKER)
        print("4. throughput (test harness) ...", file=sys.stderr)
        runs["test harness"] = throughput(env, *spaces["bench-tput-b"], args.objects, anomalies)
        render_throughput(args.objects, runs, out)
        print("6. faults ...", file=sys.stderr)
        faults(env, *spaces["bench-faults"], args.fault_objects, out, anomalies)
        log_path = env.operator.log_path if env.operator else None
    out.append("## Anomalies noticed\n")
    out.extend(f"- {a}" for a in anomalies or ["none"])
    out.append(f"\nTotal run time {time.monotonic() - started:.0f} s. Last operator log: {log_path}.")
    report = "\n".join(out) + "\n"
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # Sections written by the other benchmark scripts (bench/*.py) live between markers
    # and are kept when this one rewrites the file.
    previous = args.out.read_text() if args.out.exists() else ""
    blocks = marked_sections(previous)
    args.out.write_text(report + "".join("\n" + block for block in blocks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
