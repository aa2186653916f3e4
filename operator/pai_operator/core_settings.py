"""The registry-neutral settings (`CoreSettings`) and `setting()`, the one way to declare a field.

Each field is declared once with `setting(...)`: default, description, command-line flag,
environment variable (PAI_OPERATOR_<FLAG>, so the Helm chart and the kustomize manifests
configure the operator without templating argv) and the Helm value that sets it. A registry
declares its own fields the same way in a section of its own (`pai/settings.py`,
`truefoundry/settings.py`); `registry.OperatorSettings` joins them, and `settings` derives the
flags, the environment parsing, `--help` and the README table from that. Because these are
pydantic models, the constraints hold however a model is built (`OperatorSettings(
resync_interval=0)` raises just like `--resync-interval 0`).

Adding a setting is one `setting(...)` line in the right section (plus the chart value and the
README row that the tests then ask for); a rule between fields goes into `_consistent`.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pai_operator import __version__
from pai_operator.vocabulary import DeletionPolicy

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


class CoreSettings(BaseModel):
    """The registry-neutral settings: what the engine, the kopf side and leader election read.
    Each registry adds a section of its own (`pai/settings.py`, ...); `registry.OperatorSettings`
    is all of them together. Immutable; validated on construction."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespaces: tuple[str, ...] = setting(
        (), "Namespace to watch (repeatable; the environment variable is comma-separated). "
        "None given: all namespaces, cluster-wide.",
        flag="--namespace", short="-n", env="PAI_OPERATOR_NAMESPACES", metavar="NS", chart="watchNamespaces",
        shown_default="all namespaces",
        all_flag=("--all-namespaces", "-A", "watch every namespace (the default without --namespace)"),
    )  # fmt: skip
    resync_interval: float = setting(
        600.0, "Longest time in seconds between two drift checks of in-sync objects (one "
        "ListModelVersions walk per identity, region and model; jittered by +-10%); the observation "
        "budget checks more often when it can.",
        flag="--resync-interval", metavar="SECONDS", chart="resyncInterval", gt=0,
    )  # fmt: skip
    # Observation paced by a read budget (observation.ObservationPacer): a small fleet is checked
    # every few seconds, a large one as often as its share of the read quota allows.
    observation_budget: float = setting(
        0.1, "Share of each identity's read quota (--read-rate for PAI) that drift observation may "
        "spend (0.1: 10 %); passes for events, retries and creates never wait for it.",
        flag="--observation-budget", metavar="FRACTION", chart="observation.budget", gt=0, le=1,
    )  # fmt: skip
    min_observation_interval: float = setting(
        5.0, "Shortest time in seconds between two drift checks of one group (PAI: identity, region "
        "and model), however much budget is left.",
        flag="--min-observation-interval", metavar="SECONDS", chart="observation.minInterval", gt=0,
    )  # fmt: skip
    concurrency: int = setting(
        20, "Passes (reconcile or deletion) running at once, across all objects.",
        flag="--concurrency", metavar="N", chart="concurrency", gt=0,
    )  # fmt: skip
    default_deletion_policy: DeletionPolicy = setting(
        "Delete", "Deletion policy when neither the object nor its Namespace sets one.",
        flag="--default-deletion-policy", chart="defaultDeletionPolicy",
    )  # fmt: skip
    metrics_port: int = setting(
        8080, "Port of the Prometheus /metrics endpoint; 0 disables it.",
        flag="--metrics-port", metavar="PORT", chart="metrics.port", ge=0, le=65535,
    )  # fmt: skip
    metrics_namespace_label: bool = setting(
        False, "Add a namespace label to pai_operator_objects: one series per namespace, condition, "
        "status and reason in use (README, Metrics: cardinality). Off: one per condition, status and reason.",
        flag="--metrics-namespace-label", chart="metrics.namespaceLabel",
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

    # The deletion breaker (deletion_safety.py): a bulk deletion in Kubernetes (a namespace, a
    # label selector, an Argo CD cascade) must not wipe the registry. 50: a person's or a
    # pipeline's routine clean-up (a test namespace, a handful of versions) stays below it; 10 %:
    # a large fleet's routine churn scales with it; 5 minutes: accidents delete in seconds, while a
    # steady pace of 10 a minute (the most a routine clean-up needs) is never held.
    deletion_breaker_threshold: int = setting(
        50, "Remote deletions allowed within the window before the breaker holds further ones "
        "(the larger of this and the fraction applies); 0 disables the breaker.",
        flag="--deletion-breaker-threshold", metavar="N", chart="deletionBreaker.threshold", ge=0,
    )  # fmt: skip
    deletion_breaker_fraction: float = setting(
        0.1, "The same as a fraction of the tracked objects (0.1: 10 %).",
        flag="--deletion-breaker-fraction", metavar="FRACTION", chart="deletionBreaker.fraction", ge=0, le=1,
    )  # fmt: skip
    deletion_breaker_window: float = setting(
        300.0, "Seconds over which remote deletions are counted.",
        flag="--deletion-breaker-window", metavar="SECONDS", chart="deletionBreaker.window", gt=0,
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
        validate_default=True,
    )  # fmt: skip

    @field_validator("identity", mode="before")
    @classmethod
    def _default_identity(cls, value: Any) -> Any:
        # Host name + pid outside a cluster: unique even for two processes on one machine. A
        # "before" validator with validate_default: an "after" one never sees the default, and an
        # empty identity made every replica read the Lease's empty holder as itself (two leaders).
        if value is None or (isinstance(value, str) and not value.strip()):
            return default_identity()
        return value

    @field_validator("namespaces", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return split_list(value)

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
        return f"pai-model-operator/{__version__} ({self.identity or default_identity()})"

    @property
    def all_namespaces(self) -> bool:
        return not self.namespaces


def default_identity() -> str:
    """This process's name when nothing names it: host name + pid (never empty)."""
    return f"{socket.gethostname() or 'localhost'}-{os.getpid()}"


def split_list(value: Any) -> Any:
    """A list setting given as one string (an environment variable, the chart's joined list)."""
    if isinstance(value, str):
        return tuple(n.strip() for n in value.split(",") if n.strip())
    return value
