"""Prometheus metrics. One registry per process so tests can read the values back.

Label sets are bounded by construction: `registry` and `kind` by the registered plug-ins,
`condition`, `status` and `reason` by the vocabulary (`pai_operator.vocabulary`), `operation`
and `outcome` by the clients' call names and error kinds. The only unbounded label, `namespace`
on `pai_operator_objects`, is off unless `--metrics-namespace-label` asks for it (README,
"Metrics": its cardinality). Counters and histograms restart from zero with the process (use
rate/increase); the object census is counted from current state at scrape time, so it does not.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric

from pai_operator.ratelimit import OperationFamily

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
# Seconds; from a second (a create with no throttling) to an hour (a create behind a quota floor).
TIME_TO_READY_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
TIME_TO_READY = Histogram(
    "pai_operator_time_to_ready_seconds",
    "Seconds from a watch event showing a new generation of an object to the first pass after "
    "which that generation is Ready=True (not observed for generations first seen at startup).",
    ["registry", "kind"],
    buckets=TIME_TO_READY_BUCKETS,
    registry=REGISTRY,
)
DELETION_SECONDS = Histogram(
    "pai_operator_deletion_duration_seconds",
    "Seconds from an object's deletionTimestamp to the end of its remote deletion (or release), "
    "when the finalizer lets it go.",
    ["registry", "kind"],
    buckets=(1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200),
    registry=REGISTRY,
)
DRIFT_REPAIRS = Counter(
    "pai_operator_drift_repairs_total",
    "Passes that changed the remote version although the object's generation had not changed "
    "since its last pass: someone changed it in the registry, and the operator put it back.",
    ["registry", "kind"],
    registry=REGISTRY,
)
STALLED_TRANSITIONS = Counter(
    "pai_operator_stalled_transitions_total",
    "Passes of this process that turned an object's Stalled condition to True (the reasons of the "
    'objects Stalled now: pai_operator_objects{condition="Stalled"}).',
    ["registry", "kind"],
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


CensusKey = tuple[str, str, str, str]
"""(namespace, condition type, status, reason); namespace is "" unless asked for."""


class ObjectCensus(Protocol):
    """One engine's objects, as the census collector reads them at scrape time."""

    @property
    def census_labels(self) -> tuple[str, str]: ...  # (registry, kind)
    def census(self, by_namespace: bool) -> Mapping[CensusKey, int]: ...
    def unobserved(self) -> int: ...
    def __len__(self) -> int: ...


BASELINE_CONDITIONS = ("Ready", "Synced")


class _CensusCollector:
    """Counts objects when Prometheus scrapes, not on every pass: O(objects) per scrape only.
    One series per (registry, kind, condition, status, reason) that has objects; Ready and
    Synced with status True also appear with 0 (reason "") so that a fleet with none of them
    still has a series to graph and to compare against."""

    def __init__(self, censuses: Sequence[ObjectCensus], by_namespace: bool) -> None:
        self._censuses = tuple(censuses)
        self._by_namespace = by_namespace

    def describe(self) -> Iterable[Metric]:
        return []  # unchecked collector: families are produced at collect time

    def collect(self) -> Iterable[Metric]:
        labels = ["registry", "kind", "condition", "status", "reason"]
        if self._by_namespace:
            labels.append("namespace")
        objects = GaugeMetricFamily(
            "pai_operator_objects",
            "Objects by registry, kind, condition type, status and reason"
            + (" and namespace." if self._by_namespace else "."),
            labels=labels,
        )
        tracked = GaugeMetricFamily(
            "pai_operator_tracked_objects", "Objects known.", labels=["registry", "kind"]
        )
        unobserved = GaugeMetricFamily(
            "pai_operator_unobserved_objects",
            "Objects not yet observed (by a pass or a list) since the operator started.",
            labels=["registry", "kind"],
        )
        by_kind: dict[tuple[str, str], collections.Counter[CensusKey]] = {}
        for census in self._censuses:
            registry, kind = census.census_labels
            counts = by_kind.setdefault((registry, kind), collections.Counter())
            counts.update(census.census(self._by_namespace))
            tracked.add_metric([registry, kind], len(census))
            unobserved.add_metric([registry, kind], census.unobserved())
        for (registry, kind), counts in sorted(by_kind.items()):
            seen = {condition for (_ns, condition, status, _r) in counts if status == "True"}
            for condition in BASELINE_CONDITIONS:
                if condition not in seen:
                    counts[("", condition, "True", "")] += 0
            for (namespace, condition, status, reason), n in sorted(counts.items()):
                values = [registry, kind, condition, status, reason]
                objects.add_metric([*values, namespace] if self._by_namespace else values, n)
        yield objects
        yield tracked
        yield unobserved


_census_collector: _CensusCollector | None = None


def initialize(registry: str, kind: str) -> None:
    """Create a kind's series at 0, so rates, alerts and dashboards see a 0 instead of no data
    before the first event (Prometheus' advice: initialise the label sets you know)."""
    for metric in (TIME_TO_READY, DELETION_SECONDS, DRIFT_REPAIRS, STALLED_TRANSITIONS):
        metric.labels(registry, kind)


def register_census(*censuses: ObjectCensus, by_namespace: bool = False) -> None:
    global _census_collector
    if _census_collector is not None:
        REGISTRY.unregister(_census_collector)
    _census_collector = _CensusCollector(censuses, by_namespace)
    REGISTRY.register(_census_collector)


def request_hook(registry: str) -> Callable[[str, str, float], None]:
    """A client's `on_request(operation, outcome, seconds)`, counted under `registry`."""

    def observe(operation: str, outcome: str, seconds: float) -> None:
        REQUESTS.labels(registry, operation, outcome).inc()
        REQUEST_SECONDS.labels(registry, operation).observe(seconds)

    return observe


for _family in OperationFamily:
    RATE_LIMIT_WAIT_SECONDS.labels(_family.value)


def observe_rate_limit_wait(family: str, seconds: float) -> None:
    RATE_LIMIT_WAIT_SECONDS.labels(family).inc(seconds)


def serve(port: int, addr: str = "0.0.0.0") -> None:
    if port:
        start_http_server(port, addr=addr, registry=REGISTRY)
