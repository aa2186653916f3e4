"""Admin API under /_emulator/: unauthenticated test controls, registered only with admin enabled.
Errors use the API's `HttpError` shape so the same test helpers can read them."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, RootModel, ValidationError
from pydantic.alias_generators import to_pascal

from emulator_kit.faults import FaultRule
from tfy_emulator import errors
from tfy_emulator.config import (
    CONFLICT_STATUSES,
    DEFAULT_STORAGE_INTEGRATION_FQN,
    OPERATIONS,
    Dialect,
    ErrorShape,
)
from tfy_emulator.runtime import EMULATOR, error_response, json_response
from tfy_emulator.validation import ML_REPO_PATTERN

PREFIX = "/_emulator"


class AddMlRepo(BaseModel):
    model_config = ConfigDict(alias_generator=to_pascal, extra="forbid")

    name: str
    storage_integration_fqn: str = DEFAULT_STORAGE_INTEGRATION_FQN


QuotaUpdate = RootModel[dict[str, float]]
_ADMIN_DIALECT = Dialect(error_shape="current")


class DialectUpdate(BaseModel):
    """PUT /_emulator/dialect: the switches given change, the others stay."""

    model_config = ConfigDict(alias_generator=to_pascal, extra="forbid")

    error_shape: ErrorShape | None = None
    conflict_status: int | None = None
    deleted_visible: bool | None = None


class SetMetrics(BaseModel):
    """PUT /_emulator/metrics/{version_id}: the version's metrics, as a run logged them."""

    model_config = ConfigDict(alias_generator=to_pascal, extra="forbid")

    metrics: list[dict[str, Any]]


_M = TypeVar("_M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _bad_request(message: str) -> errors.ApiError:
    return errors.ApiError(400, message)


async def _body(request: web.Request, model: type[_M]) -> _M:
    try:
        return model.model_validate(json.loads(await request.read() or b"null"))
    except (ValueError, ValidationError) as exc:
        raise _bad_request(str(exc).replace("\n", " ")) from None


def _admin(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except errors.ApiError as exc:
            # The admin API is the emulator's own: always HttpError, whatever the dialect.
            return error_response("svc", exc, _ADMIN_DIALECT)

    return wrapped


@_admin
async def add_ml_repo(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    body = await _body(request, AddMlRepo)
    if not re.fullmatch(ML_REPO_PATTERN, body.name):
        raise _bad_request(f"Name must match {ML_REPO_PATTERN}")
    repo, created = emulator.store.add_ml_repo(
        body.name, storage_integration_fqn=body.storage_integration_fqn
    )
    await emulator.save()
    return json_response({"Id": repo.id, "Name": repo.name, "Created": created})


@_admin
async def add_fault(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    rule = await _body(request, FaultRule)
    if rule.operation != "*" and rule.operation not in OPERATIONS:
        raise _bad_request(f"Operation must be '*' or one of {list(OPERATIONS)}")
    emulator.faults.add(rule)
    return json_response({"Faults": emulator.faults.rules()})


@_admin
async def list_faults(request: web.Request) -> web.Response:
    return json_response({"Faults": request.app[EMULATOR].faults.rules()})


@_admin
async def clear_faults(request: web.Request) -> web.Response:
    request.app[EMULATOR].faults.clear()
    return json_response({"Faults": []})


@_admin
async def journal(request: web.Request) -> web.Response:
    return json_response({"Entries": request.app[EMULATOR].journal.entries()})


@_admin
async def clear_journal(request: web.Request) -> web.Response:
    request.app[EMULATOR].journal.clear()
    return json_response({"Entries": []})


@_admin
async def reset(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    emulator.reset()
    await emulator.save()
    return json_response({"MlRepos": [repo.name for repo in emulator.store.ml_repos.values()]})


@_admin
async def state(request: web.Request) -> web.Response:
    return json_response(request.app[EMULATOR].store.snapshot())


@_admin
async def versions(request: web.Request) -> web.Response:
    """Every version of one model ever created (deleted ones with DeletedAt), in creation order."""
    store = request.app[EMULATOR].store
    ml_repo, name = request.match_info["ml_repo"], request.match_info["name"]
    repo = store.ml_repo_by_name(ml_repo)
    if repo is None:
        raise errors.ml_repo_not_found(ml_repo)
    models = [m for m in store.models.values() if m.ml_repo_id == repo.id and m.name == name]
    if not models:
        raise errors.model_not_found(f"{ml_repo}/{name}")
    model = models[-1]  # the live one, if a deleted model of the same name came before it
    ordered = sorted(model.versions.values(), key=lambda version: version.seq)
    return json_response(
        {
            "MlRepo": ml_repo,
            "Name": name,
            "ModelId": model.id,
            "Versions": [
                {**store.version_json(v), "DeletedAt": v.deleted_at, "Files": dict(v.files)} for v in ordered
            ],
        }
    )


@_admin
async def get_quotas(request: web.Request) -> web.Response:
    return json_response({"Quotas": request.app[EMULATOR].quotas.rates()})


@_admin
async def set_quotas(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    rates = (await _body(request, QuotaUpdate)).root
    unknown = sorted(set(rates) - set(OPERATIONS))
    if unknown:
        raise _bad_request(f"Unknown operations {unknown}; known: {list(OPERATIONS)}")
    try:
        emulator.quotas.configure(rates)
    except ValueError as exc:
        raise _bad_request(str(exc)) from None
    return json_response({"Quotas": emulator.quotas.rates()})


def _dialect_json(dialect: Dialect) -> dict[str, Any]:
    return {
        "ErrorShape": dialect.error_shape,
        "ConflictStatus": dialect.conflict_status,
        "DeletedVisible": dialect.deleted_visible,
    }


@_admin
async def get_dialect(request: web.Request) -> web.Response:
    return json_response(_dialect_json(request.app[EMULATOR].dialect))


@_admin
async def set_dialect(request: web.Request) -> web.Response:
    """Tests switch the dialect per test on one running emulator; a reset restores the configured one."""
    emulator = request.app[EMULATOR]
    update = await _body(request, DialectUpdate)
    if update.conflict_status is not None and update.conflict_status not in CONFLICT_STATUSES:
        raise _bad_request(f"ConflictStatus must be one of {list(CONFLICT_STATUSES)}")
    dialect = emulator.dialect
    if update.error_shape is not None:
        dialect.error_shape = update.error_shape
    if update.conflict_status is not None:
        dialect.conflict_status = update.conflict_status
    if update.deleted_visible is not None:
        dialect.deleted_visible = update.deleted_visible
    return json_response(_dialect_json(dialect))


@_admin
async def set_metrics(request: web.Request) -> web.Response:
    """Metrics come from the run that logged a version (not emulated); this sets them as the
    service would render them, floats included (the v1 SDK types timestamp and step as floats)."""
    emulator = request.app[EMULATOR]
    body = await _body(request, SetMetrics)
    for metric in body.metrics:
        if not isinstance(metric.get("key"), str):
            raise _bad_request("every metric needs a string key")
    version = emulator.store.set_metrics(request.match_info["id"], body.metrics)
    await emulator.save()
    return json_response({"VersionId": version.id, "Metrics": version.metrics})


def add_admin_routes(app: web.Application) -> None:
    app.router.add_post(f"{PREFIX}/ml-repos", add_ml_repo)
    app.router.add_post(f"{PREFIX}/faults", add_fault)
    app.router.add_get(f"{PREFIX}/faults", list_faults)
    app.router.add_delete(f"{PREFIX}/faults", clear_faults)
    app.router.add_get(f"{PREFIX}/journal", journal)
    app.router.add_delete(f"{PREFIX}/journal", clear_journal)
    app.router.add_post(f"{PREFIX}/reset", reset)
    app.router.add_get(f"{PREFIX}/state", state)
    app.router.add_get(f"{PREFIX}/versions/{{ml_repo}}/{{name}}", versions)
    app.router.add_get(f"{PREFIX}/quotas", get_quotas)
    app.router.add_put(f"{PREFIX}/quotas", set_quotas)
    app.router.add_get(f"{PREFIX}/dialect", get_dialect)
    app.router.add_put(f"{PREFIX}/dialect", set_dialect)
    app.router.add_put(f"{PREFIX}/metrics/{{id}}", set_metrics)
