"""The container recipe. This machine has no Docker engine, so the Dockerfile is checked
statically and its install steps are replayed in a clean virtual environment from the built
wheel: the same commands the runtime stage runs, ending with the entrypoint answering."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import pai_operator

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile").read_text()
# Backslash continuations joined, so every instruction is one line.
INSTRUCTIONS = [
    line.strip()
    for line in re.sub(r"\\\n", " ", DOCKERFILE).splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]


def _instructions(keyword: str) -> list[str]:
    return [i[len(keyword) :].strip() for i in INSTRUCTIONS if i.upper().startswith(keyword + " ")]


def _base_images() -> list[str]:
    args = dict(a.split("=", 1) for a in _instructions("ARG") if "=" in a)
    images = []
    for stage in _instructions("FROM"):
        image = stage.split()[0]
        images.append(re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image))
    return images


def test_multi_stage_with_pinned_base() -> None:
    images = _base_images()
    assert len(images) >= 2
    for image in images:
        _name, _, tag = image.partition(":")
        assert tag, image
        assert tag != "latest", image
        # Pinned down to the patch release, not a moving `3.11-slim`.
        assert re.match(r"^\d+\.\d+\.\d+-", tag), image
    assert "latest" not in DOCKERFILE


def test_runs_as_numeric_non_root_user() -> None:
    users = _instructions("USER")
    assert users, "no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit()
    assert int(uid) != 0
    assert gid.isdigit()
    assert int(gid) != 0


def test_entrypoint_runs_the_operator() -> None:
    assert _instructions("ENTRYPOINT")[-1] == '["pai-operator", "run"]'


def test_oci_labels() -> None:
    labels = " ".join(_instructions("LABEL"))
    for key in ("title", "description", "version", "revision", "licenses", "source"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_runtime_stage_has_no_build_tools_or_pip_cache() -> None:
    runtime = DOCKERFILE.split("AS runtime", 1)[1]
    assert not re.search(r"apt-get|apk add|gcc|build-essential", runtime)
    assert "COPY --from=builder" not in runtime  # the wheel is bind-mounted, never a layer
    assert "--no-cache-dir" in runtime
    assert 'pip" uninstall --yes pip' in runtime


def test_runtime_installs_exactly_the_lock() -> None:
    runtime = " ".join(i for i in INSTRUCTIONS if "pip" in i and "install" in i)
    assert "--require-hashes --no-deps -r /wheels/requirements.lock" in runtime
    # Every other pip install takes no dependencies: nothing may float past the lock.
    for install in re.findall(r'pip" install ([^&]*)', runtime):
        assert "--no-deps" in install, install
    assert "COPY requirements.lock /wheels/" in INSTRUCTIONS


def test_locked_dependencies_import_in_the_image_venv(image_venv: Path) -> None:
    # The lock plus the --no-deps wheel is a complete, consistent set (nothing missing).
    _run(image_venv / "bin" / "python", "-c", "import pai_operator.cli, kopf, kubernetes, pydantic, aiohttp")


def test_dockerignore_keeps_the_context_small() -> None:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    assert lines[lines.index("*")] == "*"
    assert {"!pyproject.toml", "!requirements.lock", "!README.md", "!operator/"} <= set(lines)


def _run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, check=True, timeout=600
    )


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runtime stage, replayed: wheel from the builder stage, fresh venv, the locked
    dependencies (hashes required), the wheel without dependencies, strip pip."""
    work = tmp_path_factory.mktemp("image")
    wheels = work / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "--wheel-dir", wheels, REPO)
    (wheel,) = wheels.glob("pai_model_operator-*.whl")
    venv = work / "opt" / "pai-operator"
    # --without-pip is not an option: the Dockerfile installs with the venv's own pip, then removes it.
    _run("python3", "-m", "venv", venv)
    pip = (venv / "bin" / "pip", "install", "--no-cache-dir", "--disable-pip-version-check")
    _run(*pip, "--require-hashes", "--no-deps", "-r", REPO / "requirements.lock")
    _run(*pip, "--no-deps", wheel)
    _run(venv / "bin" / "pip", "uninstall", "--yes", "pip", "setuptools", "wheel")
    return venv


def test_installed_operator_answers_version(image_venv: Path) -> None:
    out = _run(image_venv / "bin" / "pai-operator", "--version", cwd=image_venv)
    assert pai_operator.__version__ in out.stdout + out.stderr


def test_installed_operator_answers_help(image_venv: Path) -> None:
    out = _run(image_venv / "bin" / "pai-operator", "--help", cwd=image_venv).stdout
    assert "run" in out
    run_help = _run(image_venv / "bin" / "pai-operator", "run", "--help", cwd=image_venv).stdout
    for flag in (
        "--namespace",
        "--all-namespaces",
        "--region",
        "--endpoint",
        "--metrics-port",
        "--health-port",
    ):
        assert flag in run_help


def test_image_also_ships_the_emulator(image_venv: Path) -> None:
    # Decided (README, "The image"): the emulator ships in the runtime image. hack/e2e-kind.sh and
    # demos run it in-cluster from the same image; it never runs unless asked to.
    assert "usage" in _run(image_venv / "bin" / "pai-emulator", "--help", cwd=image_venv).stdout.lower()
    site = next((image_venv / "lib").glob("python3*/site-packages"))
    size = sum(p.stat().st_size for p in (site / "pai_emulator").rglob("*") if p.is_file())
    # What shipping it costs, measured: ~70 KB of source plus its bytecode, against an image of
    # tens of megabytes. A multiple of that means the decision should be revisited.
    assert size < 400_000, size


def test_emulator_needs_nothing_the_operator_does_not_already_install() -> None:
    """The other half of the shipping decision: the emulator adds no dependency to the image.
    One exception: the OIDC token checks (`oidc.py`, STS AssumeRoleWithOIDC) need `cryptography`,
    a test extra; the emulator imports that module only when an OIDC provider is registered, and
    its CLI refuses `--oidc-provider` with the way out when the package is missing."""
    optional = {"oidc.py": {"cryptography"}}
    third_party = set()
    first_party = ("pai_emulator", "emulator_kit")  # the kit it shares with tfy_emulator ships too
    sources = [p for package in first_party for p in (REPO / "operator" / package).rglob("*.py")]
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            third_party |= {
                n.split(".")[0]
                for n in names
                if n.split(".")[0] not in sys.stdlib_module_names
                and n.split(".")[0] not in first_party
                and n.split(".")[0] not in optional.get(path.name, set())
            }
            if path.name != "oidc.py" and node.col_offset == 0:  # a module-level import
                imports_oidc = "pai_emulator.oidc" in names or (
                    isinstance(node, ast.ImportFrom)
                    and node.module == "pai_emulator"
                    and any(alias.name == "oidc" for alias in node.names)
                )
                assert not imports_oidc, (
                    f"{path.name} imports oidc at module level: the image needs cryptography"
                )
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("cryptography") for d in project["optional-dependencies"]["test"])
    dependencies = project["dependencies"]
    declared = {re.split(r"[<>=!~ ]", d, maxsplit=1)[0].lower() for d in dependencies}
    assert "aiohttp" in third_party  # the scan sees the emulator's HTTP server
    assert third_party <= declared


def test_entrypoint_is_the_operator_not_the_emulator() -> None:
    assert "pai-emulator" not in " ".join(_instructions("ENTRYPOINT") + _instructions("CMD"))


def test_image_has_no_pip_left(image_venv: Path) -> None:
    assert not (image_venv / "bin" / "pip").exists()
    site = next((image_venv / "lib").glob("python3*/site-packages"))
    assert not list(site.glob("pip-*.dist-info"))
    assert list(site.glob("pai_model_operator-*.dist-info"))
