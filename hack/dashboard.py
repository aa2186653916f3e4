"""The operator's Grafana dashboard, as code (Grafana Labs' grafana-foundation-sdk builders):
hack/gen-monitoring.py writes it as JSON for the chart's ConfigMap and the kustomize component;
tests/unit/test_monitoring.py fails when the JSON is stale, and tests/integration/test_alerting.py
runs every query below against a real Prometheus scraping a real operator.

Rows answer, in order: what state is the fleet in and why (objects by condition and reason),
is the operator keeping up (passes, time to Ready, drift repairs, deletions), how is the registry
treating us (calls by operation and outcome, latency, rate-limit waits), and who leads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard, DatasourceVariable, QueryVariable, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableRefresh

UID = "pai-operator"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
JOB = 'job=~"$job"'
RATE = "$__rate_interval"


def sel(metric: str, *matchers: str) -> str:
    """A selector restricted to the chosen jobs (releases)."""
    return f"{metric}{{{', '.join((JOB, *matchers))}}}"


NOT_READY = sel("pai_operator_objects", 'condition="Ready"', 'status!="True"')
NOT_SYNCED = sel("pai_operator_objects", 'condition="Synced"', 'status!="True"')
STALLED = sel("pai_operator_objects", 'condition="Stalled"', 'status="True"')
FAILED_CALLS = sel("pai_operator_registry_requests_total", 'outcome!="ok"')


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Graph:
    title: str
    description: str
    unit: str
    queries: Sequence[Query]
    stat: bool = False
    width: int = 12


def _quantiles(metric: str, by: str, legend: str) -> list[Query]:
    return [
        Query(
            f"histogram_quantile({q}, sum by (le, {by}) (rate({sel(metric)}[{RATE}])))",
            f"p{round(q * 100)} {legend}",
        )
        for q in (0.5, 0.95)
    ]


ROWS: tuple[tuple[str, tuple[Graph, ...]], ...] = (
    (
        "Fleet",
        (
            Graph(
                "Objects",
                "Objects the operator knows.",
                "short",
                [Query(f"sum({sel('pai_operator_tracked_objects')})", "objects")],
                stat=True,
                width=6,
            ),
            Graph(
                "Not Ready",
                "Objects whose Ready condition is not True.",
                "short",
                [Query(f"sum({NOT_READY}) or vector(0)", "not Ready")],
                stat=True,
                width=6,
            ),
            Graph(
                "Stalled",
                "Objects that will not progress without a change (Stalled=True).",
                "short",
                [Query(f"sum({STALLED}) or vector(0)", "Stalled")],
                stat=True,
                width=6,
            ),
            Graph(
                "Leader",
                "1 while a replica holds the Lease and reconciles.",
                "short",
                [Query(f"max({sel('pai_operator_leader')})", "leader")],
                stat=True,
                width=6,
            ),
            Graph(
                "Not Ready by reason",
                "Why objects are not Ready (Creating, Unavailable, Deleting, ...).",
                "short",
                [Query(f"sum by (registry, kind, reason) ({NOT_READY})", "{{registry}} {{kind}} {{reason}}")],
            ),
            Graph(
                "Not Synced by reason",
                "Why the last pass did not do what the spec asks (ReconcileError, "
                "AuthFailed, Conflict, DeletionBlocked, ...).",
                "short",
                [
                    Query(
                        f"sum by (registry, kind, reason) ({NOT_SYNCED})", "{{registry}} {{kind}} {{reason}}"
                    )
                ],
            ),
            Graph(
                "Objects by condition",
                "Every condition, status and reason.",
                "short",
                [
                    Query(
                        f"sum by (registry, kind, condition, status, reason) ({sel('pai_operator_objects')})",
                        "{{registry}} {{kind}} {{condition}}={{status}} {{reason}}",
                    )
                ],
                width=24,
            ),
        ),
    ),
    (
        "Reconciling",
        (
            Graph(
                "Passes by result",
                "Reconcile passes per second by outcome.",
                "ops",
                [
                    Query(
                        f"sum by (result) (rate({sel('pai_operator_reconciles_total')}[{RATE}]))",
                        "{{result}}",
                    )
                ],
            ),
            Graph(
                "Pass duration",
                "Seconds per reconcile pass.",
                "s",
                _quantiles("pai_operator_reconcile_duration_seconds_bucket", "result", "{{result}}"),
            ),
            Graph(
                "Time to Ready",
                "Seconds from a new generation to Ready.",
                "s",
                _quantiles(
                    "pai_operator_time_to_ready_seconds_bucket", "registry, kind", "{{registry}} {{kind}}"
                ),
            ),
            Graph(
                "Deletion time",
                "Seconds from deletionTimestamp to the finalizer's release.",
                "s",
                _quantiles(
                    "pai_operator_deletion_duration_seconds_bucket", "registry, kind", "{{registry}} {{kind}}"
                ),
            ),
            Graph(
                "Drift repairs",
                "Remote versions changed behind the operator's back and put back.",
                "short",
                [
                    Query(
                        f"sum by (registry, kind) "
                        f"(increase({sel('pai_operator_drift_repairs_total')}[{RATE}]))",
                        "{{registry}} {{kind}}",
                    )
                ],
            ),
            Graph(
                "Stalled transitions",
                "Objects that turned Stalled.",
                "short",
                [
                    Query(
                        f"sum by (registry, kind) "
                        f"(increase({sel('pai_operator_stalled_transitions_total')}[{RATE}]))",
                        "{{registry}} {{kind}}",
                    )
                ],
            ),
        ),
    ),
    (
        "Registry calls",
        (
            Graph(
                "Calls by operation and outcome",
                "Registry API calls per second.",
                "reqps",
                [
                    Query(
                        f"sum by (registry, operation, outcome) "
                        f"(rate({sel('pai_operator_registry_requests_total')}[{RATE}]))",
                        "{{registry}} {{operation}} {{outcome}}",
                    )
                ],
            ),
            Graph(
                "Failed calls by outcome",
                "Share of registry calls that failed, by error kind (throttled, server, network, ...).",
                "percentunit",
                [
                    Query(
                        f"sum by (registry, outcome) "
                        f"(rate({FAILED_CALLS}[{RATE}]))\n"
                        f"  / ignoring (outcome) group_left\n"
                        f"sum by (registry) (rate({sel('pai_operator_registry_requests_total')}[{RATE}]))",
                        "{{registry}} {{outcome}}",
                    )
                ],
            ),
            Graph(
                "Call latency",
                "Seconds per registry call.",
                "s",
                _quantiles(
                    "pai_operator_registry_request_duration_seconds_bucket",
                    "registry, operation",
                    "{{registry}} {{operation}}",
                ),
            ),
            Graph(
                "Rate-limit waits",
                "Seconds per second that passes waited for the client-side rate "
                "limiter (1 = one pass waiting all the time).",
                "s",
                [
                    Query(
                        f"sum by (family) "
                        f"(rate({sel('pai_operator_rate_limit_wait_seconds_total')}[{RATE}]))",
                        "{{family}}",
                    )
                ],
            ),
            Graph(
                "Batched observations",
                "Drift checks by list (one per group of versions, all pages).",
                "ops",
                [Query(f"sum(rate({sel('pai_operator_observations_total')}[{RATE}]))", "lists")],
            ),
        ),
    ),
    (
        "Leadership",
        (
            Graph(
                "Leader by replica",
                "1 on the replica that holds the Lease.",
                "short",
                [Query(sel("pai_operator_leader"), "{{instance}}")],
            ),
            Graph(
                "Lease transitions (1 h)",
                "Changes of the leader gauge over the last hour, all replicas.",
                "short",
                [Query(f"sum by (job) (changes({sel('pai_operator_leader')}[1h]))", "{{job}}")],
            ),
        ),
    ),
)


def queries() -> list[str]:
    """Every PromQL expression of the dashboard, as Grafana sends it (variables unexpanded)."""
    return [query.expr for _row, graphs in ROWS for graph in graphs for query in graph.queries]


def _panel(graph: Graph, panel_id: int) -> Stat | Timeseries:
    panel = Stat() if graph.stat else Timeseries()
    panel = (
        panel.id(panel_id)
        .title(graph.title)
        .description(graph.description)
        .unit(graph.unit)
        .datasource(DATASOURCE)
    )
    panel = panel.span(graph.width).height(4 if graph.stat else 8)
    for ref, query in zip("ABCDEFGH", graph.queries, strict=False):
        panel = panel.with_target(Dataquery().expr(query.expr).legend_format(query.legend).ref_id(ref))
    return panel


def build() -> Dashboard:
    dashboard = (
        Dashboard("PAI model operator")
        .uid(UID)
        .tags(["pai-operator", "kubernetes"])
        .description(
            "ModelVersion objects by condition and reason, passes, time to Ready, registry calls, "
            "leadership. Generated by hack/dashboard.py."
        )
        .refresh("30s")
        .time("now-3h", "now")
        .timezone("browser")
        .with_variable(DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(
            QueryVariable("job")
            .label("Release (job)")
            .datasource(DATASOURCE)
            .query("label_values(pai_operator_leader, job)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
    )
    ids = iter(range(1, 1000))  # stable ids: Grafana links and alerts address panels by id
    for title, graphs in ROWS:
        dashboard = dashboard.with_row(Row(title).id(next(ids)))
        for graph in graphs:
            dashboard = dashboard.with_panel(_panel(graph, next(ids)))
    return dashboard


def render() -> str:
    """The dashboard JSON as written to the chart and the kustomize component."""
    model: Any = json.loads(JSONEncoder(sort_keys=True, indent=2).encode(build().build()))
    return json.dumps(model, indent=2, sort_keys=True) + "\n"
