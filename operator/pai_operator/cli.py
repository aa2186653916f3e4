"""`pai-operator`: run the operator, or print the CRD it serves."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from pai_operator import __version__, commands
from pai_operator.settings import OperatorSettings, add_run_arguments, from_arguments


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pai-operator",
        description="Kubernetes operator for Alibaba Cloud PAI model versions (ModelVersion, pai.mlops.dev).",
    )
    parser.add_argument("--version", action="version", version=f"pai-operator {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="watch ModelVersion objects and reconcile them against PAI",
        description=(
            "Watch ModelVersion objects and reconcile them against PAI. Uses KUBECONFIG (or the in-cluster "
            "service account) for Kubernetes and the Alibaba Cloud default credential chain for PAI "
            "(ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET, ALIBABA_CLOUD_SECURITY_TOKEN, RRSA via "
            "ALIBABA_CLOUD_ROLE_ARN/_OIDC_PROVIDER_ARN/_OIDC_TOKEN_FILE, profiles, ECS RAM role)."
        ),
    )
    add_run_arguments(run)
    sub.add_parser(
        "crd", help="print the CustomResourceDefinitions (PAI and TrueFoundry ModelVersion) as YAML"
    )
    commands.register(sub)
    return parser


def configure_logging(settings: OperatorSettings) -> None:
    import kopf

    kopf.configure(
        verbose=settings.verbose,
        log_format=kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.FULL,
    )
    # httpx logs every request line at INFO; our client logs its own calls (without secrets).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # alibabacloud-credentials' ECS provider starts an apscheduler job and logs it at INFO.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # Its refresh logger ("credentials", own handler, level reset to INFO when imported) warns on
    # every refresh of a short-lived token, and on failure logs STS's answer whole with a
    # traceback: for a signature error that echoes the string to sign, with the caller's security
    # token. Every failure reaches our own logs and conditions as an error, redacted, so nothing
    # of it is needed; a filter (unlike a level) survives the reset at import.
    logging.getLogger("credentials").addFilter(lambda record: False)
    if not settings.verbose:
        # kopf logs every deletion handler run and retry per object; keep warnings only.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is not None:  # plan, import, orphans, explain (pai_operator.commands)
        code: int = handler(args)
        return code
    if args.command == "crd":
        from pai_operator.crd import RESOURCES, render_crd_yaml

        sys.stdout.write("".join(render_crd_yaml(resource) for resource in RESOURCES))
        return 0
    settings = from_arguments(args)
    configure_logging(settings)
    from pai_operator.kopf_adapter import run_operator

    try:
        asyncio.run(run_operator(settings))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
