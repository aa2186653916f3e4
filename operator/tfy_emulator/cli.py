"""`tfy-emulator`: run the emulator from the command line (tests start it as a subprocess)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
from collections.abc import Sequence

from emulator_kit.cli import add_control_arguments, add_listen_arguments, serve, setup_logging
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfy-emulator", description="TrueFoundry model-version API emulator"
    )
    add_listen_arguments(parser, default_port=8090)
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
    add_control_arguments(parser, OPERATIONS, "requests per second for one operation (default: unlimited)")
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    if not args.api_key:
        log.warning("no --api-key given: every API request will be rejected")
    config = config_from_args(args)
    log.info("admin API %s", "on" if config.admin else "off")
    asyncio.run(serve(create_app(config), args.host, args.port, URL_PREFIX, log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
