"""`make dist` against the real API server: the release artefacts a user downloads (packaged chart,
one-file install.yaml, CRD) are complete, carry the one version, and are accepted as installed."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from pai_operator import __version__
from tests.support.kube import REPO_ROOT, Cluster, unique_name

pytestmark = pytest.mark.integration

REPOSITORY = "ghcr.io/pai-mlops/pai-operator"
CRD_NAME = "pai.mlops.dev_modelversions.yaml"
TGZ = f"pai-operator-{__version__}.tgz"
HOME_NAMESPACE = "pai-operator-system"


def run(
    cluster: Cluster, *args: str, input: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(args), input=input, env=env or cluster.env, capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def make_dist(cluster: Cluster, out: Path, **env: str) -> Path:
    # DIST_DIR keeps test runs out of the checkout's dist/ (and parallel runs out of each other's).
    run(cluster, "make", "-s", "-C", str(REPO_ROOT), "dist", env={**cluster.env, "DIST_DIR": str(out), **env})
    return out


def docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def chart_file(tgz: Path, name: str) -> str:
    with tarfile.open(tgz) as archive:
        member = archive.extractfile(f"pai-operator/{name}")
        assert member is not None, name
        return io.TextIOWrapper(member, encoding="utf-8").read()


@pytest.fixture(scope="module")
def dist(control_plane: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dist(control_plane, tmp_path_factory.mktemp("dist"))


def test_dist_holds_chart_install_yaml_crd_and_checksums(dist: Path) -> None:
    assert sorted(p.name for p in dist.iterdir()) == sorted([TGZ, "install.yaml", CRD_NAME, "SHA256SUMS"])
    assert (dist / CRD_NAME).read_bytes() == (REPO_ROOT / "crds" / CRD_NAME).read_bytes()
    sums = dict(reversed(line.split("  ", 1)) for line in (dist / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == {TGZ, "install.yaml", CRD_NAME}
    for name, digest in sums.items():
        assert hashlib.sha256((dist / name).read_bytes()).hexdigest() == digest, name


def test_packaged_chart_carries_the_version(dist: Path) -> None:
    chart = yaml.safe_load(chart_file(dist / TGZ, "Chart.yaml"))
    assert (chart["version"], chart["appVersion"]) == (__version__, __version__)
    values = yaml.safe_load(chart_file(dist / TGZ, "values.yaml"))
    assert values["image"] == {"repository": REPOSITORY, "tag": "", "pullPolicy": "IfNotPresent"}
    # The CRD travels in crds/ (installed once by Helm, never templated).
    assert chart_file(dist / TGZ, f"crds/{CRD_NAME}") == (REPO_ROOT / "crds" / CRD_NAME).read_text()


def test_install_yaml_is_the_kustomize_base_with_the_image_pinned(control_plane: Cluster, dist: Path) -> None:
    installed = docs((dist / "install.yaml").read_text())
    base = docs(run(control_plane, control_plane.kubectl, "kustomize", str(REPO_ROOT / "deploy")).stdout)
    assert [(d["kind"], d["metadata"]["name"]) for d in installed] == [
        (d["kind"], d["metadata"]["name"]) for d in base
    ]
    (deployment,) = [d for d in installed if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{REPOSITORY}:{__version__}"
    for doc in installed:
        assert doc["metadata"]["labels"]["app.kubernetes.io/version"] == __version__, doc["kind"]
    # Apart from the version label (and the pin, which the base happens to share), nothing differs.
    for doc in installed:
        labels = doc["metadata"]["labels"]
        del labels["app.kubernetes.io/version"]
        if not labels:  # deploy/rbac/ sets no labels of its own
            del doc["metadata"]["labels"]
    assert installed == base


def _relocated(install_yaml: str, namespace: str, suffix: str) -> str:
    """install.yaml moved from pai-operator-system into a fresh test namespace.

    A server-side dry run cannot create objects inside a namespace it only pretends to create, and
    pai-operator-system belongs to test_install.py's real kustomize install (without a namespace
    controller a deleted namespace stays Terminating forever). Cluster-scoped RBAC gets a unique
    name so the dry run really creates it instead of diffing against another test's objects.
    """
    moved = []
    for doc in docs(install_yaml):
        meta = doc["metadata"]
        if doc["kind"] == "Namespace":
            assert meta["name"] == HOME_NAMESPACE
            continue
        if meta.get("namespace") is not None:
            assert meta["namespace"] == HOME_NAMESPACE, doc["kind"]
            meta["namespace"] = namespace
        if doc["kind"] in {"ClusterRole", "ClusterRoleBinding"}:
            meta["name"] += suffix
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] += suffix
            for subject in doc["subjects"]:
                subject["namespace"] = namespace
        moved.append(doc)
    return yaml.safe_dump_all(moved)


def test_install_yaml_is_accepted_by_the_api_server(
    control_plane: Cluster, dist: Path, namespace: str
) -> None:
    suffix = "-" + unique_name("d")
    manifests = _relocated((dist / "install.yaml").read_text(), namespace, suffix)
    out = run(
        control_plane,
        control_plane.kubectl,
        "apply",
        "--server-side",
        # Conflicts only concern field ownership (e.g. test_install.py applied the CRD client-side).
        "--force-conflicts",
        "--dry-run=server",
        "-f",
        "-",
        input=manifests,
    ).stdout
    for kind_and_name in (
        "serviceaccount/pai-operator",
        "deployment.apps/pai-operator",
        "service/pai-operator-metrics",
        f"clusterrole.rbac.authorization.k8s.io/pai-operator{suffix}",
        f"clusterrolebinding.rbac.authorization.k8s.io/pai-operator{suffix}",
    ):
        assert f"{kind_and_name} serverside-applied (server dry run)" in out, out
    assert (
        "customresourcedefinition.apiextensions.k8s.io/modelversions.pai.mlops.dev serverside-applied" in out
    )
    # Nothing was really created.
    absent = subprocess.run(
        [control_plane.kubectl, "get", "-n", namespace, "deployment/pai-operator"],
        env=control_plane.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert absent.returncode != 0
    assert "NotFound" in absent.stderr


def test_packaged_chart_installs_and_uninstalls(control_plane: Cluster, dist: Path, namespace: str) -> None:
    release = unique_name("dist")
    helm = control_plane.helm
    run(control_plane, helm, "install", release, str(dist / TGZ), "-n", namespace)
    try:
        status = yaml.safe_load(
            run(control_plane, helm, "status", release, "-n", namespace, "-o", "yaml").stdout
        )
        assert status["info"]["status"] == "deployed"
        (listed,) = yaml.safe_load(
            run(control_plane, helm, "list", "-n", namespace, "--filter", f"^{release}$", "-o", "yaml").stdout
        )
        assert (listed["chart"], listed["app_version"]) == (f"pai-operator-{__version__}", __version__)
        deployment = yaml.safe_load(
            run(
                control_plane,
                control_plane.kubectl,
                "get",
                "-n",
                namespace,
                f"deployment/{release}-pai-operator",
                "-o",
                "yaml",
            ).stdout
        )
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["image"] == f"{REPOSITORY}:{__version__}"
    finally:
        run(control_plane, helm, "uninstall", release, "-n", namespace, "--wait=false")
    left = run(control_plane, helm, "list", "-n", namespace, "-q").stdout.split()
    assert release not in left


def test_packaged_chart_takes_a_self_built_image(control_plane: Cluster, dist: Path) -> None:
    # What the README tells users of `make image IMAGE=...` to set.
    rendered = docs(
        run(
            control_plane,
            control_plane.helm,
            "template",
            "op",
            str(dist / TGZ),
            "--set",
            "image.repository=registry.example.com/team/pai-operator",
            "--set",
            "image.tag=0.1.0-dev",
        ).stdout
    )
    (deployment,) = [d for d in rendered if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/team/pai-operator:0.1.0-dev"


def test_dist_for_another_registry(control_plane: Cluster, tmp_path: Path) -> None:
    fork = "registry.example.com/team/pai-operator"
    out = make_dist(control_plane, tmp_path / "dist", IMAGE_REPOSITORY=fork)
    images = [
        c["image"]
        for d in docs((out / "install.yaml").read_text())
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    ]
    assert images == [f"{fork}:{__version__}"]
    assert yaml.safe_load(chart_file(out / TGZ, "values.yaml"))["image"]["repository"] == fork
    # The chart was re-pointed in a copy: the checkout is untouched.
    diff = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "diff", "--quiet", "--", "charts", "deploy"], check=False
    )
    assert diff.returncode == 0
