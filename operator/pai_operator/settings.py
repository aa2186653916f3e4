"""Operator settings: one declaration per field, from which everything else is generated.

Each field of `OperatorSettings` is declared once with `setting(...)`: default, description,
command-line flag, environment variable (PAI_OPERATOR_<FLAG>, so the Helm chart and the kustomize
manifests configure the operator without templating argv) and the Helm value that sets it. The
`pai-operator run` flags, the environment parsing, `--help`, the README table and the checks of the
chart (tests/unit/test_settings.py) all read `OPTIONS`, which is derived from the model; and
because it is a pydantic model, the constraints hold however it is built (`OperatorSettings(
resync_interval=0)` raises just like `--resync-interval 0`).

Adding a setting is one `setting(...)` line in the class (plus the chart value and the README row
that the tests then ask for); a rule between fields goes into `_consistent`.
"""

from __future__ import annotations

import argparse
import os
import socket
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pai_operator import __version__

DeletionPolicy = Literal["Delete", "Retain"]
LogFormat = Literal["plain", "json"]

ENV_PREFIX = "PAI_OPERATOR_"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def setting(
    default: Any,
    description: str,
    *,
    flag: str,
    short: str | None = None,
    env: str | None = None,
    metavar: str | None = None,
    chart: str | None = None,
    shown_default: str | None = None,
    all_flag: tuple[str, str, str] | None = None,
    **constraints: Any,
) -> Any:
    """Declare one setting. `env` defaults to PAI_OPERATOR_ + the flag in upper case; `chart` is the
    Helm value (dotted path in values.yaml) that sets it, None when the chart does not expose it;
    `shown_default` replaces the default in docs where the value alone would mislead; `all_flag`
    (flag, short flag, help) adds a flag that empties a repeatable setting. `constraints` are
    pydantic's (gt, ge, le, pattern, ...)."""
    extra: dict[str, Any] = {
        "flag": flag,
        "short": short,
        "env": env or ENV_PREFIX + flag.removeprefix("--").replace("-", "_").upper(),
        "metavar": metavar,
        "chart": chart,
        "shown_default": shown_default,
        "all_flag": list(all_flag) if all_flag else None,
    }
    return Field(default, description=description, json_schema_extra=extra, **constraints)


class OperatorSettings(BaseModel):
    """Everything `pai-operator run` can be told. Immutable; validated on construction."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespaces: tuple[str, ...] = setting(
        (), "Namespace to watch (repeatable; the environment variable is comma-separated). "
        "None given: all namespaces, cluster-wide.",
        flag="--namespace", short="-n", env="PAI_OPERATOR_NAMESPACES", metavar="NS", chart="watchNamespaces",
        shown_default="all namespaces",
        all_flag=("--all-namespaces", "-A", "watch every namespace (the default without --namespace)"),
    )  # fmt: skip
    region: str = setting(
        "cn-hangzhou", "Region of objects that do not set spec.regionId.",
        flag="--region", metavar="ID", chart="region", min_length=1,
    )  # fmt: skip
    endpoint: str | None = setting(
        None, "PAI endpoint URL override (tests, the demo, private endpoints); else derived from the region.",
        flag="--endpoint", metavar="URL", chart="endpoint",
        shown_default="https://aiworkspace.<region>.aliyuncs.com", pattern=r"^https?://\S+$",
    )  # fmt: skip
    use_vpc_endpoint: bool = setting(
        False, "Use the VPC endpoint aiworkspace-vpc.<region>.aliyuncs.com.",
        flag="--vpc-endpoint", chart="vpcEndpoint",
    )  # fmt: skip
    resync_interval: float = setting(
        600.0, "Seconds between drift checks of in-sync objects: one ListModelVersions per region and "
        "model (jittered by +-10%).",
        flag="--resync-interval", metavar="SECONDS", chart="resyncInterval", gt=0,
    )  # fmt: skip
    concurrency: int = setting(
        20, "Passes (reconcile or deletion) running at once, across all objects.",
        flag="--concurrency", metavar="N", chart="concurrency", gt=0,
    )  # fmt: skip
    read_rate: float = setting(
        50.0, "PAI read calls per second (client-side limit shared by all objects).",
        flag="--read-rate", metavar="PER_SECOND", chart="rateLimits.read", gt=0,
    )  # fmt: skip
    write_rate: float = setting(
        20.0, "PAI write calls per second (client-side limit shared by all objects).",
        flag="--write-rate", metavar="PER_SECOND", chart="rateLimits.write", gt=0,
    )  # fmt: skip
    default_deletion_policy: DeletionPolicy = setting(
        "Delete", "Deletion policy when neither the object nor its Namespace sets one.",
        flag="--default-deletion-policy", chart="defaultDeletionPolicy",
    )  # fmt: skip
    metrics_port: int = setting(
        8080, "Port of the Prometheus /metrics endpoint; 0 disables it.",
        flag="--metrics-port", metavar="PORT", chart="metrics.port", ge=0, le=65535,
    )  # fmt: skip
    health_port: int = setting(
        8081, "Port of the liveness /healthz endpoint; 0 disables it.",
        flag="--health-port", metavar="PORT", chart="health.port", ge=0, le=65535,
    )  # fmt: skip
    bind_address: str = setting(
        "0.0.0.0", "Address the /metrics and /healthz endpoints listen on. 127.0.0.1 keeps them "
        "off the node's networks when the pod uses host networking (the loopback-only e2e node).",
        flag="--bind-address", metavar="IP", chart="bindAddress", min_length=1,
    )  # fmt: skip
    log_format: LogFormat = setting(
        "plain", "Log format: plain (human) or json (one object per line, for log pipelines).",
        flag="--log-format", chart="logFormat",
    )  # fmt: skip
    verbose: bool = setting(False, "Debug logging.", flag="--verbose", short="-v", chart="verbose")
    backoff_base: float = setting(
        2.0, "First retry delay in seconds after a transient PAI error; doubled per failure.",
        flag="--backoff-base", metavar="SECONDS", chart="backoff.base", gt=0,
    )  # fmt: skip
    backoff_cap: float = setting(
        300.0, "Longest retry delay in seconds after transient PAI errors.",
        flag="--backoff-cap", metavar="SECONDS", chart="backoff.cap", gt=0,
    )  # fmt: skip
    model_missing_retry: float = setting(
        300.0, "Retry delay in seconds while spec.modelId does not exist: a user error that may be "
        "fixed in PAI later, so retried, but slowly.",
        flag="--model-missing-retry", metavar="SECONDS", chart="modelMissingRetry", gt=0,
    )  # fmt: skip

    # Per-namespace identities: the admin maps a Namespace to a RAM role (annotation
    # pai.mlops.dev/role-arn); the operator's own identity assumes it with STS AssumeRole.
    sts_endpoint: str | None = setting(
        None, "STS endpoint for AssumeRole of namespace roles (host, or URL with scheme: tests, the demo, "
        "private endpoints).",
        flag="--sts-endpoint", metavar="URL", chart="identity.stsEndpoint",
        shown_default="sts.aliyuncs.com (alibabacloud-credentials' default; ALIBABA_CLOUD_STS_REGION and "
        "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED adjust it)", pattern=r"^\S+$",
    )  # fmt: skip
    require_namespace_identity: bool = setting(
        False, "Refuse objects in namespaces without a pai.mlops.dev/role-arn annotation (Synced=False, "
        "reason NoCredentials) instead of acting for them with the operator's own identity.",
        flag="--require-namespace-identity", chart="identity.requireNamespaceIdentity",
    )  # fmt: skip
    sts_duration: int = setting(
        3600, "Lifetime in seconds asked of STS for a namespace role's credentials (refreshed before "
        "expiry).",
        flag="--sts-duration", metavar="SECONDS", chart="identity.sessionDuration", ge=900, le=43200,
    )  # fmt: skip

    # The second registry: TrueFoundry model versions (truefoundry.mlops.dev/v1alpha1). Off unless
    # a host is set; the API key comes from TFY_API_KEY (a Secret), never from a flag.
    truefoundry_host: str | None = setting(
        None, "TrueFoundry control-plane URL (e.g. https://myorg.truefoundry.cloud); when set, the "
        "operator also manages truefoundry.mlops.dev ModelVersions with the API key in TFY_API_KEY.",
        flag="--truefoundry-host", metavar="URL", chart="truefoundry.host",
        shown_default="unset: the TrueFoundry controller is off", pattern=r"^https?://\S+$",
    )  # fmt: skip
    truefoundry_api_prefix: Literal["/api/svc/v1", "/api/ml/v1"] = setting(
        "/api/svc/v1", "TrueFoundry API path prefix: /api/svc/v1 (the current SDK's) or /api/ml/v1 "
        "(the documented one); both serve the same routes.",
        flag="--truefoundry-api-prefix", metavar="PREFIX", chart="truefoundry.apiPrefix",
    )  # fmt: skip

    # Leader election (controller-runtime's defaults): only the holder of the Lease acts.
    leader_elect: bool = setting(
        True, "Run as one of several replicas: act only while holding the Lease (--no-leader-elect: "
        "a single replica that acts at once).",
        flag="--leader-elect", chart="leaderElection.enabled",
    )  # fmt: skip
    leader_elect_namespace: str | None = setting(
        None, "Namespace of the Lease.",
        flag="--leader-elect-namespace", metavar="NS", shown_default="the pod's own namespace "
        "(POD_NAMESPACE or the service-account mount); `default` outside a cluster",
    )  # fmt: skip
    leader_elect_lease_name: str = setting(
        "pai-operator", "Lease name; one per shard (releases with disjoint namespaces).",
        flag="--leader-elect-lease-name", metavar="NAME", chart="leaderElection.leaseName", min_length=1,
    )  # fmt: skip
    leader_elect_lease_duration: int = setting(
        15, "Whole seconds a standby waits after the leader's last renewal before it takes over "
        "(the Lease stores an integer).",
        flag="--leader-elect-lease-duration", metavar="SECONDS", chart="leaderElection.leaseDuration", gt=0,
    )  # fmt: skip
    leader_elect_renew_deadline: float = setting(
        10.0, "Seconds the leader keeps trying to renew before it gives up (and exits).",
        flag="--leader-elect-renew-deadline", metavar="SECONDS", chart="leaderElection.renewDeadline", gt=0,
    )  # fmt: skip
    leader_elect_retry_period: float = setting(
        2.0, "Seconds between two attempts to acquire or renew the Lease.",
        flag="--leader-elect-retry-period", metavar="SECONDS", chart="leaderElection.retryPeriod", ge=1,
    )  # fmt: skip
    identity: str = setting(
        "", "This replica's name in the Lease and in the User-Agent of every PAI request.",
        flag="--identity", env="POD_NAME", metavar="NAME",
        shown_default="the pod name (POD_NAME, from the downward API), else host name + pid",
    )  # fmt: skip

    @field_validator("identity", mode="after")
    @classmethod
    def _default_identity(cls, value: str) -> str:
        # Host name + pid outside a cluster: unique even for two processes on one machine.
        return value or f"{socket.gethostname()}-{os.getpid()}"

    @field_validator("namespaces", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _split(value)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.backoff_base > self.backoff_cap:
            raise ValueError(
                f"backoff_base ({self.backoff_base}) must not exceed backoff_cap ({self.backoff_cap})"
            )
        # The election library enforces these with sys.exit(); say which setting is wrong instead.
        if self.leader_elect_lease_duration <= self.leader_elect_renew_deadline:
            raise ValueError("leader_elect_lease_duration must be longer than leader_elect_renew_deadline")
        if self.leader_elect_renew_deadline <= 1.2 * self.leader_elect_retry_period:
            raise ValueError(
                "leader_elect_renew_deadline must be longer than 1.2 x leader_elect_retry_period"
            )
        return self

    @property
    def lease_namespace(self) -> str:
        """The operator's own namespace (POD_NAMESPACE, else the service-account mount); `default`
        outside a cluster."""
        if self.leader_elect_namespace:
            return self.leader_elect_namespace
        if os.environ.get("POD_NAMESPACE"):
            return os.environ["POD_NAMESPACE"]
        try:
            return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
        except OSError:
            return "default"

    @property
    def user_agent(self) -> str:
        """Lets PAI's audit trail (and the emulator's journal) tell which replica acted."""
        return f"pai-model-operator/{__version__} ({self.identity})"

    @property
    def all_namespaces(self) -> bool:
        return not self.namespaces


def _show(default: Any) -> str:
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def _split(value: Any) -> Any:
    """A list setting given as one string (an environment variable, the chart's joined list)."""
    if isinstance(value, str):
        return tuple(n.strip() for n in value.split(",") if n.strip())
    return value


@dataclass(frozen=True)
class Option:
    """One setting as the command line, the environment and the docs see it."""

    name: str
    flag: str
    short: str | None
    env: str
    metavar: str | None
    description: str
    default: Any
    shown_default: str
    choices: tuple[str, ...] | None
    is_flag: bool  # a boolean: the flag takes no value, the variable is true/false
    repeatable: bool
    chart: str | None
    all_flag: tuple[str, str, str] | None


def _options() -> tuple[Option, ...]:
    options = []
    for name, info in OperatorSettings.model_fields.items():
        extra = info.json_schema_extra
        if not isinstance(extra, dict) or "flag" not in extra:
            raise TypeError(f"OperatorSettings.{name} must be declared with setting()")
        annotation = info.annotation
        choices = typing.get_args(annotation) if typing.get_origin(annotation) is Literal else None
        all_flag = extra["all_flag"]
        options.append(
            Option(
                name=name,
                flag=str(extra["flag"]),
                short=extra["short"] if isinstance(extra["short"], str) else None,
                env=str(extra["env"]),
                metavar=extra["metavar"] if isinstance(extra["metavar"], str) else None,
                description=info.description or "",
                default=info.default,
                shown_default=str(extra["shown_default"] or _show(info.default)),
                choices=tuple(str(c) for c in choices) if choices else None,
                is_flag=annotation is bool,
                repeatable=typing.get_origin(annotation) is tuple,
                chart=extra["chart"] if isinstance(extra["chart"], str) else None,
                all_flag=(str(all_flag[0]), str(all_flag[1]), str(all_flag[2]))
                if isinstance(all_flag, list)
                else None,
            )
        )
    return tuple(options)


OPTIONS: tuple[Option, ...] = _options()
"""Every setting, in declaration order: the one list `--help`, the docs and the tests read."""


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `pai-operator run`, generated from `OPTIONS`. Values stay raw strings here:
    the model converts and validates them, for flags and environment variables alike."""
    for option in OPTIONS:
        names = [option.flag, *([option.short] if option.short else [])]
        # argparse %-formats help strings.
        help_text = f"{option.description} [env {option.env}; default {option.shown_default}]".replace(
            "%", "%%"
        )
        target: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup = parser
        if option.all_flag:
            target = parser.add_mutually_exclusive_group()
            flag, short, all_help = option.all_flag
            target.add_argument(flag, short, dest=f"{option.name}__all", action="store_true", help=all_help)
        if option.is_flag:
            # On by default: --flag / --no-flag; off by default: just --flag.
            action = argparse.BooleanOptionalAction if option.default is True else "store_true"
            target.add_argument(
                *names, dest=option.name, action=action, default=argparse.SUPPRESS, help=help_text
            )
        else:
            target.add_argument(
                *names,
                dest=option.name,
                action="append" if option.repeatable else "store",
                default=argparse.SUPPRESS,
                choices=option.choices,
                metavar=option.metavar,
                help=help_text,
            )


def from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """The raw values of the PAI_OPERATOR_* variables that are set (an empty value counts as unset)."""
    return {o.name: environ[o.env] for o in OPTIONS if environ.get(o.env, "") != ""}


def from_arguments(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> OperatorSettings:
    """Flags over environment variables over declared defaults. A repeatable flag adds to the
    variable's list; its `all_flag` empties it. Invalid values exit with the flag and variable named."""
    values = from_environment(os.environ if environ is None else environ)
    given = vars(args)
    for option in OPTIONS:
        if option.all_flag and given.get(f"{option.name}__all"):
            values[option.name] = ()
        elif option.name in given:
            value = given[option.name]
            if option.repeatable:
                value = (*_split(values.get(option.name, ())), *value)
            values[option.name] = value
    try:
        return OperatorSettings.model_validate(values)
    except ValidationError as exc:
        raise SystemExit(_explain(exc)) from None


def _explain(exc: ValidationError) -> str:
    by_name = {o.name: o for o in OPTIONS}
    lines = []
    for error in exc.errors():
        option = by_name.get(str(error["loc"][0])) if error["loc"] else None
        where = f"{option.flag} ({option.env})" if option else "settings"
        lines.append(f"{where}: {error['msg']}")
    return "pai-operator: invalid settings\n  " + "\n  ".join(lines)


def markdown_table(options: Sequence[Option] = OPTIONS) -> str:
    """The README's settings table, so that the docs are generated rather than kept in step by hand."""
    rows = ["| Flag | Environment variable | Helm value | Default | Meaning |", "|---|---|---|---|---|"]
    for o in options:
        # `{a,b}` as argparse writes choices: a `|` would split the Markdown table cell.
        argument = "" if o.is_flag else " " + (o.metavar or "{" + ",".join(o.choices or ()) + "}")
        flags = [f"`{o.flag}{argument}`", *([f"`{o.all_flag[0]}`"] if o.all_flag else [])]
        chart = f"`{o.chart}`" if o.chart else "-"
        rows.append(f"| {', '.join(flags)} | `{o.env}` | {chart} | {o.shown_default} | {o.description} |")
    return "\n".join(rows) + "\n"
