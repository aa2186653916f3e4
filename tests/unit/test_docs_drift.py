"""Prose that names code or files must stay true: the "Public API" lists in module docstrings, and
references to files in the product's docstrings and comments, in the hack/ scripts and in the
bench/ programs."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = [REPO / "operator" / name for name in ("pai_operator", "pai_emulator", "tfy_emulator")]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO / "operator").with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _documented_modules() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted(package.rglob("*.py")):
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            if "Public API" in doc:
                found.append(_module_name(path))
    return found


LISTED = re.compile(r"^    (\w+)\(([^)]*)\)", re.MULTILINE)


@pytest.mark.parametrize("module_name", _documented_modules())
def test_public_api_lists_match_the_code(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__doc__
    block = module.__doc__.split("Public API", 1)[1]
    listed = {name: args for name, args in LISTED.findall(block)}
    defined = {
        name: value
        for name, value in vars(module).items()
        if inspect.isfunction(value) and value.__module__ == module_name and not name.startswith("_")
    }
    assert set(listed) == set(defined), "the docstring's Public API list and the module differ"
    for name, args in listed.items():
        parameters = inspect.signature(defined[name]).parameters
        for arg in args.split(","):
            arg = arg.split("=")[0].strip()
            if arg and arg not in {"*", "...", "/"}:
                assert arg in parameters, f"{module_name}.{name} has no parameter {arg!r}"


def test_the_check_sees_the_lists() -> None:
    assert {"pai_operator.conditions", "pai_operator.crd", "pai_operator.normalize"} <= set(
        _documented_modules()
    )


# A file name or path (with a known extension) that is not part of a dotted attribute or a URL.
FILE_REFERENCE = re.compile(
    r"(?<![\w/.$*{<-])((?:[\w.-]+/)*[\w-]+\.(?:py|md|sh|ya?ml|json|toml|tpl|lua|txt))\b(?!\()"
)
# Named on purpose although not in this repository.
NOT_OURS = {
    "hack/lib/version.sh",  # Kubernetes' own script, whose ldflags build-tools.sh mirrors
    "state.json",  # written at run time by hack/controlplane.py
    "config.json",  # the kubelet's configuration, written at run time by hack/node.py
    "config.toml",  # containerd's configuration, written at run time by hack/node.py
    "pai-state.json",  # the emulator state file bench/chaos.py keeps in a temporary directory
    "tfy-state.json",  # the same for bench/chaos_tfy.py
    "chaos.json",  # what `make chaos` records (1,000 objects); the quick run's chaos-quick.json is committed
    "helm.sh",  # the domain of helm's Go module path, not a script
    "install.yaml",  # written by hack/dist.sh into dist/ (a release artefact, not in git)
    "path/to/workflow.yml",  # a usage example in hack/actionlint.sh
    "sitecustomize.py",  # written at run time by bench/profile_memory.py into a temporary directory
}


def _repository_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [f for f in listed if (REPO / f).exists()]


def test_files_named_in_code_and_scripts_exist() -> None:
    files = _repository_files()
    names = {Path(f).name for f in files}
    directories = {str(p) for f in files for p in Path(f).parents}
    missing = []
    for source in files:
        if not (source.startswith(("operator/", "hack/", "bench/")) and source.endswith((".py", ".sh"))):
            continue
        text = (REPO / source).read_text()
        for match in FILE_REFERENCE.finditer(text):
            ref = match.group(1)
            if ref in NOT_OURS or ref.startswith(("self.", "o.", "option.")):
                continue
            exists = (
                ref in files
                or ref in directories
                or any(f.endswith("/" + ref) for f in files)
                or ("/" not in ref and ref in names)
            )
            if not exists:
                missing.append(f"{source}:{text[: match.start()].count(chr(10)) + 1}: {ref}")
    assert missing == [], "\n".join(missing)


def test_readme_truefoundry_table_lists_every_spec_field() -> None:
    from pai_operator.truefoundry.spec import Environment, Framework, Source, TrueFoundryModelVersionSpec

    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## TrueFoundry\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    listed = [re.match(r"\| `(\w+)`", row).group(1) for row in rows]  # type: ignore[union-attr]
    assert listed == [info.alias for info in TrueFoundryModelVersionSpec.model_fields.values()]
    # Nested fields are named in their parent's row.
    for parent, model in (("source", Source), ("framework", Framework), ("environment", Environment)):
        (row,) = [r for r in rows if r.startswith(f"| `{parent}`")]
        for info in model.model_fields.values():
            assert f"`{info.alias}`" in row, (parent, info.alias)
    facts = ("truefoundry.mlops.dev/owner", "truefoundry.mlops.dev/paused", "truefoundry.apiKeySecret",
             "truefoundry.host", "make docs", "TFY_API_KEY", "deploy/components/truefoundry")  # fmt: skip
    for fact in facts:
        assert fact in section, fact
