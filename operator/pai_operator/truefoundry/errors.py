"""TrueFoundry errors: `classify` maps the service's wire (HTTP status, error body, headers) to the
shared taxonomy in `pai_operator.errors` (drawn there), once, at the client boundary.

TrueFoundry has no error codes to speak of, so the status decides:

    status                                          class
    401, 403                                        AuthError
    404 with the service's error body               NotFoundError
    404 without one, or FastAPI's route miss        InvalidRequestError
    409, or 400 saying a unique name is in use      ConflictError
    408, 429                                        ThrottledError (retry_after from the headers)
    5xx with a retry-after header                   ThrottledError (the server asked for a pause)
    5xx                                             ServerError
    other 4xx (400, 422, ...)                       InvalidRequestError

Error bodies come in two shapes: servicefoundry's `{"statusCode", "message", "code"?, "details"?}`
and FastAPI's `{"detail": str | [{"loc", "msg", "type"}]}` (mlfoundry, 422). A 404 is "not found"
only when the service says so: a proxy or a wrong path (a host with an `/api` suffix doubles the
prefix) answers 404 too, and reading that as "the version is gone" would make the reconciler
create duplicates. FastAPI answers an unknown route with exactly `{"detail": "Not Found"}`, so
that body counts as a route miss as well.
"""

from __future__ import annotations

import email.utils
import json
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

IN_USE_CODES = frozenset({"VERSION_ALIAS_IN_USE", "TAG_IN_USE"})
"""400 codes for "another version of the model holds this alias/tag" (the emulator's; the
service's are not public). Not the spec's fault: the holder may be releasing it in the same
apply (an alias moved between two objects), so it is a conflict, retried with backoff, rather
than an invalid request looked at again only at the resync pace."""


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
    code = fields.get("code")
    code_text = str(code) if isinstance(code, str | int) and not isinstance(code, bool) else None
    request_id = lowered.get("x-request-id")

    def make(cls: type[RemoteError]) -> RemoteError:
        return cls(message, status=status, code=code_text, request_id=request_id)

    if status in (401, 403):
        return make(AuthError)
    if status == 404:
        said_by_service = "statusCode" in fields or _message(fields) is not None
        service_said_so = said_by_service and dict(fields) != _ROUTE_MISS
        return make(NotFoundError if service_said_so else InvalidRequestError)
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
