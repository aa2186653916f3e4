"""Measure leader handover: two operator replicas, one Lease, the leader stopped or killed.

    .venv/bin/python -m bench.ha [--sigterm-runs N] [--sigkill-runs N] [--out FILE]

bench/harness.py's control plane and PAI emulator, and two operator processes with the shipped
settings (lease 15 s, renew deadline 10 s, retry 2 s; no test tuning), all on loopback.
Writes its own section of bench/RESULTS.md between `<!-- ha:start -->` and `<!-- ha:end -->`
(appended when missing; bench/economy.py rewrites the rest of the file). Every wait is bounded;
everything started here is stopped on exit.

How:

* Handover = from the signal to the leader (SIGTERM: a graceful stop that releases the Lease;
  SIGKILL: nothing released, the Lease must expire) to the first PAI request made by the new
  leader. The emulator journal records each request's User-Agent, which names the replica, so
  the first request of the new leader's first reconcile (kopf resumes every object on start) is
  exact. Signal and journal times are wall-clock times of the same machine.
* apply -> Ready during a handover: a ModelVersion created 0.1 s after the signal, timed from
  the create call to Ready=True for its generation (polled every 50 ms).
* After each round a fresh standby is started, as the Deployment would restart the pod.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import RESULTS, Env, environment, ready_for_generation, utc_now, write_section
from pai_operator import __version__
from tests.support.emulator import DEFAULT_CREDENTIAL
from tests.support.operator import ModelVersions, OperatorProcess, wait_for

URI = "oss://bench-bucket.oss-cn-hangzhou-internal.aliyuncs.com/models/ha/"
NAMESPACE = "bench-ha"
LEASE = "pai-operator-bench"
START, END = "<!-- ha:start -->", "<!-- ha:end -->"
LEASE_DURATION = 15  # the shipped default; the SIGKILL target is this + 5 s


@dataclass
class Round:
    kind: str
    handover: float  # signal -> first PAI request by the new leader
    ready: float  # apply -> Ready of an object created during the handover
    old_exit: float | None  # signal -> old leader's process gone (SIGTERM only)


def wall(entry: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(entry["Time"].replace("Z", "+00:00")).timestamp()


class Bench:
    def __init__(self, env: Env) -> None:
        self.plane = env.plane
        self.emulator = env.emulator
        self.mvs = ModelVersions(env.api, NAMESPACE)
        self.log_dir = Path(tempfile.mkdtemp(prefix="pai-bench-ha-"))
        self.replicas: list[OperatorProcess] = []
        self._count = 0

    def start_replica(self) -> OperatorProcess:
        self._count += 1
        replica = OperatorProcess(
            self.plane.kubeconfig,
            self.emulator.url,
            DEFAULT_CREDENTIAL,
            namespaces=[NAMESPACE],
            resync_interval=600.0,
            log_dir=self.log_dir,
            test_tuning=False,  # the shipped defaults
            identity=f"replica-{self._count}",
            lease_name=LEASE,
        ).start()
        self.replicas.append(replica)
        return replica

    def leader(self) -> OperatorProcess:
        return wait_for(
            "a leader",
            lambda: next((r for r in self.replicas if r.is_leader()), None),
            timeout=LEASE_DURATION + 30,
        )

    def stop_all(self) -> None:
        for replica in self.replicas:
            replica.stop()

    def handover(self, kind: str, model: str) -> Round:
        leader = self.leader()
        standby = next(r for r in self.replicas if r is not leader and r.proc and r.proc.poll() is None)
        agent = f"pai-model-operator/{__version__} ({standby.identity})"
        proc = leader.proc
        assert proc is not None
        self.emulator.admin.clear_journal()
        exited: list[float] = []
        waiter = threading.Thread(target=lambda: (proc.wait(), exited.append(time.time())), daemon=True)
        signalled = time.time()
        proc.send_signal(signal.SIGTERM if kind == "SIGTERM" else signal.SIGKILL)
        waiter.start()
        time.sleep(0.1)
        name = f"during-{kind.lower()}-{uuid.uuid4().hex[:6]}"
        applied = time.monotonic()
        self.mvs.create(name, {"modelId": model, "uri": URI})
        wait_for(
            f"{name} Ready",
            lambda: ready_for_generation(self.mvs.get(name)),
            timeout=LEASE_DURATION + 60,
            interval=0.05,
        )
        ready = time.monotonic() - applied
        first = min(wall(e) for e in self.emulator.admin.journal() if e.get("UserAgent") == agent)
        waiter.join(30)
        old_exit = exited[0] - signalled if exited and kind == "SIGTERM" else None
        leader.stop()
        self.replicas.remove(leader)
        self.start_replica()  # the Deployment replaces the pod: a new standby
        return Round(kind, first - signalled, ready, old_exit)


@contextlib.contextmanager
def bench_environment() -> Iterator[Bench]:
    with environment("pai-bench-ha-plane-") as env:
        env.cluster.create_namespace(NAMESPACE)
        bench = Bench(env)
        try:
            yield bench
        finally:
            bench.stop_all()


def summary(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{statistics.median(values):.2f} s / {max(values):.2f} s"


def render(rounds: list[Round], objects: int, remote: int) -> str:
    term = [r for r in rounds if r.kind == "SIGTERM"]
    kill = [r for r in rounds if r.kind == "SIGKILL"]
    exits = [r.old_exit for r in term if r.old_exit is not None]
    lines = [
        START,
        "## High availability: leader handover\n",
        f"Date: {utc_now()}. Machine: {os.cpu_count()} cores "
        f"({platform.machine()}), loopback. Two operator replicas with the shipped settings (lease 15 s, "
        f"renew deadline 10 s, retry 2 s, no test tuning), {objects} Ready ModelVersions present. "
        "Reproduce: `.venv/bin/python -m bench.ha` (writes this section).\n",
        "Handover = signal to the leader → first PAI request of the new leader (emulator journal, by "
        "User-Agent). New object = a ModelVersion created 0.1 s after the signal, apply → Ready.\n",
        "| leader stopped by | runs | handover median / max | target | new object apply→Ready median / max |",
        "|---|---|---|---|---|",
        f"| SIGTERM (Lease released) | {len(term)} | {summary([r.handover for r in term])} | ≤ 3 s "
        f"| {summary([r.ready for r in term])} |",
        f"| SIGKILL (Lease expires) | {len(kill)} | {summary([r.handover for r in kill])} "
        f"| ≤ {LEASE_DURATION + 5} s | {summary([r.ready for r in kill])} |",
        "",
        f"Graceful stop of the old leader (SIGTERM → process exit): {summary(exits)}. "
        "Each run: " + ", ".join(f"{r.kind} {r.handover:.2f} s" for r in rounds) + ". "
        f"Afterwards: {remote} remote versions for {objects + len(rounds)} objects"
        + (" (one each: no duplicate, no orphan)." if remote == objects + len(rounds) else " (ANOMALY)."),
        END,
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sigterm-runs", type=int, default=5)
    parser.add_argument("--sigkill-runs", type=int, default=3)
    parser.add_argument("--objects", type=int, default=10, help="Ready objects present during handovers")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rounds: list[Round] = []
    with bench_environment() as bench:
        model = f"model-ha-{uuid.uuid4().hex[:8]}"
        bench.emulator.admin.add_model(model)
        bench.start_replica()
        bench.start_replica()
        bench.leader()
        for i in range(args.objects):
            bench.mvs.create(f"present-{i:02d}", {"modelId": model, "uri": URI})
        for i in range(args.objects):
            wait_for(
                f"present-{i:02d} Ready", lambda i=i: ready_for_generation(bench.mvs.get(f"present-{i:02d}"))
            )
        for kind in ["SIGTERM"] * args.sigterm_runs + ["SIGKILL"] * args.sigkill_runs:
            print(f"{kind} handover ...", file=sys.stderr)
            result = bench.handover(kind, model)
            print(
                f"  handover {result.handover:.2f} s, new object Ready after {result.ready:.2f} s",
                file=sys.stderr,
            )
            rounds.append(result)
        remote = len(bench.emulator.admin.versions(model))
        if remote != args.objects + len(rounds):
            print(
                f"ANOMALY: {remote} remote versions for {args.objects + len(rounds)} objects", file=sys.stderr
            )
    section = render(rounds, args.objects, remote)
    print(section)
    write_section(args.out, "ha", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
