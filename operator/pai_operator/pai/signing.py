"""ACS3-HMAC-SHA256 request signing, as the official Alibaba Cloud SDK computes it.

Pure functions, no I/O: the client builds the headers, this module hashes and signs them. The
emulator verifies signatures with its own, independent code (a bug mirrored on both sides would
go unseen), and a property test checks this module against the SDK's signer.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote

ALGORITHM = "ACS3-HMAC-SHA256"
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()

# Never signed: Authorization is the signature itself, and content-length may be rewritten by
# proxies or the HTTP stack after signing.
_UNSIGNED_HEADERS = frozenset({"authorization", "content-length"})


def percent_encode(value: str) -> str:
    """RFC 3986 encoding: only unreserved characters stay literal (space is %20, `~` stays)."""
    return quote(value, safe="~", encoding="utf-8")


def encode_path_segment(value: str) -> str:
    """A path parameter as the SDK puts it in the URL: every reserved character escaped, `/` too."""
    return quote(value, safe="", encoding="utf-8")


def canonical_query(query: Mapping[str, str]) -> str:
    """Parameters sorted by name, `name=value` with the value percent-encoded, joined by `&`.

    Names are used as they are, like the SDK does: PAI's parameter names are plain ASCII words.
    """
    return "&".join(f"{name}={percent_encode(query[name])}" for name in sorted(query))


def canonical_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    """The `name:value\\n` block and the `;`-joined signed header names.

    Names are lower-cased and values trimmed; two spellings of one name (`Host`, `host`) are
    merged as the SDK merges them: values sorted and joined with `,`.
    """
    grouped: dict[str, list[str]] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered not in _UNSIGNED_HEADERS:
            grouped.setdefault(lowered, []).append(value.strip())
    names = sorted(grouped)
    block = "".join(f"{name}:{','.join(sorted(grouped[name]))}\n" for name in names)
    return block, ";".join(names)


def canonical_request(
    method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], payload_hash: str
) -> str:
    header_block, signed_names = canonical_headers(headers)
    return "\n".join(
        [method.upper(), path or "/", canonical_query(query), header_block, signed_names, payload_hash]
    )


def string_to_sign(canonical: str) -> str:
    return f"{ALGORITHM}\n{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"


def signature(secret: str, to_sign: str) -> str:
    return hmac.new(secret.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def authorization(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    payload_hash: str,
    access_key_id: str,
    secret: str,
) -> str:
    """The Authorization header value for a request whose signed headers are `headers`."""
    _, signed_names = canonical_headers(headers)
    canonical = canonical_request(method, path, query, headers, payload_hash)
    sig = signature(secret, string_to_sign(canonical))
    return f"{ALGORITHM} Credential={access_key_id},SignedHeaders={signed_names},Signature={sig}"


def sign_request(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    access_key_id: str,
    secret: str,
) -> dict[str, str]:
    """Return `headers` plus `x-acs-content-sha256` and `Authorization`.

    `path` is the already percent-encoded path as it goes on the wire; `query` holds the decoded
    parameter values. Every header given is signed, so the caller must pass exactly the headers it
    sends (host with its port, x-acs-action/version/date/signature-nonce, and so on).
    """
    payload_hash = hashlib.sha256(body).hexdigest()
    replaced = {"authorization", "x-acs-content-sha256"}
    signed = {name: value for name, value in headers.items() if name.lower() not in replaced}
    signed["x-acs-content-sha256"] = payload_hash
    signed["Authorization"] = authorization(method, path, query, signed, payload_hash, access_key_id, secret)
    return signed
