"""API errors as the emulator reports them: an HTTP status, a message and two codes, one per error
shape (`runtime.error_body` picks the shape the emulator speaks):

- `error_code`: the mlflow fork's name (`RESOURCE_DOES_NOT_EXIST`, `RESOURCE_ALREADY_EXISTS`, ...;
  `mlflow.exceptions` of tfy-mlflow-client 0.0.56), the default shape
  `{"error_code", "message"}`;
- `code`: this emulator's earlier invention (`VERSION_ALIAS_IN_USE`, ...) in servicefoundry's
  `HttpError` (`{"statusCode", "message", "code"?}`), the `current` shape.

Every status/message pair lives here so that a correction is a one-line change; README.md lists
them. A conflict (`conflict=True`) is answered 400 (the fork's `RESOURCE_ALREADY_EXISTS`) or 409
(TrueFoundry's API notes), as the dialect says.
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
        error_code: str | None = None,
        conflict: bool = False,
        issues: tuple[Issue, ...] = (),
        retry_after: int | None = None,
    ) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.code = code
        self.error_code = error_code or MLFLOW_CODES_BY_STATUS.get(status, "INTERNAL_ERROR")
        self.conflict = conflict
        self.issues = issues
        self.retry_after = retry_after


# The fork's ERROR_CODE_TO_HTTP_STATUS read backwards, for errors that carry only a status (an
# injected fault without a Code). 400 has several names; BAD_REQUEST is the generic one.
MLFLOW_CODES_BY_STATUS: dict[int, str] = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    409: "RESOURCE_ALREADY_EXISTS",
    422: "INVALID_PARAMETER_VALUE",
    429: "REQUEST_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
    503: "TEMPORARILY_UNAVAILABLE",
}


def unauthorized(reason: str) -> ApiError:
    # The token itself is never echoed: error bodies end up in client logs.
    return ApiError(401, f"Unauthorized: {reason}", error_code="UNAUTHORIZED")


def invalid(issues: list[Issue]) -> ApiError:
    summary = "; ".join(f"{'.'.join(str(p) for p in issue.loc)}: {issue.msg}" for issue in issues)
    return ApiError(
        422, f"Validation failed: {summary}", error_code="INVALID_PARAMETER_VALUE", issues=tuple(issues)
    )


def invalid_field(loc: tuple[str | int, ...], msg: str, type_: str = "value_error") -> ApiError:
    return invalid([Issue(loc, msg, type_)])


def ml_repo_not_found(name_or_id: str) -> ApiError:
    return ApiError(404, f"ml repo {name_or_id} not found", error_code="RESOURCE_DOES_NOT_EXIST")


def model_not_found(what: str) -> ApiError:
    return ApiError(404, f"model {what} not found", error_code="RESOURCE_DOES_NOT_EXIST")


def version_not_found(what: str) -> ApiError:
    return ApiError(404, f"model version {what} not found", error_code="RESOURCE_DOES_NOT_EXIST")


def not_staged(uri: str | None) -> ApiError:
    """A `truefoundry` source names storage that only staging hands out (the fork's
    `finalize_artifact_version` fails RESOURCE_DOES_NOT_EXIST without the staged record)."""
    where = f"with storage root {uri}" if uri else "without a uri"
    return ApiError(
        404,
        f"No staged artifact version {where}: a truefoundry source is created by "
        "POST artifact-versions/stage and an upload; use an external source for files that are "
        "already in the ML repo's bucket",
        code="NOT_STAGED",
        error_code="RESOURCE_DOES_NOT_EXIST",
    )


def staged_not_found(staged_id: str) -> ApiError:
    return ApiError(
        404,
        f"No ArtifactVersionInTransit with version_id={staged_id} found",
        error_code="RESOURCE_DOES_NOT_EXIST",
    )


def immutable_fields(fqn: str, fields: list[str]) -> ApiError:
    return ApiError(
        400,
        f"Cannot change {', '.join(fields)} of model version {fqn}: only description, metadata, "
        "framework, environment and version_alias can be updated",
        code="IMMUTABLE_FIELD",
        error_code="INVALID_PARAMETER_VALUE",
    )


def alias_in_use(alias: str, fqn: str) -> ApiError:
    return ApiError(
        400,
        f"version alias {alias} is already used by model version {fqn}: an alias is unique within a model",
        code="VERSION_ALIAS_IN_USE",
        error_code="RESOURCE_ALREADY_EXISTS",
        conflict=True,
    )


def tags_in_use(tags: dict[str, str]) -> ApiError:
    held = ", ".join(f"{tag} (on {fqn})" for tag, fqn in sorted(tags.items()))
    return ApiError(
        400,
        f"tags already in use by other versions of this model: {held}; pass force=true to move them",
        code="TAG_IN_USE",
        error_code="RESOURCE_ALREADY_EXISTS",
        conflict=True,
    )


def route_not_found(method: str, path: str) -> ApiError:
    return ApiError(404, f"Cannot {method} {path}", error_code="ENDPOINT_NOT_FOUND")


def throttled(operation: str, retry_after: int) -> ApiError:
    return ApiError(
        429,
        f"Too many requests for {operation}; retry after {retry_after} s",
        code="RATE_LIMITED",
        error_code="REQUEST_LIMIT_EXCEEDED",
        retry_after=retry_after,
    )


def injected(status: int | None, code: str | None) -> ApiError:
    """`code` goes in whichever field the error shape has: `code` (current) or `error_code`."""
    return ApiError(status or 503, "Injected fault.", code=code, error_code=code)


def internal() -> ApiError:
    return ApiError(500, "Internal server error")
