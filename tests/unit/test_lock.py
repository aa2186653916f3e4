"""The lock files (requirements.lock for the image, requirements-dev.lock for `make venv` and CI)
must match pyproject.toml: every declared dependency pinned to a version its specifier allows,
with hashes, and a header digest of pyproject's dependency declarations that `make lock` writes.
A change to pyproject without `make lock` fails here, before an install silently ignores it."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
SELF = canonicalize_name(PROJECT["name"])
# The interpreter and platform the locks are resolved for (hack/lock.py): markers are judged there.
TARGET = {"python_version": "3.11", "python_full_version": "3.11.0", "sys_platform": "linux",
          "platform_system": "Linux", "os_name": "posix", "implementation_name": "cpython",
          "platform_python_implementation": "CPython", "platform_machine": "x86_64"}  # fmt: skip
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def _parse(path: Path) -> tuple[str, dict[str, Version], dict[str, int]]:
    """(header digest, name -> pinned version, name -> number of hashes)."""
    text = path.read_text()
    digest = text.splitlines()[0].removeprefix("# pyproject-dependencies-sha256: ")
    pins: dict[str, Version] = {}
    hashes: dict[str, int] = {}
    current = ""
    for line in text.splitlines():
        if m := PIN.match(line):
            current = canonicalize_name(m.group(1))
            assert current not in pins, f"{path.name}: {current} pinned twice"
            pins[current] = Version(m.group(2))
            hashes[current] = 0
        elif line.strip().startswith("--hash=sha256:"):
            hashes[current] += 1
    return digest, pins, hashes


RUNTIME = _parse(REPO / "requirements.lock")
DEV = _parse(REPO / "requirements-dev.lock")


def _requirements(*extras: str) -> list[Requirement]:
    """pyproject's requirements (runtime plus the extras, self-references expanded), markers judged."""
    out: list[Requirement] = []
    pending = [Requirement(r) for r in PROJECT["dependencies"]]
    pending += [Requirement(r) for e in extras for r in PROJECT["optional-dependencies"][e]]
    while pending:
        req = pending.pop()
        if req.marker is not None and not req.marker.evaluate(TARGET):
            continue
        if canonicalize_name(req.name) == SELF:
            pending += [Requirement(r) for e in req.extras for r in PROJECT["optional-dependencies"][e]]
            continue
        out.append(req)
    return out


def test_header_digest_matches_pyproject() -> None:
    declared = {
        "requires-python": PROJECT.get("requires-python"),
        "dependencies": PROJECT.get("dependencies", []),
        "optional-dependencies": PROJECT.get("optional-dependencies", {}),
    }
    expected = hashlib.sha256(json.dumps(declared, sort_keys=True).encode()).hexdigest()
    for name, (digest, _, _) in (("requirements.lock", RUNTIME), ("requirements-dev.lock", DEV)):
        assert digest == expected, f"{name} is stale: pyproject.toml changed; run `make lock`"


@pytest.mark.parametrize(
    ("lock", "extras"),
    [(RUNTIME, ()), (DEV, ("test", "dev"))],
    ids=["requirements.lock", "requirements-dev.lock"],
)
def test_every_declared_dependency_is_pinned_within_its_specifier(
    lock: tuple[str, dict[str, Version], dict[str, int]], extras: tuple[str, ...]
) -> None:
    _, pins, _ = lock
    for req in _requirements(*extras):
        name = canonicalize_name(req.name)
        assert name in pins, f"{req} is declared in pyproject.toml but not locked; run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} violates {req}"


def test_every_pin_has_hashes() -> None:
    for _, pins, hashes in (RUNTIME, DEV):
        assert pins
        assert all(hashes[name] >= 1 for name in pins), [n for n in pins if not hashes[n]]


def test_runtime_lock_is_the_dev_lock_restricted() -> None:
    # One version per package: the image runs what CI tested.
    _, runtime, _ = RUNTIME
    _, dev, _ = DEV
    assert {n: v for n, v in runtime.items() if dev.get(n) != v} == {}
    # And the image carries no test tooling.
    assert not {"pytest", "mypy", "ruff", "uv"} & set(runtime)


def test_this_environment_was_installed_from_the_dev_lock() -> None:
    # `make venv` installs requirements-dev.lock; a drift here means the venv predates the lock.
    _, pins, _ = DEV
    installed = {canonicalize_name(d.metadata["Name"]): Version(d.version) for d in metadata.distributions()}
    wrong = {n: (str(v), str(installed.get(n))) for n, v in pins.items() if installed.get(n) != v}
    assert wrong == {}, f"(locked, installed): {wrong}; run `make venv`"


def test_the_truefoundry_client_lock_matches_its_input() -> None:
    """tests/contract/tfy_ml: `truefoundry`'s own venv (its pins exclude the project's)."""
    source = REPO / "tests" / "contract" / "tfy_ml" / "requirements.in"
    lock = source.with_suffix(".lock")
    first = lock.read_text().splitlines()[0]
    assert first == f"# requirements-in-sha256: {hashlib.sha256(source.read_bytes()).hexdigest()}", (
        "tests/contract/tfy_ml/requirements.in changed: run `make lock`"
    )
    pins = {
        canonicalize_name(m.group(1)): m.group(2) for m in map(PIN.match, lock.read_text().splitlines()) if m
    }
    assert pins["truefoundry"] == "0.17.5"
    assert pins["truefoundry-sdk"] == metadata.version("truefoundry-sdk")  # the same SDK as the main venv's
