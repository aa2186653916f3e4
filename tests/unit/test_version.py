"""One version source: `pai_operator.__version__`. Every file that repeats it (chart, Dockerfile,
kustomize image tag, changelog, Makefile) and every output that reports it (`pai-operator
--version`, the wheel) must agree, and the release tooling (Makefile, hack/image.sh, workflows)
must take it from there rather than carry its own."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from pai_operator import __version__
from pai_operator.cli import main

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "pai-operator"
WORKFLOWS = REPO / ".github" / "workflows"
SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$")


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_version_is_semver() -> None:
    assert SEMVER.match(__version__), __version__


def test_wheel_takes_the_version_from_the_package() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "pai_operator.__version__"}


def test_cli_reports_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"pai-operator {__version__}"


def test_chart_version_and_app_version() -> None:
    chart = _yaml(CHART / "Chart.yaml")
    # Chart and app are released together, so one number serves both.
    assert chart["version"] == __version__
    assert chart["appVersion"] == __version__
    # The default image tag is the appVersion (an empty value falls back to it).
    assert _yaml(CHART / "values.yaml")["image"]["tag"] == ""
    assert (
        "(default .Chart.AppVersion .Values.image.tag)" in (CHART / "templates" / "_helpers.tpl").read_text()
    )


def test_dockerfile_version_default_and_labels() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(rf"^ARG VERSION={re.escape(__version__)}$", dockerfile, flags=re.MULTILINE)
    assert 'org.opencontainers.image.version="${VERSION}"' in dockerfile
    assert 'org.opencontainers.image.revision="${REVISION}"' in dockerfile


def test_kustomize_image_tag() -> None:
    base = _yaml(REPO / "deploy" / "base" / "kustomization.yaml")
    (image,) = base["images"]
    assert image["newTag"] == __version__


def _changelog_versions() -> list[str]:
    text = (REPO / "CHANGELOG.md").read_text()
    return re.findall(r"^## \[([^\]]+)\]", text, flags=re.MULTILINE)


def test_changelog_newest_release_is_the_version() -> None:
    text = (REPO / "CHANGELOG.md").read_text()
    versions = _changelog_versions()
    assert versions[0] == "Unreleased"
    released = versions[1:]
    assert released
    assert released[0] == __version__
    # Keep a Changelog: every release heading carries an ISO date, and links resolve the headings.
    for version in released:
        assert SEMVER.match(version), version
        assert re.search(
            rf"^## \[{re.escape(version)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", text, flags=re.MULTILINE
        )
        assert re.search(rf"^\[{re.escape(version)}\]: https://", text, flags=re.MULTILINE)
    assert re.search(r"^\[Unreleased\]: https://", text, flags=re.MULTILINE)


def test_makefile_prints_the_version() -> None:
    out = subprocess.run(
        ["make", "-s", "version"], cwd=REPO, capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == __version__


# --- the published image repository is named the same everywhere ---------------------------------


def test_image_repository_agrees_everywhere() -> None:
    repository = _yaml(CHART / "values.yaml")["image"]["repository"]
    (kustomize_image,) = _yaml(REPO / "deploy" / "base" / "kustomization.yaml")["images"]
    release = _yaml(WORKFLOWS / "release.yml")
    assert kustomize_image["newName"] == repository
    assert release["env"]["IMAGE_REPOSITORY"] == repository
    for script in ("dist.sh", "image.sh"):
        assert repository in (REPO / "hack" / script).read_text(), script


# --- workflows (their syntax is actionlint's job: tests/integration/test_workflows.py) ----------


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def _uses(workflow: dict[str, Any]) -> list[str]:
    return [step["uses"] for step in _steps(workflow) if "uses" in step]


@pytest.mark.parametrize("name", ["ci.yml", "release.yml"])
def test_actions_are_pinned(name: str) -> None:
    for uses in _uses(_yaml(WORKFLOWS / name)):
        _action, _, ref = uses.partition("@")
        assert ref, f"{uses}: not pinned"
        assert ref not in {"main", "master", "latest"}, uses
        assert re.match(r"^(v\d+(\.\d+)*|[0-9a-f]{40})$", ref), uses


def test_ci_runs_make_test_with_the_tool_cache() -> None:
    ci = _yaml(WORKFLOWS / "ci.yml")
    # PyYAML reads the bare key `on` as the boolean True.
    triggers = ci[True]
    assert {"push", "pull_request", "workflow_call"} <= set(triggers)
    steps = _steps(ci)
    assert any(step.get("run") == "bash .ci/run" for step in steps)
    restores = [s for s in steps if str(s.get("uses", "")).startswith("actions/cache/restore@")]
    saves = [s for s in steps if str(s.get("uses", "")).startswith("actions/cache/save@")]
    for caches in (restores, saves):
        paths = " ".join(s["with"]["path"] for s in caches)
        assert "~/.cache/pai-operator" in paths
        assert "~/go/pkg/mod" in paths
    for cache in restores:
        assert "hashFiles('hack/versions.env'" in cache["with"]["key"]
    # Tools are built and saved before the tests, so a failing test does not discard a cold build.
    names = [s.get("name") for s in steps]
    assert names.index("make tools") < names.index("Save the tool cache") < names.index("make test")


def test_release_workflow_publishes_what_the_readme_promises() -> None:
    release = _yaml(WORKFLOWS / "release.yml")
    assert release[True] == {"push": {"tags": ["v*"]}}
    assert release["jobs"]["test"]["uses"] == "./.github/workflows/ci.yml"
    image = release["jobs"]["image"]
    assert image["permissions"]["id-token"] == "write"
    (build,) = [s for s in image["steps"] if str(s.get("uses", "")).startswith("docker/build-push-action@")]
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64"
    assert build["with"]["push"] is True
    assert "VERSION=" in build["with"]["build-args"]
    assert "REVISION=" in build["with"]["build-args"]
    text = (WORKFLOWS / "release.yml").read_text()
    assert "anchore/sbom-action@" in text
    assert "cosign sign --yes" in text
    assert '"${HELM}" push' in text
    assert "make dist" in text
    assert "gh release create" in text
    assert "dist/*" in text
    # The tag must name the version the files carry.
    assert 'if [[ "${TAG}" != "v${version}" ]]' in text


# --- make image ----------------------------------------------------------------------------------


def _make_image(env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", "image", *extra], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


def test_make_image_without_a_builder_fails_clearly(tmp_path: Path) -> None:
    # A PATH holding only what the script itself needs: no docker, podman or buildah.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "make", "sed", "git", "basename", "dirname", "cat"):
        found = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True, text=True)
        if found.returncode == 0:
            (bin_dir / tool).symlink_to(found.stdout.strip())
    env = {"PATH": str(bin_dir), "HOME": os.environ.get("HOME", "/tmp")}
    result = _make_image(env, "IMAGE=registry.example.com/pai-operator:test")
    assert result.returncode != 0
    assert "no container builder found" in result.stderr
    assert "docker" in result.stderr
    assert "podman" in result.stderr
    assert "buildah" in result.stderr


def test_make_image_passes_version_and_revision_to_the_builder(tmp_path: Path) -> None:
    # A stand-in builder that records its arguments: proves the wiring without a container engine.
    record = tmp_path / "args"
    builder = tmp_path / "podman"
    builder.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> "{record}"\n')
    builder.chmod(builder.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "CONTAINER_TOOL": str(builder)}
    result = _make_image(env, "IMAGE=registry.example.com/team/pai-operator:1.2.3")
    assert result.returncode == 0, result.stderr
    args = record.read_text().splitlines()
    revision = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert args[0] == "build"
    assert args[args.index("--tag") + 1] == "registry.example.com/team/pai-operator:1.2.3"
    assert args[args.index("--file") + 1] == str(REPO / "Dockerfile")
    assert f"VERSION={__version__}" in args
    assert f"REVISION={revision}" in args
    assert args[-1] == str(REPO)

    # image-push pushes exactly the image it built.
    record.unlink()
    pushed = subprocess.run(
        ["make", "-s", "image-push", "IMAGE=registry.example.com/team/pai-operator:1.2.3"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert pushed.returncode == 0, pushed.stderr
    assert record.read_text().splitlines()[-2:] == ["push", "registry.example.com/team/pai-operator:1.2.3"]


def test_make_image_surfaces_a_builder_failure(tmp_path: Path) -> None:
    builder = tmp_path / "docker"
    builder.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    builder.chmod(builder.stat().st_mode | stat.S_IXUSR)
    result = _make_image({**os.environ, "CONTAINER_TOOL": str(builder)})
    assert result.returncode != 0
    assert "Cannot connect to the Docker daemon" in result.stderr
    assert f"make image: {builder} build failed" in result.stderr
