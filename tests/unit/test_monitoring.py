"""The alerting rules and the dashboard: generated files fresh, every alert with a runbook, every
metric they read exported by the operator, the chart's and the component's copies the same."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import yaml

from pai_operator import metrics
from tests.unit.test_engine import World

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "hack"))

import alerts  # noqa: E402
import dashboard  # noqa: E402


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_monitoring", ROOT / "hack" / "gen-monitoring.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_files_are_fresh() -> None:
    for path, text in _generator().outputs().items():
        assert path.exists(), f"{path.relative_to(ROOT)} is missing: run `make monitoring`"
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.relative_to(ROOT)} is stale (hack/alerts.py or hack/dashboard.py changed?): "
            "run `make monitoring` and commit the result"
        )


def test_every_alert_has_a_runbook_section_and_a_unit_test() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^### (\w+)$", readme, re.MULTILINE))
    tested = (ROOT / "tests" / "prometheus" / "alerts_test.yaml").read_text(encoding="utf-8")
    for alert in alerts.ALERTS:
        assert alert.name in headings, f"README.md has no runbook section '### {alert.name}'"
        assert f"alertname: {alert.name}" in tested, f"no promtool test case for {alert.name}"
    rules = alerts.rule_groups()["groups"][0]["rules"]
    assert len({r["alert"] for r in rules}) == len(rules)
    assert all(r["labels"]["severity"] in ("critical", "warning") for r in rules)


METRIC = re.compile(r"\b(pai_operator_[a-z_]+)")


SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def _exported() -> set[str]:
    """Every series name the operator's registry can export (labelled families included before
    their first sample), with an engine's census registered as the operator does."""
    metrics.register_census(World().engine)
    return {
        family.name + suffix
        for family in metrics.REGISTRY.collect()
        for suffix in SUFFIXES.get(family.type, ("",))
    }


def test_every_metric_the_rules_and_dashboard_read_is_exported() -> None:
    exported = _exported()
    used = {m for a in alerts.ALERTS for m in METRIC.findall(a.expr)}
    used |= {m for q in dashboard.queries() for m in METRIC.findall(q)}
    assert used <= exported, used - exported


def test_the_chart_and_the_component_carry_the_same_rules_and_dashboard() -> None:
    chart = yaml.safe_load((ROOT / "charts/pai-operator/files/prometheus-rules.yaml").read_text())
    component = yaml.safe_load((ROOT / "deploy/components/monitoring/prometheusrule.yaml").read_text())
    assert component["spec"] == chart == alerts.rule_groups()
    board = json.loads((ROOT / "deploy/components/monitoring/dashboard.json").read_text())
    assert board["uid"] == dashboard.UID
    targets = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    assert targets == dashboard.queries()
    # Every panel reads the chosen data source; none is hard-wired to one Grafana's.
    assert {p["datasource"]["uid"] for p in board["panels"] if p["type"] != "row"} == {"${datasource}"}


def test_scaled_rules_shorten_only_the_for_durations() -> None:
    scaled = alerts.rule_groups(scale=1 / 60)["groups"][0]["rules"]
    normal = alerts.rule_groups()["groups"][0]["rules"]
    assert [r["expr"] for r in scaled] == [r["expr"] for r in normal]
    by_name = {r["alert"]: r for r in scaled}
    assert by_name["PaiOperatorObjectsNotReady"]["for"] == "30s"
    assert by_name["PaiOperatorDown"]["for"] == "5s"
