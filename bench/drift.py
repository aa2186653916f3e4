"""Drift freshness: how soon drift made behind the operator's back is repaired, and what observing
that often costs, with the shipped defaults (observation paced by the read budget).

    .venv/bin/python -m bench.drift [--quick] [--size 5000:50] [--drifts 20]

The measurements themselves (`in_sync`, `drifts`) are what bench/scale.py runs at every size of
`make bench` (its table, section 7 of bench/RESULTS.md, holds the figures); this module's own
command runs them alone at one size, for development, and writes nothing:

1. create N objects over M models and wait until all are Ready;
2. in sync for 60 s: ListModelVersions calls per second (observation's share of the read quota,
   from the emulator's journal), PAI calls of other kinds, Kubernetes writes and operator CPU;
3. 20 drifts made with the official SDK (UpdateModelVersion of a managed description), one every
   2 s on distinct objects of distinct models: time from each update until the emulator holds the
   repaired description again (polled through the emulator's admin API, which spends no quota).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid

from alibabacloud_aiworkspace20210204 import models as sdk_models

from bench.harness import (
    URI,
    Env,
    Recorder,
    cpu_seconds,
    create_batch,
    environment,
    fmt_counts,
    numbered_specs,
    sdk_client,
    wait_until,
)

READ_QUOTA = 50.0  # the emulator's default (PAI's published read quota)
BUDGET = 0.10  # the shipped --observation-budget
DEFAULT_RESYNC = 600.0
IN_SYNC_WINDOW = 60.0
DRIFT_SPACING = 2.0
DRIFT_WAIT = 120.0


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def in_sync(
    env: Env, rec: Recorder, pid: int, model_ids: list[str], window: float = IN_SYNC_WINDOW
) -> dict[str, str]:
    """What the operator spends over `window` seconds while nothing changes: observation's share
    of the read quota, how often each model is observed, other PAI calls, Kubernetes writes, CPU."""
    j0, c0, t0 = env.journal_len(), cpu_seconds(pid), time.monotonic()
    time.sleep(window)
    elapsed = time.monotonic() - t0
    cpu = (cpu_seconds(pid) - c0) / elapsed
    calls = env.journal_since(j0)
    writes = rec.writes_between(t0, time.monotonic())
    ops: dict[str, int] = {}
    for entry in calls:
        ops[entry["Operation"]] = ops.get(entry["Operation"], 0) + 1
    lists = ops.get("ListModelVersions", 0)
    list_rate = lists / elapsed
    pages = sum(-(-len(env.emulator.admin.versions(m)) // 100) for m in model_ids)
    return {
        "read_share": (
            f"{list_rate / READ_QUOTA * 100:.1f} % ({list_rate:.2f} lists/s; "
            f"{fmt_counts(ops)} in {elapsed:.0f} s; {pages} pages)"
        ),
        # Each model's pages are listed once per interval: interval = window x pages / lists.
        "per_group": f"{elapsed * pages / lists:.1f} s" if lists else "never",
        "cpu": f"{cpu * 100:.1f} %",
        "writes": str(writes),
        "load_sync": load(),
    }


def drifts(env: Env, model_ids: list[str], n: int, count: int) -> dict[str, str]:
    """`count` drifts through the official SDK on distinct objects spread over the fleet (the
    objects of `numbered_specs`: object i is version `1.i.0` of model i mod M), one every 2 s;
    p50 / max / p90 of the time until each was repaired."""
    models = len(model_ids)
    sdk = sdk_client(env.emulator.endpoint)
    targets = [(i * (n // count) + i) % n for i in range(count)]
    pending: dict[int, float] = {}
    repaired: dict[int, float] = {}

    def poll() -> None:
        by_model: dict[str, dict[str, str]] = {}
        for target in list(pending):
            model = model_ids[target % models]
            if model not in by_model:
                by_model[model] = {
                    v["VersionName"]: str(v.get("VersionDescription", ""))
                    for v in env.emulator.admin.versions(model)
                }
            if by_model[model].get(f"1.{target}.0") == f"bench object {target}":
                repaired[target] = time.monotonic() - pending.pop(target)

    for target in targets:
        sdk.update_model_version(
            model_ids[target % models],
            f"1.{target}.0",
            sdk_models.UpdateModelVersionRequest(version_description="changed by hand"),
        )
        pending[target] = time.monotonic()
        spacing_end = time.monotonic() + DRIFT_SPACING
        while time.monotonic() < spacing_end:
            poll()
            time.sleep(0.2)
    deadline = time.monotonic() + DRIFT_WAIT
    while pending and time.monotonic() < deadline:
        poll()
        time.sleep(0.2)
    times = list(repaired.values())
    return {
        "drift": (
            f"{statistics.median(times):.1f} s / {max(times):.1f} s ({len(times)} of {count} repaired"
            + (f"; {len(pending)} not within {DRIFT_WAIT:.0f} s" if pending else "")
            + ")"
            if times
            else f"none of {count} repaired within {DRIFT_WAIT:.0f} s"
        ),
        "drift_p90": f"{percentile(times, 0.9):.1f} s" if times else "-",
        "load_drift": load(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="5000:50", help="N:models (default 5000:50)")
    parser.add_argument("--drifts", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="200 objects over 5 models, 5 drifts")
    args = parser.parse_args(argv)
    n, models = (int(x) for x in ("200:5" if args.quick else args.size).split(":"))
    count = 5 if args.quick else args.drifts
    started = time.monotonic()
    with environment() as env:
        ns = f"drift-{n}-{uuid.uuid4().hex[:4]}"
        mvs, rec = env.namespace(ns)
        model_ids = [env.new_model() for _ in range(models)]
        op = env.start_operator([ns], DEFAULT_RESYNC, production_like=True)
        print(f"  [{n}] creating {n} objects over {models} models ...", file=sys.stderr)
        create_batch(mvs, numbered_specs(n, model_ids, URI))
        ready = wait_until(
            f"{n} Ready", lambda: rec.ready_count() >= n, timeout=max(600.0, n / 20 * 6), interval=1.0
        )
        print(
            f"  [{n}] all Ready after {ready:.0f} s; in sync for {IN_SYNC_WINDOW:.0f} s ...", file=sys.stderr
        )
        time.sleep(10)  # the creates' trailing passes
        row = in_sync(env, rec, op.proc.pid, model_ids)  # type: ignore[union-attr]
        print(f"  [{n}] {count} drifts through the official SDK ...", file=sys.stderr)
        row |= drifts(env, model_ids, n, count)
        rec.stop()
    for key, value in row.items():
        print(f"{key}: {value}")
    print(f"drift bench took {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
