"""Fully qualified names: `model:{tenant}/{ml_repo}/{name}` for a model, `...:{version}` for one of
its versions (an integer, or `latest` on input: the highest version that exists)."""

from __future__ import annotations

from dataclasses import dataclass

from tfy_emulator import errors

PREFIX = "model:"
LATEST = "latest"


@dataclass(frozen=True)
class Fqn:
    tenant: str
    ml_repo: str
    name: str
    version: int | str | None = None
    """None: the fqn names a model; an int or LATEST: one of its versions."""


def model_fqn(tenant: str, ml_repo: str, name: str) -> str:
    return f"{PREFIX}{tenant}/{ml_repo}/{name}"


def version_fqn(tenant: str, ml_repo: str, name: str, version: int) -> str:
    return f"{model_fqn(tenant, ml_repo, name)}:{version}"


def parse(value: str, param: str = "fqn") -> Fqn:
    """A model or version fqn, or a 422 on the query parameter `param`."""

    def bad(reason: str) -> errors.ApiError:
        return errors.invalid_field(("query", param), f"Invalid fqn {value!r}: {reason}")

    if not value.startswith(PREFIX):
        raise bad(f"expected {PREFIX}{{tenant}}/{{ml_repo}}/{{name}}[:{{version}}]")
    path, sep, version_part = value[len(PREFIX) :].partition(":")
    parts = path.split("/")
    if len(parts) != 3 or not all(parts):
        raise bad("expected three non-empty parts, tenant/ml_repo/name")
    version: int | str | None = None
    if sep:
        if version_part == LATEST:
            version = LATEST
        elif version_part.isascii() and version_part.isdigit() and int(version_part) >= 1:
            version = int(version_part)
        else:
            raise bad("the version must be a positive integer or 'latest'")
    return Fqn(parts[0], parts[1], parts[2], version)
