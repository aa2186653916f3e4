"""`pai-operator` flags and their PAI_OPERATOR_* environment variables."""

from __future__ import annotations

import os

import pytest

from pai_operator import __version__
from pai_operator.cli import build_parser, main
from pai_operator.settings import OperatorSettings, from_arguments
from tests.support.kube import REPO_ROOT


def settings(argv: list[str]) -> OperatorSettings:
    return from_arguments(build_parser().parse_args(["run", *argv]))


def test_defaults_are_the_documented_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("PAI_OPERATOR_")]:
        monkeypatch.delenv(name)
    s = settings([])
    assert s == OperatorSettings()
    assert s.all_namespaces
    assert (s.resync_interval, s.read_rate, s.write_rate, s.concurrency) == (600.0, 50.0, 20.0, 20)
    assert s.default_deletion_policy == "Delete"
    assert s.tick == 1.0  # half the first back-off: a retry is never late by more than that


def test_environment_then_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAI_OPERATOR_NAMESPACES", "team-a, team-b")
    monkeypatch.setenv("PAI_OPERATOR_RESYNC_INTERVAL", "42")
    monkeypatch.setenv("PAI_OPERATOR_DEFAULT_DELETION_POLICY", "Retain")
    monkeypatch.setenv("PAI_OPERATOR_ENDPOINT", "http://127.0.0.1:9")
    s = settings([])
    assert s.namespaces == ("team-a", "team-b")
    assert s.resync_interval == 42.0
    assert s.default_deletion_policy == "Retain"
    assert s.endpoint == "http://127.0.0.1:9"
    s = settings(["--resync-interval", "5", "--namespace", "x", "--region", "cn-beijing"])
    assert s.namespaces == ("team-a", "team-b", "x")  # argparse appends to the env default
    assert (s.resync_interval, s.region) == (5.0, "cn-beijing")
    assert settings(["--all-namespaces"]).all_namespaces


def test_short_resync_makes_ticks_finer() -> None:
    assert settings(["--resync-interval", "2", "--backoff-base", "0.5"]).tick == 0.25


@pytest.mark.parametrize(
    "argv",
    [["--resync-interval", "0"], ["--write-rate", "-1"], ["--default-deletion-policy", "Orphan"],
     ["--log-format", "xml"], ["--namespace", "a", "--all-namespaces"]],
)  # fmt: skip
def test_bad_settings_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        settings(argv)


def test_version_and_crd_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"pai-operator {__version__}"
    assert main(["crd"]) == 0
    assert capsys.readouterr().out == (REPO_ROOT / "crds" / "pai.mlops.dev_modelversions.yaml").read_text()


def test_leader_election_defaults_flags_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith(("PAI_OPERATOR_", "POD_"))]:
        monkeypatch.delenv(name)
    s = settings([])
    assert s.leader_elect is True
    assert s.leader_elect_lease_name == "pai-operator"
    # controller-runtime's timings
    assert (s.leader_elect_lease_duration, s.leader_elect_renew_deadline, s.leader_elect_retry_period) == (
        15, 10.0, 2.0,
    )  # fmt: skip
    assert s.leader_elect_namespace == "default"  # no service-account mount here
    assert s.identity.endswith(f"-{os.getpid()}")  # host name + pid outside a cluster
    assert s.user_agent == f"pai-model-operator/{__version__} ({s.identity})"

    monkeypatch.setenv("POD_NAME", "pai-operator-7d9f-abcde")
    monkeypatch.setenv("POD_NAMESPACE", "pai-operator-system")
    monkeypatch.setenv("PAI_OPERATOR_LEADER_ELECT", "false")
    monkeypatch.setenv("PAI_OPERATOR_LEADER_ELECT_LEASE_NAME", "pai-operator-shard-a")
    monkeypatch.setenv("PAI_OPERATOR_LEADER_ELECT_LEASE_DURATION", "30")
    s = settings([])
    assert s.identity == "pai-operator-7d9f-abcde"
    assert s.user_agent.endswith(" (pai-operator-7d9f-abcde)")
    assert s.leader_elect_namespace == "pai-operator-system"
    assert s.leader_elect is False
    assert (s.leader_elect_lease_name, s.leader_elect_lease_duration) == ("pai-operator-shard-a", 30)

    s = settings(["--leader-elect", "--leader-elect-namespace", "ops", "--leader-elect-retry-period", "1"])
    assert (s.leader_elect, s.leader_elect_namespace, s.leader_elect_retry_period) == (True, "ops", 1.0)
    assert settings(["--no-leader-elect"]).leader_elect is False


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--leader-elect-lease-duration", "10"], "longer than --leader-elect-renew-deadline"),
        (["--leader-elect-retry-period", "9"], "1.2 x --leader-elect-retry-period"),
        (["--leader-elect-retry-period", "0.5"], "at least 1 second"),
    ],
)
def test_leader_election_timings_are_checked(argv: list[str], complaint: str) -> None:
    with pytest.raises(SystemExit, match=complaint):
        settings(argv)
