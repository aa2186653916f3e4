"""In-sync cost of Models: PAI calls per Model per resync interval at 200 Models (issue 23).

    .venv/bin/python -m bench.model_sync [--models 200] [--resync 60] [--out FILE | --no-write]

On the real control plane with the emulator as a process (PAI's default quotas), the operator
with the shipped defaults except the resync interval: `--models` Models in one workspace are
created and become Ready; then, with nothing changing, the emulator journal counts every PAI
call over `INTERVALS` resync intervals. Settled Models are observed in one batch per workspace
(ListModels walks, 100 models a page) instead of one GetModel each. The walks are paced by the
observation budget (issue 26: 10 % of the read quota, at most every --min-observation-interval
5 s, at least every resync interval), so the target is the share of the read quota they take
(≤ 10 %); calls per Model per resync interval are shown beside it (the budget observes a small
fleet every 5 s, so that figure grew from 0.01 when observation ran once per interval).

Writes its section of bench/RESULTS.md (between the `model-sync` markers).
`tests/integration/test_model_lifecycle.py` asserts ≤ 0.05 calls per Model per resync interval at a
4 s resync, shorter than the minimum observation interval: there the interval paces observation.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

from bench.harness import RESULTS, environment, fmt_counts, utc_now, wait_until, write_section
from tests.support.kube import REPO_ROOT
from tests.support.operator import ModelVersions

MODEL_CRD = REPO_ROOT / "crds" / "pai.mlops.dev_models.yaml"
NAMESPACE = "model-sync"
WORKSPACE = "ws-model-sync"
INTERVALS = 3
READ_QUOTA = 50.0  # PAI's (the emulator's default)
TARGET = 0.10  # observation's share of the read quota (the shipped --observation-budget)


def ready(models: ModelVersions) -> int:
    items = models.api.list_namespaced_custom_object(
        "pai.mlops.dev", "v1alpha1", NAMESPACE, "models", _request_timeout=60
    )["items"]
    return sum(
        1
        for obj in items
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (obj.get("status") or {}).get("conditions") or []
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--resync", type=float, default=60.0, help="operator resync interval, s (default 60)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true", help="print the report only")
    args = parser.parse_args(argv)
    n, resync = args.models, args.resync
    started = time.monotonic()
    with environment("pai-model-sync-") as env:
        env.cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(MODEL_CRD))
        env.cluster.kubectl(
            "wait", "--for=condition=Established", "crd/models.pai.mlops.dev", "--timeout=60s"
        )
        env.cluster.create_namespace(NAMESPACE)
        models = ModelVersions(env.api, NAMESPACE, kind="Model", plural="models")
        env.start_operator([NAMESPACE], resync, production_like=True)
        print(f"creating {n} Models ...", file=sys.stderr)
        t0 = time.monotonic()
        for i in range(n):
            models.create(f"m{i:04d}", {"modelName": f"sync_{i:04d}", "workspaceId": WORKSPACE})
        wait_until(f"{n} Models Ready", lambda: ready(models) == n, timeout=600, interval=2.0)
        ready_s = time.monotonic() - t0
        # Settled: a Ready Model joins its workspace's batch at its next observation.
        time.sleep(resync * 1.1)
        print(f"in sync for {INTERVALS} resync intervals ({resync:.0f} s each) ...", file=sys.stderr)
        j0 = env.journal_len()
        t1 = time.monotonic()
        time.sleep(resync * INTERVALS)
        calls = env.journal_since(j0)
        window = time.monotonic() - t1
        load = os.getloadavg()
    per_model = len(calls) / n / (window / resync)
    ops = Counter(entry["Operation"] for entry in calls)
    share = len(calls) / window / READ_QUOTA
    verdict = "PASS" if share <= TARGET else "FAIL"
    section = "\n".join(
        [
            "<!-- model-sync:start -->",
            f"## Models in sync: PAI calls per Model per resync interval at {n} Models\n",
            f"Date: {utc_now()}, {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} "
            f"{load[2]:.2f} at the end. Emulator at PAI's default quotas, operator with the shipped defaults "
            f"except --resync-interval {resync:.0f}; {n} Models in one workspace, all Ready after "
            f"{ready_s:.0f} s. Reproduce: `.venv/bin/python -m bench.model_sync`.\n",
            "| figure | target | value |",
            "|---|---|---|",
            f"| PAI read rate in sync, share of the read quota | ≤ {TARGET:.0%} | {share:.1%} "
            f"({fmt_counts(dict(ops)) or 'no calls'} in {window:.0f} s) |",
            f"| PAI calls per Model per resync interval, in sync | | {per_model:.4f} |",
            "",
            f"Result: {verdict}. Total run time {time.monotonic() - started:.0f} s.",
            "<!-- model-sync:end -->",
        ]
    )
    print(section)
    if not args.no_write:
        write_section(args.out, "model-sync", section + "\n")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
