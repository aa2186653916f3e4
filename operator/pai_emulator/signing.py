"""Server-side verification of request signatures: ACS3-HMAC-SHA256 (what the operator and the
official AIWorkSpace SDK send) and the older ROA scheme, `acs ID:base64(HMAC-SHA1)` (what the PAI
Python SDK, `alipai`, sends: its client factory sets `signature_algorithm="v2"`, which makes
alibabacloud-tea-openapi's `call_api` take `do_roarequest`).

Written independently of the operator's signer on purpose: a shared bug would be invisible.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote_plus

from pai_emulator import errors
from pai_emulator.config import AccessKey, StsCredential

ALGORITHM = "ACS3-HMAC-SHA256"
# Without these signed, a captured signature could be replayed against another host, action,
# body or time; the SDK always signs them.
REQUIRED_SIGNED_HEADERS = (
    "host",
    "x-acs-action",
    "x-acs-content-sha256",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-version",
)
SECURITY_TOKEN_HEADER = "x-acs-security-token"  # noqa: S105 (a header name, not a secret)
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
ROA_PREFIX = "acs "
# The ROA scheme signs no host and no body hash; these are what it does sign, and must be there.
ROA_REQUIRED_HEADERS = ("date", "x-acs-signature-nonce", "x-acs-action", "x-acs-version")


@dataclass(frozen=True)
class ReceivedRequest:
    """What the verifier needs from an HTTP request, exactly as it arrived on the wire."""

    method: str
    raw_path: str
    raw_query: str
    headers: Iterable[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Principal:
    access_key_id: str
    user_id: str
    account: str
    """The account whose models and versions this caller sees (an assumed role's, for STS)."""


def canonical_query(raw_query: str) -> str:
    """Decode what was received (`+` included, as urlencode sends spaces) and re-encode per RFC 3986."""
    params: dict[str, str] = {}
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        params[unquote_plus(name)] = unquote_plus(value)
    return "&".join(f"{name}={quote(value, safe='~')}" for name, value in sorted(params.items()))


def string_to_sign(
    method: str, raw_path: str, raw_query: str, headers: dict[str, list[str]], signed: list[str], payload: str
) -> str:
    canonical_headers = "".join(
        f"{name}:{','.join(sorted(value.strip() for value in headers.get(name, [])))}\n" for name in signed
    )
    canonical_request = "\n".join(
        [
            method.upper(),
            raw_path or "/",
            canonical_query(raw_query),
            canonical_headers,
            ";".join(signed),
            payload,
        ]
    )
    return f"{ALGORITHM}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"


def roa_string_to_sign(request: ReceivedRequest, header: Callable[[str], str]) -> str:
    names = sorted({name.lower() for name, _ in request.headers if name.lower().startswith("x-acs-")})
    canonical_headers = "".join(f"{name}:{header(name)}\n" for name in names)
    params: dict[str, str] = {}
    for part in request.raw_query.split("&"):
        if part:
            name, _, value = part.partition("=")
            params[unquote_plus(name)] = unquote_plus(value)
    resource = request.raw_path  # as sent: the SDK signs the path it percent-encoded itself
    if params:
        resource += "?" + "&".join(
            f"{name}={value}" if value else name for name, value in sorted(params.items())
        )
    lines = [
        request.method.upper(),
        header("accept"),
        header("content-md5"),
        header("content-type"),
        header("date"),
    ]
    return "\n".join(lines) + "\n" + canonical_headers + resource


def default_user_id(access_key_id: str) -> str:
    """A stable 16-digit account-style id derived from the key id (PAI reports numeric UIDs)."""
    return str(int(hashlib.sha256(access_key_id.encode()).hexdigest()[:13], 16)).rjust(16, "1")[:16]


def _parse_authorization(value: str | None) -> tuple[str, list[str], str]:
    if not value:
        raise errors.incomplete_signature("The Authorization header is missing.")
    algorithm, _, rest = value.partition(" ")
    if algorithm != ALGORITHM:
        raise errors.incomplete_signature(f"Unsupported signature algorithm; expected {ALGORITHM}.")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        key, sep, val = item.strip().partition("=")
        if sep:
            fields[key] = val
    credential, signed, signature = (fields.get(k, "") for k in ("Credential", "SignedHeaders", "Signature"))
    if not credential or not signed or not signature:
        raise errors.incomplete_signature(
            "The Authorization header must carry Credential, SignedHeaders and Signature."
        )
    return credential, signed.split(";"), signature


class NonceCache:
    """Remembers nonces for longer than a request's date can be accepted, so replays always fail."""

    def __init__(self, retention_seconds: float, clock: Callable[[], float]) -> None:
        self._retention = retention_seconds
        self._clock = clock
        self._seen: set[str] = set()
        self._order: deque[tuple[float, str]] = deque()

    def add(self, nonce: str) -> bool:
        """Record a nonce; False if it was seen before."""
        now = self._clock()
        while self._order and self._order[0][0] <= now:
            self._seen.discard(self._order.popleft()[1])
        if nonce in self._seen:
            return False
        self._seen.add(nonce)
        self._order.append((now + self._retention, nonce))
        return True

    def clear(self) -> None:
        self._seen.clear()
        self._order.clear()


class SignatureVerifier:
    def __init__(
        self,
        access_keys: Iterable[AccessKey],
        sts_credentials: Iterable[StsCredential],
        *,
        max_clock_skew_seconds: float,
        default_account: str = "1000000000000001",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = {key.access_key_id: key for key in access_keys}
        self._sts = {cred.access_key_id: cred for cred in sts_credentials}
        self._default_account = default_account
        self._skew = max_clock_skew_seconds
        self._clock = clock
        self.nonces = NonceCache(2 * max_clock_skew_seconds + 60, clock)

    def verify(self, request: ReceivedRequest) -> Principal:
        headers: dict[str, list[str]] = {}
        for name, value in request.headers:
            headers.setdefault(name.lower(), []).append(value)

        def header(name: str) -> str:
            return headers.get(name, [""])[0]

        if header("authorization").startswith(ROA_PREFIX):
            return self._verify_roa(request, header, SECURITY_TOKEN_HEADER in headers)

        access_key_id, signed, signature = _parse_authorization(header("authorization"))
        signed = [name.lower() for name in signed]
        for name in (
            *REQUIRED_SIGNED_HEADERS,
            *([SECURITY_TOKEN_HEADER] if SECURITY_TOKEN_HEADER in headers else []),
        ):
            if name not in signed:
                raise errors.incomplete_signature(f"The header {name!r} must be signed.")
        for name in signed:
            if name not in headers:
                raise errors.incomplete_signature(f"The signed header {name!r} is missing from the request.")

        secret, principal = self.credential(access_key_id, headers.get(SECURITY_TOKEN_HEADER, [None])[0])

        body_hash = hashlib.sha256(request.body).hexdigest()
        if not hmac.compare_digest(body_hash, header("x-acs-content-sha256").lower()):
            raise errors.signature_mismatch(
                "The body hash differs from x-acs-content-sha256: the body was changed or hashed wrongly."
            )

        expected_sts = string_to_sign(
            request.method, request.raw_path, request.raw_query, headers, sorted(signed), body_hash
        )
        expected = hmac.new(secret.encode(), expected_sts.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise errors.signature_mismatch(
                f"The request signature does not match. Server string to sign is: {expected_sts!r}"
            )

        date = header("x-acs-date")
        try:
            sent = datetime.strptime(date, DATE_FORMAT).replace(tzinfo=UTC).timestamp()
        except ValueError:
            raise errors.invalid_parameter(
                f"x-acs-date {date!r} is not in the format {DATE_FORMAT}."
            ) from None
        if abs(self._clock() - sent) > self._skew:
            raise errors.timestamp_expired(date)

        # Recorded only once the signature is valid: forged requests must not burn real nonces.
        if not self.nonces.add(header("x-acs-signature-nonce")):
            raise errors.nonce_used()
        return principal

    def _verify_roa(
        self, request: ReceivedRequest, header: Callable[[str], str], has_token: bool
    ) -> Principal:
        """`Authorization: acs ID:SIGNATURE`, SIGNATURE = base64(HMAC-SHA1(secret, string to sign)),
        the string to sign: METHOD, Accept, Content-MD5, Content-Type and Date on a line each,
        then every x-acs-* header as `name:value` lines sorted by name, then the path with the
        query sorted by name (`?a=1&b`, values decoded). The body is covered only through
        Content-MD5, which the SDK does not send: the scheme's weakness, not the emulator's."""
        access_key_id, _, signature = header("authorization")[len(ROA_PREFIX) :].partition(":")
        if not access_key_id or not signature:
            raise errors.incomplete_signature("The Authorization header must be `acs ID:SIGNATURE`.")
        if header("x-acs-signature-method") != "HMAC-SHA1" or header("x-acs-signature-version") != "1.0":
            raise errors.incomplete_signature(
                "The acs scheme needs x-acs-signature-method HMAC-SHA1 and x-acs-signature-version 1.0."
            )
        for name in ROA_REQUIRED_HEADERS:
            if not header(name):
                raise errors.incomplete_signature(f"The header {name!r} is required.")
        secret, principal = self.credential(
            access_key_id, header(SECURITY_TOKEN_HEADER) if has_token else None
        )
        content_md5 = header("content-md5")
        if content_md5 and content_md5 != base64.b64encode(hashlib.md5(request.body).digest()).decode():  # noqa: S324 (the scheme's own hash)
            raise errors.signature_mismatch("The body differs from Content-MD5.")

        expected_sts = roa_string_to_sign(request, header)
        digest = hmac.new(secret.encode(), expected_sts.encode(), hashlib.sha1).digest()
        if not hmac.compare_digest(base64.b64encode(digest).decode(), signature):
            raise errors.signature_mismatch(
                f"The request signature does not match. Server string to sign is: {expected_sts!r}"
            )
        date = header("date")
        try:
            sent = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            raise errors.invalid_parameter(f"Date {date!r} is not an RFC 1123 date.") from None
        if abs(self._clock() - sent) > self._skew:
            raise errors.timestamp_expired(date)
        if not self.nonces.add(header("x-acs-signature-nonce")):
            raise errors.nonce_used()
        return principal

    def issue(self, credential: StsCredential) -> None:
        """Accept a temporary credential AssumeRole has just issued (until it expires)."""
        now = self._clock()
        # Expired credentials can never be used again; dropping them keeps the map bounded.
        for key_id in [k for k, c in self._sts.items() if c.expires_at and c.expires_at.timestamp() <= now]:
            del self._sts[key_id]
        self._sts[credential.access_key_id] = credential

    def credential(self, access_key_id: str, token: str | None) -> tuple[str, Principal]:
        """The secret that signs for this key, and who the caller is. Raises the API's error for
        an unknown key, a missing, wrong or expired token."""
        key = self._keys.get(access_key_id)
        if key is not None:
            if token is not None:
                raise errors.security_token_malformed(
                    "a security token was sent with a long-lived access key"
                )
            user_id = key.user_id or default_user_id(access_key_id)
            return key.access_key_secret, Principal(
                access_key_id, user_id, key.account or self._default_account
            )
        sts = self._sts.get(access_key_id)
        if sts is None:
            raise errors.unknown_access_key(access_key_id)
        if token is None:
            raise errors.security_token_malformed("this access key requires x-acs-security-token")
        if not hmac.compare_digest(token.encode(), sts.security_token.encode()):
            raise errors.security_token_malformed("it does not belong to this access key")
        if sts.expires_at is not None and sts.expires_at.timestamp() <= self._clock():
            raise errors.security_token_expired()
        user_id = sts.user_id or default_user_id(access_key_id)
        return sts.access_key_secret, Principal(access_key_id, user_id, sts.account or self._default_account)
