"""What every registry client (PAI, TrueFoundry) does around one remote call, whatever its wire:
report each attempt (a log line and the `on_request` hook), retry reads with bounded, jittered
back-off that honours a server's retry-after, and turn a success body into a typed model.

Nothing here knows HTTP: each client sends, classifies its own wire into `pai_operator.errors`,
and hands the rest to these helpers, so the policies are written once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pai_operator.errors import NetworkError, RemoteError, ServerError, ThrottledError, redact

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

RequestHook = Callable[[str, str, float], None]
"""on_request(operation, outcome, seconds): outcome is "ok", a RemoteError `kind`, "cancelled"
or "error" (a bug, not a registry's answer)."""

Sleep = Callable[[float], Awaitable[None]]


class AsyncClosing:
    """`async with client:` closes the client (its connection pool) on the way out."""

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


@dataclass
class Attempt:
    """What one attempt learnt about its response, for the line that reports it."""

    status: int | None = None
    request_id: str | None = None


@asynccontextmanager
async def observed(
    registry: str,
    operation: str,
    method: str,
    logger: logging.Logger,
    on_request: RequestHook | None,
) -> AsyncIterator[Attempt]:
    """Time one attempt, log it (never its credentials: callers put none in `Attempt`) and
    report its outcome to `on_request`, whether it returned, failed or was cancelled."""
    started = time.monotonic()
    attempt = Attempt()
    outcome = "ok"
    try:
        yield attempt
    except RemoteError as error:
        outcome = error.kind
        attempt.request_id = error.request_id or attempt.request_id
        raise
    except asyncio.CancelledError:
        outcome = "cancelled"
        raise
    except Exception:
        outcome = "error"  # a bug, not the registry's answer: still counted, never hidden
        raise
    finally:
        seconds = time.monotonic() - started
        logger.debug(
            "%s %s %s -> %s %s request_id=%s latency=%.3fs",
            registry,
            operation,
            method,
            attempt.status if attempt.status is not None else "-",
            outcome,
            attempt.request_id,
            seconds,
        )
        if on_request is not None:
            on_request(operation, outcome, seconds)


@dataclass(frozen=True)
class ReadRetries:
    """Bounded retries of a read on retryable errors.

    Writes never come here: a write whose response was lost may have succeeded, and only the
    reconciler (which can look first) knows whether sending it again is safe.
    """

    attempts: int
    backoff_base: float
    backoff_cap: float
    max_wait: float | None = None
    """A retry-after longer than this is not waited for here: the error goes up with its
    hint (the reconciler requeues), instead of holding a worker for as long as a server asks."""

    def delay(self, attempt: int, error: RemoteError, rng: random.Random) -> float:
        """Full jitter (AWS architecture blog), after the server's own retry-after when it gave one."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        jittered = rng.uniform(0, ceiling)
        if isinstance(error, ThrottledError) and error.retry_after is not None:
            return error.retry_after + jittered
        return jittered

    async def run(
        self,
        call: Callable[[], Awaitable[T]],
        *,
        label: str,
        logger: logging.Logger,
        sleep: Sleep,
        rng: random.Random,
    ) -> T:
        for attempt in range(1, self.attempts + 1):
            try:
                return await call()
            except RemoteError as error:
                if attempt == self.attempts or not error.retryable:
                    raise
                delay = self.delay(attempt, error, rng)
                if self.max_wait is not None and delay > self.max_wait:
                    raise
                logger.debug(
                    "%s attempt %d/%d failed (%s); retrying in %.3fs",
                    label,
                    attempt,
                    self.attempts,
                    error.kind,
                    delay,
                )
                await sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")


class ClientTuning(BaseModel):
    """How a client waits and retries, the same knobs for every registry (each client's config
    adds where to connect and its own rates)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=30.0, gt=0)
    """Also the write timeout: how long a request may take to send or to answer."""
    pool_timeout: float = Field(default=10.0, gt=0)
    max_connections: int = Field(default=20, ge=1)
    max_read_attempts: int = Field(default=4, ge=1)
    backoff_base: float = Field(default=0.2, ge=0)
    backoff_cap: float = Field(default=5.0, ge=0)
    max_retry_wait: float | None = Field(default=None, gt=0)
    """A server's retry-after longer than this is not waited for inside the client (None: any)."""

    def read_retries(self) -> ReadRetries:
        return ReadRetries(self.max_read_attempts, self.backoff_base, self.backoff_cap, self.max_retry_wait)


def network_error(exc: BaseException, *, never_sent: bool, secrets: Iterable[str | None]) -> NetworkError:
    """No response. `never_sent` (the client knows its transport's connect failures) is what
    lets even a write be sent again; anything later leaves the outcome unknown."""
    detail = redact(str(exc) or type(exc).__name__, secrets)
    return NetworkError(f"{type(exc).__name__}: {detail}", outcome_unknown=not never_sent)


def json_object(content: bytes, operation: str) -> dict[str, Any]:
    """A success body as a JSON object; an empty body is an empty object."""
    if not content.strip():
        return {}
    try:
        data = json.loads(content)
    except ValueError as exc:
        raise ServerError(
            f"{operation} answered with a body that is not JSON", code="InvalidResponse"
        ) from exc
    if not isinstance(data, dict):
        raise ServerError(f"{operation} answered with JSON that is not an object", code="InvalidResponse")
    return data


def parse_as(model: type[M], data: Mapping[str, Any], operation: str) -> M:
    """A success body in the shape the client expects; any other shape is the server's fault."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ServerError(
            f"{operation} answered with an unexpected shape: {detail}", code="InvalidResponse"
        ) from exc
