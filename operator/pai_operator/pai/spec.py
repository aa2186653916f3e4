"""The ModelVersion resource: spec and status models, the single source of truth for the CRD.

`crd.py` turns these pydantic models into the CRD's OpenAPI schema, so every `description`
here is what `kubectl explain modelversion.spec.<field>` prints, and every CEL rule
(`x-kubernetes-validations`) attached here is enforced by the API server.

Python attribute names are snake_case; the Kubernetes names are the camelCase aliases.
Parse an object's spec with `ModelVersionSpec.model_validate(body["spec"])` and dump status
with `status.to_k8s()`.

The fixed names of the public contract (group, finalizer, annotations) live in the constants
section below; `RESOURCE` at the end gathers them with the models for the CRD generator, the
engine and the kopf wiring.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import ConfigDict, Field, JsonValue

from pai_operator.backend import Resource, column
from pai_operator.vocabulary import (
    PRESERVE_UNKNOWN_FIELDS,
    AdoptionPolicy,
    CamelModel,
    Condition,
    DeletionPolicy,
    JsonObject,
    ManagementPolicy,
    StatusBase,
    adoption_policy_field,
    conditions_field,
    deletion_policy_field,
    immutable_once_set,
    last_handled_reconcile_at_field,
    management_policy_field,
    status_keys,
)

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
_SPEC_RULES: Final[list[JsonValue]] = [
    immutable_once_set("modelId", "a ModelVersion cannot move to another model; create a new ModelVersion"),
    immutable_once_set("uri", "PAI cannot change a version's storage URI; create a new ModelVersion instead"),
    immutable_once_set("versionName", "PAI cannot rename a model version; create a new ModelVersion instead"),
    immutable_once_set(
        "regionId", "a model version cannot move between regions; create a new ModelVersion instead"
    ),
    immutable_once_set(
        "formatType", "PAI sets a version's format at creation only; create a new ModelVersion instead"
    ),
    immutable_once_set(
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


class ModelVersionSpec(CamelModel):
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
        json_schema_extra=PRESERVE_UNKNOWN_FIELDS,
    )
    training_spec: JsonObject | None = Field(
        default=None,
        description="Training configuration (arbitrary JSON), used for fine-tuning. Managed when set.",
        json_schema_extra=PRESERVE_UNKNOWN_FIELDS,
    )
    inference_spec: JsonObject | None = Field(
        default=None,
        description=(
            "How to serve the model (arbitrary JSON), e.g. the EAS processor and container. Managed when set."
        ),
        json_schema_extra=PRESERVE_UNKNOWN_FIELDS,
    )
    evaluation_spec: JsonObject | None = Field(
        default=None,
        description="Evaluation configuration (arbitrary JSON). Managed when set.",
        json_schema_extra=PRESERVE_UNKNOWN_FIELDS,
    )
    compression_spec: JsonObject | None = Field(
        default=None,
        description="Compression configuration (arbitrary JSON). Managed when set.",
        json_schema_extra=PRESERVE_UNKNOWN_FIELDS,
    )
    distillation_spec: JsonObject | None = Field(
        default=None,
        description="Distillation configuration (arbitrary JSON). Managed when set.",
        json_schema_extra=PRESERVE_UNKNOWN_FIELDS,
    )
    extra_info: JsonObject | None = Field(
        default=None,
        description="Extra information (arbitrary nested JSON, kept as is). Managed when set.",
        json_schema_extra=PRESERVE_UNKNOWN_FIELDS,
    )
    options: JsonObject | None = Field(
        default=None,
        description=(
            "Extended options as a JSON object; the operator sends it as the JSON string PAI "
            "expects and compares it as JSON. Managed when set."
        ),
        json_schema_extra=PRESERVE_UNKNOWN_FIELDS,
    )
    deletion_policy: DeletionPolicy | None = deletion_policy_field(
        deletes="removes the PAI version",
        retains="keeps it and removes the ownership label",
        namespace_annotation=DELETION_POLICY_ANNOTATION,
    )
    management_policy: ManagementPolicy = management_policy_field(
        observe="it never writes to PAI and never deletes. Observe requires versionName."
    )
    adoption_policy: AdoptionPolicy = adoption_policy_field(
        when="a remote version with this name already exists and was not created by this object",
        takes=", like terraform import",
    )


class AtProvider(CamelModel):
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


class ModelVersionStatus(StatusBase):
    """Observed state. Per-object retry/backoff bookkeeping stays in the operator's memory, not
    here: writing it would turn every retry into a status write."""

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
    conditions: list[Condition] | None = conditions_field()
    last_handled_reconcile_at: str | None = last_handled_reconcile_at_field()


STATUS_KEYS: Final = status_keys(ModelVersionStatus)

RESOURCE: Final = Resource(
    registry="PAI",
    group=GROUP,
    version=VERSION,
    kind=KIND,
    plural=PLURAL,
    singular=SINGULAR,
    short_names=SHORT_NAMES,
    categories=CATEGORIES,
    spec_model=ModelVersionSpec,
    status_model=ModelVersionStatus,
    description=(
        "A model version in Alibaba Cloud PAI (AIWorkSpace), created, updated, observed and "
        "deleted by the pai-operator."
    ),
    spec_description=(
        "Desired state of a PAI model version. Optional fields left unset are not managed: the "
        "operator never changes them remotely."
    ),
    status_description="Observed state of the PAI model version, written by the operator.",
    columns=(
        column("Model", ".spec.modelId", "PAI model ID."),
        column("Version", ".status.versionName", "Remote version name (assigned by PAI when not in spec)."),
        column("Approval", ".status.atProvider.approvalStatus", "Approval status observed in PAI."),
    ),
)
"""The PAI ModelVersion kind: its names, models and CRD prose, written down once."""
