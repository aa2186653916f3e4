"""API errors as the emulator reports them: an HTTP status and a message.

Every status/message pair lives here so that a correction (TrueFoundry's sources are silent on most
of them) is a one-line change; README.md "Choices where public sources are silent" lists them. No
conflict is ever 409: the official SDK retries 409 (with 408, 429 and 5xx), so a conflict answered
with 409 would be sent three times before the caller heard of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Issue:
    """One validation failure, in FastAPI's terms: where (`loc`), what (`msg`), which rule (`type`)."""

    loc: tuple[str | int, ...]
    msg: str
    type: str

    def as_json(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "msg": self.msg, "type": self.type}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        issues: tuple[Issue, ...] = (),
        retry_after: int | None = None,
    ) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.code = code
        self.issues = issues
        self.retry_after = retry_after


def unauthorized(reason: str) -> ApiError:
    # The token itself is never echoed: error bodies end up in client logs.
    return ApiError(401, f"Unauthorized: {reason}")


def invalid(issues: list[Issue]) -> ApiError:
    summary = "; ".join(f"{'.'.join(str(p) for p in issue.loc)}: {issue.msg}" for issue in issues)
    return ApiError(422, f"Validation failed: {summary}", issues=tuple(issues))


def invalid_field(loc: tuple[str | int, ...], msg: str, type_: str = "value_error") -> ApiError:
    return invalid([Issue(loc, msg, type_)])


def ml_repo_not_found(name_or_id: str) -> ApiError:
    return ApiError(404, f"ml repo {name_or_id} not found")


def model_not_found(what: str) -> ApiError:
    return ApiError(404, f"model {what} not found")


def version_not_found(what: str) -> ApiError:
    return ApiError(404, f"model version {what} not found")


def immutable_fields(fqn: str, fields: list[str]) -> ApiError:
    return ApiError(
        400,
        f"Cannot change {', '.join(fields)} of model version {fqn}: only description, metadata, "
        "framework, environment and version_alias can be updated",
        code="IMMUTABLE_FIELD",
    )


def alias_in_use(alias: str, fqn: str) -> ApiError:
    return ApiError(
        400,
        f"version alias {alias} is already used by model version {fqn}: an alias is unique within a model",
        code="VERSION_ALIAS_IN_USE",
    )


def tags_in_use(tags: dict[str, str]) -> ApiError:
    held = ", ".join(f"{tag} (on {fqn})" for tag, fqn in sorted(tags.items()))
    return ApiError(
        400,
        f"tags already in use by other versions of this model: {held}; pass force=true to move them",
        code="TAG_IN_USE",
    )


def route_not_found(method: str, path: str) -> ApiError:
    return ApiError(404, f"Cannot {method} {path}")


def throttled(operation: str, retry_after: int) -> ApiError:
    return ApiError(
        429,
        f"Too many requests for {operation}; retry after {retry_after} s",
        code="RATE_LIMITED",
        retry_after=retry_after,
    )


def injected(status: int | None, code: str | None) -> ApiError:
    return ApiError(status or 503, "Injected fault.", code=code)


def internal() -> ApiError:
    return ApiError(500, "Internal server error")
