"""What every registry client shares of HTTP (the clients live in `pai/`, `truefoundry/`)."""

from __future__ import annotations

from typing import Final

import httpx

from pai_operator import __version__

USER_AGENT: Final = f"pai-model-operator/{__version__}"
"""Sent on every request; the operator adds its replica identity (`CoreSettings.user_agent`)."""

NEVER_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Failing while connecting (or waiting for a pooled connection) means nothing was sent: safe
to retry even a write."""
