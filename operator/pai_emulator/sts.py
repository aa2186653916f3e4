"""STS `AssumeRole` and `AssumeRoleWithOIDC` (API version 2015-04-01), RPC style, as
`sts.aliyuncs.com` serves them.

RPC requests carry every parameter in the query string (GET) or a form body (POST) and are signed
with the RPC signature (SignatureVersion 1.0, HMAC-SHA1): StringToSign is
`METHOD&%2F&percentEncode(sorted, percent-encoded "k=v" pairs joined with &)`, the key is the
secret followed by `&`, and the Base64 digest travels as `Signature`. That is what
`alibabacloud-credentials`' RAM-role-ARN provider sends. Written from the published algorithm,
not from the operator's or the SDK's code, like the ACS3 verifier next to it.

`AssumeRoleWithOIDC` (RRSA on ACK) is not signed: the OIDC token is the caller's proof, checked in
`pai_emulator.oidc` against the provider registered with `--oidc-provider`, then against the
role's trust rule (`--role-subject`).

Issued credentials are registered with the PAI verifier and carry the role's account, so PAI
calls made with them see that account's models only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote_plus

from aiohttp import web

from pai_emulator import errors
from pai_emulator.config import Role, StsCredential, parse_role_arn
from pai_emulator.runtime import EMULATOR, Emulator, error_response, json_response, new_request_id
from pai_emulator.store import iso_millis

log = logging.getLogger("pai_emulator")

STS_API_VERSION = "2015-04-01"
SIGNATURE_METHOD = "HMAC-SHA1"
SIGNATURE_VERSION = "1.0"
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
MIN_DURATION_SECONDS = 900
MAX_DURATION_SECONDS = 43200
DEFAULT_DURATION_SECONDS = 3600
SESSION_NAME_RE = re.compile(r"[\w.@-]{2,64}", re.ASCII)


def percent_encode(value: str) -> str:
    """RFC 3986 unreserved characters stay; everything else is %XX (upper case), space as %20."""
    return quote(value, safe="-_.~")


def rpc_string_to_sign(method: str, params: dict[str, str]) -> str:
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()) if k != "Signature"
    )
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical)}"


def rpc_signature(secret: str, method: str, params: dict[str, str]) -> str:
    digest = hmac.new(
        f"{secret}&".encode(), rpc_string_to_sign(method, params).encode(), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode()


def _parse_form(raw: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for part in raw.split("&"):
        if part:
            name, _, value = part.partition("=")
            params[unquote_plus(name)] = unquote_plus(value)
    return params


def _require(params: dict[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise errors.missing_parameter(name)
    return value


def verify_rpc(emulator: Emulator, method: str, params: dict[str, str]) -> tuple[str, str]:
    """Check the RPC signature; returns (access key id, account) of the caller."""
    if params.get("SignatureMethod") != SIGNATURE_METHOD:
        raise errors.incomplete_signature(f"SignatureMethod must be {SIGNATURE_METHOD}.")
    if params.get("SignatureVersion") != SIGNATURE_VERSION:
        raise errors.incomplete_signature(f"SignatureVersion must be {SIGNATURE_VERSION}.")
    access_key_id = _require(params, "AccessKeyId")
    signature = _require(params, "Signature")
    nonce = _require(params, "SignatureNonce")
    stamp = _require(params, "Timestamp")
    secret, principal = emulator.verifier.credential(access_key_id, params.get("SecurityToken") or None)
    expected = rpc_signature(secret, method, params)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise errors.signature_mismatch(
            f"Specified signature is not matched with our calculation. Server string to sign is: "
            f"{rpc_string_to_sign(method, params)!r}"
        )
    try:
        sent = datetime.strptime(stamp, TIMESTAMP_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise errors.invalid_parameter(f"Timestamp {stamp!r} is not {TIMESTAMP_FORMAT}.") from None
    if abs(time.time() - sent) > emulator.config.max_clock_skew_seconds:
        raise errors.ApiError(400, "InvalidTimeStamp.Expired", f"Specified time stamp {stamp!r} is expired.")
    if not emulator.verifier.nonces.add(nonce):
        raise errors.nonce_used()
    return access_key_id, principal.account


def _session_and_duration(params: dict[str, str]) -> tuple[str, int]:
    session = _require(params, "RoleSessionName")
    if not SESSION_NAME_RE.fullmatch(session):
        raise errors.ApiError(
            400,
            "InvalidParameter.RoleSessionName",
            "RoleSessionName must be 2-64 characters of letters, digits, '.', '@', '-' and '_'.",
        )
    raw_duration = params.get("DurationSeconds") or str(DEFAULT_DURATION_SECONDS)
    try:
        duration = int(raw_duration)
    except ValueError:
        duration = -1
    if not MIN_DURATION_SECONDS <= duration <= MAX_DURATION_SECONDS:
        raise errors.ApiError(
            400,
            "InvalidParameter.DurationSeconds",
            f"DurationSeconds must be between {MIN_DURATION_SECONDS} and {MAX_DURATION_SECONDS}.",
        )
    return session, duration


def _role(emulator: Emulator, arn: str) -> Role:
    parsed = parse_role_arn(arn)
    if parsed is None:
        raise errors.ApiError(400, "InvalidParameter.RoleArn", f"The parameter RoleArn {arn!r} is invalid.")
    role = emulator.roles.get(parsed.arn)
    if role is None:
        raise errors.ApiError(404, "EntityNotExist.Role", f"The role not exists: {arn}.")
    return role


def _issue(emulator: Emulator, role: Role, session: str, duration: int) -> dict[str, Any]:
    """Temporary credentials of `role` for `session`, registered with the PAI verifier."""
    lifetime = emulator.config.sts_token_lifetime or float(duration)
    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=lifetime)
    credential = StsCredential(
        access_key_id="STS.NT" + secrets.token_hex(11),
        access_key_secret=secrets.token_urlsafe(30),
        security_token="CAIS" + secrets.token_urlsafe(96),
        expires_at=expires_at,
        account=role.account,
    )
    emulator.verifier.issue(credential)
    role_id = str(int(hashlib.sha256(role.arn.encode()).hexdigest()[:15], 16))[:18]
    return {
        "AssumedRoleUser": {
            "Arn": f"{role.arn}/{session}",
            "AssumedRoleId": f"{role_id}:{session}",
        },
        "Credentials": {
            "AccessKeyId": credential.access_key_id,
            "AccessKeySecret": credential.access_key_secret,
            "SecurityToken": credential.security_token,
            "Expiration": expires_at.strftime(TIMESTAMP_FORMAT),
        },
    }


def assume_role(emulator: Emulator, params: dict[str, str]) -> dict[str, Any]:
    arn = _require(params, "RoleArn")
    session, duration = _session_and_duration(params)
    return _issue(emulator, _role(emulator, arn), session, duration)


def _no_permission(message: str) -> errors.ApiError:
    return errors.ApiError(401, "AuthenticationFail.NoPermission", message)


def assume_role_with_oidc(
    emulator: Emulator, params: dict[str, str], entry: dict[str, Any]
) -> dict[str, Any]:
    """AssumeRoleWithOIDC: anonymous (the OIDC token is the proof). The token is checked against
    the named provider (`pai_emulator.oidc`), then the role's trust rule: the provider belongs to
    the role's account and the token's subject is one `--role-subject` allows for the role (RAM's
    trust policy conditions `oidc:iss`, `oidc:aud` and `oidc:sub`, the last one the rule ACK's RRSA
    guide has users add)."""
    from pai_emulator import oidc  # needs `cryptography`, a test dependency (pyproject [test])

    arn = _require(params, "RoleArn")
    provider_arn = _require(params, "OIDCProviderArn")
    token = params.get("OIDCToken", "")
    session, duration = _session_and_duration(params)
    provider = emulator.oidc_providers.get(provider_arn.strip())
    if provider is None:
        raise _no_permission("No such OIDC Provider registered.")
    claims = oidc.verify_token(token, provider, time.time())
    subject = str(claims["sub"])
    # Who presented the token, and which token (its issue time shows the kubelet's rotations).
    entry["Subject"] = subject
    entry["TokenIssuedAt"] = _claim_time(claims.get("iat"))
    role = _role(emulator, arn)
    entry["Account"] = role.account
    if provider.account != role.account or subject not in emulator.config.role_subjects.get(role.arn, []):
        raise _no_permission("There is no permission")
    payload = _issue(emulator, role, session, duration)
    audience = claims.get("aud")
    payload["OIDCTokenInfo"] = {
        "Subject": subject,
        "Issuer": claims["iss"],
        "ClientIds": ",".join(audience) if isinstance(audience, list) else str(audience),
        "ExpirationTime": _claim_time(claims.get("exp")),
        "IssuanceTime": _claim_time(claims.get("iat")),
        "VerificationInfo": "Success",
    }
    return payload


def _claim_time(value: Any) -> str | None:
    if not isinstance(value, int | float):
        return None
    return datetime.fromtimestamp(value, UTC).strftime(TIMESTAMP_FORMAT)


async def sts_handler(request: web.Request) -> web.Response:
    """`/` with Action=AssumeRole or AssumeRoleWithOIDC: the STS actions the operator needs."""
    emulator = request.app[EMULATOR]
    request_id = new_request_id()
    params = _parse_form(request.raw_path.partition("?")[2])
    if request.method == "POST":
        params.update(_parse_form((await request.read()).decode("utf-8", "replace")))
    entry: dict[str, Any] = {
        "Operation": params.get("Action") or "?",
        "ModelId": None,
        "VersionName": None,
        "Status": 200,
        "Code": None,
        "LatencyMs": 0.0,
        "Time": iso_millis(datetime.now(UTC)),
        "Fault": None,
        "UserAgent": request.headers.get("User-Agent"),
        "Account": None,
        "RoleArn": params.get("RoleArn"),
        "RoleSessionName": params.get("RoleSessionName"),
    }
    started = time.perf_counter()
    try:
        action = params.get("Action")
        if action != "AssumeRoleWithOIDC":
            # AssumeRoleWithOIDC is the one anonymous action: the token proves who calls.
            _, account = verify_rpc(emulator, request.method, params)
            entry["Account"] = account
        if action not in ("AssumeRole", "AssumeRoleWithOIDC"):
            raise errors.ApiError(404, "InvalidAction.NotFound", f"Specified api {action!r} is not found.")
        if params.get("Version") != STS_API_VERSION:
            raise errors.ApiError(400, "InvalidVersion", f"Version must be {STS_API_VERSION}.")
        if params.get("Format", "JSON").upper() != "JSON":
            raise errors.invalid_parameter("Only Format=JSON is emulated.")
        if action == "AssumeRoleWithOIDC":
            entry["OIDCProviderArn"] = params.get("OIDCProviderArn")
            payload = assume_role_with_oidc(emulator, params, entry)
        else:
            payload = assume_role(emulator, params)
        response = json_response({"RequestId": request_id, **payload})
    except errors.ApiError as exc:
        entry["Status"], entry["Code"] = exc.status, exc.code
        response = error_response(request, request_id, exc)
    finally:
        entry["LatencyMs"] = round((time.perf_counter() - started) * 1000, 3)
        emulator.journal.record(entry)
        # The role, session and token subject are not secrets; keys, tokens and signatures are
        # never logged.
        log.info(
            "STS %s %s session=%s%s -> %s %s",
            entry["Operation"],
            entry["RoleArn"],
            entry["RoleSessionName"],
            f" subject={entry['Subject']}" if entry.get("Subject") else "",
            entry["Status"],
            entry["Code"] or "",
        )
    return response
