"""The operator's alerting rules, as code: the one source of the chart's PrometheusRule, the
kustomize component's and the rule file `promtool test rules` checks (hack/gen-monitoring.py
writes them; tests/unit/test_monitoring.py fails when they are stale).

Every alert groups by `namespace` and `job` (the Prometheus Operator's target labels: one
release, or one shard, per job), so one shard's trouble never hides in another's figures. The
runbook of each alert is a section of README.md ("Alerts and runbooks"), linked from the alert's
`runbook_url` annotation; tests/unit/test_monitoring.py checks that every alert has one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RUNBOOK_BASE = "https://github.com/pai-mlops/pai-model-operator/blob/main/README.md"
BY_JOB = "namespace, job"
BY_KIND = "namespace, job, registry, kind"


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_minutes: float
    severity: str  # critical: pages someone; warning: a ticket for working hours
    summary: str
    description: str

    @property
    def anchor(self) -> str:
        """The README heading's GitHub anchor (`### PaiOperatorDown` -> `paioperatordown`)."""
        return self.name.lower()


def _objects(matchers: str, by: str = BY_KIND) -> str:
    return f"sum by ({by}) (pai_operator_objects{{{matchers}}})"


def _request_ratio(outcome: str, window: str = "5m") -> str:
    def rate(matchers: str) -> str:
        return f"sum by ({BY_JOB}, registry) (rate(pai_operator_registry_requests_total{matchers}[{window}]))"

    matchers = '{outcome=~"' + outcome + '"}'
    return f"{rate(matchers)}\n  /\n{rate('')}"


NOT_READY_MINUTES = 30
RECONCILE_ERROR_MINUTES = 15

ALERTS: tuple[Alert, ...] = (
    Alert(
        "PaiOperatorDown",
        "absent(pai_operator_leader)",
        5,
        "critical",
        "No pai-operator replica is being scraped.",
        "No replica of the operator has exported metrics for 5 minutes: it is not running, or "
        "Prometheus cannot reach it. Nothing reconciles ModelVersions meanwhile.",
    ),
    Alert(
        "PaiOperatorReplicaDown",
        "up == 0\nand on (job, instance)\n(max_over_time(pai_operator_leader[1h]) >= 0)",
        5,
        "warning",
        "A pai-operator replica does not answer scrapes.",
        "{{ $labels.instance }} ({{ $labels.job }}) served pai-operator metrics in the last hour and "
        "fails its scrapes now.",
    ),
    Alert(
        "PaiOperatorNoLeader",
        f"max by ({BY_JOB}) (pai_operator_leader) == 0",
        5,
        "critical",
        "pai-operator replicas run, but none holds the Lease.",
        "Every scraped replica of {{ $labels.job }} in {{ $labels.namespace }} has been a standby for "
        "5 minutes: nothing reconciles ModelVersions.",
    ),
    Alert(
        "PaiOperatorLeaseFlapping",
        f"sum by ({BY_JOB}) (changes(pai_operator_leader[1h])) > 4",
        0,
        "warning",
        "The pai-operator Lease changes hands repeatedly.",
        "Leadership of {{ $labels.job }} changed {{ $value }} times in the last hour (a handover is "
        "one or two changes): replicas crash, lose the Lease, or cannot renew it in time.",
    ),
    Alert(
        "PaiOperatorObjectsStalled",
        _objects('condition="Stalled", status="True"', by=f"{BY_KIND}, reason") + " > 0",
        5,
        "warning",
        "ModelVersions are Stalled: they will not progress without a change.",
        "{{ $value }} {{ $labels.registry }} {{ $labels.kind }} objects are Stalled with reason "
        "{{ $labels.reason }}.",
    ),
    Alert(
        "PaiOperatorObjectsNotReady",
        _objects('condition="Ready", status="False", reason!="Deleting"', by=f"{BY_KIND}, reason") + " > 0",
        NOT_READY_MINUTES,
        "warning",
        "ModelVersions have not been Ready for a long time.",
        "{{ $value }} {{ $labels.registry }} {{ $labels.kind }} objects have been Ready=False (reason "
        "{{ $labels.reason }}) for at least 30 minutes.",
    ),
    Alert(
        "PaiOperatorReconcileErrors",
        _objects('condition="Synced", status="False", reason="ReconcileError"') + " > 0",
        RECONCILE_ERROR_MINUTES,
        "warning",
        "ModelVersions keep failing to reconcile.",
        "{{ $value }} {{ $labels.registry }} {{ $labels.kind }} objects have been failing with "
        "transient errors (ReconcileError: throttling, 5xx, network) for 15 minutes.",
    ),
    Alert(
        "PaiOperatorRegistryThrottled",
        _request_ratio("throttled") + " > 0.1",
        15,
        "warning",
        "The registry throttles more than 10% of the operator's calls.",
        "{{ $labels.registry }} has refused {{ $value | humanizePercentage }} of the calls of "
        "{{ $labels.job }} as throttled for 15 minutes.",
    ),
    Alert(
        "PaiOperatorRegistryServerErrors",
        _request_ratio("server") + " > 0.05",
        15,
        "warning",
        "The registry answers more than 5% of the operator's calls with a server error.",
        "{{ $value | humanizePercentage }} of the calls of {{ $labels.job }} to "
        "{{ $labels.registry }} have failed with 5xx for 15 minutes.",
    ),
    Alert(
        "PaiOperatorDeletionBlocked",
        _objects('condition="Synced", status="False", reason="DeletionBlocked"') + " > 0",
        10,
        "warning",
        "ModelVersion deletions are blocked.",
        "{{ $value }} {{ $labels.registry }} {{ $labels.kind }} objects are being deleted, and their "
        "remote versions cannot be: the finalizer holds them.",
    ),
    Alert(
        # From the deletion breaker (pai_operator_deletions_held{registry}). An operator without
        # it exports no such metric: the expression is then empty and the alert never fires.
        "PaiOperatorDeletionsHeld",
        f"sum by ({BY_JOB}, registry) (pai_operator_deletions_held) > 0",
        5,
        "warning",
        "Remote deletions are held by the deletion breaker.",
        "{{ $labels.job }} holds {{ $value }} {{ $labels.registry }} deletions until someone confirms "
        "the batch (an annotation on the operator's Lease).",
    ),
)


def _duration(minutes: float) -> str:
    seconds = round(minutes * 60)
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def rule_groups(scale: float = 1.0) -> dict[str, Any]:
    """The rules in Prometheus' rule-file shape (also a PrometheusRule's spec). `scale` shortens
    every `for` (tests run the real expressions against a live operator in seconds)."""
    rules = []
    for alert in ALERTS:
        rule: dict[str, Any] = {"alert": alert.name, "expr": alert.expr}
        if alert.for_minutes:
            rule["for"] = _duration(alert.for_minutes * scale)
        rule["labels"] = {"severity": alert.severity}
        rule["annotations"] = {
            "summary": alert.summary,
            "description": alert.description,
            "runbook_url": f"{RUNBOOK_BASE}#{alert.anchor}",
        }
        rules.append(rule)
    return {"groups": [{"name": "pai-operator", "rules": rules}]}
