"""`pai-emulator`: run the emulator from the command line (tests start it as a subprocess)."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from emulator_kit.cli import add_control_arguments, add_listen_arguments, serve, setup_logging
from pai_emulator.config import (
    ERROR_DIALECTS,
    LABEL_UPSERTS,
    NOT_FOUND_STATUSES,
    OIDC_PROVIDER_ARN_RE,
    OPERATIONS,
    AccessKey,
    Dialect,
    EmulatorConfig,
    OidcProvider,
    Role,
    StsCredential,
    default_quotas,
    parse_role_arn,
)
from pai_emulator.server import create_app

log = logging.getLogger("pai_emulator")
URL_PREFIX = "PAI_EMULATOR_URL="


def _access_key(value: str) -> AccessKey:
    # The account follows the last "@": secrets may contain "@", account ids never do.
    credential, at, account = value.rpartition("@")
    if not at or not account.isdigit():
        credential, account = value, ""
    key_id, sep, secret = credential.partition(":")
    if not sep or not key_id or not secret:
        raise argparse.ArgumentTypeError("expected ID:SECRET or ID:SECRET@ACCOUNT")
    return AccessKey(key_id, secret, account=account or None)


def _role(value: str) -> Role:
    role = parse_role_arn(value)
    if role is None:
        raise argparse.ArgumentTypeError("expected a RAM role ARN, acs:ram::<account>:role/<name>")
    return role


def _oidc_provider(value: str) -> OidcProvider:
    # ARN=ISSUER@JWKS_FILE: the ARN has no "=", the file name follows the last "@" (issuer URLs
    # may hold "@" in a userinfo part, file names rarely do).
    arn, eq, rest = value.partition("=")
    issuer, at, jwks_file = rest.rpartition("@")
    match = OIDC_PROVIDER_ARN_RE.fullmatch(arn.strip())
    if not eq or not at or match is None or not issuer or not jwks_file:
        raise argparse.ArgumentTypeError(
            "expected ARN=ISSUER@JWKS_FILE with ARN acs:ram::<account>:oidc-provider/<name>"
        )
    try:
        jwks = json.loads(Path(jwks_file).read_text())
    except (OSError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"cannot read the JWKS file {jwks_file}: {exc}") from None
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise argparse.ArgumentTypeError(f'{jwks_file} is not a JSON Web Key Set ({{"keys": [...]}})')
    return OidcProvider(arn=match[0], account=match[1], issuer=issuer, jwks=jwks)


def _role_subject(value: str) -> tuple[str, str]:
    arn, eq, subject = value.partition("=")
    role = parse_role_arn(arn)
    if not eq or role is None or not subject:
        raise argparse.ArgumentTypeError("expected ROLE_ARN=SUBJECT, e.g. ...=system:serviceaccount:NS:NAME")
    return role.arn, subject


def _model(value: str) -> str:
    account, sep, model_id = value.partition("/")
    if not value or (sep and (not account.isdigit() or not model_id or "/" in model_id)):
        raise argparse.ArgumentTypeError("expected MODEL_ID or ACCOUNT/MODEL_ID")
    return value


def _sts(value: str) -> StsCredential:
    parts = value.split(":", 2)
    if len(parts) != 3 or not all(parts):
        raise argparse.ArgumentTypeError("expected ID:SECRET:TOKEN")
    return StsCredential(parts[0], parts[1], parts[2])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pai-emulator", description="PAI AIWorkSpace model-version emulator"
    )
    add_listen_arguments(parser, default_port=8089)
    parser.add_argument(
        "--access-key",
        type=_access_key,
        action="append",
        default=[],
        metavar="ID:SECRET[@ACCOUNT]",
        help="a long-lived key; without @ACCOUNT it belongs to the default account",
    )
    parser.add_argument("--sts-token", type=_sts, action="append", default=[], metavar="ID:SECRET:TOKEN")
    parser.add_argument(
        "--model",
        type=_model,
        action="append",
        default=[],
        metavar="[ACCOUNT/]MODEL_ID",
        help="a model of the default account, or of ACCOUNT",
    )
    parser.add_argument(
        "--role",
        type=_role,
        action="append",
        default=[],
        metavar="ARN",
        help="a RAM role AssumeRole may assume (acs:ram::<account>:role/<name>); any key may assume it",
    )
    parser.add_argument(
        "--oidc-provider",
        type=_oidc_provider,
        action="append",
        default=[],
        metavar="ARN=ISSUER@JWKS_FILE",
        help="an OIDC provider as registered in RAM (its issuer URL and key set), for AssumeRoleWithOIDC",
    )
    parser.add_argument(
        "--role-subject",
        type=_role_subject,
        action="append",
        default=[],
        metavar="ROLE_ARN=SUBJECT",
        help="who may assume the role through AssumeRoleWithOIDC (the token's sub); the role then exists",
    )
    parser.add_argument(
        "--sts-token-lifetime",
        type=float,
        metavar="SECONDS",
        help="lifetime of AssumeRole credentials, whatever DurationSeconds asked (tests of refresh)",
    )
    parser.add_argument(
        "--default-account",
        default=EmulatorConfig.owner_id,
        metavar="ACCOUNT",
        help="the account of keys and models given without one",
    )
    add_control_arguments(parser, OPERATIONS)
    dialect = parser.add_argument_group(
        "dialect", "answers where PAI's public docs are silent (README: Dialects, with sources)"
    )
    dialect.add_argument(
        "--error-dialect",
        choices=ERROR_DIALECTS,
        default="numeric",
        help="not-found codes: numeric 201900002/201900003 (default) or named InvalidModel(Version).NotFound",
    )
    dialect.add_argument(
        "--not-found-status",
        type=int,
        choices=NOT_FOUND_STATUSES,
        default=400,
        help="HTTP status of not-found",
    )
    dialect.add_argument(
        "--label-upsert",
        choices=LABEL_UPSERTS,
        default="replace",
        help="CreateModelVersionLabels on a key present: replace its value, append a second label, or refuse",
    )
    dialect.add_argument(
        "--max-page-size", type=_positive, metavar="N", help="silently cap ListModelVersions pages at N items"
    )
    parser.add_argument("--log-level", default="INFO")
    return parser


def _positive(value: str) -> int:
    try:
        parsed = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if parsed < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return parsed


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    quotas = default_quotas()
    quotas.update(dict(args.quota))
    role_subjects: dict[str, list[str]] = {}
    for arn, subject in args.role_subject:
        role_subjects.setdefault(arn, []).append(subject)
    return EmulatorConfig(
        access_keys=args.access_key,
        sts_credentials=args.sts_token,
        models=args.model,
        roles=args.role,
        oidc_providers=args.oidc_provider,
        role_subjects=role_subjects,
        sts_token_lifetime=args.sts_token_lifetime,
        owner_id=args.default_account,
        admin=args.admin,
        state_file=args.state_file,
        quotas=quotas,
        dialect=Dialect(
            error_dialect=args.error_dialect,
            not_found_status=args.not_found_status,
            label_upsert=args.label_upsert,
            max_page_size=args.max_page_size,
        ),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    if args.oidc_provider and importlib.util.find_spec("cryptography") is None:
        log.error("--oidc-provider needs the cryptography package (pip install 'pai-model-operator[test]')")
        return 2
    if not args.access_key and not args.sts_token:
        log.warning("no --access-key or --sts-token given: every API request will be rejected")
    config = config_from_args(args)
    log.info("admin API %s", "on" if config.admin else "off")
    asyncio.run(serve(create_app(config), args.host, args.port, URL_PREFIX, log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
