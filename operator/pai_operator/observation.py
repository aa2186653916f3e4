"""Batched drift observation: when one list of a group's versions is worth its pages, how
often the read budget allows one, and when a listed item needs no comparison.

Pure. The engine lists every version of a group (PAI: a region and model; TrueFoundry: a
model) as often as the observation budget allows (`ObservationPacer`; at least once per resync
interval) and asks the reconciler, per settled object, whether its listed
version calls for a full pass; a full pass re-reads before it writes anything, so a list never
causes a write on its own. What a listed item does not carry is filled in by the registry
(`Backend.complete_listed`): unknown is never drift.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Hashable

from pydantic import BaseModel


def pages_for(total: int, page_size: int) -> int:
    return max(1, math.ceil(total / page_size))


def list_is_cheaper(members: int, last_total: int | None, page_size: int) -> bool:
    """One list (all pages of `page_size`) for `members` objects, or one GET each? A parent with
    few managed versions among many others is cheaper by GET. The first time the total is
    unknown: list."""
    pages = pages_for(last_total, page_size) if last_total is not None else 1
    return members > 1 and pages < members


QuotaKey = tuple[str, str]
"""(identity, location): whose read quota a group's observation spends. PAI's quotas are per
account and its client-side limits per (identity, region) (`pai.identities.ClientPool`), so a
budget is too; TrueFoundry has one identity per host."""


class ObservationPacer:
    """Drift observation paced by a read budget: `rate` calls per second per quota key.

    Two rules, both O(1) per observation:
    - *spacing*: an observation of cost c (its list pages, or its GETs) starts no sooner than the
      quota key's previous one plus that one's cost / rate, so observations are spread evenly
      (the engine lets a group's first observation after a restart through at once, charged all
      the same: the restart is observed promptly and the budget's average holds);
    - *period*: a group is due again `interval` after its observation: the key's total cost / rate
      (the time the budget needs to observe every group once), never below the minimum interval
      and never above the resync interval.
    One pacer serves every engine that spends the same quota (PAI's Model and ModelVersion
    controllers share their clients), so its group names carry the engine's kind.
    """

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self._next_free: dict[QuotaKey, float] = {}
        self._costs: dict[QuotaKey, dict[Hashable, int]] = {}
        self._totals: dict[QuotaKey, int] = {}

    def set_cost(self, quota: QuotaKey, group: Hashable, cost: int) -> None:
        """What one observation of `group` costs in read calls (its pages, or its members' GETs)."""
        costs = self._costs.setdefault(quota, {})
        self._totals[quota] = self._totals.get(quota, 0) - costs.get(group, 0) + cost
        costs[group] = cost

    def forget(self, quota: QuotaKey, group: Hashable) -> None:
        costs = self._costs.get(quota)
        if costs is None or group not in costs:
            return
        self._totals[quota] -= costs.pop(group)
        if not costs:
            del self._costs[quota], self._totals[quota]
            self._next_free.pop(quota, None)

    def total(self, quota: QuotaKey) -> int:
        return self._totals.get(quota, 0)

    def start_at(self, quota: QuotaKey, now: float) -> float:
        """When an observation spending `quota` may start: now, or later while the budget is spent."""
        return max(now, self._next_free.get(quota, now))

    def spend(self, quota: QuotaKey, calls: float, now: float) -> None:
        """Charge `calls` read calls to `quota` (at admission with the expected cost; afterwards
        with what the walk cost beyond it: a model that grew a page)."""
        self._next_free[quota] = self.start_at(quota, now) + calls / self.rate

    def interval(self, quota: QuotaKey, floor: float, ceiling: float) -> float:
        """Seconds until a group is due again: long enough for the budget to observe every group
        of `quota` once, within [floor, ceiling] (ceiling wins: the resync interval is an upper bound)."""
        return min(ceiling, max(floor, self.total(quota) / self.rate))


def listed_digest(item: object, salt: str) -> bytes:
    """A digest of a listed item and `salt` (the object's resourceVersion): equal digests mean a
    byte-identical item (its JSON, as the registry's model serialises it) for an unchanged object,
    which needs no comparison again."""
    encoded = item.model_dump_json() if isinstance(item, BaseModel) else repr(item)
    digest = hashlib.blake2b(encoded.encode(), digest_size=16)
    digest.update(b"\0" + salt.encode())
    return digest.digest()
