"""Request bodies and query parameters, checked the way the services' FastAPI layer would: pydantic
models whose failures become `Issue`s (FastAPI's `{"loc", "msg", "type"}`) and then a 422.

The constraints are the published JSON-schema ones (name, ml_repo, version_alias, uri and
python_version patterns, lengths, the source and framework discriminators). Two deliberate
differences from FastAPI's defaults, both so that a client bug surfaces here rather than in
production: types are strict (no "1" for 1), and unknown fields are rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tfy_emulator import errors

NAME_PATTERN = r"^[A-Za-z0-9_\-]+$"
ML_REPO_PATTERN = r"^[a-zA-Z][a-zA-Z0-9\-]{1,98}[a-zA-Z0-9]$"
VERSION_ALIAS_PATTERN = r"^v[a-zA-Z0-9.-]*([a-zA-Z0-9]+)$"
BLOB_URI_PATTERN = r"^(s3|gs|wasbs)://.*"
PYTHON_VERSION_PATTERN = r"^\d+(\.\d+){1,2}([\-\.a-z0-9]+)?$"

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

# The fields PUT may change on an existing version; everything else is identity or immutable.
MUTABLE_FIELDS = ("description", "metadata", "framework", "environment", "version_alias")
IMMUTABLE_FIELDS = ("source", "step", "run_id")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TrueFoundrySource(_Strict):
    type: Literal["truefoundry"]
    uri: Annotated[str, Field(pattern=BLOB_URI_PATTERN)] | None = None


class ExternalSource(_Strict):
    type: Literal["external"]
    uri: Annotated[str, Field(pattern=BLOB_URI_PATTERN)]


Source = Annotated[TrueFoundrySource | ExternalSource, Field(discriminator="type")]


class TransformersFramework(_Strict):
    type: Literal["transformers"]
    library_name: Literal["transformers", "sentence-transformers", "diffusers"] | None = None
    pipeline_tag: str | None = None
    base_model: str | None = None


class ModelSchema(_Strict):
    infer_method_name: Literal["predict", "predict_proba"]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]


class XgBoostModelSchema(_Strict):
    infer_method_name: Literal["predict"] = "predict"
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]


class SklearnFramework(_Strict):
    type: Literal["sklearn"]
    model_filepath: str | None = None
    serialization_format: Literal["cloudpickle", "joblib", "pickle"] | None = None
    model_schema: ModelSchema | None = None


class XgBoostFramework(_Strict):
    type: Literal["xgboost"]
    model_filepath: str | None = None
    serialization_format: Literal["cloudpickle", "joblib", "pickle", "json"] | None = None
    model_schema: XgBoostModelSchema | None = None


class PlainFramework(_Strict):
    """The frameworks that carry nothing but their type."""

    type: Literal[
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
    ]


Framework = Annotated[
    TransformersFramework | SklearnFramework | XgBoostFramework | PlainFramework,
    Field(discriminator="type"),
]


class Environment(_Strict):
    python_version: Annotated[str, Field(pattern=PYTHON_VERSION_PATTERN)] | None = None
    pip_packages: list[str] | None = None


class ModelManifest(_Strict):
    type: Literal["model-version"]
    name: Annotated[str, Field(pattern=NAME_PATTERN, max_length=256)]
    ml_repo: Annotated[str, Field(pattern=ML_REPO_PATTERN)]
    version: Annotated[int, Field(ge=1)] | None = None
    metadata: dict[str, Any]
    description: Annotated[str, Field(max_length=512)] | None = None
    version_alias: Annotated[str, Field(pattern=VERSION_ALIAS_PATTERN, max_length=128)] | None = None
    source: Source
    framework: Framework | None = None
    environment: Environment | None = None
    step: Annotated[int, Field(ge=0)] = 0
    run_id: str | None = None

    def stored(self) -> dict[str, Any]:
        """What is kept and returned: every field that has a value (None means absent), `type`
        and `step` always; metadata exactly as sent (its nulls included)."""
        return self.model_dump(mode="json", exclude_none=True, exclude={"version"})


class ApplyModelVersionBody(_Strict):
    manifest: ModelManifest


class StageBody(_Strict):
    """POST artifact-versions/stage. The SDK's manifest is a union of model and artifact
    manifests; only model versions are emulated."""

    manifest: ModelManifest


class MarkStageFailureBody(_Strict):
    id: str


class SignedUrlsBody(_Strict):
    id: str
    paths: list[Annotated[str, Field(min_length=1, max_length=1024)]]
    operation: Literal["READ", "WRITE"]


class ApplyTagsBody(_Strict):
    model_version_id: str
    tags: list[Annotated[str, Field(min_length=1, max_length=128)]]
    force: bool = False


class Collaborator(_Strict):
    subject: str
    role_id: str


class MlRepoManifest(_Strict):
    type: Literal["ml-repo"]
    name: Annotated[str, Field(pattern=ML_REPO_PATTERN)]
    description: Annotated[str, Field(max_length=512)] | None = None
    storage_integration_fqn: Annotated[str, Field(min_length=1)]
    collaborators: list[Collaborator] | None = None
    owned_by: dict[str, Any] | None = Field(default=None, alias="ownedBy")


class ApplyMlRepoBody(_Strict):
    manifest: MlRepoManifest
    dry_run: bool = Field(default=False, alias="dryRun")


_B = TypeVar("_B", bound=BaseModel)


def parse_body(model: type[_B], body: Any) -> _B:
    """A request body (already parsed JSON) as `model`, or a 422 naming every failing field."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        issues = [
            errors.Issue(("body", *exc_issue["loc"]), exc_issue["msg"], exc_issue["type"])
            for exc_issue in exc.errors(include_url=False)
        ]
        raise errors.invalid(issues) from None


def _query_int(query: Mapping[str, str], name: str, minimum: int) -> int | None:
    """The integer parameter `name` (>= minimum), None when absent."""
    raw = query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise errors.invalid_field(
            ("query", name),
            "Input should be a valid integer, unable to parse string as an integer",
            "int_parsing",
        ) from None
    if value < minimum:
        raise errors.invalid_field(
            ("query", name), f"Input should be greater than or equal to {minimum}", "greater_than_equal"
        )
    return value


def page(query: Mapping[str, str]) -> tuple[int, int]:
    """`offset` (>= 0, default 0) and `limit` (1..MAX_LIMIT, default 100) of a list call."""
    offset = _query_int(query, "offset", 0)
    limit = _query_int(query, "limit", 1)
    if limit is not None and limit > MAX_LIMIT:
        raise errors.invalid_field(
            ("query", "limit"), f"Input should be less than or equal to {MAX_LIMIT}", "less_than_equal"
        )
    return offset or 0, DEFAULT_LIMIT if limit is None else limit


def query_positive_int(query: Mapping[str, str], name: str) -> int | None:
    return _query_int(query, name, 1)


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def query_bool(query: Mapping[str, str], name: str, default: bool) -> bool:
    """FastAPI's spellings of a boolean query parameter (case-insensitive)."""
    raw = query.get(name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise errors.invalid_field(
        ("query", name), "Input should be a valid boolean, unable to interpret input", "bool_parsing"
    )


def query_floats(values: list[str], name: str) -> list[float]:
    parsed = []
    for index, raw in enumerate(values):
        try:
            parsed.append(float(raw))
        except ValueError:
            raise errors.invalid_field(
                ("query", name, index), "Input should be a valid number", "float_parsing"
            ) from None
    return parsed
