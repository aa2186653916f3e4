"""The PAI versions and models another tool manages: read from a Terraform state file or a
`pulumi stack export`, for `pai-operator import`. Pure: parsing only, no I/O.

Only identities are taken from these files (which model, which version, and the tool's own
address for the object's name); the spec is filled from PAI itself, read at import time, so a
state that lags behind the service cannot make the first pass change a field.

Terraform (state format v4, hashicorp/terraform `internal/states/statefile/version4.go`:
`resources[]` with `mode`, `type`, `name`, optional `module`, and `instances[]` with optional
`index_key` and `attributes`), provider aliyun/terraform-provider-alicloud:

- `alicloud_pai_workspace_model_version` (`alicloud/resource_alicloud_pai_workspace_model_version.go`):
  attributes `model_id` (Required, ForceNew) and `version_name` (Optional, Computed); the
  resource ID is `<model_id>:<version_name>` (`d.SetId(fmt.Sprintf("%v:%v", ModelId, VersionNameVar))`).
- `alicloud_pai_workspace_model` (`alicloud/resource_alicloud_pai_workspace_model.go`): the ID is
  the ModelId (`d.SetId(fmt.Sprint(id))` from CreateModel's `ModelId`); `model_name` Required.

Pulumi (`pulumi stack export`: `{"version": 3, "deployment": {"resources": [...]}}`, each resource
`apitype.ResourceV3` in pulumi/pulumi `sdk/go/common/apitype/core.go`: `urn`, `custom`, `id`,
`type`, `inputs`, `outputs`), provider pulumi/pulumi-alicloud, which bridges the Terraform
resources with camelCase properties (its Python SDK module `pulumi_alicloud.pai.workspace_model_version`:
`modelId`, `versionName`; `pulumi import alicloud:pai/workspaceModelVersion:WorkspaceModelVersion
example <model_id>:<version_name>`, and `alicloud:pai/workspaceModel:WorkspaceModel example <id>`).
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

TF_VERSION_TYPE: Final = "alicloud_pai_workspace_model_version"
TF_MODEL_TYPE: Final = "alicloud_pai_workspace_model"
PULUMI_VERSION_TYPE: Final = "alicloud:pai/workspaceModelVersion:WorkspaceModelVersion"
PULUMI_MODEL_TYPE: Final = "alicloud:pai/workspaceModel:WorkspaceModel"


class ForeignObject(BaseModel):
    """A PAI version (`version_name` set) or model (`version_name` None) found in a state file."""

    model_config = ConfigDict(frozen=True)

    model_id: str
    version_name: str | None = None
    address: str
    """Where the tool keeps it: a Terraform resource address or a Pulumi URN (for messages)."""
    suggested_name: str
    """The tool's own name for it (the Terraform resource name with its index, the Pulumi name)."""

    @property
    def kind(self) -> Literal["ModelVersion", "Model"]:
        return "Model" if self.version_name is None else "ModelVersion"


class StateFormatError(ValueError):
    """The file is not what its reader expects (wrong format version, missing fields)."""


def _split_id(resource_id: str) -> tuple[str, str] | None:
    model, sep, version = resource_id.partition(":")
    return (model, version) if sep and model and version else None


# --- Terraform ------------------------------------------------------------------------------


class _TfInstance(BaseModel):
    model_config = ConfigDict(extra="ignore")

    index_key: int | str | None = None
    deposed: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class _TfResource(BaseModel):
    model_config = ConfigDict(extra="ignore")

    module: str | None = None
    mode: str
    type: str
    name: str
    instances: list[_TfInstance] = Field(default_factory=list)


class TerraformState(BaseModel):
    """A Terraform state file, format version 4 (the only one Terraform writes since 0.12)."""

    model_config = ConfigDict(extra="ignore")

    version: int
    resources: list[_TfResource] = Field(default_factory=list)


def _tf_address(resource: _TfResource, instance: _TfInstance) -> str:
    address = f"{resource.type}.{resource.name}"
    if resource.module:
        address = f"{resource.module}.{address}"
    if isinstance(instance.index_key, str):
        address += f'["{instance.index_key}"]'
    elif instance.index_key is not None:
        address += f"[{instance.index_key}]"
    return address


def _tf_name(resource: _TfResource, instance: _TfInstance) -> str:
    parts = [resource.name] if instance.index_key is None else [resource.name, str(instance.index_key)]
    return "-".join(parts)


def terraform_objects(document: Any) -> list[ForeignObject]:
    """Every managed PAI model version and model in a v4 state, in file order. Deposed objects
    (left over from a create_before_destroy replacement) are not Terraform's current object and
    are left out."""
    state = TerraformState.model_validate(document)
    if state.version != 4:
        raise StateFormatError(f"Terraform state format version {state.version}; only version 4 is read")
    found: list[ForeignObject] = []
    for resource in state.resources:
        if resource.mode != "managed" or resource.type not in (TF_VERSION_TYPE, TF_MODEL_TYPE):
            continue
        for instance in resource.instances:
            if instance.deposed:
                continue
            address = _tf_address(resource, instance)
            name = _tf_name(resource, instance)
            attributes = instance.attributes
            if resource.type == TF_MODEL_TYPE:
                model_id = attributes.get("id")
                if not isinstance(model_id, str) or not model_id:
                    raise StateFormatError(f"{address} has no id (the PAI model ID)")
                found.append(ForeignObject(model_id=model_id, address=address, suggested_name=name))
                continue
            model_id, version = attributes.get("model_id"), attributes.get("version_name")
            if not (isinstance(model_id, str) and model_id and isinstance(version, str) and version):
                ident = _split_id(str(attributes.get("id") or ""))
                if ident is None:
                    raise StateFormatError(f"{address} names no model_id and version_name")
                model_id, version = ident
            found.append(
                ForeignObject(model_id=model_id, version_name=version, address=address, suggested_name=name)
            )
    return found


# --- Pulumi ---------------------------------------------------------------------------------


class _PulumiResource(BaseModel):
    model_config = ConfigDict(extra="ignore")

    urn: str
    custom: bool = False
    delete: bool = False
    id: str | None = None
    type: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)


class _PulumiDeployment(BaseModel):
    model_config = ConfigDict(extra="ignore")

    resources: list[_PulumiResource] | None = None


class PulumiExport(BaseModel):
    """`pulumi stack export` output (an untyped deployment, `apitype.UntypedDeployment`)."""

    model_config = ConfigDict(extra="ignore")

    version: int
    deployment: _PulumiDeployment


_URN_NAME: Final = re.compile(r"::([^:]+)$")


def pulumi_objects(document: Any) -> list[ForeignObject]:
    """Every PAI model version and model in a stack export (deployment versions 3 and later
    keep the resource shape read here), in file order. Resources pending deletion (`delete`, the
    old half of a replacement) are left out."""
    export = PulumiExport.model_validate(document)
    if export.version < 3:
        raise StateFormatError(f"Pulumi deployment version {export.version}; version 3 or later is read")
    found: list[ForeignObject] = []
    for resource in export.deployment.resources or []:
        if not resource.custom or resource.delete:
            continue
        if resource.type not in (PULUMI_VERSION_TYPE, PULUMI_MODEL_TYPE):
            continue
        match = _URN_NAME.search(resource.urn)
        name = match[1] if match else resource.urn
        properties = {**resource.inputs, **resource.outputs}
        if resource.type == PULUMI_MODEL_TYPE:
            if not resource.id:
                raise StateFormatError(f"{resource.urn} has no id (the PAI model ID)")
            found.append(ForeignObject(model_id=resource.id, address=resource.urn, suggested_name=name))
            continue
        model_id, version = properties.get("modelId"), properties.get("versionName")
        if not (isinstance(model_id, str) and model_id and isinstance(version, str) and version):
            ident = _split_id(resource.id or "")
            if ident is None:
                raise StateFormatError(f"{resource.urn} names no modelId and versionName")
            model_id, version = ident
        found.append(
            ForeignObject(model_id=model_id, version_name=version, address=resource.urn, suggested_name=name)
        )
    return found
