"""Chaos suite, TrueFoundry: many truefoundry.mlops.dev ModelVersions converge through faults.

    .venv/bin/python -m bench.chaos_tfy [--objects 200] [--seed S] [--quick] [--out F | --no-write]

The scenario of bench/chaos.py (its moving parts are shared in bench/chaos_harness.py),
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

import copy
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench import chaos_harness
from bench.chaos_harness import (
    Chaos,
    Objects,
    Restartable,
    Write,
    api_client,
    fault_rules,
    injected,
    listed,
    log,
)
from bench.harness import cluster, utc_now
from tests.support.emulator import EmulatorProcess
from tests.support.kube import REPO_ROOT, controlplane
from tests.support.tfy_emulator import TfyAdminError, TfyEmulatorProcess

GROUP, VERSION, PLURAL = "truefoundry.mlops.dev", "v1alpha1", "modelversions"
CRD_FILE = REPO_ROOT / "crds" / f"{GROUP}_{PLURAL}.yaml"  # PAI's comes with the cluster
NAMESPACE = "chaos-tfy"
LEASE = "pai-operator-chaos-tfy"
REPO = "chaos-repo"
API_KEY = "tfy-chaos-api-key-d0n0tl0g"
URI = "s3://chaos-bucket/models/"
OWNER_KEY = f"{GROUP}/owner"


@dataclass
class Report(chaos_harness.Report):
    created_then_deleted: list[str] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)


def versions_of(tfy: Restartable, model: str) -> list[dict[str, Any]]:
    try:
        found: list[dict[str, Any]] = tfy.admin.versions(REPO, model)
        return found
    except TfyAdminError as exc:
        if exc.status == 404:  # never created
            return []
        raise


@contextmanager
def environment(s: chaos_harness.Scenario, report: Report, rng: random.Random) -> Iterator[Chaos]:
    with cluster("tfy-chaos-", api_client) as found:
        port = controlplane.free_port()
        tfy = Restartable(
            TfyEmulatorProcess(
                api_key=API_KEY,
                ml_repos=[REPO],
                state_file=found.root / "tfy-state.json",
                extra_args=("--port", str(port)),
            ),
            port,
        )
        pai = EmulatorProcess(models=())  # the operator always runs PAI's controller too
        logs = found.root / "operator-logs"
        logs.mkdir()
        try:
            log("starting the PAI and TrueFoundry emulators")
            pai.start()
            tfy.start()
            found.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
            found.kubectl("wait", "--for=condition=Established", f"crd/{PLURAL}.{GROUP}", "--timeout=60s")
            found.create_namespace(NAMESPACE)
            with chaos_harness.supervised_operator(
                found, s, rng, logs, endpoint=pai.url, namespace=NAMESPACE, identity="chaos-tfy-operator",
                lease=LEASE, extra_env={"PAI_OPERATOR_TRUEFOUNDRY_HOST": tfy.url, "TFY_API_KEY": API_KEY},
            ) as supervisor:  # fmt: skip
                rules = fault_rules(
                    s,
                    ("ApplyModelVersion", "DeleteModelVersion"),
                    "TEMPORARILY_UNAVAILABLE",
                    "REQUEST_LIMIT_EXCEEDED",
                )
                yield Chaos(s, report, found, tfy, "TrueFoundry", rules, supervisor, logs)
        finally:
            tfy.process.stop()
            pai.stop()


def run(s: chaos_harness.Scenario) -> Report:
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

    with environment(s, report, rng) as run_:
        tfy = run_.service
        objects = Objects(run_.cluster.api, GROUP, NAMESPACE, PLURAL)

        log("every version number server-assigned")
        creates = [Write(objects, n, copy.deepcopy(specs[n])) for n in names]
        for name in updated:
            specs[name]["description"] = "second"
            specs[name]["metadata"] = {"object": name, "stage": "prod"}
        change = {"description": "second"}
        updates = [
            Write(objects, n, {"spec": {**change, "metadata": specs[n]["metadata"]}}) for n in sorted(updated)
        ]
        run_.under_faults(creates, updates)
        last = run_.converge(objects.list)

        journal = tfy.journal + tfy.drain()
        report.calls = Counter(entry["Operation"] for entry in journal)
        report.injected = injected(journal, detail="Status")
        for name in names:
            versions = versions_of(tfy, models[name])
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

        # At scale the deletion breaker holds the bulk deletion: confirmed, as a person would.
        run_.delete_all([(objects, names)], group=GROUP, lease=LEASE, namespace=NAMESPACE)
        for name in names:
            left = [v for v in versions_of(tfy, models[name]) if v.get("DeletedAt") is None]
            report.orphans += [f"{models[name]}:{v['manifest']['version']}" for v in left]
        run_.scan_secrets(API_KEY, NAMESPACE, last)
    report.total = time.monotonic() - started
    return report


def render(r: Report) -> str:
    s, n = r.scenario, r.scenario.objects

    rows = [
        *chaos_harness.opening_rows(r),
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
        *chaos_harness.closing_rows(r, "API key"),
    ]
    head = [
        f"## Chaos, TrueFoundry: {n} objects under faults (seed {s.seed})\n",
        f"Date: {utc_now()}. Reproduce: `{s.replay}` (bench/chaos_tfy.py; a 20-object version runs "
        "in `make test`, tests/integration/test_chaos_tfy.py).\n",
        f"Faults: {s.error_rate:.0%} 503, {s.throttle_rate:.0%} 429, {s.drop_rate:.0%} commit-then-drop on "
        f"ApplyModelVersion and DeleteModelVersion, latency {s.latency_ms[0]:.0f}-{s.latency_ms[1]:.0f} ms; "
        f"operator SIGKILLed every {s.kill_every[0]:.0f}-{s.kill_every[1]:.0f} s; "
        f"{'; '.join(r.disruptions) or 'no restarts'}. Every version number server-assigned; "
        f"{round(n * s.update_fraction)} objects updated mid-run (description and metadata).\n",
    ]
    return chaos_harness.section("chaos-truefoundry", head, rows, r)


def main(argv: list[str] | None = None) -> int:
    parser = chaos_harness.arguments(__doc__.splitlines()[0], objects=200, service="TrueFoundry")
    args = parser.parse_args(argv)
    report = run(chaos_harness.scenario_of(args, "bench.chaos_tfy"))
    return chaos_harness.publish(render(report), args, "chaos-truefoundry", report.ok)


if __name__ == "__main__":
    sys.exit(main())
