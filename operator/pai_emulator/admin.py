"""Admin API under /_emulator/: unauthenticated test controls, registered only with admin enabled."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, RootModel, ValidationError
from pydantic.alias_generators import to_pascal

from emulator_kit.faults import FaultRule
from pai_emulator import errors
from pai_emulator.config import OPERATIONS, Dialect, ErrorDialect, LabelUpsert
from pai_emulator.runtime import EMULATOR, error_response, json_response, new_request_id

PREFIX = "/_emulator"


class AddModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_pascal, extra="forbid")

    model_id: str
    account: str | None = None
    """None: the default account."""


QuotaUpdate = RootModel[dict[str, float]]


class DialectUpdate(BaseModel):
    """Fields left out keep their running value; `MaxPageSize: null` removes the cap."""

    model_config = ConfigDict(alias_generator=to_pascal, extra="forbid")

    error_dialect: ErrorDialect | None = None
    not_found_status: int | None = None
    label_upsert: LabelUpsert | None = None
    max_page_size: int | None = None


def _dialect_json(dialect: Dialect) -> dict[str, object]:
    return {
        "ErrorDialect": dialect.error_dialect,
        "NotFoundStatus": dialect.not_found_status,
        "LabelUpsert": dialect.label_upsert,
        "MaxPageSize": dialect.max_page_size,
    }


_M = TypeVar("_M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _body(request: web.Request, model: type[_M]) -> _M:
    try:
        return model.model_validate(json.loads(await request.read() or b"null"))
    except (ValueError, ValidationError) as exc:
        raise errors.invalid_parameter(str(exc).replace("\n", " ")) from None


def _admin(handler: Handler) -> Handler:
    """Admin errors use the API's error shape so the same test helpers can read them."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except errors.ApiError as exc:
            return error_response(request, new_request_id(), exc)

    return wrapped


@_admin
async def add_model(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    body = await _body(request, AddModel)
    if not body.model_id:
        raise errors.invalid_parameter("ModelId must not be empty.")
    created = emulator.store_for(body.account or emulator.default_account).add_model(body.model_id)
    await emulator.save()
    return json_response({"ModelId": body.model_id, "Created": created})


@_admin
async def add_fault(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    rule = await _body(request, FaultRule)
    if rule.operation != "*" and rule.operation not in OPERATIONS:
        raise errors.invalid_parameter(f"Operation must be '*' or one of {list(OPERATIONS)}.")
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
    return json_response({"Models": sorted(emulator.store.models)})


def _account(request: web.Request) -> str:
    """`?Account=` selects an account; absent: the default one."""
    emulator = request.app[EMULATOR]
    return request.query.get("Account") or emulator.default_account


@_admin
async def versions(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    model_id = request.match_info["model_id"]
    stored = emulator.store_for(_account(request)).models.get(model_id)
    if stored is None:
        raise errors.model_not_found(model_id, emulator.dialect)
    ordered = sorted(stored.values(), key=lambda version: version.seq)
    return json_response({"ModelId": model_id, "Versions": [dict(version.fields) for version in ordered]})


@_admin
async def models(request: web.Request) -> web.Response:
    """Every model of an account with its fields (GetModel's answer), oldest first."""
    store = request.app[EMULATOR].store_for(_account(request))
    return json_response({"Models": [store.get_model(model_id) for model_id in store.models]})


@_admin
async def get_quotas(request: web.Request) -> web.Response:
    return json_response({"Quotas": request.app[EMULATOR].quota_rates()})


@_admin
async def set_quotas(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    rates = (await _body(request, QuotaUpdate)).root
    unknown = sorted(set(rates) - set(OPERATIONS))
    if unknown:
        raise errors.invalid_parameter(f"Unknown operations {unknown}; known: {list(OPERATIONS)}.")
    try:
        emulator.configure_quotas(rates)
    except ValueError as exc:
        raise errors.invalid_parameter(str(exc)) from None
    return json_response({"Quotas": emulator.quota_rates()})


@_admin
async def delete_model(request: web.Request) -> web.Response:
    """DeleteModel without signing (tests make a model vanish under managed versions)."""
    emulator = request.app[EMULATOR]
    emulator.store_for(_account(request)).delete_model(request.match_info["model_id"])
    await emulator.save()
    return json_response({"ModelId": request.match_info["model_id"], "Deleted": True})


@_admin
async def get_dialect(request: web.Request) -> web.Response:
    return json_response({"Dialect": _dialect_json(request.app[EMULATOR].dialect)})


@_admin
async def set_dialect(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    update = await _body(request, DialectUpdate)
    try:
        wanted = Dialect(**{**vars(emulator.dialect), **update.model_dump(exclude_unset=True)})
    except ValueError as exc:
        raise errors.invalid_parameter(str(exc)) from None
    emulator.configure_dialect(wanted)
    return json_response({"Dialect": _dialect_json(emulator.dialect)})


def add_admin_routes(app: web.Application) -> None:
    app.router.add_post(f"{PREFIX}/models", add_model)
    app.router.add_delete(f"{PREFIX}/models/{{model_id}}", delete_model)
    app.router.add_get(f"{PREFIX}/dialect", get_dialect)
    app.router.add_put(f"{PREFIX}/dialect", set_dialect)
    app.router.add_post(f"{PREFIX}/faults", add_fault)
    app.router.add_get(f"{PREFIX}/faults", list_faults)
    app.router.add_delete(f"{PREFIX}/faults", clear_faults)
    app.router.add_get(f"{PREFIX}/journal", journal)
    app.router.add_delete(f"{PREFIX}/journal", clear_journal)
    app.router.add_post(f"{PREFIX}/reset", reset)
    app.router.add_get(f"{PREFIX}/versions/{{model_id}}", versions)
    app.router.add_get(f"{PREFIX}/models", models)
    app.router.add_get(f"{PREFIX}/quotas", get_quotas)
    app.router.add_put(f"{PREFIX}/quotas", set_quotas)
