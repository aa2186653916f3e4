"""`tfy-emulator`: run the emulator from the command line (tests start it as a subprocess)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from tfy_emulator.config import (
    CONFLICT_STATUSES,
    DEFAULT_TENANT,
    ERROR_SHAPES,
    OPERATIONS,
    ApiKey,
    Dialect,
    EmulatorConfig,
    default_quotas,
)
from tfy_emulator.server import create_app
from tfy_emulator.validation import ML_REPO_PATTERN

log = logging.getLogger("tfy_emulator")
URL_PREFIX = "TFY_EMULATOR_URL="


def _api_key(value: str) -> ApiKey:
    # Tokens (tfy_ PATs, JWTs) never contain ":", so the first one separates the subject.
    token, sep, slug = value.partition(":")
    if not token or (sep and not slug):
        raise argparse.ArgumentTypeError("expected KEY or KEY:SUBJECT")
    return ApiKey(token, slug) if sep else ApiKey(token)


def _ml_repo(value: str) -> str:
    if not re.fullmatch(ML_REPO_PATTERN, value):
        raise argparse.ArgumentTypeError(f"an ML repo name matches {ML_REPO_PATTERN}")
    return value


def _quota(value: str) -> tuple[str, float]:
    operation, sep, rate = value.partition("=")
    if not sep or operation not in OPERATIONS:
        raise argparse.ArgumentTypeError(f"expected Operation=rate with Operation in {', '.join(OPERATIONS)}")
    try:
        parsed = float(rate)
    except ValueError:
        raise argparse.ArgumentTypeError(f"rate must be a number, got {rate!r}") from None
    if parsed < 0:
        raise argparse.ArgumentTypeError("rate must be >= 0 (0 = unlimited)")
    return operation, parsed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfy-emulator", description="TrueFoundry model-version API emulator"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090, help="0 picks a free port")
    parser.add_argument(
        "--api-key",
        type=_api_key,
        action="append",
        default=[],
        metavar="KEY[:SUBJECT]",
        help="a bearer token the API accepts, and the subject it acts as (repeatable)",
    )
    parser.add_argument(
        "--ml-repo",
        type=_ml_repo,
        action="append",
        default=[],
        metavar="NAME",
        help="an ML repo (repeatable)",
    )
    parser.add_argument("--tenant", default=DEFAULT_TENANT, help="the tenant name in every fqn")
    parser.add_argument("--admin", action="store_true", help="enable the unauthenticated /_emulator/ API")
    parser.add_argument("--state-file", type=Path, help="JSON snapshot: loaded at start, saved on change")
    parser.add_argument(
        "--quota",
        type=_quota,
        action="append",
        default=[],
        metavar="Operation=rate",
        help="requests per second for one operation (default: unlimited)",
    )
    parser.add_argument(
        "--error-shape",
        choices=ERROR_SHAPES,
        default="mlflow",
        help="mlflow: the fork's {error_code, message} (default); current: {statusCode, message, code}",
    )
    parser.add_argument(
        "--conflict-status",
        type=int,
        choices=CONFLICT_STATUSES,
        default=400,
        help="status of RESOURCE_ALREADY_EXISTS in the mlflow shape (default 400, the fork's)",
    )
    parser.add_argument(
        "--deleted-visible",
        action="store_true",
        help="get by id returns a deleted version with status DELETED instead of a 404",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    quotas = default_quotas()
    quotas.update(dict(args.quota))
    return EmulatorConfig(
        api_keys=args.api_key,
        ml_repos=args.ml_repo,
        tenant=args.tenant,
        admin=args.admin,
        state_file=args.state_file,
        quotas=quotas,
        dialect=Dialect(
            error_shape=args.error_shape,
            conflict_status=args.conflict_status,
            deleted_visible=args.deleted_visible,
        ),
    )


async def serve(config: EmulatorConfig, host: str, port: int) -> None:
    runner = web.AppRunner(create_app(config), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_host, bound_port = runner.addresses[0][:2]
    url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    # The one line on stdout: how a parent process learns the port when it asked for port 0.
    print(f"{URL_PREFIX}http://{url_host}:{bound_port}", flush=True)
    log.info("serving on %s:%s (admin %s)", bound_host, bound_port, "on" if config.admin else "off")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("shutting down")
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.api_key:
        log.warning("no --api-key given: every API request will be rejected")
    asyncio.run(serve(config_from_args(args), args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
