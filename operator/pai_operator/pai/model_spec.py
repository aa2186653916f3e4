"""The Model resource: a PAI model (the parent of versions), its spec and status models.

Fields as Terraform's `alicloud_pai_workspace_model` has them (resource_alicloud_pai_workspace_model.go)
and the official SDK's CreateModelRequest / UpdateModelRequest. PAI assigns the model's ID
(`model-...`) at CreateModel; status.modelId records it, never spec. `spec.modelId` is for
adopting an existing model (`terraform import` parity), with adoptionPolicy IfExists.

Ownership is the versions' mechanism (`pai.spec`): the two labels OWNER_LABEL_KEY and
OWNER_REF_LABEL_KEY, sent in the CreateModel call itself, so a create whose response was lost is
found by ListModels(Label=<uid>) and never duplicated.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import ConfigDict, Field, JsonValue

from pai_operator.backend import Resource, column
from pai_operator.pai.labels import MAX_LABEL_BYTES
from pai_operator.pai.spec import (
    _LABEL_RULES,
    CATEGORIES,
    DELETION_POLICY_ANNOTATION,
    GROUP,
    MAX_REMOTE_LABELS,
    MAX_USER_LABELS,
    OWNER_LABEL_KEY,
    OWNER_REF_LABEL_KEY,
    VERSION,
)
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

KIND: Final = "Model"
PLURAL: Final = "models"
SINGULAR: Final = "model"
SHORT_NAMES: Final = ("pmm",)
DELETE_VERSIONS_ANNOTATION: Final = f"{GROUP}/delete-versions"
"""On a Model: "true" lets deleting it (policy Delete) delete the PAI model although versions
exist there. PAI's DeleteModel takes every version with it, so without it the operator waits until
the model has none (the versions' own objects delete theirs first)."""
MAX_MODEL_NAME_CHARS: Final = 127  # SDK CreateModelRequest: "1 to 127 characters"

Accessibility = Literal["PRIVATE", "PUBLIC"]

_SPEC_RULES: Final[list[JsonValue]] = [
    immutable_once_set("modelId", "a Model cannot move to another PAI model; create a new Model"),
    immutable_once_set(
        "workspaceId", "PAI sets a model's workspace at creation only; create a new Model instead"
    ),
    immutable_once_set("regionId", "a model cannot move between regions; create a new Model instead"),
]


class ModelSpec(CamelModel):
    """Desired state of one PAI model. Unset optional fields are not managed."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _SPEC_RULES})

    model_name: str = Field(
        min_length=1, max_length=MAX_MODEL_NAME_CHARS, description="Name of the model in PAI. Managed."
    )
    workspace_id: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "PAI workspace the model belongs to. Set at creation only (immutable once set); when "
            "unset PAI uses the default workspace and status.workspaceId records it."
        ),
    )
    model_id: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "ID of an existing PAI model to manage (import), e.g. model-dfs1xxxx5c. Needs "
            "adoptionPolicy IfExists unless this object created it. When unset, the operator "
            "creates the model and status.modelId records the ID PAI assigned. Immutable once set."
        ),
    )
    region_id: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "Alibaba Cloud region, e.g. cn-hangzhou. Defaults to the operator's region; "
            "status.regionId records the region used. Immutable once set."
        ),
    )
    accessibility: Accessibility | None = Field(
        default=None,
        description="PRIVATE (PAI's default): visible to you and workspace admins; PUBLIC: to the workspace.",
    )
    domain: str | None = Field(default=None, description="Domain, e.g. nlp, cv, aigc. Managed when set.")
    task: str | None = Field(default=None, description="Task, e.g. text-classification. Managed when set.")
    origin: str | None = Field(
        default=None, description="Source community or organisation, e.g. ModelScope. Managed when set."
    )
    model_type: str | None = Field(
        default=None, description="Model type, e.g. Checkpoint or LoRA. Managed when set."
    )
    model_doc: str | None = Field(default=None, description="Documentation URL. Managed when set.")
    model_description: str | None = Field(
        default=None, description="Free-text description. Managed when set."
    )
    order_number: int | None = Field(
        default=None, description="Ordinal number for custom sorting. Managed when set."
    )
    extra_info: JsonObject | None = Field(
        default=None,
        description="Other information (arbitrary JSON object). Managed when set.",
        json_schema_extra=PRESERVE_UNKNOWN_FIELDS,
    )
    labels: dict[str, str] | None = Field(
        default=None,
        max_length=MAX_USER_LABELS,
        description=(
            "Labels of the remote model. When set, this is the complete set: labels not listed "
            f"are removed. When unset, remote labels are left alone. At most {MAX_USER_LABELS}: "
            f"the operator reserves two ({OWNER_LABEL_KEY}, {OWNER_REF_LABEL_KEY})."
        ),
        # PAI's label limits at admission, as versions have them (`pai.spec`).
        json_schema_extra={
            "x-kubernetes-validations": _LABEL_RULES,
            "additionalProperties": {"type": "string", "maxLength": MAX_LABEL_BYTES},
        },
    )
    deletion_policy: DeletionPolicy | None = deletion_policy_field(
        deletes=(
            f"removes the PAI model once it has no versions left (annotate {DELETE_VERSIONS_ANNOTATION}: "
            '"true" to delete it with its versions)'
        ),
        retains="keeps it and removes the ownership labels",
        namespace_annotation=DELETION_POLICY_ANNOTATION,
    )
    management_policy: ManagementPolicy = management_policy_field(
        observe="it never writes to PAI and never deletes. Observe requires modelId."
    )
    adoption_policy: AdoptionPolicy = adoption_policy_field(
        when="spec.modelId names a model this object did not create",
        takes=", like terraform import",
    )


class ModelAtProvider(CamelModel):
    """Remote values as last observed in PAI (read-only mirror; never copied into spec)."""

    model_name: str | None = Field(default=None, description="Name in PAI.")
    workspace_id: str | None = Field(default=None, description="Workspace in PAI.")
    accessibility: str | None = Field(default=None, description="Accessibility in PAI.")
    provider: str | None = Field(default=None, description="Provider (public models only).")
    owner_id: str | None = Field(default=None, description="Alibaba Cloud account that owns the model.")
    user_id: str | None = Field(default=None, description="ID of the user that created the model.")
    gmt_create_time: str | None = Field(default=None, description="When PAI created the model (UTC).")
    gmt_modified_time: str | None = Field(default=None, description="When PAI last modified the model (UTC).")
    latest_version: str | None = Field(default=None, description="Name of the model's latest version.")
    gmt_latest_version_modified_time: str | None = Field(
        default=None, description="When the latest version was last modified (UTC)."
    )
    labels: dict[str, str] | None = Field(
        default=None, description="All remote labels, including the operator's ownership labels."
    )


class ModelStatus(StatusBase):
    """Observed state of the PAI model."""

    model_id: str | None = Field(
        default=None, description="ID of the PAI model: spec.modelId, or the one PAI assigned at creation."
    )
    region_id: str | None = Field(default=None, description="Region the model lives in.")
    at_provider: ModelAtProvider | None = Field(
        default=None, description="Remote values as last observed in PAI."
    )
    drift: list[str] | None = Field(
        default=None,
        description="spec fields whose remote value differs and was not repaired (Observe or paused).",
    )
    conditions: list[Condition] | None = conditions_field()
    last_handled_reconcile_at: str | None = last_handled_reconcile_at_field()


MODEL_STATUS_KEYS: Final = status_keys(ModelStatus)

MODEL_RESOURCE: Final = Resource(
    registry="PAI",
    group=GROUP,
    version=VERSION,
    kind=KIND,
    plural=PLURAL,
    singular=SINGULAR,
    short_names=SHORT_NAMES,
    categories=CATEGORIES,
    spec_model=ModelSpec,
    status_model=ModelStatus,
    description=(
        "A model in Alibaba Cloud PAI (AIWorkSpace), the parent of ModelVersions, created, "
        "updated, observed and deleted by the pai-operator."
    ),
    spec_description=(
        "Desired state of a PAI model. Optional fields left unset are not managed: the operator "
        "never changes them remotely."
    ),
    status_description="Observed state of the PAI model, written by the operator.",
    columns=(
        column("Name", ".spec.modelName", "Model name in PAI."),
        column("Model ID", ".status.modelId", "PAI model ID (assigned by PAI)."),
        column("Latest", ".status.atProvider.latestVersion", "Latest version in PAI."),
    ),
)
"""The PAI Model kind: its names, models and CRD prose, written down once."""

__all__ = [
    "DELETE_VERSIONS_ANNOTATION",
    "MAX_REMOTE_LABELS",
    "MODEL_RESOURCE",
    "MODEL_STATUS_KEYS",
    "ModelAtProvider",
    "ModelSpec",
    "ModelStatus",
]
