"""The Models chaos suite (bench/chaos_models.py) at test scale: 5 Models with 3 versions each by
`modelRef`, applied at once and deleted at once through faults, operator SIGKILLs,
kube-apiserver and etcd restarts and a PAI outage, on a control plane and emulator of its own.
`python -m bench.chaos_models` runs 200 Models x 10 versions (bench/RESULTS.md).

Replay a failure with `PAI_CHAOS_SEED=<seed> pytest tests/integration/test_chaos_models.py` or
`python -m bench.chaos_models --quick --objects 5 --versions 3 --seed <seed>`.
"""

from __future__ import annotations

import dataclasses
import os
import random

from bench import chaos_harness, chaos_models
from tests.integration.conftest import CHAOS_MARKS

pytestmark = CHAOS_MARKS
MODELS, VERSIONS = 5, 3


def test_models_with_versions_converge_through_chaos_and_delete_versions_first() -> None:
    seed = int(os.environ.get("PAI_CHAOS_SEED") or random.SystemRandom().randrange(1, 1_000_000))
    replay = f"python -m bench.chaos_models --quick --objects {MODELS} --versions {VERSIONS} --seed {seed}"
    scenario = dataclasses.replace(chaos_harness.quick(seed, MODELS), replay=replay)
    report = chaos_models.run(scenario, versions_per_model=VERSIONS)
    detail = f"seed {seed}:\n{chaos_models.render(report)}"
    assert report.converged == MODELS * (1 + VERSIONS), detail
    assert (report.remote_models, report.remote_versions) == (MODELS, MODELS * VERSIONS), detail
    assert report.duplicates == [], detail
    assert report.missing == [], detail
    assert report.lost_updates == [], detail
    assert report.not_deleted == 0, detail
    assert report.orphans == [], detail
    assert report.delete_order == [], detail
    assert report.secret_hits == [], detail
    # The faults really happened: kills, restarts, the outage, errors the operator had to ride.
    assert report.kills >= 2, detail
    assert len(report.disruptions) == 3, detail
    assert sum(report.injected.values()) > 0, detail
    assert report.ok, detail
