"""Where one observation's CPU goes, per listed object: the full comparison (`needs_pass`: parse
the spec, plan, derive the status a pass would write) against the digest that lets a
byte-identical item skip it (`observation.listed_digest`).

    .venv/bin/python -m bench.profile_observation [--objects 5000] [--cprofile]

In process, no I/O: a PAI reconciler with the shipped settings judges N settled objects against
their listed versions, as the engine does once per observation of their groups. Prints
microseconds per object for each path (and, with --cprofile, the comparison's top functions).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import time
from typing import Any

from pai_operator.commands.context import NoNamespaceAnnotations
from pai_operator.engine import Tracked
from pai_operator.observation import listed_digest
from pai_operator.pai import Label, ModelVersion
from pai_operator.pai.backend import PaiBackend
from pai_operator.pai.spec import RESOURCE
from pai_operator.plans import plan_reconcile
from pai_operator.reconciler import ObjectState, Reconciler
from pai_operator.reconciler import _conditions as conditions_of
from pai_operator.settings import OperatorSettings

URI = "oss://bench-bucket.oss-cn-hangzhou-internal.aliyuncs.com/models/bench/"


def objects(n: int) -> list[tuple[Tracked, ModelVersion]]:
    out = []
    for i in range(n):
        spec = {
            "modelId": f"model-{i % 50}",
            "uri": f"{URI}{i}/",
            "versionName": f"1.{i}.0",
            "versionDescription": f"bench object {i}",
            "labels": {"team": "a"},
        }
        uid = f"uid-{i}"
        body = {
            "metadata": {
                "namespace": "bench",
                "name": f"mv-{i:05d}",
                "uid": uid,
                "generation": 1,
                "resourceVersion": str(1000 + i),
                "finalizers": [RESOURCE.finalizer],
            },
            "spec": spec,
            "status": {
                "observedGeneration": 1,
                "versionName": f"1.{i}.0",
                "regionId": "cn-hangzhou",
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "Available"},
                    {"type": "Synced", "status": "True", "reason": "ReconcileSuccess"},
                ],
            },
        }
        listed = ModelVersion(
            version_name=f"1.{i}.0",
            uri=f"{URI}{i}/",
            version_description=f"bench object {i}",
            labels=[
                Label(key="team", value="a"),
                Label(key="pai.mlops.dev/owner-uid", value=uid),
                Label(key="pai.mlops.dev/owner-ref", value=f"bench/mv-{i:05d}"),
            ],
        )
        out.append((Tracked.from_body(RESOURCE, body), listed))
    return out


def settle(reconciler: Reconciler[Any, Any, Any, Any], record: Tracked, item: ModelVersion) -> None:
    """Give `record` the status a pass would have written for `item` (in sync), as a live
    operator's settled objects have."""
    obj = record.view()
    backend = reconciler.backend
    spec = backend.parse(obj.spec)
    policies, key, _ = reconciler._inputs(obj, ObjectState(), spec)
    owner = reconciler._owner(obj)
    observed = backend.complete_listed(item, spec, owner, obj.status)
    plan = plan_reconcile(
        backend.planner,
        spec,
        owner=owner,
        policies=policies,
        recorded_key=key,
        observed=observed,
        owned=None,
        problems=[],
        paused_annotation=backend.names.paused_annotation,
    )
    result = reconciler._succeeded(
        obj, ObjectState(), "cn-hangzhou", plan, conditions_of(obj.status), [], plan.version_name, observed
    )
    body = {
        "metadata": {
            "generation": 1,
            "resourceVersion": record.resource_version,
            "finalizers": [RESOURCE.finalizer],
        },
        "spec": obj.spec,
        "status": {**obj.status, **(result.status_patch or {})},
    }
    record.absorb(body)


def per_object_us(n: int, judge: object) -> float:
    started = time.perf_counter()
    assert callable(judge)
    judge()
    return (time.perf_counter() - started) / n * 1e6


def measure(n: int, cprofile: bool = False) -> str:
    """One line: µs per object of the comparison and of the digest, with the load average."""
    settings = OperatorSettings(region="cn-hangzhou")
    reconciler = Reconciler(settings, PaiBackend(None, settings.region), NoNamespaceAnnotations())  # type: ignore[arg-type]
    pairs = objects(n)
    state = ObjectState()
    for record, item in pairs:
        settle(reconciler, record, item)
    verdicts: list[bool] = []

    def compare() -> None:
        verdicts.clear()
        for record, item in pairs:
            verdicts.append(reconciler.needs_pass(record.view(), state, item))

    def digest() -> None:
        # What Engine._observe does per listed item of an unchanged object: its key, its digest.
        for record, item in pairs:
            record.remote_key(reconciler.backend.key_of)
            if listed_digest(item, record.resource_version) == record.listed:
                continue

    async def run() -> tuple[float, float]:
        compare()  # warm up (imports, caches)
        digest()  # and each record's key, derived once per spec/status the watch shows
        return per_object_us(n, compare), per_object_us(n, digest)

    full, skipped = asyncio.run(run())
    one, five, fifteen = os.getloadavg()
    if cprofile:
        profiler = cProfile.Profile()
        profiler.runcall(compare)
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(15)
    return (
        f"{n:,} settled objects: comparison {full:.0f} µs per object ({sum(verdicts)} judged to need a "
        f"pass), key and digest (the skip path) {skipped:.1f} µs per object ({full / skipped:.0f}x less); "
        f"load average {one:.1f} / {five:.1f} / {fifteen:.1f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--cprofile", action="store_true")
    args = parser.parse_args(argv)
    print(measure(args.objects, args.cprofile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
