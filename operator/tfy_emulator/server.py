"""The aiohttp application: the model-version, model and ML-repo operations under both API prefixes
(`/api/ml/v1` and `/api/svc/v1`, the same handlers) behind bearer authentication, quotas and fault
injection, plus the optional admin API (admin.py)."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from tfy_emulator import errors, validation
from tfy_emulator import fqn as fqns
from tfy_emulator.admin import add_admin_routes
from tfy_emulator.config import EmulatorConfig
from tfy_emulator.runtime import (
    EMULATOR,
    Api,
    Emulator,
    drop_connection,
    error_response,
    error_status,
    json_response,
)
from tfy_emulator.store import ModelQuery, Store, Version, VersionQuery, iso_millis

log = logging.getLogger("tfy_emulator")

PREFIXES: dict[Api, str] = {"ml": "/api/ml/v1", "svc": "/api/svc/v1"}


@dataclass
class Call:
    """One authenticated API call, as an operation sees it."""

    emulator: Emulator
    request: web.Request
    subject: dict[str, Any]
    body: Any

    @property
    def store(self) -> Store:
        return self.emulator.store

    @property
    def id(self) -> str:
        return self.request.match_info["id"]


# What an operation answers (the JSON body) and what the journal should record about it.
Result = tuple[dict[str, Any], dict[str, Any]]
Operation = Callable[[Call], Awaitable[Result]]


def _touched(store: Store, version: Version) -> dict[str, Any]:
    return {"VersionId": version.id, "ModelId": version.model_id, "Fqn": store.version_fqn(version)}


def _page(total: int, offset: int, limit: int, data: list[dict[str, Any]]) -> dict[str, Any]:
    return {"data": data, "pagination": {"total": total, "offset": offset, "limit": limit}}


def _internal(call: Call) -> bool:
    """`include_internal_metadata`, the list's parameter (default false), read the same way by
    every call that renders a version, so list and get agree on `metadata[".truefoundry"]`."""
    return validation.query_bool(call.request.query, "include_internal_metadata", False)


def _render(call: Call, version: Version) -> dict[str, Any]:
    return call.store.version_json(
        version, include_internal_metadata=_internal(call), with_status=call.emulator.dialect.deleted_visible
    )


async def stage_artifact_version(call: Call) -> Result:
    body = validation.parse_body(validation.StageBody, call.body)
    staged, model = call.store.stage(body.manifest, call.subject)
    answer = {"id": staged.id, "storage_root": staged.storage_root, "artifact_id": model.id}
    return answer, {"VersionId": staged.id, "ModelId": model.id, "Fqn": call.store.model_fqn(model)}


async def mark_stage_failure(call: Call) -> Result:
    body = validation.parse_body(validation.MarkStageFailureBody, call.body)
    call.store.mark_stage_failure(body.id)
    return {}, {"VersionId": body.id}


UPLOAD_PREFIX = "/_uploads"


def _safe_path(path: str) -> bool:
    parts = path.split("/")
    return not path.startswith("/") and "\\" not in path and all(p not in ("", ".", "..") for p in parts)


async def get_signed_urls(call: Call) -> Result:
    """Signed URLs to upload a staged version's files (what `truefoundry`'s log_model PUTs its
    files to). They point back at this emulator (`PUT /_uploads/...`, no bearer token, as a
    bucket's pre-signed URLs); downloads are not emulated."""
    body = validation.parse_body(validation.SignedUrlsBody, call.body)
    if body.operation != "WRITE":
        raise errors.invalid_field(("body", "operation"), "only WRITE is emulated (nothing is downloaded)")
    staged = call.store.writable_staged(body.id)
    for index, path in enumerate(body.paths):
        if not _safe_path(path):
            raise errors.invalid_field(("body", "paths", index), "a relative path without . or .. parts")
    base = f"{call.request.scheme}://{call.request.host}{UPLOAD_PREFIX}/{staged.id}"
    urls = [
        {
            "path": path,
            "signed_url": f"{base}/{quote(path)}?signature={call.emulator.upload_signature(staged.id, path)}",
        }
        for path in body.paths
    ]
    return {"data": urls}, {"VersionId": staged.id}


async def upload(request: web.Request) -> web.Response:
    """PUT to a signed URL: the signature proves the URL came from `get_signed_urls`."""
    emulator = request.app[EMULATOR]
    staged_id, path = request.match_info["id"], request.match_info["path"]
    signature = request.query.get("signature", "")
    if not hmac.compare_digest(signature, emulator.upload_signature(staged_id, path)):
        return web.Response(status=403, text="SignatureDoesNotMatch")
    try:
        staged = emulator.store.writable_staged(staged_id)
    except errors.ApiError:
        return web.Response(status=404, text="NoSuchUpload")
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
    staged.files[path] = size
    await emulator.save()
    return web.Response(status=200)


async def min_cli_version(request: web.Request) -> web.Response:
    """What `truefoundry` asks (unauthenticated) before it uses a key: the minimum client version
    (none here) and which auth APIs to use (`truefoundry.common.servicefoundry_client`)."""
    return json_response(
        {"minVersion": "0.0.0", "truefoundryCliMinVersion": "0.0.0", "useSFYServerAuthAPIs": False}
    )


async def tenant_id(request: web.Request) -> web.Response:
    """The tenant of a host name (unauthenticated), as `truefoundry` looks it up."""
    tenant = request.app[EMULATOR].store.tenant
    base = f"{request.scheme}://{request.host}"
    return json_response({"tenantName": tenant, "auth_server_url": base})


async def apply_model_version(call: Call) -> Result:
    body = validation.parse_body(validation.ApplyModelVersionBody, call.body)
    version = call.store.apply_version(body.manifest, call.subject)
    return {"data": _render(call, version)}, _touched(call.store, version)


async def get_model_version(call: Call) -> Result:
    version = call.store.get_version(call.id, include_deleted=call.emulator.dialect.deleted_visible)
    return {"data": _render(call, version)}, _touched(call.store, version)


async def delete_model_version(call: Call) -> Result:
    version = call.store.delete_version(call.id)
    return {}, _touched(call.store, version)


async def apply_model_version_tags(call: Call) -> Result:
    body = validation.parse_body(validation.ApplyTagsBody, call.body)
    version = call.store.apply_tags(body.model_version_id, body.tags, body.force)
    return {}, _touched(call.store, version)


def _version_filter(query: Any) -> int | str | None:
    if query.get("version") == fqns.LATEST:
        return fqns.LATEST
    return validation.query_positive_int(query, "version")


async def list_model_versions(call: Call) -> Result:
    query = call.request.query
    offset, limit = validation.page(query)
    raw_fqn = query.get("fqn")
    filters = VersionQuery(
        fqn=fqns.parse(raw_fqn) if raw_fqn is not None else None,
        model_id=query.get("model_id"),
        ml_repo_id=query.get("ml_repo_id"),
        name=query.get("name"),
        version=_version_filter(query),
        tag=query.get("tag"),
        run_ids=tuple(query.getall("run_ids", [])),
        run_steps=tuple(validation.query_floats(query.getall("run_steps", []), "run_steps")),
    )
    total, versions = call.store.list_versions(filters, offset, limit)
    return _page(total, offset, limit, [_render(call, version) for version in versions]), {}


async def get_model(call: Call) -> Result:
    model = call.store.get_model(call.id)
    body = call.store.model_json(model, include_internal_metadata=_internal(call))
    return {"data": body}, {"ModelId": model.id, "Fqn": call.store.model_fqn(model)}


async def delete_model(call: Call) -> Result:
    model = call.store.delete_model(call.id)
    return {}, {"ModelId": model.id, "Fqn": call.store.model_fqn(model)}


async def list_models(call: Call) -> Result:
    query = call.request.query
    offset, limit = validation.page(query)
    raw_fqn = query.get("fqn")
    parsed = fqns.parse(raw_fqn) if raw_fqn is not None else None
    if parsed is not None and parsed.version is not None:
        raise errors.invalid_field(("query", "fqn"), "expected a model fqn, without a version")
    filters = ModelQuery(
        fqn=parsed,
        ml_repo_id=query.get("ml_repo_id"),
        name=query.get("name"),
        run_id=query.get("run_id"),
        include_empty_models=validation.query_bool(query, "include_empty_models", True),
    )
    total, models = call.store.list_models(filters, offset, limit)
    internal = _internal(call)
    data = [call.store.model_json(model, include_internal_metadata=internal) for model in models]
    return _page(total, offset, limit, data), {}


async def get_ml_repo(call: Call) -> Result:
    return {"data": call.store.ml_repo_json(call.store.get_ml_repo(call.id))}, {}


async def list_ml_repos(call: Call) -> Result:
    query = call.request.query
    offset, limit = validation.page(query)
    total, repos = call.store.list_ml_repos(query.get("name"), offset, limit)
    return _page(total, offset, limit, [call.store.ml_repo_json(repo) for repo in repos]), {}


async def apply_ml_repo(call: Call) -> Result:
    body = validation.parse_body(validation.ApplyMlRepoBody, call.body)
    repo = call.store.apply_ml_repo(body.manifest, call.subject, body.dry_run)
    return {"data": call.store.ml_repo_json(repo)}, {}


# (operation, method, path under the prefix, handler, has a JSON body, changes state)
ROUTES: tuple[tuple[str, str, str, Operation, bool, bool], ...] = (
    ("StageArtifactVersion", "POST", "/artifact-versions/stage", stage_artifact_version, True, True),
    ("MarkStageFailure", "POST", "/artifact-versions/mark-stage-failure", mark_stage_failure, True, True),
    ("GetSignedUrls", "POST", "/artifact-versions/signed-urls", get_signed_urls, True, False),
    ("ApplyModelVersion", "PUT", "/model-versions", apply_model_version, True, True),
    ("ListModelVersions", "GET", "/model-versions", list_model_versions, False, False),
    ("ApplyModelVersionTags", "PUT", "/model-versions/tags", apply_model_version_tags, True, True),
    ("GetModelVersion", "GET", "/model-versions/{id}", get_model_version, False, False),
    ("DeleteModelVersion", "DELETE", "/model-versions/{id}", delete_model_version, False, True),
    ("ListModels", "GET", "/models", list_models, False, False),
    ("GetModel", "GET", "/models/{id}", get_model, False, False),
    ("DeleteModel", "DELETE", "/models/{id}", delete_model, False, True),
    ("ListMlRepos", "GET", "/ml-repos", list_ml_repos, False, False),
    ("ApplyMlRepo", "PUT", "/ml-repos", apply_ml_repo, True, True),
    ("GetMlRepo", "GET", "/ml-repos/{id}", get_ml_repo, False, False),
)


def _parse_json(raw: bytes) -> Any:
    if not raw:
        return None  # validation answers "Field required" on ("body",)
    try:
        return json.loads(raw)
    except ValueError:
        raise errors.invalid([errors.Issue(("body",), "JSON decode error", "json_invalid")]) from None


def api_handler(
    api: Api, name: str, operation: Operation, has_body: bool, writes: bool
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        emulator = request.app[EMULATOR]
        started = time.perf_counter()
        entry: dict[str, Any] = {
            "Operation": name,
            "Api": api,
            "Method": request.method,
            "Path": request.path,
            # Exactly as sent (still percent-encoded): tests check how clients page and filter.
            "Query": request.raw_path.partition("?")[2],
            "VersionId": request.match_info.get("id") if "model-versions" in request.path else None,
            "ModelId": request.match_info.get("id") if "/models/" in request.path else None,
            "Fqn": None,
            "Status": 0,
            "Message": None,
            "Fault": None,
            # Which client (which operator replica, or the SDK) called: tests assert on it.
            "UserAgent": request.headers.get("User-Agent"),
            "Subject": None,
            "LatencyMs": 0.0,
            "Time": iso_millis(datetime.now(UTC)),
        }
        response: web.StreamResponse
        try:
            raw = await request.read()
            subject = emulator.authenticate(request.headers.get("Authorization"))
            entry["Subject"] = subject["subjectSlug"]
            retry_after = emulator.quotas.retry_after(name)
            if retry_after is not None:
                raise errors.throttled(name, retry_after)

            latency, fault = emulator.faults.pick(name)
            if latency:
                await asyncio.sleep(latency)
            if fault is not None:
                entry["Fault"] = fault.mode
                if fault.mode == "error":
                    raise errors.injected(fault.http_status, fault.code)
                if fault.mode == "reset":
                    drop_connection(request)
                    return web.Response(status=499)  # never reaches the client

            payload, touched = await operation(
                Call(emulator, request, subject, _parse_json(raw) if has_body else None)
            )
            entry.update(touched)
            if writes:
                await emulator.save()
            entry["Status"] = 200
            if fault is not None and fault.mode == "commit_then_drop":
                drop_connection(request)
                return web.Response(status=499)  # never reaches the client
            response = json_response(payload)
        except errors.ApiError as exc:
            entry["Status"], entry["Message"] = error_status(exc, emulator.dialect), exc.message
            response = error_response(api, exc, emulator.dialect)
        except Exception:
            log.exception("unexpected error in %s", name)
            error = errors.internal()
            entry["Status"], entry["Message"] = error.status, error.message
            response = error_response(api, error, emulator.dialect)
        finally:
            entry["LatencyMs"] = round((time.perf_counter() - started) * 1000, 3)
            emulator.journal.record(entry)
            log.info(
                "%s %s %s -> %s %.1fms%s",
                name,
                api,
                entry["Fqn"] or entry["VersionId"] or entry["ModelId"] or "",
                entry["Status"],
                entry["LatencyMs"],
                f" fault={entry['Fault']}" if entry["Fault"] else "",
            )
        return response

    return handle


async def unknown_route(request: web.Request) -> web.Response:
    api: Api = "ml" if request.path.startswith("/api/ml/") else "svc"
    dialect = request.app[EMULATOR].dialect
    return error_response(api, errors.route_not_found(request.method, request.path), dialect)


def create_app(config: EmulatorConfig) -> web.Application:
    app = web.Application()
    app[EMULATOR] = Emulator(config)
    for api, prefix in PREFIXES.items():
        for name, method, path, operation, has_body, writes in ROUTES:
            app.router.add_route(method, prefix + path, api_handler(api, name, operation, has_body, writes))
    app.router.add_put(UPLOAD_PREFIX + "/{id}/{path:.+}", upload)
    app.router.add_get(PREFIXES["svc"] + "/min-cli-version", min_cli_version)
    app.router.add_get(PREFIXES["svc"] + "/tenant-id", tenant_id)
    if config.admin:
        add_admin_routes(app)
    # Last: every other path and method gets a JSON 404 (aiohttp's own 404/405 bodies are text).
    app.router.add_route("*", "/{tail:.*}", unknown_route)
    return app
