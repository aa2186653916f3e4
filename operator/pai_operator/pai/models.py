"""Typed wire models for the AIWorkSpace model-version API.

PascalCase on the wire (aliases), snake_case in Python. Response models ignore unknown fields so
that PAI adding a field never breaks the operator; request models dump only what was set, because
UpdateModelVersion is a partial update: an absent field means "leave it alone".
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_pascal

ApprovalStatus = Literal["Pending", "Approved", "Rejected"]
SourceType = Literal["Custom", "PAIFlow", "TrainingService"]

JsonObject = dict[str, Any]


class WireModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True, extra="ignore")

    def to_wire(self) -> dict[str, Any]:
        """The JSON body PAI expects: PascalCase keys, only the fields that were set."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class Label(WireModel):
    key: str
    value: str


class ModelVersion(WireModel):
    """A model version as GetModelVersion / ListModelVersions return it."""

    version_name: str
    uri: str | None = None
    version_description: str | None = None
    approval_status: str | None = None
    format_type: str | None = None
    framework_type: str | None = None
    source_type: str | None = None
    source_id: str | None = None
    labels: list[Label] = Field(default_factory=list)
    metrics: JsonObject | None = None
    training_spec: JsonObject | None = None
    inference_spec: JsonObject | None = None
    evaluation_spec: JsonObject | None = None
    compression_spec: JsonObject | None = None
    distillation_spec: JsonObject | None = None
    extra_info: JsonObject | None = None
    options: str | None = None
    gmt_create_time: str | None = None
    gmt_modified_time: str | None = None
    user_id: str | None = None
    owner_id: str | None = None

    def label_map(self) -> dict[str, str]:
        return {label.key: label.value for label in self.labels}


class UpdateModelVersionRequest(WireModel):
    """The fields UpdateModelVersion accepts; unset fields are not sent (partial update)."""

    version_description: str | None = None
    approval_status: str | None = None
    source_type: str | None = None
    source_id: str | None = None
    metrics: JsonObject | None = None
    training_spec: JsonObject | None = None
    inference_spec: JsonObject | None = None
    evaluation_spec: JsonObject | None = None
    compression_spec: JsonObject | None = None
    distillation_spec: JsonObject | None = None
    extra_info: JsonObject | None = None
    options: str | None = None


class CreateModelVersionRequest(UpdateModelVersionRequest):
    """CreateModelVersion: everything Update carries plus the create-only fields."""

    uri: str
    version_name: str | None = None
    format_type: str | None = None
    framework_type: str | None = None
    labels: list[Label] | None = None


class CreateModelVersionResponse(WireModel):
    request_id: str | None = None
    version_name: str


class ListModelVersionsRequest(WireModel):
    """Query of ListModelVersions. `label` matches a substring of a label key or value."""

    page_size: int | None = None
    page_number: int | None = None
    label: str | None = None
    version_name: str | None = None
    approval_status: str | None = None
    format_type: str | None = None
    framework_type: str | None = None
    source_type: str | None = None
    source_id: str | None = None
    order: Literal["ASC", "DESC"] | None = None
    sort_by: str | None = None


class ListModelVersionsResponse(WireModel):
    request_id: str | None = None
    total_count: int = 0
    versions: list[ModelVersion] = Field(default_factory=list)


# --- models (the parent of versions) ----------------------------------------------------------


class Model(WireModel):
    """A model as GetModel / ListModels return it (official SDK `Model`, `GetModelResponseBody`)."""

    model_id: str
    model_name: str | None = None
    workspace_id: str | None = None
    accessibility: str | None = None
    domain: str | None = None
    task: str | None = None
    origin: str | None = None
    model_type: str | None = None
    model_doc: str | None = None
    model_description: str | None = None
    order_number: int | None = None
    extra_info: JsonObject | None = None
    provider: str | None = None
    labels: list[Label] = Field(default_factory=list)
    latest_version: ModelVersion | None = None
    gmt_create_time: str | None = None
    gmt_modified_time: str | None = None
    gmt_latest_version_modified_time: str | None = None
    user_id: str | None = None
    owner_id: str | None = None

    def label_map(self) -> dict[str, str]:
        return {label.key: label.value for label in self.labels}


class UpdateModelRequest(WireModel):
    """The fields UpdateModel accepts; unset fields are not sent (partial update)."""

    model_name: str | None = None
    model_description: str | None = None
    accessibility: str | None = None
    domain: str | None = None
    task: str | None = None
    origin: str | None = None
    model_doc: str | None = None
    model_type: str | None = None
    order_number: int | None = None
    extra_info: JsonObject | None = None


class CreateModelRequest(UpdateModelRequest):
    """CreateModel: everything Update carries plus the create-only workspace and labels."""

    model_name: str
    workspace_id: str | None = None
    labels: list[Label] | None = None


class CreateModelResponse(WireModel):
    request_id: str | None = None
    model_id: str


class ListModelsRequest(WireModel):
    """Query of ListModels. `label` matches a substring of a label key or value."""

    page_size: int | None = None
    page_number: int | None = None
    workspace_id: str | None = None
    label: str | None = None
    model_name: str | None = None
    domain: str | None = None
    task: str | None = None
    origin: str | None = None
    model_type: str | None = None
    query: str | None = None
    order: Literal["ASC", "DESC"] | None = None
    sort_by: str | None = None


class ListModelsResponse(WireModel):
    request_id: str | None = None
    total_count: int = 0
    models: list[Model] = Field(default_factory=list)
