"""End to end on kind (image build, kind load, Helm install, sample Ready): needs Docker and kind."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.support.kube import REPO_ROOT


def _docker_engine() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not _docker_engine(), reason="no Docker engine here: kind cannot run (make e2e-kind)"),
    pytest.mark.skipif(shutil.which("kind") is None, reason="kind is not installed (make e2e-kind)"),
]


def test_kind_end_to_end() -> None:
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "hack" / "e2e-kind.sh")],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "skipped:" not in result.stdout
