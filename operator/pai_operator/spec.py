"""The ModelVersion resource: spec and status models, the single source of truth for the CRD.

`crd.py` turns these pydantic models into the CRD's OpenAPI schema, so every `description`
here is what `kubectl explain modelversion.spec.<field>` prints, and every CEL rule
(`x-kubernetes-validations`) attached here is enforced by the API server.

Python attribute names are snake_case; the Kubernetes names are the camelCase aliases.
Parse an object's spec with `ModelVersionSpec.model_validate(body["spec"])` and dump status
with `status.to_k8s()`.

The fixed names of the public contract (group, finalizer, annotations) live in the constants
section below so that the CRD generator, the planner and the kopf wiring all read them from one
place.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic.alias_generators import to_camel

# --- Fixed names of the public contract: change only with a migration. ----------------------

GROUP: Final = "pai.mlops.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "ModelVersion"
PLURAL: Final = "modelversions"
SINGULAR: Final = "modelversion"
SHORT_NAMES: Final = ("pmv",)
CATEGORIES: Final = ("pai", "mlops")
FINALIZER: Final = f"{GROUP}/finalizer"
ANNOTATION_PREFIX: Final = f"{GROUP}/"
PAUSED_ANNOTATION: Final = f"{GROUP}/paused"
# On a Namespace: the deletionPolicy for objects in it that leave spec.deletionPolicy unset.
DELETION_POLICY_ANNOTATION: Final = f"{GROUP}/deletion-policy"
ROLE_ARN_ANNOTATION: Final = f"{GROUP}/role-arn"
"""On a Namespace (admin-owned): the RAM role its objects act as. Ignored on a ModelVersion."""
# The remote label that marks a PAI model version as created or adopted by one object (value:
# the object's metadata.uid). It is how a lost create is found again and how two objects are
# kept from fighting over one version. PAI allows 20 labels; this one is reserved.
OWNER_LABEL_KEY: Final = f"{GROUP}/owner-uid"
# The second ownership label: the owner's `<namespace>/<name>`. A restore (Velero, kubectl
# replace --force, Argo CD Replace=true) recreates an object under the same name with a new UID;
# this label lets it take its version over once the old UID no longer exists (README, Behaviour).
OWNER_REF_LABEL_KEY: Final = f"{GROUP}/owner-ref"
RESERVED_LABEL_KEYS: Final = (OWNER_LABEL_KEY, OWNER_REF_LABEL_KEY)

MAX_REMOTE_LABELS: Final = 20
MAX_USER_LABELS: Final = MAX_REMOTE_LABELS - len(RESERVED_LABEL_KEYS)
# PAI's documented limit on Metrics, measured as compact JSON (see `compact_json`).
MAX_METRICS_CHARS: Final = 8192
VERSION_NAME_PATTERN: Final = r"^\d+\.\d+\.\d+(_\w+)?$"


class ConditionType(StrEnum):
    READY = "Ready"
    SYNCED = "Synced"
    # kstatus's standard pair (sigs.k8s.io/cli-utils/pkg/kstatus), "abnormal-true": what Flux's
    # health checks and `kpt live status` read before anything else.
    RECONCILING = "Reconciling"
    STALLED = "Stalled"


class Reason(StrEnum):
    """Condition reasons: Crossplane's names for the common ones, specific ones for terminal problems."""

    # Ready
    AVAILABLE = "Available"
    CREATING = "Creating"
    DELETING = "Deleting"
    UNAVAILABLE = "Unavailable"
    UPDATE_FAILED = "UpdateFailed"  # the remote version exists; updating it to this generation failed
    NOT_APPLIED = "NotApplied"  # the remote version exists; this generation is not (and cannot yet be) on it
    # Reconciling False
    APPLIED = "Applied"
    STALLED = "Stalled"
    # Synced
    RECONCILE_SUCCESS = "ReconcileSuccess"
    RECONCILE_ERROR = "ReconcileError"
    RECONCILE_PAUSED = "ReconcilePaused"
    INVALID_SPEC = "InvalidSpec"
    ALREADY_EXISTS = "AlreadyExists"
    CONFLICT = "Conflict"
    IMMUTABLE_FIELD_MISMATCH = "ImmutableFieldMismatch"
    MODEL_NOT_FOUND = "ModelNotFound"
    AUTH_FAILED = "AuthFailed"
    NO_CREDENTIALS = "NoCredentials"
    DELETION_BLOCKED = "DeletionBlocked"


# --- Enumerations of the AIWorkSpace API (CreateModelVersion's documented values). ----------

ApprovalStatus = Literal["Pending", "Approved", "Rejected"]
SourceType = Literal["Custom", "PAIFlow", "TrainingService"]
FormatType = Literal[
    "OfflineModel",
    "SavedModel",
    "Keras H5",
    "Frozen Pb",
    "Caffe Prototxt",
    "TorchScript",
    "XGBoost",
    "PMML",
    "AlinkModel",
    "ONNX",
]
# PAI's docs list "Pytorch" while the Terraform example sends "PyTorch"; which one the service
# stores is undocumented, so both are accepted and compared case-insensitively.
FrameworkType = Literal["Pytorch", "PyTorch", "XGBoost", "Keras", "Caffe", "Alink", "Xflow", "TensorFlow"]
DeletionPolicy = Literal["Delete", "Retain"]
ManagementPolicy = Literal["Manage", "Observe"]
AdoptionPolicy = Literal["Never", "IfExists"]

JsonObject = dict[str, Any]

_PRESERVE: Final[dict[str, Any]] = {"x-kubernetes-preserve-unknown-fields": True}


def _immutable_once_set(field: str, why: str) -> JsonValue:
    """A CEL transition rule on `spec`: a field, once set, can be neither changed nor removed.

    Setting a previously unset field is allowed by the API server (a user may pin the name PAI
    assigned); the operator then checks the new value against the remote version and reports
    a terminal condition if they differ, because PAI cannot change it.
    """
    return {
        "rule": f"!has(oldSelf.{field}) || (has(self.{field}) && self.{field} == oldSelf.{field})",
        "message": f"spec.{field} is immutable: {why}",
        "fieldPath": f".{field}",
        "reason": "FieldValueForbidden",
    }


_SPEC_RULES: Final[list[JsonValue]] = [
    _immutable_once_set("modelId", "a ModelVersion cannot move to another model; create a new ModelVersion"),
    _immutable_once_set(
        "uri", "PAI cannot change a version's storage URI; create a new ModelVersion instead"
    ),
    _immutable_once_set(
        "versionName", "PAI cannot rename a model version; create a new ModelVersion instead"
    ),
    _immutable_once_set(
        "regionId", "a model version cannot move between regions; create a new ModelVersion instead"
    ),
    _immutable_once_set(
        "formatType", "PAI sets a version's format at creation only; create a new ModelVersion instead"
    ),
    _immutable_once_set(
        "frameworkType", "PAI sets a version's framework at creation only; create a new ModelVersion instead"
    ),
]

_RESERVED_LABEL_RULES: Final[list[JsonValue]] = [
    {
        "rule": f"!('{key}' in self)",
        "message": f"label {key} is reserved for the operator's ownership mark",
    }
    for key in RESERVED_LABEL_KEYS
]
_LABEL_RULES: Final[list[JsonValue]] = [
    *_RESERVED_LABEL_RULES,
    {"rule": "self.all(k, size(k) > 0)", "message": "label keys must not be empty"},
]


class _CamelModel(BaseModel):
    # extra="ignore": a newer CRD may carry fields an older operator does not know yet.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class ModelVersionSpec(_CamelModel):
    """Desired state of one PAI model version. Unset optional fields are not managed."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _SPEC_RULES})

    model_id: str = Field(
        min_length=1,
        description="ID of the PAI model this version belongs to (e.g. model-abc123). Immutable.",
    )
    uri: str = Field(
        min_length=1,
        description=(
            "Where the model is stored: oss://<bucket>.<endpoint>/<path> or an HTTP(S) URL. "
            "Immutable: PAI cannot change it after creation."
        ),
    )
    version_name: str | None = Field(
        default=None,
        pattern=VERSION_NAME_PATTERN,
        description=(
            "Version name, unique within the model, e.g. 1.0.0 or 2.3.4_beta. When unset, PAI "
            "assigns one (0.1.0, 0.2.0, ...) and status.versionName records it. Immutable once "
            "set; it may be set later only to the name PAI assigned."
        ),
    )
    region_id: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "Alibaba Cloud region of the PAI workspace, e.g. cn-hangzhou. Defaults to the "
            "operator's region; status.regionId records the region actually used. Immutable once set."
        ),
    )
    format_type: FormatType | None = Field(
        default=None, description="Model format. Set at creation only; immutable once set."
    )
    framework_type: FrameworkType | None = Field(
        default=None,
        description=(
            "Model framework. Pytorch and PyTorch are both accepted and treated as equal. Set at "
            "creation only; immutable once set."
        ),
    )
    version_description: str | None = Field(
        default=None, description="Free-text description of the version. Managed when set."
    )
    approval_status: ApprovalStatus | None = Field(
        default=None,
        description=(
            "Approval state. Leave unset to let approvers change it in the PAI console; when set, "
            "the operator enforces it."
        ),
    )
    source_type: SourceType | None = Field(
        default=None, description="Where the model came from. PAI defaults to Custom. Managed when set."
    )
    source_id: str | None = Field(
        default=None,
        description=(
            "Source identifier: free text for Custom, otherwise "
            "region=<r>,workspaceId=<w>,kind=<PipelineRun|ServiceJob|TrainingJob>,id=<id>. "
            "Managed when set."
        ),
    )
    labels: dict[str, str] | None = Field(
        default=None,
        max_length=MAX_USER_LABELS,
        description=(
            "Labels of the remote version. When set, this is the complete set: labels not listed "
            "are removed. When unset, remote labels are left alone. At most "
            f"{MAX_USER_LABELS} entries: PAI allows {MAX_REMOTE_LABELS} labels and the operator "
            f"reserves two ({OWNER_LABEL_KEY}, {OWNER_REF_LABEL_KEY}) to mark versions it owns."
        ),
        json_schema_extra={"x-kubernetes-validations": _LABEL_RULES},
    )
    metrics: JsonObject | None = Field(
        default=None,
        description=(
            "Model metrics, arbitrary nested JSON, e.g. "
            '{"Results":[{"Dataset":{"DatasetId":"d-x"},"Metrics":{"cer":0.175}}]}. At most '
            "8192 characters as compact JSON. Managed when set."
        ),
        json_schema_extra=_PRESERVE,
    )
    training_spec: JsonObject | None = Field(
        default=None,
        description="Training configuration (arbitrary JSON), used for fine-tuning. Managed when set.",
        json_schema_extra=_PRESERVE,
    )
    inference_spec: JsonObject | None = Field(
        default=None,
        description=(
            "How to serve the model (arbitrary JSON), e.g. the EAS processor and container. Managed when set."
        ),
        json_schema_extra=_PRESERVE,
    )
    evaluation_spec: JsonObject | None = Field(
        default=None,
        description="Evaluation configuration (arbitrary JSON). Managed when set.",
        json_schema_extra=_PRESERVE,
    )
    compression_spec: JsonObject | None = Field(
        default=None,
        description="Compression configuration (arbitrary JSON). Managed when set.",
        json_schema_extra=_PRESERVE,
    )
    distillation_spec: JsonObject | None = Field(
        default=None,
        description="Distillation configuration (arbitrary JSON). Managed when set.",
        json_schema_extra=_PRESERVE,
    )
    extra_info: JsonObject | None = Field(
        default=None,
        description="Extra information (arbitrary nested JSON, kept as is). Managed when set.",
        json_schema_extra=_PRESERVE,
    )
    options: JsonObject | None = Field(
        default=None,
        description=(
            "Extended options as a JSON object; the operator sends it as the JSON string PAI "
            "expects and compares it as JSON. Managed when set."
        ),
        json_schema_extra=_PRESERVE,
    )
    deletion_policy: DeletionPolicy | None = Field(
        default=None,
        description=(
            "What deleting this object does remotely: Delete removes the PAI version, Retain "
            "keeps it and removes the ownership label. When unset: the Namespace annotation "
            f"{DELETION_POLICY_ANNOTATION}, else the operator's default (Delete)."
        ),
    )
    management_policy: ManagementPolicy = Field(
        default="Manage",
        description=(
            "Manage creates, updates and deletes the remote version. Observe only reads it and "
            "reports drift in status; it never writes to PAI and never deletes. Observe requires "
            "versionName."
        ),
    )
    adoption_policy: AdoptionPolicy = Field(
        default="Never",
        description=(
            "What to do when a remote version with this name already exists and was not created "
            "by this object: Never reports a conflict (reason AlreadyExists); IfExists takes it "
            "over, like terraform import. A version owned by another object is never taken."
        ),
    )


class AtProvider(_CamelModel):
    """Remote values as last observed in PAI (read-only mirror; never copied into spec)."""

    gmt_create_time: str | None = Field(default=None, description="When PAI created the version (UTC).")
    gmt_modified_time: str | None = Field(
        default=None, description="When PAI last modified the version (UTC)."
    )
    approval_status: str | None = Field(default=None, description="Approval status in PAI.")
    user_id: str | None = Field(default=None, description="ID of the user that created the version.")
    owner_id: str | None = Field(default=None, description="Alibaba Cloud account that owns the version.")
    source_type: str | None = Field(default=None, description="Source type in PAI.")
    source_id: str | None = Field(default=None, description="Source ID in PAI.")
    format_type: str | None = Field(default=None, description="Model format in PAI.")
    framework_type: str | None = Field(default=None, description="Model framework in PAI.")
    uri: str | None = Field(default=None, description="Storage URI in PAI.")
    labels: dict[str, str] | None = Field(
        default=None, description="All remote labels, including the operator's ownership label."
    )


class Condition(_CamelModel):
    """A standard Kubernetes condition (metav1.Condition shape)."""

    type: str = Field(description="Condition type: Ready, Synced, Reconciling or Stalled.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="Machine-readable reason in CamelCase, e.g. ReconcileSuccess.")
    message: str = Field(default="", description="Human-readable explanation.")
    last_transition_time: str | None = Field(
        default=None, description="When status last changed (RFC 3339); unchanged by reason/message updates."
    )
    observed_generation: int | None = Field(
        default=None, description="metadata.generation of the spec this condition describes."
    )


class ModelVersionStatus(_CamelModel):
    """Observed state. Per-object retry/backoff bookkeeping stays in the operator's memory, not
    here: writing it would turn every retry into a status write."""

    observed_generation: int | None = Field(default=None, description="metadata.generation last reconciled.")
    id: str | None = Field(default=None, description="Terraform/ROS-style identity <modelId>:<versionName>.")
    version_name: str | None = Field(
        default=None,
        description=(
            "Name of the remote version: spec.versionName, or the name PAI assigned when that is unset."
        ),
    )
    region_id: str | None = Field(
        default=None,
        description="Region the remote version lives in; kept so a changed operator default cannot move it.",
    )
    at_provider: AtProvider | None = Field(default=None, description="Remote values as last observed in PAI.")
    drift: list[str] | None = Field(
        default=None,
        description=(
            "spec fields whose remote value differs and was not repaired (Observe mode or paused), "
            "by their spec names."
        ),
    )
    conditions: list[Condition] | None = Field(
        default=None,
        description=(
            "Ready: the remote version exists and this generation's spec is applied to it (Observe: "
            "observed). Synced: did the last pass succeed? Reconciling: this generation is still being "
            "applied (kstatus InProgress). Stalled: applying it needs a human (kstatus Failed)."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    last_handled_reconcile_at: str | None = Field(
        default=None,
        description=(
            "The value of the <group>/reconcile-requested-at annotation the operator last handled "
            "with a full pass (the registry read again, drift repaired): Flux's requestedAt convention."
        ),
    )

    def to_k8s(self) -> dict[str, Any]:
        """The status as stored in Kubernetes: camelCase keys, unset fields omitted."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


# Status keys this operator owns; `conditions.status_patch` nulls any of them that disappear.
STATUS_KEYS: Final = tuple((info.alias or name) for name, info in ModelVersionStatus.model_fields.items())
