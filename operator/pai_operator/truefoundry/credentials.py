"""Where the client gets its API key (a PAT `tfy_...`, a virtual-account token or a JWT), sent as
`Authorization: Bearer <key>`.

The client asks its source on every request, so a rotated key is used without a restart. No
source ever shows the key: not in its repr, not in an error. A missing or empty key raises
`NoCredentialsError` before anything is sent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pai_operator.errors import CredentialsError, NoCredentialsError

DEFAULT_ENV_VAR = "TFY_API_KEY"
"""The variable the official SDK and CLI read."""


class ApiKeySource(Protocol):
    async def api_key(self) -> str: ...


def _checked(key: str | None, origin: str) -> str:
    """The key without surrounding whitespace (a Secret file often ends with a newline), or
    NoCredentialsError. A key a header cannot carry is refused here, in words that do not
    repeat it: httpx's own error would quote the header value."""
    key = (key or "").strip()
    if not key:
        raise NoCredentialsError(f"no TrueFoundry API key: {origin} is empty or not set")
    if not key.isascii() or not key.isprintable() or any(char.isspace() for char in key):
        raise NoCredentialsError(
            f"the TrueFoundry API key from {origin} has characters an HTTP header cannot carry"
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
