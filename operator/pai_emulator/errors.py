"""API errors as the emulator reports them: an HTTP status plus an Alibaba-style Code.

Every code/status pair lives here so that a correction (PAI's docs are silent on most of them)
is a one-line change; README.md "Choices where the public docs are silent" lists them.
"""

from __future__ import annotations

from pai_emulator.config import Dialect

# Codes the Terraform provider matches for PAI's AIWorkSpace (DescribePaiWorkspaceModel /
# DescribePaiWorkspaceModelVersion): README "Dialects" cites them.
MODEL_NOT_FOUND_CODE = "201900002"
VERSION_NOT_FOUND_CODE = "201900003"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


def invalid_parameter(message: str) -> ApiError:
    return ApiError(400, "InvalidParameter", message)


def missing_parameter(name: str) -> ApiError:
    return ApiError(400, f"Missing{name}", f"{name} is mandatory for this action.")


# The messages never contain "NotFound": a client must recognise the numeric dialect by its code
# (Terraform's generic rule also matches that text, and would hide a client that only reads it).
def model_not_found(model_id: str, dialect: Dialect) -> ApiError:
    code = MODEL_NOT_FOUND_CODE if dialect.error_dialect == "numeric" else "InvalidModel.NotFound"
    return ApiError(dialect.not_found_status, code, f"The model {model_id!r} does not exist.")


def version_not_found(model_id: str, version_name: str, dialect: Dialect) -> ApiError:
    code = VERSION_NOT_FOUND_CODE if dialect.error_dialect == "numeric" else "InvalidModelVersion.NotFound"
    return ApiError(
        dialect.not_found_status,
        code,
        f"The version {version_name!r} of model {model_id!r} does not exist.",
    )


def label_exists(key: str) -> ApiError:
    """`--label-upsert reject`: a validation error like the others (the real code is unknown)."""
    return invalid_parameter(f"Labels.Key {key!r} already exists on this version; delete it first.")


def version_exists(model_id: str, version_name: str) -> ApiError:
    return ApiError(
        409,
        "InvalidModelVersion.AlreadyExists",
        f"The version {version_name!r} of model {model_id!r} already exists.",
    )


def api_not_found(method: str, path: str) -> ApiError:
    return ApiError(404, "InvalidApi.NotFound", f"No API matches {method} {path}.")


def incomplete_signature(message: str) -> ApiError:
    return ApiError(400, "IncompleteSignature", message)


def signature_mismatch(message: str) -> ApiError:
    return ApiError(400, "SignatureDoesNotMatch", message)


def unknown_access_key(access_key_id: str) -> ApiError:
    # The id is not a secret; echoing it helps users spot a misconfigured key.
    return ApiError(
        404, "InvalidAccessKeyId.NotFound", f"Specified access key {access_key_id!r} is not found."
    )


def timestamp_expired(date: str) -> ApiError:
    return ApiError(
        400,
        "InvalidTimeStamp.Expired",
        f"x-acs-date {date!r} is more than 15 minutes away from the server time.",
    )


def nonce_used() -> ApiError:
    return ApiError(400, "SignatureNonceUsed", "The x-acs-signature-nonce has been used before.")


def security_token_malformed(reason: str) -> ApiError:
    return ApiError(400, "InvalidSecurityToken.Malformed", f"The security token is invalid: {reason}.")


def security_token_expired() -> ApiError:
    return ApiError(400, "InvalidSecurityToken.Expired", "The security token has expired.")


def throttled(operation: str, retry_after: int) -> ApiError:
    return ApiError(
        429,
        "Throttling.User",
        f"Request was denied due to user flow control for {operation}.",
        retry_after=retry_after,
    )


def injected(code: str | None, status: int | None) -> ApiError:
    code = code or ("InternalError" if status == 500 else "ServiceUnavailable")
    status = status or (500 if code == "InternalError" else 503)
    return ApiError(status, code, "Injected fault.")
