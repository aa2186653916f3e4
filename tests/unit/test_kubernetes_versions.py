"""The supported Kubernetes range is declared in three places that must agree: hack/versions.env
(what CI builds and tests), the chart's kubeVersion (what helm enforces) and the README (what users
read). And the generated CRD may use nothing the oldest supported API server lacks."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RELEASE = re.compile(r"v(\d+)\.(\d+)\.(\d+)")


def versions_file() -> dict[str, str]:
    # Parsed here rather than through hack/controlplane.py, which lets the environment override
    # KUBERNETES_VERSION: this test is about the file, whatever version a run was started with.
    values: dict[str, str] = {}
    for line in (REPO / "hack" / "versions.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def release(name: str) -> tuple[int, int, int]:
    value = versions_file()[name]
    match = RELEASE.fullmatch(value)
    assert match, f"{name}={value} is not v1.MINOR.PATCH"
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def readme_section() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index("\n## Supported Kubernetes versions\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_min_and_max_are_releases_in_order() -> None:
    low, high = release("KUBERNETES_MIN_VERSION"), release("KUBERNETES_VERSION")
    assert low[0] == high[0] == 1
    assert low[:2] < high[:2], "the minimum must be an older minor than the newest tested"


def test_chart_kube_version_is_the_minimum() -> None:
    chart = yaml.safe_load((REPO / "charts" / "pai-operator" / "Chart.yaml").read_text())
    major, minor, _ = release("KUBERNETES_MIN_VERSION")
    # `-0` so that vendor builds such as ACK's v1.34.4-aliyun.1 (semver pre-releases) match.
    assert chart["kubeVersion"] == f">={major}.{minor}.0-0"


def test_readme_states_the_same_range() -> None:
    section = readme_section()
    env = versions_file()
    low, high = release("KUBERNETES_MIN_VERSION"), release("KUBERNETES_VERSION")
    assert f"**{low[0]}.{low[1]} to {high[0]}.{high[1]}**" in section
    assert env["KUBERNETES_MIN_VERSION"] in section
    assert env["KUBERNETES_VERSION"] in section
    assert f"`>={low[0]}.{low[1]}.0-0`" in section
    assert "alibabacloud.com" in section  # where the minimum comes from


# CRD constructs and the first Kubernetes minor whose API server accepts (and, for feature-gated
# ones, enables by default) them. An API server older than this either rejects the CRD or silently
# drops the field, so the rule it carries would not be enforced.
CRD_FEATURES: dict[str, int] = {
    "x-kubernetes-validations": 25,  # CEL validation rules, beta (on) in 1.25, GA 1.29
    "messageExpression": 27,
    "reason": 28,  # on a validation rule (KEP-2876 addition, kubernetes#118041)
    "fieldPath": 28,
    "optionalOldSelf": 30,  # CRD validation ratcheting, beta (on) in 1.30, GA 1.33 (KEP-4008)
    "selectableFields": 31,  # field selectors for custom resources, beta (on) in 1.31, GA 1.32
}


def _features(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "x-kubernetes-validations":
                yield key
                for rule in value:
                    yield from (k for k in rule if k in CRD_FEATURES and k != "x-kubernetes-validations")
            elif key == "selectableFields":
                yield key
            else:
                yield from _features(value)
    elif isinstance(node, list):
        for item in node:
            yield from _features(item)


@pytest.mark.parametrize(
    "filename", ["pai.mlops.dev_modelversions.yaml", "truefoundry.mlops.dev_modelversions.yaml"]
)
def test_crd_uses_nothing_newer_than_the_minimum(filename: str) -> None:
    crd = yaml.safe_load((REPO / "crds" / filename).read_text())
    used = set(_features(crd))
    assert {"x-kubernetes-validations", "reason", "fieldPath"} <= used  # the walker does see them
    _, minimum, _ = release("KUBERNETES_MIN_VERSION")
    too_new = {feature: CRD_FEATURES[feature] for feature in used if CRD_FEATURES[feature] > minimum}
    assert not too_new, f"the CRD needs Kubernetes 1.{max(too_new.values())}: {too_new}"


def test_environment_overrides_the_kubernetes_version_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    # `KUBERNETES_VERSION=vX.Y.Z make test` must build (hack/lib.sh), start and expect
    # (hack/controlplane.py) that release, each from its own cache directory.
    monkeypatch.syspath_prepend(str(REPO / "hack"))
    import controlplane

    monkeypatch.setenv("KUBERNETES_VERSION", "v1.34.9")
    assert controlplane._versions()["KUBERNETES_VERSION"] == "v1.34.9"
    assert controlplane._versions()["ETCD_VERSION"] == versions_file()["ETCD_VERSION"]
    monkeypatch.setenv("PAI_OPERATOR_CACHE", "/nonexistent/cache")
    shell = 'source hack/lib.sh && echo "${KUBERNETES_VERSION} ${K8S_BIN_DIR}"'
    out = subprocess.run(
        ["bash", "-c", shell], cwd=REPO, env=dict(os.environ), capture_output=True, text=True
    )
    assert out.stdout.split() == ["v1.34.9", "/nonexistent/cache/kubernetes-v1.34.9"], out.stderr

    monkeypatch.setenv("KUBERNETES_VERSION", "1.34")
    with pytest.raises(SystemExit):
        controlplane._versions()
    bad = subprocess.run(
        ["bash", "-c", shell], cwd=REPO, env=dict(os.environ), capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert "not a release" in bad.stderr

    monkeypatch.delenv("KUBERNETES_VERSION")
    assert controlplane._versions()["KUBERNETES_VERSION"] == versions_file()["KUBERNETES_VERSION"]
    default = subprocess.run(
        ["bash", "-c", shell], cwd=REPO, env=dict(os.environ), capture_output=True, text=True
    )
    assert default.stdout.split()[0] == versions_file()["KUBERNETES_VERSION"]
