"""The layer contracts in pyproject.toml ([tool.importlinter], run by `make lint`).

Two things a green `lint-imports` cannot tell on its own: that the contracts still cover the code
as it grows (a new top-level package or a new planner module is silently outside every contract),
and that each contract really fails when broken (a typo in a module expression makes a contract
vacuous, not red). Both are checked here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCE_ROOT = REPO / "operator"
CONFIG: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
CONTRACTS: dict[str, dict[str, Any]] = {c["id"]: c for c in CONFIG["contracts"]}
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _modules(root: Path = SOURCE_ROOT) -> set[str]:
    found = set()
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found.add(".".join(parts))
    return found


def _expression_matches(expression: str, module: str) -> bool:
    """import-linter's module expressions: `*` is one segment, `**` any number (at least one)."""
    pattern = re.escape(expression).replace(r"\*\*", r"[^.]+(\.[^.]+)*").replace(r"\*", r"[^.]+")
    return re.fullmatch(pattern, module) is not None


def _covered(module: str, expressions: list[str]) -> bool:
    """Covered by an expression, or inside a package it names (contracts treat them as packages)."""
    return any(
        _expression_matches(expr, module) or any(_expression_matches(expr, p) for p in _parents(module))
        for expr in expressions
    )


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def test_every_top_level_package_is_under_contract() -> None:
    packages = sorted(p.name for p in SOURCE_ROOT.iterdir() if (p / "__init__.py").exists())
    assert packages == sorted(CONFIG["root_packages"])
    # Every emulator and the operator stay mutually independent; the emulators' shared kit sits
    # below both emulators and is kept apart from the operator by contracts of its own.
    assert sorted(CONTRACTS["independent-emulators"]["modules"]) == [
        p for p in packages if p != "emulator_kit"
    ]
    assert CONTRACTS["emulator-kit"]["source_modules"] == ["emulator_kit"]
    assert set(CONTRACTS["emulator-kit"]["forbidden_modules"]) == set(packages) - {"emulator_kit"}
    assert CONTRACTS["operator-without-emulator-kit"]["forbidden_modules"] == ["emulator_kit"]


def test_every_planner_module_is_held_pure() -> None:
    planners = {
        m for m in _modules() if m.startswith("pai_operator.") and m.rsplit(".", 1)[-1].startswith("plan")
    }
    assert "pai_operator.pai.planning" in planners
    sources = CONTRACTS["pure-planners"]["source_modules"]
    assert [m for m in sorted(planners) if not _covered(m, sources)] == []
    assert {"kopf", "kubernetes", "httpx", "asyncio"} <= set(CONTRACTS["pure-planners"]["forbidden_modules"])


# The Kubernetes-side wiring that may name the registration list; everything else at the top
# level of pai_operator is the registry-neutral core.
WIRING = {
    "pai_operator",
    "pai_operator.cli",
    "pai_operator.commands",  # the CLI's subcommands for people (plan, import, orphans, explain)
    "pai_operator.crd",
    "pai_operator.kopf_adapter",
    "pai_operator.registry",
    "pai_operator.settings",
}


def test_every_core_module_is_held_registry_neutral() -> None:
    top_level = {m for m in _modules() if m.count(".") == 1 and m.startswith("pai_operator.")}
    # A registry is a folder with a plug-in (`registry.PLUGINS`); `commands/` is CLI wiring.
    registries = {
        m
        for m in _modules()
        if m.count(".") == 1 and (SOURCE_ROOT / m.replace(".", "/") / "plugin.py").is_file()
    }
    assert {"pai_operator.pai", "pai_operator.truefoundry"} <= registries
    core = top_level - registries - WIRING
    contract = CONTRACTS["core-imports-no-registry"]
    assert sorted(m for m in core if not _covered(m, contract["source_modules"])) == []
    assert set(contract["forbidden_modules"]) >= {*registries, "pai_operator.registry"}


def test_expression_matching_follows_import_linter() -> None:
    assert _expression_matches("pai_operator.*.planning", "pai_operator.truefoundry.planning")
    assert not _expression_matches("pai_operator.*.planning", "pai_operator.planning")
    assert _expression_matches("pai_operator.pai.**", "pai_operator.pai.client")
    assert not _expression_matches("pai_operator.pai.**", "pai_operator.pai")
    assert _covered("pai_operator.pai.planning.tfy", ["pai_operator.pai.planning"])


# Each violation goes into a copy of the source tree; the real tree is never touched.
VIOLATIONS: dict[str, tuple[str, str]] = {
    "kopf-adapter": ("pai_operator/reconciler.py", "import kopf"),
    "http-in-backend-clients": ("pai_operator/reconciler.py", "import httpx"),
    # asyncio is standard library: import-linter records it as an external package like any other.
    "pure-planners": ("pai_operator/pai/planning.py", "import asyncio"),
    "core-imports-no-registry": ("pai_operator/engine.py", "import pai_operator.pai.spec"),
    "backend-clients-know-no-kubernetes": ("pai_operator/pai/errors.py", "import kubernetes"),
    "independent-backends": ("pai_operator/pai/signing.py", "import pai_operator.truefoundry.client"),
    "independent-emulators": ("pai_emulator/store.py", "import pai_operator.pai.models"),
    "emulator-kit": ("emulator_kit/quotas.py", "import pai_emulator.errors"),
    "operator-without-emulator-kit": ("pai_operator/engine.py", "import emulator_kit.faults"),
}

# The same contracts seen from the second backend: its client matches `pai_operator.*.client`.
SECOND_BACKEND_VIOLATIONS = [("pai_operator/truefoundry/client.py", "import kubernetes")]


def _lint_imports(source_root: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=cwd,
        # PYTHONPATH wins over the editable install's path entry, so the copy is what gets analysed.
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(source_root)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_real_tree_keeps_every_contract() -> None:
    result = _lint_imports(SOURCE_ROOT, REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(CONTRACTS)} kept, 0 broken" in result.stdout


@pytest.fixture(scope="module")
def broken_report(tmp_path_factory: pytest.TempPathFactory) -> str:
    work = tmp_path_factory.mktemp("layers")
    shutil.copytree(SOURCE_ROOT, work / "operator", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", work / "pyproject.toml")
    for path, line in [*VIOLATIONS.values(), *SECOND_BACKEND_VIOLATIONS]:
        target = work / "operator" / path
        target.write_text(f"{target.read_text()}\n{line}  # injected by test_architecture\n")
    result = _lint_imports(work / "operator", work)
    assert result.returncode != 0
    return result.stdout


@pytest.mark.parametrize("contract", sorted(VIOLATIONS))
def test_each_contract_fails_when_broken(broken_report: str, contract: str) -> None:
    assert f"{CONTRACTS[contract]['name']} BROKEN" in re.sub(r"\s*\n\s*", " ", broken_report)


def test_the_second_backend_client_is_held_by_the_same_contract(broken_report: str) -> None:
    report = re.sub(r"\s*\n\s*", " ", broken_report)
    assert "pai_operator.truefoundry.client -> kubernetes" in report
