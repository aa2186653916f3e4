"""hack/kstatus is cached under a key of its sources; the shell (hack/lib.sh, which builds it) and
Python (hack/controlplane.py, which the tests use to find it) must agree on that key, or a test
would build a binary the other side never finds."""

from __future__ import annotations

import subprocess

from tests.support.kube import REPO_ROOT, controlplane


def test_shell_and_python_agree_on_the_cached_kstatus_binary() -> None:
    shell = subprocess.run(
        ["bash", "-c", "source hack/lib.sh && kstatus_binary"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert shell == str(controlplane.kstatus_binary())
    assert "/kstatus-" in shell


def test_the_checker_pins_cli_utils() -> None:
    gomod = (REPO_ROOT / "hack" / "kstatus" / "go.mod").read_text()
    assert "sigs.k8s.io/cli-utils v0." in gomod
    assert "sigs.k8s.io/cli-utils" in (REPO_ROOT / "hack" / "kstatus" / "go.sum").read_text()
