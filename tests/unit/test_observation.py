"""When one list of a group is worth its pages (the core of batched observation), the budget's
arithmetic (how often, how spread) and the digest of a listed item."""

import asyncio

import pytest

from pai_operator.commands.context import NoNamespaceAnnotations
from pai_operator.observation import ObservationPacer, QuotaKey, list_is_cheaper, listed_digest, pages_for
from pai_operator.pai import Label, ModelVersion
from pai_operator.registry import PAI, TRUEFOUNDRY
from pai_operator.settings import OperatorSettings


def test_list_only_when_cheaper_than_one_get_each() -> None:
    assert pages_for(0, 100) == 1
    assert pages_for(100, 100) == 1
    assert pages_for(101, 100) == 2
    assert not list_is_cheaper(1, None, 100)  # one object: one GET
    assert list_is_cheaper(2, None, 100)  # first time: one page assumed
    assert list_is_cheaper(20, 1500, 100)  # 15 pages for 20 objects
    assert not list_is_cheaper(3, 1500, 100)  # 15 pages for 3 objects: GETs


# --- the observation budget --------------------------------------------------------------------

A: QuotaKey = ("", "cn-hangzhou")
B: QuotaKey = ("acs:ram::2:role/b", "cn-hangzhou")


def test_the_interval_is_what_the_budget_needs_to_observe_every_group_once_within_floor_and_ceiling() -> None:
    pacer = ObservationPacer(rate=5.0)  # 10 % of PAI's 50 reads/s
    for model in range(50):  # 5,000 versions in 50 models: one page each
        pacer.set_cost(A, ("ModelVersion", model), 1)
    assert pacer.total(A) == 50
    assert pacer.interval(A, floor=5.0, ceiling=600.0) == pytest.approx(10.0)
    for model in range(40):
        pacer.forget(A, ("ModelVersion", model))
    assert pacer.interval(A, floor=5.0, ceiling=600.0) == 5.0  # 10 pages: the floor decides
    pacer.set_cost(A, "huge", 10_000)  # 2,000 s at 5/s: the resync interval bounds it
    assert pacer.interval(A, floor=5.0, ceiling=600.0) == 600.0
    pacer.set_cost(A, "huge", 3)  # a cost replaces the group's previous one
    assert pacer.total(A) == 13


def test_observations_are_spaced_by_their_cost_over_the_rate_per_identity() -> None:
    pacer = ObservationPacer(rate=5.0)
    now = 100.0
    assert pacer.start_at(A, now) == now
    pacer.spend(A, 1, now)
    assert pacer.start_at(A, now) == pytest.approx(now + 0.2)
    pacer.spend(A, 3, now)  # charged after the previous one: starts at +0.2, frees at +0.8
    assert pacer.start_at(A, now) == pytest.approx(now + 0.8)
    assert pacer.start_at(B, now) == now  # another account's quota is untouched
    assert pacer.start_at(A, now + 5.0) == now + 5.0  # idle time is not saved up as a burst


def test_forgetting_the_last_group_of_a_quota_drops_its_state() -> None:
    pacer = ObservationPacer(rate=2.0)
    pacer.set_cost(A, "g", 2)
    pacer.spend(A, 2, 0.0)
    pacer.forget(A, "g")
    pacer.forget(A, "g")  # twice: harmless
    assert pacer.total(A) == 0
    assert pacer.start_at(A, 0.0) == 0.0
    with pytest.raises(ValueError, match="rate must be positive"):
        ObservationPacer(rate=0)


def test_the_listed_digest_changes_with_any_byte_of_the_item_or_the_object() -> None:
    item = ModelVersion(version_name="1.0.0", uri="oss://b/m/", labels=[Label(key="k", value="v")])
    same = ModelVersion.model_validate(item.model_dump())
    assert listed_digest(item, "7") == listed_digest(same, "7")
    assert listed_digest(item, "7") != listed_digest(item, "8")  # the object moved
    changed = item.model_copy(update={"labels": [Label(key="k", value="w")]})
    assert listed_digest(item, "7") != listed_digest(changed, "7")


def test_each_registry_budgets_its_share_of_its_read_rate_and_pai_shares_one_budget() -> None:
    settings = OperatorSettings(
        read_rate=40.0, observation_budget=0.25, truefoundry_host="https://tfy.example.com"
    )
    pai = PAI.build(settings, NoNamespaceAnnotations())
    pacers = {built.backend.names.kind: built.backend.observation_pacer for built in pai}
    # Models and ModelVersions spend the same clients' quota: one budget, 25 % of 40 reads/s.
    assert pacers["ModelVersion"] is pacers["Model"]
    assert pacers["ModelVersion"].rate == 10.0
    (tfy,) = TRUEFOUNDRY.build(settings, NoNamespaceAnnotations())
    assert tfy.backend.observation_pacer.rate == 0.25 * 20.0  # the TrueFoundry client's read rate
    for built in (*pai, tfy):
        for close in built.closers:
            asyncio.run(close())
