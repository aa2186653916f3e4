"""Operator settings: one dataclass, filled from command-line flags or environment variables.

Every flag of `pai-operator run` has an environment variable (PAI_OPERATOR_<NAME>) so that the
Helm chart and the kustomize manifests configure the operator without templating argv.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Literal

DeletionPolicy = Literal["Delete", "Retain"]
LogFormat = Literal["plain", "json"]

ENV_PREFIX = "PAI_OPERATOR_"


@dataclass(frozen=True)
class OperatorSettings:
    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty means all namespaces (cluster-wide)."""
    region: str = "cn-hangzhou"
    """Region for objects that do not set spec.regionId."""
    endpoint: str | None = None
    """Explicit PAI endpoint URL (tests, the demo, private endpoints); overrides the region's."""
    use_vpc_endpoint: bool = False
    resync_interval: float = 600.0
    """Seconds between drift checks of an in-sync object (jittered by +-10%)."""
    concurrency: int = 20
    """Objects reconciled at once (kopf worker limit)."""
    read_rate: float = 50.0
    write_rate: float = 20.0
    default_deletion_policy: DeletionPolicy = "Delete"
    metrics_port: int = 8080
    health_port: int = 8081
    log_format: LogFormat = "plain"
    verbose: bool = False
    backoff_base: float = 2.0
    backoff_cap: float = 300.0
    model_missing_retry: float = 300.0
    """A missing model is a user error that may be fixed in PAI later: retried, but slowly."""

    @property
    def tick(self) -> float:
        """How often each object's timer checks whether its next attempt is due (no API call):
        fine enough for short test intervals, never busier than 4 ticks per second."""
        return max(0.25, min(2.0, self.resync_interval / 4, self.backoff_base / 2))

    @property
    def all_namespaces(self) -> bool:
        return not self.namespaces


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(ENV_PREFIX + name)
    return value if value not in (None, "") else default


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `pai-operator run`; defaults come from the environment, then the dataclass."""
    d = OperatorSettings()
    env_ns = _env("NAMESPACES")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace",
        "-n",
        dest="namespaces",
        action="append",
        default=[n.strip() for n in env_ns.split(",") if n.strip()] if env_ns else None,
        help="namespace to watch (repeatable) [env PAI_OPERATOR_NAMESPACES, comma-separated]",
    )
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="watch every namespace (default)")
    parser.add_argument(
        "--region", default=_env("REGION", d.region), help="default PAI region [env PAI_OPERATOR_REGION]"
    )
    parser.add_argument(
        "--endpoint", default=_env("ENDPOINT"), help="PAI endpoint URL override [env PAI_OPERATOR_ENDPOINT]"
    )
    parser.add_argument(
        "--vpc-endpoint",
        action="store_true",
        default=_env("VPC_ENDPOINT", "false") == "true",
        help="use aiworkspace-vpc.<region>.aliyuncs.com [env PAI_OPERATOR_VPC_ENDPOINT=true]",
    )
    parser.add_argument(
        "--resync-interval",
        type=float,
        default=float(_env("RESYNC_INTERVAL", str(d.resync_interval)) or 0),
        help="seconds between drift checks [env PAI_OPERATOR_RESYNC_INTERVAL; default 600]",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=int(_env("CONCURRENCY", str(d.concurrency)) or 0),
        help="objects reconciled in parallel [env PAI_OPERATOR_CONCURRENCY; default 20]",
    )
    parser.add_argument(
        "--read-rate",
        type=float,
        default=float(_env("READ_RATE", str(d.read_rate)) or 0),
        help="PAI read calls per second [env PAI_OPERATOR_READ_RATE; default 50]",
    )
    parser.add_argument(
        "--write-rate",
        type=float,
        default=float(_env("WRITE_RATE", str(d.write_rate)) or 0),
        help="PAI write calls per second [env PAI_OPERATOR_WRITE_RATE; default 20]",
    )
    parser.add_argument(
        "--default-deletion-policy",
        choices=["Delete", "Retain"],
        default=_env("DEFAULT_DELETION_POLICY", d.default_deletion_policy),
        help="deletion policy when neither the object nor its namespace sets one "
        "[env PAI_OPERATOR_DEFAULT_DELETION_POLICY]",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(_env("METRICS_PORT", str(d.metrics_port)) or 0),
        help="Prometheus /metrics port, 0 disables [env PAI_OPERATOR_METRICS_PORT; default 8080]",
    )
    parser.add_argument(
        "--health-port",
        type=int,
        default=int(_env("HEALTH_PORT", str(d.health_port)) or 0),
        help="liveness /healthz port, 0 disables [env PAI_OPERATOR_HEALTH_PORT; default 8081]",
    )
    parser.add_argument(
        "--log-format",
        choices=["plain", "json"],
        default=_env("LOG_FORMAT", d.log_format),
        help="log format [env PAI_OPERATOR_LOG_FORMAT]",
    )
    parser.add_argument(
        "--backoff-base",
        type=float,
        default=float(_env("BACKOFF_BASE", str(d.backoff_base)) or 0),
        help="first retry delay after a transient PAI error, doubled per failure "
        "[env PAI_OPERATOR_BACKOFF_BASE; default 2]",
    )
    parser.add_argument(
        "--backoff-cap",
        type=float,
        default=float(_env("BACKOFF_CAP", str(d.backoff_cap)) or 0),
        help="longest retry delay [env PAI_OPERATOR_BACKOFF_CAP; default 300]",
    )
    parser.add_argument(
        "--model-missing-retry",
        type=float,
        default=float(_env("MODEL_MISSING_RETRY", str(d.model_missing_retry)) or 0),
        help="retry delay while spec.modelId does not exist [env PAI_OPERATOR_MODEL_MISSING_RETRY]",
    )
    parser.add_argument("--verbose", "-v", action="store_true", default=_env("VERBOSE", "false") == "true")


def from_arguments(args: argparse.Namespace) -> OperatorSettings:
    namespaces: tuple[str, ...] = () if args.all_namespaces else tuple(args.namespaces or ())
    if args.resync_interval <= 0:
        raise SystemExit("--resync-interval must be positive")
    if min(args.concurrency, args.read_rate, args.write_rate, args.backoff_base, args.backoff_cap) <= 0:
        raise SystemExit("--concurrency, rates and backoff settings must be positive")
    return OperatorSettings(
        namespaces=namespaces,
        region=args.region,
        endpoint=args.endpoint,
        use_vpc_endpoint=args.vpc_endpoint,
        resync_interval=args.resync_interval,
        concurrency=args.concurrency,
        read_rate=args.read_rate,
        write_rate=args.write_rate,
        default_deletion_policy=args.default_deletion_policy,
        metrics_port=args.metrics_port,
        health_port=args.health_port,
        log_format=args.log_format,
        verbose=args.verbose,
        backoff_base=args.backoff_base,
        backoff_cap=args.backoff_cap,
        model_missing_retry=args.model_missing_retry,
    )
