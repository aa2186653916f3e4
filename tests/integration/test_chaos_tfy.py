"""The TrueFoundry chaos suite (bench/chaos_tfy.py) at 20 objects: faults, operator SIGKILLs,
kube-apiserver and etcd restarts and a TrueFoundry outage, on a control plane and emulators of its
own. Every version number is server-assigned (a create is not idempotent), so a lost create answer
is where a duplicate would come from. `python -m bench.chaos_tfy --objects 200` runs it at scale.

Replay a failure with `PAI_CHAOS_SEED=<seed> pytest tests/integration/test_chaos_tfy.py` or
`python -m bench.chaos_tfy --quick --objects 20 --seed <seed>`.
"""

from __future__ import annotations

import dataclasses
import os
import random

from bench import chaos, chaos_tfy
from tests.integration.conftest import CHAOS_MARKS

pytestmark = CHAOS_MARKS


def test_twenty_truefoundry_objects_converge_through_chaos_with_nothing_duplicated_or_leaked() -> None:
    seed = int(os.environ.get("PAI_CHAOS_SEED") or random.SystemRandom().randrange(1, 1_000_000))
    scenario = dataclasses.replace(
        chaos.quick(seed, 20), replay=f"python -m bench.chaos_tfy --quick --objects 20 --seed {seed}"
    )
    report = chaos_tfy.run(scenario)
    detail = f"seed {seed}:\n{chaos_tfy.render(report)}"
    assert report.converged == 20, detail
    assert report.duplicates == [], detail
    assert report.created_then_deleted == [], detail
    assert report.missing == [], detail
    assert report.lost_updates == [], detail
    assert report.not_deleted == 0, detail
    assert report.orphans == [], detail
    assert report.secret_hits == [], detail
    assert report.scanned, detail
    assert report.kills >= 2, detail
    assert len(report.disruptions) == 3, detail
    assert sum(report.injected.values()) > 10, detail
