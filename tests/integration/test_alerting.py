"""The alerts and the dashboard against real parts: promtool checks and unit-tests the rules, and a
real Prometheus on loopback scrapes a real operator through a fault storm (every create answered
503 by the emulator): the reconcile-error and not-ready alerts fire during the storm and resolve
after it, and every PromQL expression of the dashboard runs and returns data. promtool also lints
a scrape of the operator's /metrics. Prometheus and promtool are built from Go modules and cached
by hack/build-tools.sh (`prometheus`), like the control plane."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from pai_operator.pai import UpdateModelVersionRequest
from tests.integration.conftest import Remote
from tests.support.emulator import AdminClient
from tests.support.kube import REPO_ROOT
from tests.support.operator import ModelVersions, OperatorProcess, wait_for

sys.path.insert(0, str(REPO_ROOT / "hack"))
import alerts
import dashboard

pytestmark = pytest.mark.integration

RULES = REPO_ROOT / "charts" / "pai-operator" / "files" / "prometheus-rules.yaml"
RULE_TESTS = REPO_ROOT / "tests" / "prometheus" / "alerts_test.yaml"
JOB = "pai-operator"
# The live run shortens every `for` 180-fold (15 min -> 5 s, 30 min -> 10 s); the expressions are
# the shipped ones. The shipped durations are what promtool's unit tests check.
SCALE = 1 / 180


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def prometheus_bin() -> Path:
    """The directory holding prometheus and promtool (built by hack/build-tools.sh when missing)."""
    subprocess.run(
        ["bash", str(REPO_ROOT / "hack" / "build-tools.sh"), "prometheus"], check=True, timeout=3600
    )
    cache = subprocess.run(
        ["bash", "-c", f"source {REPO_ROOT / 'hack' / 'lib.sh'} && echo $PROMETHEUS_BIN_DIR"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Path(cache)


def promtool(bin_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "promtool"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_promtool_checks_the_rules_and_their_unit_tests_pass(prometheus_bin: Path) -> None:
    checked = promtool(prometheus_bin, "check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alerts.ALERTS)} rules found" in checked.stdout
    tested = promtool(prometheus_bin, "test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_rule_tests_fail_when_a_rule_changes(prometheus_bin: Path, tmp_path: Path) -> None:
    # The unit tests bite: the same cases against rules whose `for` is halved must fail.
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(alerts.rule_groups(scale=0.5)))
    cases = yaml.safe_load(RULE_TESTS.read_text())
    cases["rule_files"] = ["rules.yaml"]
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(cases))
    tested = promtool(prometheus_bin, "test", "rules", str(tmp_path / "test.yaml"))
    assert tested.returncode != 0
    assert "PaiOperatorObjectsNotReady" in tested.stdout + tested.stderr


class Prometheus:
    """A real Prometheus server on loopback scraping one operator every second."""

    def __init__(self, bin_dir: Path, target_port: int, namespace: str, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (workdir / "rules.yaml").write_text(yaml.safe_dump(alerts.rule_groups(scale=SCALE)))
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": ["rules.yaml"],
            "scrape_configs": [
                {
                    "job_name": JOB,
                    "static_configs": [
                        {"targets": [f"127.0.0.1:{target_port}"], "labels": {"namespace": namespace}}
                    ],
                }
            ],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = (workdir / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                str(bin_dir / "prometheus"),
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
        self.workdir = workdir
        wait_for("prometheus ready", self._ready, timeout=60)

    def _ready(self) -> bool:
        assert self.proc.poll() is None, (self.workdir / "prometheus.log").read_text()[-3000:]
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert answer["status"] == "success", (expr, answer)
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def query_range(self, expr: str, start: float) -> list[dict[str, Any]]:
        """As Grafana asks a panel's query: over a time range, one point per step."""
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{time.time():.3f}", "step": "2s"}
        answer = httpx.get(f"{self.url}/api/v1/query_range", params=params, timeout=30).json()
        assert answer["status"] == "success", (expr, answer)
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def value(self, expr: str) -> float:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else 0.0

    def firing(self) -> set[str]:
        answer = httpx.get(f"{self.url}/api/v1/alerts", timeout=10).json()
        return {a["labels"]["alertname"] for a in answer["data"]["alerts"] if a["state"] == "firing"}

    def active(self) -> set[str]:
        answer = httpx.get(f"{self.url}/api/v1/alerts", timeout=10).json()
        return {a["labels"]["alertname"] for a in answer["data"]["alerts"]}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def prometheus_for(prometheus_bin: Path, namespace: str) -> Iterator[Callable[[OperatorProcess], Prometheus]]:
    started: list[Prometheus] = []
    workdir = Path(tempfile.mkdtemp(prefix="prometheus-"))

    def start(operator: OperatorProcess) -> Prometheus:
        server = Prometheus(prometheus_bin, operator.metrics_port, namespace, workdir)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def spec(model_id: str, version: str) -> dict[str, Any]:
    return {
        "modelId": model_id,
        "uri": "oss://bucket.oss-cn-hangzhou.aliyuncs.com/m/",
        "versionName": version,
        "versionDescription": "managed",
    }


def test_alerts_fire_in_a_fault_storm_and_resolve_and_every_dashboard_query_answers(
    start_operator: Callable[..., OperatorProcess],
    prometheus_for: Callable[[OperatorProcess], Prometheus],
    prometheus_bin: Path,
    mvs: ModelVersions,
    pai: AdminClient,
    model_id: str,
    remote: Remote,
) -> None:
    # A low write rate so the client-side limiter has something to wait for (its dashboard panel).
    operator = start_operator(extra_args=["--write-rate", "2"])
    prom = prometheus_for(operator)
    began = time.time()
    wait_for("the operator scraped", lambda: prom.value(f'up{{job="{JOB}"}}') == 1.0, timeout=30)
    # Healthy and idle: nothing fires, nothing is pending (the start-up `absent` has cleared).
    wait_for("no alert at rest", lambda: not prom.active() or None, timeout=30)

    # The storm: every create fails with 503 (ReconcileError, Ready=False Creating).
    pai.add_fault("CreateModelVersion", "error", code="ServiceUnavailable", http_status=503)
    names = [f"mv-{i}" for i in range(5)]
    for i, name in enumerate(names):
        mvs.create(name, spec(model_id, f"1.0.{i}"))
    storm = {"PaiOperatorReconcileErrors", "PaiOperatorObjectsNotReady"}
    wait_for("reconcile-error and not-ready alerts firing", lambda: storm <= prom.firing(), timeout=120)
    assert prom.value('sum(pai_operator_objects{condition="Synced", reason="ReconcileError"})') == len(names)

    # The storm ends: the objects converge and both alerts resolve.
    pai.clear_faults()
    for name in names:
        mvs.wait_condition(name, "Ready", timeout=120)
    wait_for("storm alerts resolved", lambda: not (storm & prom.active()) or None, timeout=60)

    # Drift behind the operator's back (repaired at the next resync), then deletions: the
    # remaining figures of the dashboard.
    remote(
        lambda c: c.update_model_version(
            model_id, "1.0.0", UpdateModelVersionRequest(version_description="changed by hand")
        )
    )
    repairs = 'sum(pai_operator_drift_repairs_total{job="pai-operator"})'
    wait_for("a drift repair counted", lambda: prom.value(repairs) >= 1 or None, timeout=60)
    for name in names[:2]:
        mvs.delete(name)
    for name in names[:2]:
        mvs.wait_gone(name)
    deletions = 'sum(pai_operator_deletion_duration_seconds_count{job="pai-operator"})'
    wait_for("deletions timed", lambda: prom.value(deletions) >= 2 or None, timeout=30)
    assert prom.value('sum(pai_operator_time_to_ready_seconds_count{job="pai-operator"})') >= len(names)
    assert prom.value('sum(pai_operator_rate_limit_wait_seconds_total{job="pai-operator"})') > 0

    # Every panel's query, as Grafana sends it for this job and the time range of the run.
    empty = []
    for expr in dashboard.queries():
        concrete = expr.replace("$job", JOB).replace("$__rate_interval", "1m")
        if not prom.query_range(concrete, began):
            empty.append(concrete)
    assert empty == [], empty

    # Naming conventions: promtool's linter on a real scrape (text format, as served).
    scrape = operator.metrics()
    linted = promtool(prometheus_bin, "check", "metrics", stdin=scrape)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert linted.stdout.strip() == "", linted.stdout
    census = [line for line in scrape.splitlines() if line.startswith("pai_operator_objects{")]
    assert any('condition="Ready"' in line and 'reason="Available"' in line for line in census), census
