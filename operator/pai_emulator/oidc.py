"""OIDC token checks of STS `AssumeRoleWithOIDC`, as RAM makes them for a registered provider.

The token is a JWT (RFC 7519) signed RS256 (what kube-apiserver signs ServiceAccount tokens with
for an RSA key, and ACK's RRSA issuer). RAM checks, each with its own error code (STS error-code
table, help.aliyun.com/zh/ram/developer-reference/api-sts-2015-04-01-errorcodes, and ACK's RRSA
guide, "SDK报错信息解决方法"):

- the token's shape: three base64url parts, JSON header and claims, a known algorithm
  (`AuthenticationFail.OIDCToken.Invalid`);
- the signature, against the provider's JSON Web Key Set (`...InvalidSignature`);
- `iss` equal to the provider's issuer URL (`...IssuerNotMatch`);
- `aud` holding the provider's client id, `sts.aliyuncs.com` for RRSA (`...AudienceNotMatch`);
- `exp` in the future (`...Expired`).

The signature is verified with `cryptography` (imported by this module only: the emulator without
an OIDC provider never needs it). Written from the RFCs (7515 section 5.2, 7518 section 3.3), not
from the operator's or the credentials library's code.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey, RSAPublicNumbers
from cryptography.hazmat.primitives.hashes import SHA256

from pai_emulator import errors
from pai_emulator.config import OidcProvider

CLIENT_ID = "sts.aliyuncs.com"
"""The client id (audience) ACK registers for its RRSA provider; tokens must be minted for it."""
MAX_TOKEN_LENGTH = 20_000  # AssumeRoleWithOIDC: OIDCToken is 4-20,000 characters


def _invalid(message: str) -> errors.ApiError:
    return errors.ApiError(401, "AuthenticationFail.OIDCToken.Invalid", message)


def _b64url(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise _invalid("Cannot decode base64 encoded response(format invalided).") from None


def _json_object(part: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64url(part))
    except (UnicodeDecodeError, ValueError):
        raise _invalid("The Jwt content is invalid that cannot be recognized.") from None
    if not isinstance(value, dict):
        raise _invalid("The Jwt content is invalid that cannot be recognized.")
    return value


def _int_from_b64url(value: Any) -> int:
    if not isinstance(value, str):
        raise ValueError("not a base64url string")
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def rsa_keys(jwks: dict[str, Any], kid: str | None) -> list[RSAPublicKey]:
    """The provider's RSA signing keys the token may be signed with: the one named by `kid`, or
    every RSA key when the token names none. Keys of other types or uses are skipped."""
    keys: list[RSAPublicKey] = []
    for jwk in jwks.get("keys", []):
        if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig":
            continue
        if kid is not None and jwk.get("kid") != kid:
            continue
        try:
            numbers = RSAPublicNumbers(_int_from_b64url(jwk.get("e")), _int_from_b64url(jwk.get("n")))
            keys.append(numbers.public_key())
        except (ValueError, binascii.Error):
            continue
    return keys


def verify_token(token: str, provider: OidcProvider, now: float) -> dict[str, Any]:
    """The token's claims once every check passed; an `ApiError` with STS's code otherwise."""
    if not token:
        raise _invalid("The OIDCToken can not empty.")
    if len(token) > MAX_TOKEN_LENGTH:
        raise _invalid(f"The OIDCToken is longer than {MAX_TOKEN_LENGTH} characters.")
    parts = token.split(".")
    if len(parts) != 3:
        raise _invalid("The number of Jwt field should be divided into 3 parts with '.' .")
    header, claims = _json_object(parts[0]), _json_object(parts[1])
    signature = _b64url(parts[2])
    algorithm = header.get("alg")
    if algorithm != "RS256":
        raise _invalid(f"The algorithm {algorithm} that be specified in Jwt header is unknown.")
    kid = header.get("kid")
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii", "replace")
    if not any(
        _verifies(key, signature, signing_input)
        for key in rsa_keys(provider.jwks, kid if isinstance(kid, str) else None)
    ):
        raise errors.ApiError(
            401,
            "AuthenticationFail.OIDCToken.InvalidSignature",
            "OIDC token validate failed: invalid signature.",
        )
    if claims.get("iss") != provider.issuer:
        raise errors.ApiError(
            401,
            "AuthenticationFail.OIDCToken.IssuerNotMatch",
            "The issuer in the OIDC Token doesn't match the OIDC Provider registered.",
        )
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
    if CLIENT_ID not in audiences:
        raise errors.ApiError(401, "AuthenticationFail.OIDCToken.AudienceNotMatch", "Invalid audience.")
    expires = claims.get("exp")
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        raise _invalid("The Jwt content is invalid that cannot be recognized.")
    if now >= expires:
        raise errors.ApiError(401, "AuthenticationFail.OIDCToken.Expired", "This JsonWebToken is expired.")
    not_before = claims.get("nbf")
    if isinstance(not_before, int | float) and now < not_before:
        raise _invalid("The JsonWebToken is not valid yet (nbf).")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise _invalid("The Jwt content is invalid that cannot be recognized.")
    return claims


def _verifies(key: RSAPublicKey, signature: bytes, signing_input: bytes) -> bool:
    try:
        key.verify(signature, signing_input, PKCS1v15(), SHA256())
    except InvalidSignature:
        return False
    return True
