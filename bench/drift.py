"""Drift freshness benchmark: how soon drift made behind the operator's back is repaired, and what
observing that often costs, with the shipped defaults (observation paced by the read budget).

    .venv/bin/python -m bench.drift [--quick] [--size 5000:50] [--drifts 20] [--out FILE]

On the real control plane with the emulator as a process at PAI's default quotas (reads 50/s,
writes 20/s) and the operator as a process with the shipped defaults (resync 600 s, observation
budget 10 % of --read-rate, minimum observation interval 5 s):

1. create N objects over M models and wait until all are Ready;
2. in sync for 60 s: ListModelVersions calls per second (observation's share of the read quota,
   from the emulator's journal), PAI calls of other kinds, and operator CPU;
3. 20 drifts made with the official SDK (UpdateModelVersion of a managed description), one every
   2 s on distinct objects of distinct models: time from each update until the emulator holds the
   repaired description again (polled through the emulator's admin API, which spends no quota).

Writes its section of bench/RESULTS.md (between the `drift` markers), leaving the rest alone;
`--quick` (200 objects over 5 models, 5 drifts) writes nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

from alibabacloud_aiworkspace20210204 import models as sdk_models

from bench import profile_observation
from bench.harness import (
    RESULTS,
    URI,
    Env,
    cpu_seconds,
    create_batch,
    environment,
    fmt_counts,
    numbered_specs,
    sdk_client,
    utc_now,
    wait_until,
    write_section,
)

READ_QUOTA = 50.0  # the emulator's default (PAI's published read quota)
BUDGET = 0.10  # the shipped --observation-budget
DEFAULT_RESYNC = 600.0
IN_SYNC_WINDOW = 60.0
DRIFT_SPACING = 2.0
MARK_START, MARK_END = "<!-- drift:start -->", "<!-- drift:end -->"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(env: Env, n: int, models: int, drifts: int) -> dict[str, str]:
    ns = f"drift-{n}-{uuid.uuid4().hex[:4]}"
    mvs, rec = env.namespace(ns)
    model_ids = [env.new_model() for _ in range(models)]
    op = env.start_operator([ns], DEFAULT_RESYNC, production_like=True)
    pid = op.proc.pid  # type: ignore[union-attr]
    row: dict[str, str] = {}

    print(f"  [{n}] creating {n} objects over {models} models ...", file=sys.stderr)
    specs = numbered_specs(n, model_ids, URI)
    create_batch(mvs, specs)
    ready = wait_until(
        f"{n} Ready", lambda: rec.ready_count() >= n, timeout=max(600.0, n / 20 * 6), interval=1.0
    )
    row["ready"] = f"{ready:.0f} s"

    print(f"  [{n}] in sync for {IN_SYNC_WINDOW:.0f} s ...", file=sys.stderr)
    time.sleep(10)  # the creates' trailing passes
    j0, c0, t0 = env.journal_len(), cpu_seconds(pid), time.monotonic()
    w0 = time.monotonic()
    time.sleep(IN_SYNC_WINDOW)
    elapsed = time.monotonic() - t0
    cpu = (cpu_seconds(pid) - c0) / elapsed
    calls = env.journal_since(j0)
    writes = rec.writes_between(w0, time.monotonic())
    ops: dict[str, int] = {}
    for entry in calls:
        ops[entry["Operation"]] = ops.get(entry["Operation"], 0) + 1
    lists = ops.get("ListModelVersions", 0)
    list_rate = lists / elapsed
    pages = sum(-(-len(env.emulator.admin.versions(m)) // 100) for m in model_ids)
    row["read_share"] = (
        f"{list_rate / READ_QUOTA * 100:.1f} % ({list_rate:.2f} lists/s; "
        f"{fmt_counts(ops)} in {elapsed:.0f} s; {pages} pages)"
    )
    # Each model's pages are listed once per interval: interval = window x pages / lists.
    row["per_group"] = f"{elapsed * pages / lists:.1f} s" if lists else "never"
    row["cpu"] = f"{cpu * 100:.1f} %"
    row["writes"] = str(writes)
    row["load_sync"] = load()

    print(f"  [{n}] {drifts} drifts through the official SDK ...", file=sys.stderr)
    sdk = sdk_client(env.emulator.endpoint)
    # Distinct objects of distinct models, spread over the fleet.
    targets = [(i * (n // drifts) + i) % n for i in range(drifts)]
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
        model = model_ids[target % models]
        sdk.update_model_version(
            model,
            f"1.{target}.0",
            sdk_models.UpdateModelVersionRequest(version_description="changed by hand"),
        )
        pending[target] = time.monotonic()
        spacing_end = time.monotonic() + DRIFT_SPACING
        while time.monotonic() < spacing_end:
            poll()
            time.sleep(0.2)
    deadline = time.monotonic() + 120
    while pending and time.monotonic() < deadline:
        poll()
        time.sleep(0.2)
    times = list(repaired.values())
    row["drift"] = (
        f"{statistics.median(times):.1f} s / {max(times):.1f} s ({len(times)} of {drifts} repaired"
        + (f"; {len(pending)} not within 120 s" if pending else "")
        + ")"
        if times
        else f"none of {drifts} repaired within 120 s"
    )
    row["drift_p90"] = f"{percentile(times, 0.9):.1f} s" if times else "-"
    row["load_drift"] = load()
    row["profile"] = profile_observation.measure(5000)
    env.stop_operator()
    rec.stop()
    return row


def render(n: int, models: int, drifts: int, row: dict[str, str], note: str) -> str:
    out = [
        MARK_START,
        "## 8. Freshness: drift found at the pace of the read budget\n",
        f"Date: {utc_now()}, {os.cpu_count()} cores shared with other work (load average 1/5/15 min "
        "beside each figure), emulator at PAI's default quotas (reads 50/s, writes 20/s), operator "
        "with the shipped defaults: --resync-interval 600, --observation-budget 0.1 (5 list calls/s of "
        "the 50), --min-observation-interval 5. Drift: UpdateModelVersion through the official SDK "
        "(alibabacloud_aiworkspace20210204). Reproduce: `.venv/bin/python -m bench.drift` "
        "(`--quick` for a small run).\n",
        f"| figure (N = {n:,}, {models} models) | target | measured | load average |",
        "|---|---|---|---|",
        f"| drift repaired after, p50 / max over {drifts} drifts | ≤ 10 s / ≤ 30 s | {row['drift']} "
        f"(p90 {row['drift_p90']}) | {row['load_drift']} |",
        f"| PAI read rate spent on observation in sync | ≤ 10 % of the read quota | {row['read_share']} "
        f"| {row['load_sync']} |",
        f"| each model observed every | budget: pages / 5 per s, ≥ 5 s | {row['per_group']} "
        f"| {row['load_sync']} |",
        f"| operator CPU in sync | ≤ 5 % of a core | {row['cpu']} | {row['load_sync']} |",
        f"| Kubernetes writes in sync | 0 | {row['writes']} | |",
        f"| all N Ready after creation | | {row['ready']} | |",
    ]
    out += [
        "",
        "CPU per listed object in one observation (in process, `.venv/bin/python -m "
        f"bench.profile_observation`): {row['profile']}.",
    ]
    if note:
        out += ["", note]
    out.append(MARK_END)
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="5000:50", help="N:models (default 5000:50)")
    parser.add_argument("--drifts", type=int, default=20)
    parser.add_argument(
        "--quick", action="store_true", help="200 objects over 5 models, 5 drifts; writes nothing"
    )
    parser.add_argument("--note", default="", help="a line written under the table (e.g. why N is smaller)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    n, models = (int(x) for x in ("200:5" if args.quick else args.size).split(":"))
    drifts = 5 if args.quick else args.drifts
    started = time.monotonic()
    with environment() as env:
        row = run(env, n, models, drifts)
    section = render(n, models, drifts, row, args.note)
    print(section)
    print(f"drift bench took {time.monotonic() - started:.0f} s", file=sys.stderr)
    if not args.quick:
        write_section(args.out, "drift", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
