"""Observation paced by the read budget, on the real API server with the emulator as a process:
with default settings (no resync override) drift made through the official SDK on a small fleet
is repaired within seconds, not at the next 600 s resync; and the emulator's journal shows the
lists spending no more than their share of the read quota when the budget, not the minimum
interval, sets the pace."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from alibabacloud_aiworkspace20210204 import models as sdk_models
from alibabacloud_aiworkspace20210204.client import Client

from tests.support.emulator import AdminClient
from tests.support.operator import ModelVersions, OperatorProcess, wait_for

pytestmark = pytest.mark.integration

DEFAULT_RESYNC = 600.0  # the declared default: the budget, not a short resync, finds the drift
DEFAULT_MIN_INTERVAL = 5.0


def _spec(model_id: str, i: int) -> dict[str, Any]:
    return {
        "modelId": model_id,
        "uri": f"oss://bucket/models/{i}/",
        "versionName": f"1.{i}.0",
        "approvalStatus": "Pending",
        "versionDescription": f"version {i}",
    }


def _converge(mvs: ModelVersions, specs: dict[str, dict[str, Any]]) -> None:
    for name, spec in specs.items():
        mvs.create(name, spec)
    for name in specs:
        mvs.wait_condition(name, "Ready")


def _clean_up(mvs: ModelVersions, names: list[str]) -> None:
    for name in names:
        mvs.delete(name)
    for name in names:
        mvs.wait_gone(name)


def _seconds(entry: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(entry["Time"]).replace("Z", "+00:00")).timestamp()


def test_sdk_drift_is_repaired_within_seconds_with_default_settings(
    start_operator: Callable[..., OperatorProcess],
    mvs: ModelVersions,
    pai: AdminClient,
    model_id: str,
    official_sdk: Client,
) -> None:
    start_operator(resync_interval=DEFAULT_RESYNC)
    names = [f"mv-{i}" for i in range(4)]
    _converge(mvs, {name: _spec(model_id, i) for i, name in enumerate(names)})
    try:
        pai.clear_journal()
        time.sleep(3 * DEFAULT_MIN_INTERVAL)
        lists = [_seconds(e) for e in pai.journal("ListModelVersions")]
        # One model, one page: observed every minimum interval, never more often.
        assert 2 <= len(lists) <= 4, lists
        assert all(b - a >= DEFAULT_MIN_INTERVAL - 0.5 for a, b in itertools.pairwise(lists)), lists
        assert pai.journal("GetModelVersion") == []  # in sync: lists only

        for drift in range(2):
            made = time.monotonic()
            official_sdk.update_model_version(
                model_id,
                "1.1.0",
                sdk_models.UpdateModelVersionRequest(version_description=f"by hand {drift}"),
            )

            def repaired() -> bool:
                versions = {v["VersionName"]: v for v in pai.versions(model_id)}
                return versions["1.1.0"].get("VersionDescription") == "version 1"

            wait_for("drift repaired", repaired, timeout=DEFAULT_MIN_INTERVAL + 10)
            # Within one minimum interval and a pass (slack for a loaded machine), not 600 s.
            assert time.monotonic() - made <= DEFAULT_MIN_INTERVAL + 5
        assert {e["VersionName"] for e in pai.journal("UpdateModelVersion")} == {"1.1.0"}
    finally:
        _clean_up(mvs, names)


def test_the_journal_shows_observation_within_the_budget_when_the_budget_sets_the_pace(
    start_operator: Callable[..., OperatorProcess],
    mvs: ModelVersions,
    pai: AdminClient,
    official_sdk: Client,
) -> None:
    # 10 % of 10 reads/s = 1 list per second for 6 models of 2 versions each: each model every
    # 6 s, although the minimum interval (0.5 s) would allow far more.
    read_rate, budget, models = 10.0, 0.1, 6
    start_operator(
        resync_interval=DEFAULT_RESYNC,
        extra_args=[
            "--read-rate",
            str(read_rate),
            "--observation-budget",
            str(budget),
            "--min-observation-interval",
            "0.5",
        ],
    )
    model_ids = [f"budget-{i}-{time.time_ns()}" for i in range(models)]
    specs = {}
    for m, model in enumerate(model_ids):
        pai.add_model(model)
        for i in range(2):
            specs[f"mv-{m}-{i}"] = _spec(model, i)
    _converge(mvs, specs)
    try:
        time.sleep(3)  # let the creates' own passes settle
        pai.clear_journal()
        window = 20.0
        time.sleep(window)
        lists = pai.journal("ListModelVersions")
        rate = len(lists) / window
        allowed = budget * read_rate
        assert rate <= allowed * 1.1, (rate, allowed)  # within the budget (one list of slack)
        assert rate >= allowed * 0.6, (rate, allowed)  # and spending it: not the 600 s resync
        assert {e["ModelId"] for e in lists} == set(model_ids)  # every group in turn
        times = sorted(_seconds(e) for e in lists)
        # Spread evenly: never two lists of this identity closer than the budget's spacing allows.
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 0.5 / allowed, gaps
        assert pai.journal("GetModelVersion") == []
    finally:
        _clean_up(mvs, list(specs))
