"""Typed wire models for TrueFoundry's model-version API (v1), as /work/shared/truefoundry-api.md
describes it: snake_case on the wire, except the created-by `Subject` (camelCase).

Lenient on responses: unknown fields are kept (`extra="allow"`, as the official SDK's models),
numbers where ids are expected become strings, and a `source` or `framework` type this client
does not know parses as `OtherSource` / `OtherFramework` instead of failing a whole read.
Exact on requests: `to_wire()` sends only what was set (None dropped) plus the discriminators
`type` and the manifest's `step`, which the SDK always sends.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag
from pydantic.alias_generators import to_camel

JsonObject = dict[str, Any]


class WireModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, coerce_numbers_to_str=True)

    def to_wire(self) -> dict[str, Any]:
        """The JSON the service expects: the fields that are set, None dropped (values inside
        free-form objects such as `metadata` are sent as they are, nulls included)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def _type_tag(known: frozenset[str], fallback: str) -> Discriminator:
    """A discriminator that sends unknown `type` values to the fallback member of a union."""

    def tag(value: Any) -> str:
        kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
        return kind if kind in known else fallback

    return Discriminator(tag)


# --- source ---------------------------------------------------------------------------------


class TrueFoundrySource(WireModel):
    """Storage managed by TrueFoundry (`log_model` stages it; `uri` is the storage root)."""

    type: Literal["truefoundry"] = "truefoundry"
    uri: str | None = None


class ExternalSource(WireModel):
    """A path in the blob storage linked to the ML repo (`s3://`, `gs://`, `wasbs://`)."""

    type: Literal["external"] = "external"
    uri: str


class LocalSource(WireModel):
    """In the schema; whether the service accepts it is unconfirmed (a CLI-side source)."""

    type: Literal["local"] = "local"
    file_or_folder: str


class OtherSource(WireModel):
    """A source type this client does not know, kept as the service sent it."""

    type: str


Source = Annotated[
    Annotated[TrueFoundrySource, Tag("truefoundry")]
    | Annotated[ExternalSource, Tag("external")]
    | Annotated[LocalSource, Tag("local")]
    | Annotated[OtherSource, Tag("other")],
    _type_tag(frozenset({"truefoundry", "external", "local"}), "other"),
]

# --- framework ------------------------------------------------------------------------------

LibraryName = Literal["transformers", "sentence-transformers", "diffusers"]


class TransformersFramework(WireModel):
    type: Literal["transformers"] = "transformers"
    library_name: LibraryName | None = None
    pipeline_tag: str | None = None
    base_model: str | None = None


class SklearnModelSchema(WireModel):
    infer_method_name: Literal["predict", "predict_proba"]
    inputs: list[JsonObject]
    outputs: list[JsonObject]


class SklearnFramework(WireModel):
    type: Literal["sklearn"] = "sklearn"
    model_filepath: str | None = None
    serialization_format: Literal["cloudpickle", "joblib", "pickle"] | None = None
    model_schema: SklearnModelSchema | None = None


class XgboostModelSchema(WireModel):
    infer_method_name: Literal["predict"]
    inputs: list[JsonObject]
    outputs: list[JsonObject]


class XgboostFramework(WireModel):
    type: Literal["xgboost"] = "xgboost"
    model_filepath: str | None = None
    serialization_format: Literal["cloudpickle", "joblib", "pickle", "json"] | None = None
    model_schema: XgboostModelSchema | None = None


class TensorflowFramework(WireModel):
    type: Literal["tensorflow"] = "tensorflow"


class PytorchFramework(WireModel):
    type: Literal["pytorch"] = "pytorch"


class KerasFramework(WireModel):
    type: Literal["keras"] = "keras"


class LightgbmFramework(WireModel):
    type: Literal["lightgbm"] = "lightgbm"


class FastaiFramework(WireModel):
    type: Literal["fastai"] = "fastai"


class H2oFramework(WireModel):
    type: Literal["h2o"] = "h2o"


class OnnxFramework(WireModel):
    type: Literal["onnx"] = "onnx"


class SpacyFramework(WireModel):
    type: Literal["spacy"] = "spacy"


class StatsmodelsFramework(WireModel):
    type: Literal["statsmodels"] = "statsmodels"


class GluonFramework(WireModel):
    type: Literal["gluon"] = "gluon"


class PaddleFramework(WireModel):
    type: Literal["paddle"] = "paddle"


class OtherFramework(WireModel):
    """A framework type this client does not know, kept as the service sent it."""

    type: str


FRAMEWORK_TYPES: tuple[str, ...] = (
    "transformers",
    "tensorflow",
    "sklearn",
    "pytorch",
    "keras",
    "xgboost",
    "lightgbm",
    "fastai",
    "h2o",
    "onnx",
    "spacy",
    "statsmodels",
    "gluon",
    "paddle",
)
"""The 14 framework types of the contract (truefoundry 0.17.5's schema)."""

Framework = Annotated[
    Annotated[TransformersFramework, Tag("transformers")]
    | Annotated[TensorflowFramework, Tag("tensorflow")]
    | Annotated[SklearnFramework, Tag("sklearn")]
    | Annotated[PytorchFramework, Tag("pytorch")]
    | Annotated[KerasFramework, Tag("keras")]
    | Annotated[XgboostFramework, Tag("xgboost")]
    | Annotated[LightgbmFramework, Tag("lightgbm")]
    | Annotated[FastaiFramework, Tag("fastai")]
    | Annotated[H2oFramework, Tag("h2o")]
    | Annotated[OnnxFramework, Tag("onnx")]
    | Annotated[SpacyFramework, Tag("spacy")]
    | Annotated[StatsmodelsFramework, Tag("statsmodels")]
    | Annotated[GluonFramework, Tag("gluon")]
    | Annotated[PaddleFramework, Tag("paddle")]
    | Annotated[OtherFramework, Tag("other")],
    _type_tag(frozenset(FRAMEWORK_TYPES), "other"),
]

# --- manifest and version -------------------------------------------------------------------


class ModelVersionEnvironment(WireModel):
    python_version: str | None = None
    pip_packages: list[str] | None = None


class ModelManifest(WireModel):
    """The `manifest` of `PUT {prefix}/model-versions`, and of every version the service returns.

    Without `version` a PUT creates the next version (not idempotent); with it, it updates that
    version's mutable fields (description, metadata, framework, environment, version_alias).
    """

    type: Literal["model-version"] = "model-version"
    name: str
    """The model's name; the model is created by the first version applied under it."""
    ml_repo: str
    """The ML repo's name (not its id)."""
    version: int | None = None
    metadata: JsonObject
    """Required by the service, any JSON (`{}` when there is nothing to say)."""
    description: str | None = None
    version_alias: str | None = None
    source: Source
    framework: Framework | None = None
    environment: ModelVersionEnvironment | None = None
    step: int = 0
    run_id: str | None = None


class Subject(WireModel):
    """Who created a version (camelCase on the wire, unlike everything else here)."""

    model_config = ConfigDict(alias_generator=to_camel)

    subject_id: str
    subject_type: str
    """user, team, serviceaccount, virtualaccount, external-identity, agent-identity, role."""
    subject_slug: str | None = None
    subject_display_name: str | None = None
    subject_pat_name: str | None = None
    subject_controller_name: str | None = None
    subject_external_identity_slug: str | None = None


class Metric(WireModel):
    """Numbers are floats, as the v1 SDK types them (`truefoundry_sdk.types.metric.Metric`): a float
    timestamp or step must not fail the read of a whole version."""

    key: str
    value: float | None = None
    timestamp: float | None = None
    """Unix milliseconds."""
    step: float | None = None


_FQN_VERSION = re.compile(r":(\d+)$")


class Identified(WireModel):
    """Anything the service lists: it has an id."""

    id: str

    @property
    def gone(self) -> bool:
        """Deleted, though the service still returned it (see ModelVersion.status)."""
        return False


GONE_STATUSES = frozenset({"DELETED", "HARD_DELETED"})
"""The server family's two-phase delete (tfy-mlflow-client's ArtifactVersionStatus): a deleted
version is first DELETED, then HARD_DELETED, then removed; its get by id applies no status filter."""


class ModelVersion(Identified):
    """A version as GET, list and PUT return it (the `data` of their answers)."""

    fqn: str
    """`model:{tenant}/{ml_repo}/{model}:{version}`."""
    created_by_subject: Subject
    manifest: ModelManifest
    ml_repo_id: str
    model_id: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    tags: list[str] = Field(default_factory=list)
    metrics: list[Metric] = Field(default_factory=list)
    deployable: bool = False
    usage_code_snippet: str | None = None
    status: str | None = None
    """COMMITTED, DELETED or HARD_DELETED where the service says (the v1 SDK's type has no such
    field; the legacy DTO and the server's store do). Absent means committed."""

    @property
    def gone(self) -> bool:
        return (self.status or "").upper() in GONE_STATUSES

    @property
    def version(self) -> int | None:
        """The version number: from the FQN's suffix, as `truefoundry.ml` reads it, else from
        the manifest."""
        match = _FQN_VERSION.search(self.fqn)
        return int(match[1]) if match else self.manifest.version


class MlRepoManifest(WireModel):
    type: str = "ml-repo"
    name: str
    description: str | None = None
    storage_integration_fqn: str | None = None


class MlRepo(Identified):
    """An ML repo, the container of models; the service's ids for them are numeric strings."""

    manifest: MlRepoManifest
    tenant_name: str | None = None
    account_id: str | None = None
    created_by_subject: Subject | None = None
    created_at: datetime | None = None

    @property
    def name(self) -> str:
        return self.manifest.name


class Pagination(WireModel):
    total: int
    offset: int | None = None
    limit: int | None = None


ItemT = TypeVar("ItemT", bound=Identified)


class Page(WireModel, Generic[ItemT]):
    """One page of a list: `{"data": [...], "pagination": {"total", "offset", "limit"}}`."""

    data: list[ItemT] = Field(default_factory=list)
    pagination: Pagination | None = None


class ModelVersionEnvelope(WireModel):
    """`{"data": ModelVersion}`, the answer of GET by id and of PUT."""

    data: ModelVersion
