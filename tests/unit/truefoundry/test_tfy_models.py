"""Wire models: exact requests (what the SDK capture shows), lenient responses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from pai_operator.truefoundry import (
    FRAMEWORK_TYPES,
    ExternalSource,
    LocalSource,
    ModelManifest,
    ModelVersion,
    OtherFramework,
    OtherSource,
    SklearnFramework,
    SklearnModelSchema,
    TransformersFramework,
    TrueFoundrySource,
    XgboostFramework,
)
from tests.unit.truefoundry.tfy_fakes import REPO, version_json


def test_a_minimal_manifest_sends_the_discriminators_and_step() -> None:
    manifest = ModelManifest(name="m1", ml_repo=REPO, metadata={}, source=ExternalSource(uri="gs://b/m"))
    assert manifest.to_wire() == {
        "type": "model-version",
        "name": "m1",
        "ml_repo": REPO,
        "metadata": {},
        "source": {"type": "external", "uri": "gs://b/m"},
        "step": 0,
    }


@pytest.mark.parametrize(
    ("source", "wire"),
    [
        (TrueFoundrySource(), {"type": "truefoundry"}),
        (TrueFoundrySource(uri="s3://b/root"), {"type": "truefoundry", "uri": "s3://b/root"}),
        (
            ExternalSource(uri="wasbs://c@a.blob.core.windows.net/m"),
            {"type": "external", "uri": "wasbs://c@a.blob.core.windows.net/m"},
        ),
        (LocalSource(file_or_folder="./model"), {"type": "local", "file_or_folder": "./model"}),
    ],
)
def test_sources_round_trip(source: Any, wire: dict[str, Any]) -> None:
    manifest = ModelManifest(name="m", ml_repo=REPO, metadata={}, source=source)
    assert manifest.to_wire()["source"] == wire
    assert ModelManifest.model_validate(manifest.to_wire()).source == source


@pytest.mark.parametrize("kind", FRAMEWORK_TYPES)
def test_each_of_the_fourteen_frameworks_parses_to_its_own_class(kind: str) -> None:
    parsed = ModelManifest.model_validate(
        {
            "name": "m",
            "ml_repo": REPO,
            "metadata": {},
            "source": {"type": "truefoundry"},
            "framework": {"type": kind},
        }
    )
    assert parsed.framework is not None
    assert not isinstance(parsed.framework, OtherFramework)
    assert parsed.framework.type == kind
    assert parsed.to_wire()["framework"] == {"type": kind}


def test_fourteen_framework_types() -> None:
    assert len(set(FRAMEWORK_TYPES)) == 14


def test_framework_fields_and_unknown_keys_are_kept() -> None:
    wire = {
        "type": "sklearn",
        "serialization_format": "joblib",
        "model_filepath": "model.joblib",
        "model_schema": {"infer_method_name": "predict_proba", "inputs": [{"name": "x"}], "outputs": []},
        "added_later": {"k": 1},
    }
    parsed = ModelManifest.model_validate(
        {"name": "m", "ml_repo": REPO, "metadata": {}, "source": {"type": "truefoundry"}, "framework": wire}
    )
    assert isinstance(parsed.framework, SklearnFramework)
    assert isinstance(parsed.framework.model_schema, SklearnModelSchema)
    assert parsed.framework.model_schema.infer_method_name == "predict_proba"
    assert parsed.to_wire()["framework"] == wire


def test_framework_enumerations_are_checked() -> None:
    assert XgboostFramework(serialization_format="json").to_wire() == {
        "type": "xgboost",
        "serialization_format": "json",
    }
    with pytest.raises(ValidationError):
        SklearnFramework.model_validate({"serialization_format": "json"})  # xgboost only
    with pytest.raises(ValidationError):
        TransformersFramework.model_validate({"library_name": "torch"})
    assert TransformersFramework(library_name="sentence-transformers").library_name == "sentence-transformers"


def test_unknown_source_and_framework_types_do_not_fail_a_read() -> None:
    wire = version_json(1, source={"type": "huggingface", "repo": "org/x"}, framework={"type": "jax", "v": 2})
    version = ModelVersion.model_validate(wire)
    assert isinstance(version.manifest.source, OtherSource)
    assert isinstance(version.manifest.framework, OtherFramework)
    assert version.manifest.to_wire()["source"] == {"type": "huggingface", "repo": "org/x"}
    assert version.manifest.to_wire()["framework"] == {"type": "jax", "v": 2}


def test_a_response_parses_with_camel_case_subject_and_typed_fields() -> None:
    wire = version_json(
        3,
        version_alias="v1.0.0",
        description="first",
        framework={"type": "transformers", "pipeline_tag": "text-generation"},
        environment={"python_version": "3.11.4", "pip_packages": ["torch==2.3"]},
    )
    wire.update(
        tags=["prod"],
        metrics=[{"key": "acc", "value": 0.91, "timestamp": 1699334400000, "step": 2}],
        deployable=True,
        usage_code_snippet="from truefoundry import ...",
        ml_repo_id=17,  # numeric on some servers: kept as the string it stands for
        something_new={"x": 1},
    )
    version = ModelVersion.model_validate(wire)
    assert version.version == 3
    assert version.ml_repo_id == "17"
    assert version.created_by_subject.subject_type == "user"
    assert version.created_by_subject.subject_slug == "ann@acme.io"
    assert version.created_at == datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)
    assert version.tags == ["prod"]
    assert version.metrics[0].key == "acc"
    assert version.metrics[0].value == pytest.approx(0.91)
    assert version.deployable is True
    assert version.manifest.version_alias == "v1.0.0"
    assert isinstance(version.manifest.framework, TransformersFramework)
    assert version.manifest.environment is not None
    assert version.manifest.environment.pip_packages == ["torch==2.3"]
    assert version.model_extra == {"something_new": {"x": 1}}
    assert version.created_by_subject.to_wire() == {
        "subjectId": "u-1",
        "subjectType": "user",
        "subjectSlug": "ann@acme.io",
    }


def test_optional_response_fields_have_defaults() -> None:
    wire = version_json(1)
    for optional in ("created_at", "updated_at", "tags", "metrics", "deployable"):
        del wire[optional]
    version = ModelVersion.model_validate(wire)
    assert (version.created_at, version.tags, version.metrics, version.deployable) == (None, [], [], False)


@pytest.mark.parametrize(
    "path",
    [
        ("id",),
        ("fqn",),
        ("created_by_subject",),
        ("ml_repo_id",),
        ("model_id",),
        ("manifest", "metadata"),
        ("manifest", "source"),
    ],
)
def test_the_fields_the_sdk_requires_are_required(path: tuple[str, ...]) -> None:
    wire = version_json(1)
    holder = wire
    for key in path[:-1]:
        holder = holder[key]
    del holder[path[-1]]
    with pytest.raises(ValidationError):
        ModelVersion.model_validate(wire)


def test_the_version_number_comes_from_the_fqn_else_the_manifest() -> None:
    assert ModelVersion.model_validate(version_json(12)).version == 12
    wire = version_json(5)
    wire["fqn"] = "model:acme/repo-a/m1"
    assert ModelVersion.model_validate(wire).version == 5
    del wire["manifest"]["version"]
    assert ModelVersion.model_validate(wire).version is None
