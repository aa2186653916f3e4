"""Fault injection rules and the request journal (what tests and benchmarks assert on)."""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_pascal

FaultMode = Literal["error", "reset", "commit_then_drop", "latency"]


class FaultRule(BaseModel):
    """One rule as POSTed to /_emulator/faults (PascalCase JSON)."""

    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True, extra="forbid")

    operation: str  # an operation (PAI action or TrueFoundry route) name, or "*" for every one
    mode: FaultMode
    error_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    http_status: int | None = Field(default=None, ge=400, le=599)
    code: str | None = None  # the error `code` of an injected error (absent: the registry's default)
    latency_ms: float | None = Field(default=None, ge=0)
    latency_ms_max: float | None = Field(default=None, ge=0)
    count: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _latency_needs_a_duration(self) -> FaultRule:
        if self.mode == "latency" and self.latency_ms is None and self.latency_ms_max is None:
            raise ValueError("latency faults need LatencyMs and/or LatencyMsMax")
        return self

    def latency_seconds(self, rng: random.Random) -> float:
        low = self.latency_ms or 0.0
        if self.latency_ms_max is not None:
            return rng.uniform(low, max(low, self.latency_ms_max)) / 1000
        return low / 1000


@dataclass
class _ActiveRule:
    rule: FaultRule
    remaining: int | None


class FaultInjector:
    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._rules: list[_ActiveRule] = []

    def add(self, rule: FaultRule) -> None:
        self._rules.append(_ActiveRule(rule, rule.count))

    def clear(self) -> None:
        self._rules.clear()

    def rules(self) -> list[dict[str, Any]]:
        return [
            {**active.rule.model_dump(by_alias=True), "Remaining": active.remaining} for active in self._rules
        ]

    def pick(self, operation: str) -> tuple[float, FaultRule | None]:
        """Added latency (the sum of the firing latency rules) and the first firing terminal rule.
        A rule whose Count is used up no longer fires; one that does not fire keeps its Count."""
        latency = 0.0
        terminal: FaultRule | None = None
        for active in self._rules:
            rule = active.rule
            if rule.operation not in ("*", operation) or active.remaining == 0:
                continue
            if rule.mode != "latency" and terminal is not None:
                continue
            if self._rng.random() >= rule.error_rate:
                continue
            if active.remaining is not None:
                active.remaining -= 1
            if rule.mode == "latency":
                latency += rule.latency_seconds(self._rng)
            else:
                terminal = rule
        return latency, terminal


class Journal:
    """The last `limit` requests, oldest first."""

    def __init__(self, limit: int) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=limit)

    def record(self, entry: dict[str, Any]) -> None:
        self._entries.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        return list(self._entries)

    def clear(self) -> None:
        self._entries.clear()
