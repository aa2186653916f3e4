"""Operator settings: one dataclass, filled from command-line flags or environment variables.

Every flag of `pai-operator run` has an environment variable (PAI_OPERATOR_<NAME>) so that the
Helm chart and the kustomize manifests configure the operator without templating argv.
"""

from __future__ import annotations

import argparse
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pai_operator import __version__

DeletionPolicy = Literal["Delete", "Retain"]
LogFormat = Literal["plain", "json"]

ENV_PREFIX = "PAI_OPERATOR_"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def default_identity() -> str:
    """This replica's name in the Lease and on the wire: the pod name (POD_NAME, from the
    downward API in our manifests), else host name + pid, unique even for two processes on
    one machine (tests, a developer's laptop)."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


def default_lease_namespace() -> str:
    """The operator's own namespace (POD_NAMESPACE, else the service-account mount); `default`
    outside a cluster."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


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
    # Leader election (controller-runtime's defaults): only the holder of the Lease acts.
    leader_elect: bool = True
    leader_elect_namespace: str = field(default_factory=default_lease_namespace)
    leader_elect_lease_name: str = "pai-operator"
    leader_elect_lease_duration: int = 15
    """A standby takes over this long after the leader's last renewal (if it was not released).
    Whole seconds: the Lease stores `leaseDurationSeconds` as an integer."""
    leader_elect_renew_deadline: float = 10.0
    """The leader gives up (and exits) when it could not renew for this long."""
    leader_elect_retry_period: float = 2.0
    """Between two attempts to acquire or renew."""
    identity: str = field(default_factory=default_identity)
    """Holder identity in the Lease; also in the User-Agent of every PAI request."""

    @property
    def user_agent(self) -> str:
        """Lets PAI's audit trail (and the emulator's journal) tell which replica acted."""
        return f"pai-model-operator/{__version__} ({self.identity})"

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


def _option(
    parser: argparse.ArgumentParser,
    flag: str,
    env: str,
    kind: type[float] | type[int] | type[str],
    default: object,
    help: str,
    **extra: object,
) -> None:
    """One flag whose default is $PAI_OPERATOR_<env>, else `default`; the help says both."""
    raw = _env(env)
    parser.add_argument(
        flag,
        type=kind,
        default=kind(raw) if raw is not None else default,
        help=f"{help} [env {ENV_PREFIX}{env}; default {default}]",
        **extra,  # type: ignore[arg-type]
    )


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
    _option(parser, "--region", "REGION", str, d.region, "region for objects without spec.regionId")
    _option(parser, "--endpoint", "ENDPOINT", str, None, "PAI endpoint URL override (else from the region)")
    parser.add_argument(
        "--vpc-endpoint",
        action="store_true",
        default=_env("VPC_ENDPOINT", "false") == "true",
        help="use aiworkspace-vpc.<region>.aliyuncs.com [env PAI_OPERATOR_VPC_ENDPOINT=true]",
    )
    _option(
        parser,
        "--resync-interval",
        "RESYNC_INTERVAL",
        float,
        d.resync_interval,
        "seconds between drift checks",
    )
    _option(parser, "--concurrency", "CONCURRENCY", int, d.concurrency, "objects reconciled in parallel")
    _option(parser, "--read-rate", "READ_RATE", float, d.read_rate, "PAI read calls per second")
    _option(parser, "--write-rate", "WRITE_RATE", float, d.write_rate, "PAI write calls per second")
    _option(
        parser, "--default-deletion-policy", "DEFAULT_DELETION_POLICY", str, d.default_deletion_policy,
        "deletion policy when neither the object nor its namespace sets one", choices=["Delete", "Retain"],
    )  # fmt: skip
    _option(
        parser, "--metrics-port", "METRICS_PORT", int, d.metrics_port, "Prometheus /metrics port, 0 disables"
    )
    _option(parser, "--health-port", "HEALTH_PORT", int, d.health_port, "liveness /healthz port, 0 disables")
    _option(parser, "--log-format", "LOG_FORMAT", str, d.log_format, "log format", choices=["plain", "json"])
    _option(
        parser, "--backoff-base", "BACKOFF_BASE", float, d.backoff_base,
        "first retry delay after a transient PAI error, doubled per failure",
    )  # fmt: skip
    _option(parser, "--backoff-cap", "BACKOFF_CAP", float, d.backoff_cap, "longest retry delay")
    _option(
        parser, "--model-missing-retry", "MODEL_MISSING_RETRY", float, d.model_missing_retry,
        "retry delay while spec.modelId does not exist",
    )  # fmt: skip
    # Leader election: keep these together (ported as one group).
    parser.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=_env("LEADER_ELECT", "true") == "true",
        help="run as one of several replicas: act only while holding the Lease "
        "[env PAI_OPERATOR_LEADER_ELECT=true|false; default on]",
    )
    _option(
        parser, "--leader-elect-namespace", "LEADER_ELECT_NAMESPACE", str, None,
        "namespace of the Lease (else the pod's own namespace; `default` outside a cluster)",
    )  # fmt: skip
    _option(
        parser, "--leader-elect-lease-name", "LEADER_ELECT_LEASE_NAME", str, d.leader_elect_lease_name,
        "Lease name; one per shard (releases with disjoint namespaces)",
    )  # fmt: skip
    _option(
        parser, "--leader-elect-lease-duration", "LEADER_ELECT_LEASE_DURATION", int,
        d.leader_elect_lease_duration, "whole seconds a standby waits after the leader's last renewal",
    )  # fmt: skip
    _option(
        parser, "--leader-elect-renew-deadline", "LEADER_ELECT_RENEW_DEADLINE", float,
        d.leader_elect_renew_deadline, "seconds the leader keeps trying to renew before it gives up",
    )  # fmt: skip
    _option(
        parser, "--leader-elect-retry-period", "LEADER_ELECT_RETRY_PERIOD", float,
        d.leader_elect_retry_period, "seconds between attempts to acquire or renew",
    )  # fmt: skip
    parser.add_argument(
        "--verbose", "-v", action="store_true", default=_env("VERBOSE", "false") == "true",
        help="debug logging [env PAI_OPERATOR_VERBOSE=true]",
    )  # fmt: skip


def from_arguments(args: argparse.Namespace) -> OperatorSettings:
    namespaces: tuple[str, ...] = () if args.all_namespaces else tuple(args.namespaces or ())
    if args.resync_interval <= 0:
        raise SystemExit("--resync-interval must be positive")
    if min(args.concurrency, args.read_rate, args.write_rate, args.backoff_base, args.backoff_cap) <= 0:
        raise SystemExit("--concurrency, rates and backoff settings must be positive")
    # The election library enforces these with sys.exit(); say which flag is wrong instead.
    if args.leader_elect_lease_duration <= args.leader_elect_renew_deadline:
        raise SystemExit("--leader-elect-lease-duration must be longer than --leader-elect-renew-deadline")
    if args.leader_elect_renew_deadline <= 1.2 * args.leader_elect_retry_period:
        raise SystemExit(
            "--leader-elect-renew-deadline must be longer than 1.2 x --leader-elect-retry-period"
        )
    if args.leader_elect_retry_period < 1:
        raise SystemExit("--leader-elect-retry-period must be at least 1 second")
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
        leader_elect=args.leader_elect,
        leader_elect_namespace=args.leader_elect_namespace or default_lease_namespace(),
        leader_elect_lease_name=args.leader_elect_lease_name,
        leader_elect_lease_duration=args.leader_elect_lease_duration,
        leader_elect_renew_deadline=args.leader_elect_renew_deadline,
        leader_elect_retry_period=args.leader_elect_retry_period,
    )
