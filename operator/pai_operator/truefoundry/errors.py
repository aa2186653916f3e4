"""TrueFoundry errors: `classify` maps the service's wire (HTTP status, error body, headers) to the
shared taxonomy in `pai_operator.errors` (drawn there), once, at the client boundary.

The status decides, refined by the error code where the body carries one:

    status                                          class
    401, 403 (UNAUTHORIZED, PERMISSION_DENIED)      AuthError
    404 RESOURCE_DOES_NOT_EXIST, or another 404     NotFoundError
        with the service's error body
    404 ENDPOINT_NOT_FOUND, a route miss            InvalidRequestError (a wrong path, not "gone")
        (FastAPI's, NestJS's), or no service body
    409; 400 RESOURCE_ALREADY_EXISTS; 400 with      ConflictError
        VERSION_ALIAS_IN_USE / TAG_IN_USE
    408, 429                                        ThrottledError (retry_after from the headers)
    5xx with a retry-after header                   ThrottledError (the server asked for a pause)
    5xx                                             ServerError
    other 4xx (400, 422, ...)                       InvalidRequestError

Error bodies come in three shapes, all read:
- the mlflow fork's `{"error_code": NAME, "message"}` (tfy-mlflow-client's `MlflowException`:
  the server family behind `/api/ml`; see tfy_emulator/README.md, E8);
- servicefoundry's `HttpError` `{"statusCode", "message", "code"?, "details"?}`;
- FastAPI's `{"detail": str | [{"loc", "msg", "type"}]}` (validation, route misses).

A 404 is "not found" only when the service says so: a proxy or a wrong path (a host with an
`/api` suffix doubles the prefix) answers 404 too, and reading that as "the version is gone" would
make the reconciler create duplicates. So `ENDPOINT_NOT_FOUND`, FastAPI's `{"detail": "Not
Found"}` and NestJS's `Cannot GET /path` message are route misses.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Iterable, Mapping

from pai_operator.errors import (
    AuthError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    RemoteError,
    ServerError,
    ThrottledError,
    redact,
)

__all__ = ["classify", "retry_after_seconds"]

Body = bytes | str | Mapping[str, object] | None

_ROUTE_MISS = {"detail": "Not Found"}
# NestJS's default answer to a path no controller serves: `HttpError` is NestJS's exception body
# (`statusCode`, `message`), so servicefoundry most likely answers a route miss this way (inferred).
_NEST_ROUTE_MISS = re.compile(r"^Cannot (GET|PUT|POST|DELETE|PATCH|HEAD|OPTIONS) /")

ROUTE_MISS_CODES = frozenset({"ENDPOINT_NOT_FOUND"})
NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST"})
IN_USE_CODES = frozenset({"RESOURCE_ALREADY_EXISTS", "VERSION_ALIAS_IN_USE", "TAG_IN_USE"})
"""Codes for "another version of the model holds this alias/tag": the fork's
`RESOURCE_ALREADY_EXISTS` (400 there; 409 per TrueFoundry's API notes) and the names an earlier
emulator used. Not the spec's fault: the holder may be releasing it in the same apply (an alias
moved between two objects), so it is a conflict, retried with backoff, rather than an invalid
request looked at again only at the resync pace."""


def classify(
    status: int,
    body: Body,
    headers: Mapping[str, str] | None = None,
    *,
    secrets: Iterable[str | None] = (),
    now: float | None = None,
) -> RemoteError:
    """Turn an HTTP error response into the one exception class callers reason about.

    `secrets` (the API key) are removed from the message, wherever the server echoed them.
    `now` is the wall clock (Unix seconds) that HTTP-date and reset-time headers count from.
    """
    lowered = {name.lower(): value for name, value in (headers or {}).items()}
    parsed = _json(body)
    fields = parsed if isinstance(parsed, Mapping) else {}
    message = redact(_message(fields) or _fallback_message(status, body), list(secrets))
    code_text = _code(fields)
    request_id = lowered.get("x-request-id")

    def make(cls: type[RemoteError], text: str = message) -> RemoteError:
        return cls(text, status=status, code=code_text, request_id=request_id)

    if status in (401, 403):
        return make(AuthError)
    if status == 404:
        if code_text in NOT_FOUND_CODES:
            return make(NotFoundError)
        if _route_miss(fields, code_text):
            return make(
                InvalidRequestError,
                f"{message} (the API path is not served there: check the operator's TrueFoundry "
                "host, which is the control plane's root URL, and its API prefix)",
            )
        said_by_service = "statusCode" in fields or _message(fields) is not None
        return make(NotFoundError if said_by_service else InvalidRequestError)
    if status == 409 or (status == 400 and code_text in IN_USE_CODES):
        return make(ConflictError)
    retry_after = retry_after_seconds(lowered, now=now)
    if status in (408, 429) or (status >= 500 and retry_after is not None):
        return ThrottledError(
            message, status=status, code=code_text, request_id=request_id, retry_after=retry_after
        )
    if status >= 500:
        return make(ServerError)
    return make(InvalidRequestError)


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """How long the server asked us to wait, from the headers the official SDK reads, in its
    order: `retry-after-ms`, `Retry-After` (seconds or an HTTP date), `X-RateLimit-Reset` (a Unix
    time). None when none is present and valid. A date already past means no wait (0); a reset
    time already past means no hint (None), as the SDK reads them."""
    lowered = {name.lower(): value for name, value in headers.items()}
    current = time.time() if now is None else now
    milliseconds = _number(lowered.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000
    raw = (lowered.get("retry-after") or "").strip()
    if raw:
        seconds = _number(raw)
        if seconds is not None:
            return seconds
        try:
            moment = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return max(0.0, moment.timestamp() - current)
    reset = _number(lowered.get("x-ratelimit-reset"))
    if reset is not None and reset > current:
        return reset - current
    return None


def _number(raw: str | None) -> float | None:
    """A non-negative finite number, else None."""
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if 0 <= value < float("inf") else None


def _json(body: Body) -> object:
    if isinstance(body, bytes | str):
        try:
            return json.loads(body)
        except ValueError:
            return None
    return body


def _code(fields: Mapping[str, object]) -> str | None:
    """The fork's `error_code`, else servicefoundry's `code`."""
    for name in ("error_code", "code"):
        code = fields.get(name)
        if isinstance(code, str | int) and not isinstance(code, bool) and str(code):
            return str(code)
    return None


def _route_miss(fields: Mapping[str, object], code: str | None) -> bool:
    if code in ROUTE_MISS_CODES or dict(fields) == _ROUTE_MISS:
        return True
    message = fields.get("message")
    return isinstance(message, str) and _NEST_ROUTE_MISS.match(message) is not None


def _message(fields: Mapping[str, object]) -> str | None:
    """servicefoundry's `message`, else FastAPI's `detail` (a string, or validation errors)."""
    message = fields.get("message")
    if isinstance(message, str) and message:
        return message
    detail = fields.get("detail")
    if isinstance(detail, str) and detail:
        return detail
    if isinstance(detail, list) and detail:
        return "; ".join(_validation_error(item) for item in detail)
    return None


def _validation_error(item: object) -> str:
    if not isinstance(item, Mapping):
        return str(item)
    location = item.get("loc")
    where = ".".join(map(str, location)) if isinstance(location, list) else ""
    text = str(item.get("msg", item))
    return f"{where}: {text}" if where else text


def _fallback_message(status: int, body: Body) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    text = body.strip() if isinstance(body, str) else ""
    return f"HTTP {status} without a TrueFoundry error body" + (f": {text[:200]}" if text else "")
