"""Prometheus metrics. One registry per process so tests can read the values back."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

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
PAI_REQUESTS = Counter(
    "pai_operator_pai_requests_total",
    "PAI API calls by operation and outcome.",
    ["operation", "outcome"],
    registry=REGISTRY,
)
PAI_REQUEST_SECONDS = Histogram(
    "pai_operator_pai_request_duration_seconds", "PAI API call latency.", ["operation"], registry=REGISTRY
)
RATE_LIMIT_WAIT_SECONDS = Counter(
    "pai_operator_rate_limit_wait_seconds_total",
    "Time spent waiting for the client-side PAI rate limiter, by operation family.",
    ["family"],
    registry=REGISTRY,
)
OBJECTS = Gauge(
    "pai_operator_objects",
    "ModelVersion objects by condition type and status.",
    ["condition", "status"],
    registry=REGISTRY,
)
LEADER = Gauge(
    "pai_operator_leader",
    "1 while this replica holds the leader-election Lease (and acts), else 0.",
    registry=REGISTRY,
)


class ConditionCensus:
    """Keeps the last known Ready/Synced of each object so the OBJECTS gauge counts objects."""

    def __init__(self) -> None:
        self._by_uid: dict[str, dict[str, str]] = {}

    def record(self, uid: str, conditions: dict[str, str]) -> None:
        self._by_uid[uid] = dict(conditions)
        self._publish()

    def forget(self, uid: str) -> None:
        if self._by_uid.pop(uid, None) is not None:
            self._publish()

    def _publish(self) -> None:
        counts: dict[tuple[str, str], int] = {}
        for conditions in self._by_uid.values():
            for ctype, status in conditions.items():
                counts[(ctype, status)] = counts.get((ctype, status), 0) + 1
        for ctype in ("Ready", "Synced"):
            for status in ("True", "False", "Unknown"):
                OBJECTS.labels(ctype, status).set(counts.get((ctype, status), 0))


def observe_pai_request(operation: str, outcome: str, seconds: float) -> None:
    PAI_REQUESTS.labels(operation, outcome).inc()
    PAI_REQUEST_SECONDS.labels(operation).observe(seconds)


def observe_rate_limit_wait(family: str, seconds: float) -> None:
    RATE_LIMIT_WAIT_SECONDS.labels(family).inc(seconds)


def serve(port: int) -> None:
    if port:
        start_http_server(port, addr="0.0.0.0", registry=REGISTRY)
