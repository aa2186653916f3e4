"""The TrueFoundry ModelVersion resource (`truefoundry.mlops.dev/v1alpha1`): spec and status
models, the single source of truth for its CRD (`pai_operator.crd`).

The spec mirrors TrueFoundry's model manifest in camelCase (`mlRepo`, `versionAlias`,
`environment.pythonVersion`, ...). Conditions, reasons and policies are the same as PAI's
(`pai_operator.pai.spec`): one engine serves both.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import ConfigDict, Field, JsonValue

from pai_operator.backend import Resource, column
from pai_operator.vocabulary import (
    PRESERVE_UNKNOWN_FIELDS,
    AdoptionPolicy,
    CamelModel,
    Condition,
    DeletionPolicy,
    ManagementPolicy,
    StatusBase,
    adoption_policy_field,
    conditions_field,
    deletion_policy_field,
    immutable,
    immutable_once_set,
    last_handled_reconcile_at_field,
    management_policy_field,
    status_keys,
)

GROUP: Final = "truefoundry.mlops.dev"
VERSION: Final = "v1alpha1"
KIND: Final = "ModelVersion"
PLURAL: Final = "modelversions"
SINGULAR: Final = "modelversion"
SHORT_NAMES: Final = ("tfmv",)
CATEGORIES: Final = ("mlops",)
FINALIZER: Final = f"{GROUP}/finalizer"
PAUSED_ANNOTATION: Final = f"{GROUP}/paused"
DELETION_POLICY_ANNOTATION: Final = f"{GROUP}/deletion-policy"
OWNER_METADATA_KEY: Final = f"{GROUP}/owner"
"""The key in a version's `metadata` that marks it as created or adopted by one object: an
object `{"uid": <metadata.uid>, "ref": "<namespace>/<name>"}`. TrueFoundry has no labels; a
create without `version` is not idempotent (each PUT makes the next version), so this mark is
how a create whose response was lost is found again by listing the model's versions."""

RESERVED_METADATA_PREFIX: Final = "."
"""Metadata keys TrueFoundry keeps for itself: `.truefoundry`, which the `truefoundry` library
writes on every logged version (application and job ids, artifact size) and which the service
hides from reads unless asked, and by the same rule every other key starting with a dot. The
operator never compares them (not drift) and always sends them back as read (never erased); a
spec may not set them."""


def is_reserved_metadata_key(key: str) -> bool:
    return key.startswith(RESERVED_METADATA_PREFIX)


ML_REPO_PATTERN: Final = r"^[a-zA-Z][a-zA-Z0-9\-]{1,98}[a-zA-Z0-9]$"
MODEL_NAME_PATTERN: Final = r"^[A-Za-z0-9_\-]+$"
VERSION_ALIAS_PATTERN: Final = r"^v[a-zA-Z0-9.-]*([a-zA-Z0-9]+)$"
PYTHON_VERSION_PATTERN: Final = r"^\d+(\.\d+){1,2}([\-\.a-z0-9]+)?$"
URI_PATTERN: Final = r"^(s3|gs|wasbs)://.*"

FrameworkType = Literal[
    "transformers",
    "tensorflow",
    "pytorch",
    "keras",
    "lightgbm",
    "fastai",
    "h2o",
    "onnx",
    "spacy",
    "statsmodels",
    "gluon",
    "paddle",
    "sklearn",
    "xgboost",
]
SourceType = Literal["truefoundry", "external"]


def _immutable(field: str, why: str) -> JsonValue:
    """Neither changed nor removed (nor added later, unless `version`: it may be set later to the
    number TrueFoundry assigned)."""
    return immutable_once_set(field, why) if field == "version" else immutable(field, why)


_NEW: Final = "create a new ModelVersion instead"
_TRUEFOUNDRY_SOURCE_NEEDS_VERSION: Final[JsonValue] = {
    # Only `truefoundry`'s log_model makes such a version: it stages one (the service hands out
    # the storage root), uploads the files and commits it. The operator uploads nothing, so a
    # create with this source would fail in TrueFoundry and stay stuck.
    "rule": "self.source.type != 'truefoundry' || has(self.version)",
    "message": (
        "source.type truefoundry cannot be created by the operator: TrueFoundry-managed files "
        "exist only after truefoundry's log_model staged and uploaded them. Use source.type "
        "external (files already in the ML repo's bucket) to create a version, or set "
        "spec.version to adopt (adoptionPolicy IfExists) or observe (managementPolicy Observe) "
        "a version logged with truefoundry"
    ),
    "fieldPath": ".source.type",
    "reason": "FieldValueForbidden",
}
_STEP_NEEDS_RUN: Final[JsonValue] = {
    # TrueFoundry stores a step only with a run: without runId it is dropped, and the spec
    # would disagree with the version forever.
    "rule": "!has(self.step) || has(self.runId)",
    "message": "spec.step needs spec.runId: TrueFoundry keeps a version's step only with its run",
    "fieldPath": ".step",
    "reason": "FieldValueForbidden",
}
_SPEC_RULES: Final[list[JsonValue]] = [
    _TRUEFOUNDRY_SOURCE_NEEDS_VERSION,
    _STEP_NEEDS_RUN,
    _immutable("mlRepo", f"a version cannot move to another ML repo; {_NEW}"),
    _immutable("name", f"a version cannot move to another model; {_NEW}"),
    _immutable("version", f"TrueFoundry cannot renumber a version; {_NEW}"),
    _immutable("source", f"a version's files are immutable in TrueFoundry; {_NEW}"),
    _immutable("step", f"TrueFoundry sets a version's step at creation only; {_NEW}"),
    _immutable("runId", f"TrueFoundry sets a version's run at creation only; {_NEW}"),
]

_FRAMEWORK_FIELDS: Final = {
    "libraryName": ("transformers",),
    "pipelineTag": ("transformers",),
    "baseModel": ("transformers",),
    "modelFilepath": ("sklearn", "xgboost"),
    "serializationFormat": ("sklearn", "xgboost"),
    "modelSchema": ("sklearn", "xgboost"),
}


def _framework_rule(name: str, types: tuple[str, ...]) -> JsonValue:
    allowed = ", ".join(f'"{t}"' for t in types)
    return {
        "rule": f"!has(self.{name}) || self.type in [{allowed}]",
        "message": f"framework.{name} applies only to type {' or '.join(types)}",
        "fieldPath": f".{name}",
    }


_FRAMEWORK_RULES: Final[list[JsonValue]] = [
    *(_framework_rule(name, types) for name, types in _FRAMEWORK_FIELDS.items()),
    {
        "rule": (
            "!has(self.serializationFormat) || self.serializationFormat != 'json' || self.type == 'xgboost'"
        ),
        "message": "framework.serializationFormat json applies only to type xgboost",
        "fieldPath": ".serializationFormat",
    },
]


class Source(CamelModel):
    """Where the version's files are. Immutable: TrueFoundry cannot change a version's files."""

    type: SourceType = Field(
        description=(
            "external: a path in the blob storage bucket linked to the ML repo (what the operator "
            "creates). truefoundry: storage managed by TrueFoundry, which only truefoundry's "
            "log_model fills; such a version can be adopted or observed (spec.version), not created."
        )
    )
    uri: str = Field(pattern=URI_PATTERN, description="s3://, gs:// or wasbs:// URI of the files.")


class Framework(CamelModel):
    """The model's framework and its framework-specific fields. Managed when set."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _FRAMEWORK_RULES})

    type: FrameworkType = Field(description="Framework of the model.")
    library_name: Literal["transformers", "sentence-transformers", "diffusers"] | None = Field(
        default=None, description="transformers only: the library that loads the model."
    )
    pipeline_tag: str | None = Field(
        default=None, description="transformers only: the pipeline task, e.g. text-generation."
    )
    base_model: str | None = Field(default=None, description="transformers only: the base model.")
    model_filepath: str | None = Field(
        default=None, description="sklearn and xgboost: path of the model file within the version."
    )
    serialization_format: Literal["cloudpickle", "joblib", "pickle", "json"] | None = Field(
        default=None, description="sklearn and xgboost: how the model file is serialised (json: xgboost)."
    )
    model_schema: dict[str, Any] | None = Field(
        default=None,
        description="sklearn and xgboost: inferMethodName, inputs and outputs, as TrueFoundry expects.",
        json_schema_extra=PRESERVE_UNKNOWN_FIELDS,
    )


class Environment(CamelModel):
    """The Python environment the model needs. Managed when set."""

    python_version: str | None = Field(
        default=None, pattern=PYTHON_VERSION_PATTERN, description="Python version, e.g. 3.11."
    )
    pip_packages: list[str] | None = Field(
        default=None, description="pip requirements, e.g. transformers==4.44.0."
    )


class TrueFoundryModelVersionSpec(CamelModel):
    """Desired state of one TrueFoundry model version. Unset optional fields are not managed."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _SPEC_RULES})

    ml_repo: str = Field(
        pattern=ML_REPO_PATTERN,
        description="Name of the ML repo the model belongs to (it must exist). Immutable.",
    )
    name: str = Field(
        min_length=1,
        max_length=256,
        pattern=MODEL_NAME_PATTERN,
        description=(
            "Name of the model within the ML repo; TrueFoundry creates the model with its first "
            "version. Immutable."
        ),
    )
    version: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Version number of an existing version to manage (adopt with adoptionPolicy IfExists, "
            "or Observe). When unset, the operator creates the next version and status.version "
            "records the number TrueFoundry assigned. Immutable once set."
        ),
    )
    source: Source = Field(description="Where the version's files are. Immutable.")
    description: str | None = Field(
        default=None, max_length=512, description="Free-text description. Managed when set."
    )
    version_alias: str | None = Field(
        default=None,
        max_length=128,
        pattern=VERSION_ALIAS_PATTERN,
        description=(
            "Alias of the version, e.g. v1.0.0 or v1-prod; starts with v and is unique within the "
            "model. Managed when set."
        ),
    )
    metadata: dict[str, Any] | None = Field(
        default=None,
        description=(
            "Arbitrary nested JSON kept with the version. When set, this is the whole metadata "
            f"except the operator's ownership key ({OWNER_METADATA_KEY}), which it adds, and "
            "TrueFoundry's reserved keys (starting with '.', e.g. .truefoundry), which it keeps as "
            "they are and which the spec may not set."
        ),
        json_schema_extra=PRESERVE_UNKNOWN_FIELDS,
    )
    framework: Framework | None = None
    environment: Environment | None = None
    step: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Training step of spec.runId this version comes from (default 0); needs runId, as "
            "TrueFoundry keeps a step only with its run. Immutable."
        ),
    )
    run_id: str | None = Field(
        default=None, min_length=1, description="ID of the ML repo run that produced it. Immutable."
    )
    deletion_policy: DeletionPolicy | None = deletion_policy_field(
        deletes="removes the TrueFoundry version",
        retains="keeps it and removes the ownership key from its metadata",
        namespace_annotation=DELETION_POLICY_ANNOTATION,
    )
    management_policy: ManagementPolicy = management_policy_field(
        observe="it never writes and never deletes. Observe requires version."
    )
    adoption_policy: AdoptionPolicy = adoption_policy_field(
        when="spec.version names a version that this object did not create", takes=""
    )


class TrueFoundryAtProvider(CamelModel):
    """Remote values as last observed in TrueFoundry (read-only mirror; never copied into spec)."""

    created_at: str | None = Field(default=None, description="When TrueFoundry created the version.")
    updated_at: str | None = Field(default=None, description="When TrueFoundry last modified it.")
    created_by: str | None = Field(
        default=None, description="Subject that created the version (slug, else id)."
    )
    model_id: str | None = Field(default=None, description="ID of the model in TrueFoundry.")
    ml_repo_id: str | None = Field(default=None, description="ID of the ML repo in TrueFoundry.")
    version_alias: str | None = Field(default=None, description="Alias of the version in TrueFoundry.")
    tags: list[str] | None = Field(default=None, description="Tags of the version.")
    metrics: list[dict[str, Any]] | None = Field(
        default=None, description="Metrics logged for the version.", json_schema_extra=PRESERVE_UNKNOWN_FIELDS
    )
    deployable: bool | None = Field(default=None, description="Whether TrueFoundry can deploy it.")


class TrueFoundryModelVersionStatus(StatusBase):
    """Observed state, written by the operator."""

    id: str | None = Field(default=None, description="ID of the version in TrueFoundry.")
    fqn: str | None = Field(
        default=None, description="Fully qualified name, model:<tenant>/<mlRepo>/<name>:<version>."
    )
    version: int | None = Field(
        default=None, description="Version number: spec.version, or the one TrueFoundry assigned."
    )
    at_provider: TrueFoundryAtProvider | None = Field(
        default=None, description="Remote values as last observed in TrueFoundry."
    )
    drift: list[str] | None = Field(
        default=None,
        description="spec fields whose remote value differs and was not repaired (Observe mode or paused).",
    )
    conditions: list[Condition] | None = conditions_field()
    last_handled_reconcile_at: str | None = last_handled_reconcile_at_field()


STATUS_KEYS: Final = status_keys(TrueFoundryModelVersionStatus)

RESOURCE: Final = Resource(
    registry="TrueFoundry",
    group=GROUP,
    version=VERSION,
    kind=KIND,
    plural=PLURAL,
    singular=SINGULAR,
    short_names=SHORT_NAMES,
    categories=CATEGORIES,
    spec_model=TrueFoundryModelVersionSpec,
    status_model=TrueFoundryModelVersionStatus,
    description=(
        "A model version in a TrueFoundry ML repo, created, updated, observed and deleted by the "
        "pai-operator (when started with --truefoundry-host)."
    ),
    spec_description=(
        "Desired state of a TrueFoundry model version. Optional fields left unset are not "
        "managed: the operator never changes them remotely."
    ),
    status_description="Observed state of the TrueFoundry model version, written by the operator.",
    columns=(
        column("ML Repo", ".spec.mlRepo", "TrueFoundry ML repo."),
        column("Model", ".spec.name", "Model name within the ML repo."),
        column(
            "Version",
            ".status.version",
            "Remote version number (assigned by TrueFoundry when not in spec).",
            "integer",
        ),
        column("Alias", ".status.atProvider.versionAlias", "Version alias observed in TrueFoundry."),
    ),
)
"""The TrueFoundry ModelVersion kind: its names, models and CRD prose, written down once."""
