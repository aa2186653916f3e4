"""The GitHub Actions workflows cannot run here, so `make lint` validates them with actionlint
(built from Go modules and cached by hack/build-tools.sh). These tests prove the gate bites: a
workflow that does not parse, or that misuses an expression, an action or a job graph, fails."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.kube import REPO_ROOT

pytestmark = pytest.mark.integration

WORKFLOWS = REPO_ROOT / ".github" / "workflows"


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    # The same script `make lint` runs (it builds actionlint first when the cache lacks it).
    return subprocess.run(
        ["bash", str(REPO_ROOT / "hack" / "actionlint.sh"), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_repository_workflows_pass() -> None:
    result = actionlint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in WORKFLOWS.glob("*.yml")) == ["ci.yml", "release.yml"]


GOOD_JOB = """\
on: push
jobs:
  build:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
      - run: echo ok
"""

BROKEN = {
    "yaml-syntax": (GOOD_JOB.replace("jobs:", "jobs: [", 1), "could not parse as YAML"),
    "unknown-context-property": (
        GOOD_JOB.replace("echo ok", "echo ${{ github.tag_name }}"),
        'property "tag_name" is not defined',
    ),
    "unknown-action-input": (
        GOOD_JOB.replace(
            "actions/checkout@v4", "actions/checkout@v4\n        with:\n          fetch-dept: 1"
        ),
        'input "fetch-dept" is not defined',
    ),
    "missing-runs-on": (GOOD_JOB.replace("    runs-on: ubuntu-24.04\n", ""), '"runs-on" section is missing'),
    "unknown-needs": (
        GOOD_JOB.replace("    runs-on:", "    needs: [tests]\n    runs-on:"),
        'job "build" needs job "tests" which does not exist',
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_workflow_fails_the_lint(case: str, tmp_path: Path) -> None:
    workflow = tmp_path / ".github" / "workflows" / f"{case}.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text(GOOD_JOB)
    assert actionlint(workflow).returncode == 0, "the baseline must pass for the breakage to count"
    text, complaint = BROKEN[case]
    workflow.write_text(text)
    result = actionlint(workflow)
    assert result.returncode != 0
    assert complaint in result.stdout, result.stdout + result.stderr


def test_a_typo_in_the_release_workflow_fails_the_lint(tmp_path: Path) -> None:
    release = (WORKFLOWS / "release.yml").read_text()
    broken = release.replace("needs: [version, image]", "needs: [version, images]", 1)
    assert broken != release
    copy = tmp_path / ".github" / "workflows" / "release.yml"
    copy.parent.mkdir(parents=True)
    copy.write_text(broken)
    result = actionlint(copy)
    assert result.returncode != 0
    assert '"images"' in result.stdout, result.stdout + result.stderr
