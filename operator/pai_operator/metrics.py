"""Prometheus metrics. One registry per process so tests can read the values back."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric

REGISTRY = CollectorRegistry()

RECONCILES = Counter(
    "pai_operator_reconciles_total", "Reconcile passes by result.", ["result"], registry=REGISTRY
)
RECONCILE_SECONDS = Histogram(
    "pai_operator_reconcile_duration_seconds",
    "Duration of one reconcile pass.",
    ["result"],
    registry=REGISTRY,
)
REQUESTS = Counter(
    "pai_operator_registry_requests_total",
    "Registry API calls (PAI, TrueFoundry) by registry, operation and outcome (ok or the error kind).",
    ["registry", "operation", "outcome"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "pai_operator_registry_request_duration_seconds",
    "Registry API call latency, by registry and operation.",
    ["registry", "operation"],
    registry=REGISTRY,
)
RATE_LIMIT_WAIT_SECONDS = Counter(
    "pai_operator_rate_limit_wait_seconds_total",
    "Time spent waiting for a client-side registry rate limiter, by operation family.",
    ["family"],
    registry=REGISTRY,
)
OBSERVATIONS = Counter(
    "pai_operator_observations_total",
    "Batched drift observations (one list of a group's versions, all pages).",
    registry=REGISTRY,
)
LEADER = Gauge(
    "pai_operator_leader",
    "1 while this replica holds the leader-election Lease (and acts), else 0.",
    registry=REGISTRY,
)
DELETIONS_HELD = Gauge(
    "pai_operator_deletions_held",
    "Remote deletions held by the deletion breaker until a person confirms the batch, by registry "
    "(alert on > 0).",
    ["registry"],
    registry=REGISTRY,
)
CRD_DELETION_RELEASES = Counter(
    "pai_operator_crd_deletion_releases_total",
    "Objects released without touching the registry because their CRD was being deleted (an "
    "uninstall), by registry.",
    ["registry"],
    registry=REGISTRY,
)


class ObjectCensus(Protocol):
    def condition_counts(self) -> Mapping[tuple[str, str], int]: ...
    def unobserved(self) -> int: ...
    def __len__(self) -> int: ...


class _CensusCollector:
    """Counts objects when Prometheus scrapes, not on every pass: O(objects) per scrape only.
    With several registries enabled, the figures are sums over their engines."""

    def __init__(self, censuses: Sequence[ObjectCensus]) -> None:
        self._censuses = tuple(censuses)

    def describe(self) -> Iterable[Metric]:
        return []  # unchecked collector: families are produced at collect time

    def collect(self) -> Iterable[Metric]:
        objects = GaugeMetricFamily(
            "pai_operator_objects",
            "ModelVersion objects by condition type and status.",
            labels=["condition", "status"],
        )
        counts: collections.Counter[tuple[str, str]] = collections.Counter()
        for census in self._censuses:
            counts.update(census.condition_counts())
        for ctype in ("Ready", "Synced"):
            for status in ("True", "False", "Unknown"):
                objects.add_metric([ctype, status], counts.get((ctype, status), 0))
        yield objects
        yield GaugeMetricFamily(
            "pai_operator_tracked_objects",
            "ModelVersion objects known.",
            sum(len(census) for census in self._censuses),
        )
        yield GaugeMetricFamily(
            "pai_operator_unobserved_objects",
            "Objects not yet observed (by a pass or a list) since the operator started.",
            sum(census.unobserved() for census in self._censuses),
        )


_census_collector: _CensusCollector | None = None


def register_census(*censuses: ObjectCensus) -> None:
    global _census_collector
    if _census_collector is not None:
        REGISTRY.unregister(_census_collector)
    _census_collector = _CensusCollector(censuses)
    REGISTRY.register(_census_collector)


def request_hook(registry: str) -> Callable[[str, str, float], None]:
    """A client's `on_request(operation, outcome, seconds)`, counted under `registry`."""

    def observe(operation: str, outcome: str, seconds: float) -> None:
        REQUESTS.labels(registry, operation, outcome).inc()
        REQUEST_SECONDS.labels(registry, operation).observe(seconds)

    return observe


def observe_rate_limit_wait(family: str, seconds: float) -> None:
    RATE_LIMIT_WAIT_SECONDS.labels(family).inc(seconds)


def serve(port: int, addr: str = "0.0.0.0") -> None:
    if port:
        start_http_server(port, addr=addr, registry=REGISTRY)
