"""STS `AssumeRole` (API version 2015-04-01), RPC style, as `sts.aliyuncs.com` serves it.

RPC requests carry every parameter in the query string (GET) or a form body (POST) and are signed
with the RPC signature (SignatureVersion 1.0, HMAC-SHA1): StringToSign is
`METHOD&%2F&percentEncode(sorted, percent-encoded "k=v" pairs joined with &)`, the key is the
secret followed by `&`, and the Base64 digest travels as `Signature`. That is what
`alibabacloud-credentials`' RAM-role-ARN provider sends. Written from the published algorithm,
not from the operator's or the SDK's code, like the ACS3 verifier next to it.

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
from pai_emulator.config import StsCredential, parse_role_arn
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


def assume_role(emulator: Emulator, params: dict[str, str]) -> dict[str, Any]:
    arn = _require(params, "RoleArn")
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
    parsed = parse_role_arn(arn)
    if parsed is None:
        raise errors.ApiError(400, "InvalidParameter.RoleArn", f"The parameter RoleArn {arn!r} is invalid.")
    role = emulator.roles.get(parsed.arn)
    if role is None:
        raise errors.ApiError(404, "EntityNotExist.Role", f"The role not exists: {arn}.")
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


async def sts_handler(request: web.Request) -> web.Response:
    """`/` with Action=AssumeRole: the only STS action the operator needs."""
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
        _, account = verify_rpc(emulator, request.method, params)
        entry["Account"] = account
        if params.get("Action") != "AssumeRole":
            raise errors.ApiError(
                404, "InvalidAction.NotFound", f"Specified api {params.get('Action')!r} is not found."
            )
        if params.get("Version") != STS_API_VERSION:
            raise errors.ApiError(400, "InvalidVersion", f"Version must be {STS_API_VERSION}.")
        if params.get("Format", "JSON").upper() != "JSON":
            raise errors.invalid_parameter("Only Format=JSON is emulated.")
        payload = assume_role(emulator, params)
        response = json_response({"RequestId": request_id, **payload})
    except errors.ApiError as exc:
        entry["Status"], entry["Code"] = exc.status, exc.code
        response = error_response(request, request_id, exc)
    finally:
        entry["LatencyMs"] = round((time.perf_counter() - started) * 1000, 3)
        emulator.journal.record(entry)
        # The role and session are not secrets; keys, tokens and signatures are never logged.
        log.info(
            "STS %s %s session=%s -> %s %s",
            entry["Operation"],
            entry["RoleArn"],
            entry["RoleSessionName"],
            entry["Status"],
            entry["Code"] or "",
        )
    return response
