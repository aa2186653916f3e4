"""The aiohttp application: the AIWorkSpace model and model-version operations behind signature
checks, quotas and fault injection, plus the optional admin API (see admin.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from pai_emulator import errors
from pai_emulator.admin import add_admin_routes
from pai_emulator.config import API_VERSION, EmulatorConfig
from pai_emulator.runtime import (
    EMULATOR,
    Emulator,
    drop_connection,
    error_response,
    json_response,
    new_request_id,
)
from pai_emulator.signing import Principal, ReceivedRequest
from pai_emulator.store import Store, iso_millis
from pai_emulator.sts import sts_handler

log = logging.getLogger("pai_emulator")

MODELS_PATH = "/api/v1/models"
MODEL_PATH = MODELS_PATH + "/{model_id}"
MODEL_LABELS_PATH = MODEL_PATH + "/labels"
VERSIONS_PATH = MODEL_PATH + "/versions"
VERSION_PATH = VERSIONS_PATH + "/{version_name}"
LABELS_PATH = VERSION_PATH + "/labels"


@dataclass
class Call:
    """One authenticated API call, as an operation sees it."""

    emulator: Emulator
    request: web.Request
    principal: Principal
    body: Any

    @property
    def store(self) -> Store:
        """The caller's account: one account never sees or touches another's models."""
        return self.emulator.store_for(self.principal.account)

    @property
    def model_id(self) -> str:
        return self.request.match_info["model_id"]

    @property
    def version_name(self) -> str:
        return self.request.match_info["version_name"]


# An operation returns its response fields (RequestId is added) and the version it touched.
Operation = Callable[[Call], Awaitable[tuple[dict[str, Any], str | None]]]


async def get_model(call: Call) -> tuple[dict[str, Any], str | None]:
    return call.store.get_model(call.model_id), None


async def create_model(call: Call) -> tuple[dict[str, Any], str | None]:
    model_id = call.store.create_model(call.body, call.principal.user_id)
    call.request["created_model_id"] = model_id  # the journal records the id it assigned
    return {"ModelId": model_id}, None


async def update_model(call: Call) -> tuple[dict[str, Any], str | None]:
    call.store.update_model(call.model_id, call.body)
    return {}, None


async def list_models(call: Call) -> tuple[dict[str, Any], str | None]:
    total, models = call.store.list_models(call.request.query)
    return {"TotalCount": total, "Models": models}, None


async def create_model_labels(call: Call) -> tuple[dict[str, Any], str | None]:
    call.store.add_model_labels(call.model_id, call.body)
    return {}, None


async def delete_model_labels(call: Call) -> tuple[dict[str, Any], str | None]:
    call.store.delete_model_labels(call.model_id, call.request.query.get("LabelKeys"))
    return {}, None


async def delete_model(call: Call) -> tuple[dict[str, Any], str | None]:
    call.store.delete_model(call.model_id)
    return {}, None


async def create_version(call: Call) -> tuple[dict[str, Any], str | None]:
    name = call.store.create(call.model_id, call.body, call.principal.user_id)
    return {"VersionName": name}, name


async def get_version(call: Call) -> tuple[dict[str, Any], str | None]:
    return call.store.get(call.model_id, call.version_name), call.version_name


async def update_version(call: Call) -> tuple[dict[str, Any], str | None]:
    call.store.update(call.model_id, call.version_name, call.body)
    return {}, call.version_name


async def delete_version(call: Call) -> tuple[dict[str, Any], str | None]:
    call.store.delete(call.model_id, call.version_name)
    return {}, call.version_name


async def list_versions(call: Call) -> tuple[dict[str, Any], str | None]:
    total, versions = call.store.list_versions(call.model_id, call.request.query)
    return {"TotalCount": total, "Versions": versions}, None


async def create_labels(call: Call) -> tuple[dict[str, Any], str | None]:
    call.store.add_labels(call.model_id, call.version_name, call.body)
    return {}, call.version_name


async def delete_labels(call: Call) -> tuple[dict[str, Any], str | None]:
    label_keys = call.request.query.get("LabelKeys")
    call.store.delete_labels(call.model_id, call.version_name, label_keys)
    return {}, call.version_name


# (action, method, path, operation, has JSON body, changes state)
ROUTES: tuple[tuple[str, str, str, Operation, bool, bool], ...] = (
    ("CreateModel", "POST", MODELS_PATH, create_model, True, True),
    ("ListModels", "GET", MODELS_PATH, list_models, False, False),
    ("UpdateModel", "PUT", MODEL_PATH, update_model, True, True),
    ("CreateModelLabels", "POST", MODEL_LABELS_PATH, create_model_labels, True, True),
    ("DeleteModelLabels", "DELETE", MODEL_LABELS_PATH, delete_model_labels, False, True),
    ("GetModel", "GET", MODEL_PATH, get_model, False, False),
    ("DeleteModel", "DELETE", MODEL_PATH, delete_model, False, True),
    ("CreateModelVersion", "POST", VERSIONS_PATH, create_version, True, True),
    ("ListModelVersions", "GET", VERSIONS_PATH, list_versions, False, False),
    ("GetModelVersion", "GET", VERSION_PATH, get_version, False, False),
    ("UpdateModelVersion", "PUT", VERSION_PATH, update_version, True, True),
    ("DeleteModelVersion", "DELETE", VERSION_PATH, delete_version, False, True),
    ("CreateModelVersionLabels", "POST", LABELS_PATH, create_labels, True, True),
    ("DeleteModelVersionLabels", "DELETE", LABELS_PATH, delete_labels, False, True),
)


def _parse_json(raw: bytes) -> Any:
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise errors.invalid_parameter("The request body is not valid JSON.") from None


def api_handler(
    action: str, operation: Operation, has_body: bool, writes: bool
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        emulator = request.app[EMULATOR]
        started = time.perf_counter()
        request_id = new_request_id()
        entry: dict[str, Any] = {
            "Operation": action,
            "ModelId": request.match_info.get("model_id"),
            "VersionName": request.match_info.get("version_name"),
            "Status": 0,
            "Code": None,
            "LatencyMs": 0.0,
            "Time": iso_millis(datetime.now(UTC)),
            "Fault": None,
            # Which client (which operator replica) acted: tests assert that only the leader writes.
            "UserAgent": request.headers.get("User-Agent"),
            "Account": None,  # whose models the call saw (tests check tenant isolation with it)
        }
        response: web.StreamResponse
        try:
            raw = await request.read()
            raw_path, _, raw_query = request.raw_path.partition("?")
            principal = emulator.verifier.verify(
                ReceivedRequest(request.method, raw_path, raw_query, request.headers.items(), raw)
            )
            entry["Account"] = principal.account
            if request.headers.get("x-acs-action") != action:
                raise errors.invalid_parameter(f"x-acs-action does not match this path; expected {action}.")
            if request.headers.get("x-acs-version") != API_VERSION:
                raise errors.invalid_parameter(f"x-acs-version must be {API_VERSION}.")
            retry_after = emulator.quotas_for(principal.account).retry_after(action)
            if retry_after is not None:
                raise errors.throttled(action, retry_after)

            latency, fault = emulator.faults.pick(action)
            if latency:
                await asyncio.sleep(latency)
            if fault is not None:
                entry["Fault"] = fault.mode
                if fault.mode == "error":
                    raise errors.injected(fault.code, fault.http_status)
                if fault.mode == "reset":
                    drop_connection(request)
                    return web.Response(status=499)  # never reaches the client

            payload, version_name = await operation(
                Call(emulator, request, principal, _parse_json(raw) if has_body else None)
            )
            entry["VersionName"] = version_name or entry["VersionName"]
            entry["ModelId"] = request.get("created_model_id") or entry["ModelId"]
            if writes:
                await emulator.save()
            entry["Status"] = 200
            if fault is not None and fault.mode == "commit_then_drop":
                drop_connection(request)
                return web.Response(status=499)  # never reaches the client
            response = json_response(
                {"RequestId": request_id, **payload}, headers={"x-acs-request-id": request_id}
            )
        except errors.ApiError as exc:
            entry["Status"], entry["Code"] = exc.status, exc.code
            response = error_response(request, request_id, exc)
        except Exception:
            log.exception("unexpected error in %s", action)
            entry["Status"], entry["Code"] = 500, "InternalError"
            response = error_response(
                request, request_id, errors.ApiError(500, "InternalError", "Internal error.")
            )
        finally:
            entry["LatencyMs"] = round((time.perf_counter() - started) * 1000, 3)
            emulator.journal.record(entry)
            log.info(
                "%s %s/%s -> %s %s %.1fms%s",
                action,
                entry["ModelId"],
                entry["VersionName"] or "",
                entry["Status"],
                entry["Code"] or "",
                entry["LatencyMs"],
                f" fault={entry['Fault']}" if entry["Fault"] else "",
            )
        return response

    return handle


async def unknown_api(request: web.Request) -> web.Response:
    return error_response(request, new_request_id(), errors.api_not_found(request.method, request.path))


def create_app(config: EmulatorConfig) -> web.Application:
    app = web.Application()
    app[EMULATOR] = Emulator(config)
    for action, method, path, operation, has_body, writes in ROUTES:
        app.router.add_route(method, path, api_handler(action, operation, has_body, writes))
    # STS shares the port: real STS is another host, but RPC requests go to "/" and PAI's ROA
    # paths all start with /api/, so one listener serves both without ambiguity.
    app.router.add_route("GET", "/", sts_handler)
    app.router.add_route("POST", "/", sts_handler)
    if config.admin:
        add_admin_routes(app)
    app.router.add_route("*", "/{tail:.*}", unknown_api)
    return app
