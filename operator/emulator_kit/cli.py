"""The command-line parts both emulators share: the common flags (where to listen, the admin API,
the state file, quotas), logging to stderr, and serving an app until SIGTERM/SIGINT with the one
stdout line that tells a parent process the bound port."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from aiohttp import web


def quota_type(operations: Sequence[str]) -> Callable[[str], tuple[str, float]]:
    """An argparse type for `Operation=rate` with Operation one of `operations`."""

    def parse(value: str) -> tuple[str, float]:
        operation, sep, rate = value.partition("=")
        if not sep or operation not in operations:
            raise argparse.ArgumentTypeError(
                f"expected Operation=rate with Operation in {', '.join(operations)}"
            )
        try:
            parsed = float(rate)
        except ValueError:
            raise argparse.ArgumentTypeError(f"rate must be a number, got {rate!r}") from None
        if parsed < 0:
            raise argparse.ArgumentTypeError("rate must be >= 0 (0 = unlimited)")
        return operation, parsed

    return parse


def add_listen_arguments(parser: argparse.ArgumentParser, default_port: int) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port, help="0 picks a free port")


def add_control_arguments(
    parser: argparse.ArgumentParser, operations: Sequence[str], quota_help: str | None = None
) -> None:
    parser.add_argument("--admin", action="store_true", help="enable the unauthenticated /_emulator/ API")
    parser.add_argument("--state-file", type=Path, help="JSON snapshot: loaded at start, saved on change")
    parser.add_argument(
        "--quota",
        type=quota_type(operations),
        action="append",
        default=[],
        metavar="Operation=rate",
        help=quota_help,
    )


def setup_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr, level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


async def serve(app: web.Application, host: str, port: int, url_prefix: str, log: logging.Logger) -> None:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    bound_host, bound_port = runner.addresses[0][:2]
    url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    # The one line on stdout: how a parent process learns the port when it asked for port 0.
    print(f"{url_prefix}http://{url_host}:{bound_port}", flush=True)
    log.info("serving on %s:%s", bound_host, bound_port)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("shutting down")
    finally:
        await runner.cleanup()
