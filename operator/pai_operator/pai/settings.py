"""PAI's section of the operator settings (joined with the others in `registry.OperatorSettings`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from pai_operator.core_settings import setting


class PaiSettings(BaseModel):
    """Where PAI is, how fast to call it, and the identities objects act as."""

    model_config = ConfigDict(frozen=True, extra="forbid")

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
    read_rate: float = setting(
        50.0, "PAI read calls per second (client-side limit shared by all objects).",
        flag="--read-rate", metavar="PER_SECOND", chart="rateLimits.read", gt=0,
    )  # fmt: skip
    write_rate: float = setting(
        20.0, "PAI write calls per second (client-side limit shared by all objects).",
        flag="--write-rate", metavar="PER_SECOND", chart="rateLimits.write", gt=0,
    )  # fmt: skip
    # Per-namespace identities: the admin maps a Namespace to a RAM role (annotation
    # pai.mlops.dev/role-arn); the operator's own identity assumes it with STS AssumeRole. The
    # operator's own identity under RRSA comes from the same STS (AssumeRoleWithOIDC).
    sts_endpoint: str | None = setting(
        None, "STS endpoint for AssumeRole of namespace roles and RRSA's AssumeRoleWithOIDC (host, or URL "
        "with scheme: tests, the demo, private endpoints).",
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
