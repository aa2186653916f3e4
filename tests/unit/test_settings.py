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
