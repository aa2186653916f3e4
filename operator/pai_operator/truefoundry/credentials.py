"""Where the client gets its API key (a PAT `tfy_...`, a virtual-account token or a JWT), sent as
`Authorization: Bearer <key>`.

The client asks its source on every request, so a rotated key is used without a restart. No
source ever shows the key: not in its repr, not in an error. A missing or empty key raises
`NoCredentialsError` before anything is sent.

JWT keys expire (their `exp` claim); `truefoundry`'s own client decodes them without verifying
and stops once `exp` is past (`truefoundry.common.entities.Token.is_expired`). So does this
one: an expired JWT is an `AuthError` (reason AuthFailed: permanent until someone puts a new key
in place, so no retries) saying so, before anything is sent. PATs (`tfy_...`) and other opaque
tokens are not inspected.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from pai_operator.errors import AuthError, CredentialsError, NoCredentialsError

DEFAULT_ENV_VAR = "TFY_API_KEY"
"""The variable the official SDK and CLI read."""


class ApiKeySource(Protocol):
    async def api_key(self) -> str: ...


def jwt_expiry(key: str) -> float | None:
    """The `exp` claim (Unix seconds) of a JWT-shaped key, unverified (as `truefoundry` reads
    it); None for anything else (a PAT, an opaque token, a JWT without `exp`)."""
    parts = key.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    exp = payload.get("exp") if isinstance(payload, dict) else None
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        return float(exp)
    return None


def _checked(key: str | None, origin: str, clock: Callable[[], float] = time.time) -> str:
    """The key without surrounding whitespace (a Secret file often ends with a newline), or
    NoCredentialsError. A key a header cannot carry is refused here, in words that do not
    repeat it: httpx's own error would quote the header value. An expired JWT is an AuthError."""
    key = (key or "").strip()
    if not key:
        raise NoCredentialsError(f"no TrueFoundry API key: {origin} is empty or not set")
    if not key.isascii() or not key.isprintable() or any(char.isspace() for char in key):
        raise NoCredentialsError(
            f"the TrueFoundry API key from {origin} has characters an HTTP header cannot carry"
        )
    expiry = jwt_expiry(key)
    if expiry is not None and clock() >= expiry:
        when = datetime.fromtimestamp(expiry, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        raise AuthError(
            f"the TrueFoundry API key from {origin} is a JWT that expired at {when} (its exp "
            "claim), and TrueFoundry refuses expired tokens: put a new key there (a personal "
            "access token or a virtual-account token); it is read again without a restart",
            code="ApiKeyExpired",
        )
    return key


class StaticApiKey:
    """A fixed key, e.g. from settings or tests."""

    def __init__(self, key: str) -> None:
        self._key = key

    async def api_key(self) -> str:
        return _checked(self._key, "the static key")

    def __repr__(self) -> str:
        return "StaticApiKey(***)"


class EnvApiKey:
    """The key in an environment variable (a Secret mapped with `env`/`envFrom`), read on every
    call so a test or a settings loader may set it after the client was built."""

    def __init__(self, variable: str = DEFAULT_ENV_VAR, environ: Mapping[str, str] | None = None) -> None:
        self.variable = variable
        self._environ = os.environ if environ is None else environ

    async def api_key(self) -> str:
        return _checked(self._environ.get(self.variable), f"${self.variable}")

    def __repr__(self) -> str:
        return f"EnvApiKey(variable={self.variable!r})"


@dataclass(frozen=True)
class _Stamp:
    inode: int
    modified_ns: int
    size: int


class FileApiKey:
    """The key in a file, e.g. a Secret mounted as a volume.

    The kubelet updates a mounted Secret by swapping a symlink, which changes what the path
    resolves to; the file is read again whenever its identity, size or modification time
    changes (one `stat` per request, no read), so a rotated key is picked up within the
    kubelet's sync period and without a restart.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._stamp: _Stamp | None = None
        self._key: str | None = None

    async def api_key(self) -> str:
        origin = f"file {self.path}"
        try:
            info = self.path.stat()
            stamp = _Stamp(info.st_ino, info.st_mtime_ns, info.st_size)
            if stamp != self._stamp or self._key is None:
                self._key = self.path.read_text(encoding="utf-8")
                self._stamp = stamp
        except FileNotFoundError:
            self._stamp = self._key = None
            raise NoCredentialsError(f"no TrueFoundry API key: {origin} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            # Unreadable for now (permissions while a volume is being set up, an I/O error):
            # retryable, and the message names the error's kind, never the file's content.
            self._stamp = self._key = None
            raise CredentialsError(
                f"cannot read the TrueFoundry API key from {origin}: {type(exc).__name__}"
            ) from None
        return _checked(self._key, origin)

    def __repr__(self) -> str:
        return f"FileApiKey(path={str(self.path)!r})"
