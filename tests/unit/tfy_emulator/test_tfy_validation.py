"""The TrueFoundry emulator's request checks, fqn parsing, error shapes, quotas and authentication."""

from __future__ import annotations

from typing import Any

import pytest

from emulator_kit.quotas import Quotas
from tfy_emulator import errors, validation
from tfy_emulator import fqn as fqns
from tfy_emulator.config import ApiKey, Dialect, EmulatorConfig
from tfy_emulator.runtime import Emulator, error_body, error_status


def body(**fields: Any) -> dict[str, Any]:
    manifest = {
        "type": "model-version",
        "name": "m1",
        "ml_repo": "repo-a",
        "metadata": {},
        "source": {"type": "external", "uri": "s3://b/m"},
    }
    manifest.update(fields)
    return {"manifest": {k: v for k, v in manifest.items() if v is not ...}}


def issues(payload: Any) -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(errors.ApiError) as caught:
        validation.parse_body(validation.ApplyModelVersionBody, payload)
    assert caught.value.status == 422
    return [(issue.loc, issue.type) for issue in caught.value.issues]


@pytest.mark.parametrize("alias", ["v1", "v1.0.0", "v1-prod", "v3-dev", "vX.y-Z9"])
def test_valid_aliases(alias: str) -> None:
    validation.parse_body(validation.ApplyModelVersionBody, body(version_alias=alias))


@pytest.mark.parametrize("alias", ["prod", "v", "v1.", "v1-", "1.0", "v 1", "v1\n", "v" + "1" * 128])
def test_invalid_aliases(alias: str) -> None:
    assert [loc for loc, _ in issues(body(version_alias=alias))] == [("body", "manifest", "version_alias")]


def test_required_fields_and_their_locations() -> None:
    found = issues(body(metadata=..., source=..., name=..., ml_repo=...))
    assert sorted(found) == [
        (("body", "manifest", "metadata"), "missing"),
        (("body", "manifest", "ml_repo"), "missing"),
        (("body", "manifest", "name"), "missing"),
        (("body", "manifest", "source"), "missing"),
    ]
    assert issues(None) == [(("body",), "model_type")]
    assert issues({"manifest": {}, "extra": 1})[-1] == (("body", "extra"), "extra_forbidden")


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"name": "has space"}, ("body", "manifest", "name")),
        ({"ml_repo": "ab"}, ("body", "manifest", "ml_repo")),
        ({"ml_repo": "1repo"}, ("body", "manifest", "ml_repo")),
        ({"version": 0}, ("body", "manifest", "version")),
        ({"version": "1"}, ("body", "manifest", "version")),  # strict: no string for an int
        ({"step": -1}, ("body", "manifest", "step")),
        ({"description": "x" * 513}, ("body", "manifest", "description")),
        ({"metadata": []}, ("body", "manifest", "metadata")),
        (
            {"source": {"type": "external", "uri": "http://x"}},
            ("body", "manifest", "source", "external", "uri"),
        ),
        ({"source": {"type": "external"}}, ("body", "manifest", "source", "external", "uri")),
        ({"source": {"type": "local", "file_or_folder": "."}}, ("body", "manifest", "source")),
        ({"framework": {"type": "caffe"}}, ("body", "manifest", "framework")),
        (
            {"framework": {"type": "sklearn", "serialization_format": "json"}},
            ("body", "manifest", "framework", "sklearn", "serialization_format"),
        ),
        ({"environment": {"python_version": "three"}}, ("body", "manifest", "environment", "python_version")),
        ({"unknown": 1}, ("body", "manifest", "unknown")),
        ({"type": "artifact-version"}, ("body", "manifest", "type")),
    ],
)
def test_invalid_manifests(fields: dict[str, Any], loc: tuple[str, ...]) -> None:
    assert loc in [found for found, _ in issues(body(**fields))]


def test_stored_manifest_drops_absent_fields_but_keeps_metadata_nulls() -> None:
    parsed = validation.parse_body(
        validation.ApplyModelVersionBody,
        body(metadata={"a": None}, description=None, source={"type": "truefoundry"}),
    )
    assert parsed.manifest.stored() == {
        "type": "model-version",
        "name": "m1",
        "ml_repo": "repo-a",
        "metadata": {"a": None},
        "source": {"type": "truefoundry"},
        "step": 0,
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [({}, (0, 100)), ({"offset": "5", "limit": "1000"}, (5, 1000))],
)
def test_page(query: dict[str, str], expected: tuple[int, int]) -> None:
    assert validation.page(query) == expected


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "1001"}, {"offset": "-1"}, {"limit": "x"}])
def test_bad_page(query: dict[str, str]) -> None:
    with pytest.raises(errors.ApiError) as caught:
        validation.page(query)
    assert caught.value.status == 422
    assert caught.value.issues[0].loc == ("query", next(iter(query)))


def test_query_bool() -> None:
    assert validation.query_bool({"x": "TRUE"}, "x", False) is True
    assert validation.query_bool({"x": "0"}, "x", True) is False
    assert validation.query_bool({}, "x", True) is True
    with pytest.raises(errors.ApiError):
        validation.query_bool({"x": "maybe"}, "x", True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("model:t/r/n", fqns.Fqn("t", "r", "n")),
        ("model:t/r/n:12", fqns.Fqn("t", "r", "n", 12)),
        ("model:t/r/n:latest", fqns.Fqn("t", "r", "n", fqns.LATEST)),
    ],
)
def test_fqn_parse(value: str, expected: fqns.Fqn) -> None:
    assert fqns.parse(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "t/r/n",
        "artifact:t/r/n",
        "model:t/r",
        "model:t/r/n/x",
        "model:t//n",
        "model:t/r/n:0",
        "model:t/r/n:1:2",
    ],
)
def test_fqn_parse_rejects(value: str) -> None:
    with pytest.raises(errors.ApiError) as caught:
        fqns.parse(value)
    assert caught.value.status == 422


@pytest.mark.parametrize("shape", ["mlflow", "current"])
def test_validation_error_bodies_per_api(shape: Any) -> None:
    dialect = Dialect(error_shape=shape)
    invalid = errors.invalid_field(("query", "limit"), "too small", "greater_than_equal")
    item = {"loc": ["query", "limit"], "msg": "too small", "type": "greater_than_equal"}
    assert error_body("ml", invalid, dialect) == {"detail": [item]}
    assert error_body("svc", invalid, dialect) == {
        "statusCode": 422,
        "message": "Validation failed: query.limit: too small",
        "details": [item],
    }


def test_other_error_bodies_per_shape() -> None:
    mlflow, current = Dialect(), Dialect(error_shape="current")
    missing = errors.ml_repo_not_found("r")
    assert (
        error_body("ml", missing, mlflow)
        == error_body("svc", missing, mlflow)
        == {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "ml repo r not found"}
    )
    assert error_body("svc", missing, current) == {"statusCode": 404, "message": "ml repo r not found"}
    route = errors.route_not_found("GET", "/api/svc/v2/x")
    assert error_body("svc", route, mlflow)["error_code"] == "ENDPOINT_NOT_FOUND"
    conflict = errors.alias_in_use("v1", "model:t/r/n:1")
    assert error_body("svc", conflict, mlflow)["error_code"] == "RESOURCE_ALREADY_EXISTS"
    assert error_body("svc", conflict, current)["code"] == "VERSION_ALIAS_IN_USE"
    assert error_status(conflict, mlflow) == 400
    assert error_status(conflict, Dialect(conflict_status=409)) == 409
    assert error_status(conflict, Dialect(error_shape="current", conflict_status=409)) == 400
    injected = errors.injected(403, "PERMISSION_DENIED")
    assert error_body("svc", injected, mlflow) == {
        "error_code": "PERMISSION_DENIED",
        "message": "Injected fault.",
    }
    assert errors.injected(503, None).error_code == "TEMPORARILY_UNAVAILABLE"


def test_quotas_refill_and_answer_whole_seconds() -> None:
    now = [0.0]
    quotas = Quotas({"GetModel": 2.0, "ListModels": 0.0}, clock=lambda: now[0])
    assert [quotas.retry_after("GetModel") for _ in range(3)] == [None, None, 1]
    now[0] += 0.5
    assert quotas.retry_after("GetModel") is None
    assert all(quotas.retry_after("ListModels") is None for _ in range(100))
    assert quotas.retry_after("ApplyModelVersion") is None
    with pytest.raises(ValueError, match=">= 0"):
        quotas.configure({"GetModel": -1})


def test_authentication() -> None:
    emulator = Emulator(
        EmulatorConfig(api_keys=[ApiKey("tok-a", "alice@example.com"), ApiKey("tok-b", "ci-bot")])
    )
    assert emulator.authenticate("Bearer tok-a")["subjectSlug"] == "alice@example.com"
    assert emulator.authenticate("bearer tok-b")["subjectType"] == "virtualaccount"
    for header in (None, "", "tok-a", "Basic tok-a", "Bearer ", "Bearer tok-c"):
        with pytest.raises(errors.ApiError) as caught:
            emulator.authenticate(header)
        assert caught.value.status == 401
        assert "tok-" not in caught.value.message
    assert "tok-a" not in repr(emulator.config)
