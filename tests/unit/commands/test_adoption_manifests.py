"""Manifests rendered from remote versions and models adopt them with nothing but the ownership
marks: checked with the operator's own planners (the same `repair` a pass runs), not by
comparing with an expected manifest only."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from pai_operator.commands.importing import Failed, Imported, Names, object_name, render_documents
from pai_operator.pai import adoption_manifests as pai
from pai_operator.pai.model_planning import MODEL_PLANNER, AddModelLabels
from pai_operator.pai.model_spec import ModelSpec
from pai_operator.pai.models import Label, Model, ModelVersion
from pai_operator.pai.planning import PLANNER as PAI_PLANNER
from pai_operator.pai.planning import AddLabels
from pai_operator.pai.spec import OWNER_LABEL_KEY, OWNER_REF_LABEL_KEY, ModelVersionSpec
from pai_operator.plans import Owner
from pai_operator.truefoundry import adoption_manifests as tfy
from pai_operator.truefoundry.models import ModelVersion as TfyVersion
from pai_operator.truefoundry.planning import PLANNER as TFY_PLANNER
from pai_operator.truefoundry.planning import Apply
from pai_operator.truefoundry.spec import OWNER_METADATA_KEY, TrueFoundryModelVersionSpec

OWNER = Owner("uid-1", "team-a/imported")


def full_version(**changes: Any) -> ModelVersion:
    wire: dict[str, Any] = {
        "VersionName": "1.2.0_rc",
        "Uri": "oss://bucket.oss-cn-hangzhou.aliyuncs.com/m/1/",
        "VersionDescription": "release candidate",
        "ApprovalStatus": "Approved",
        "FormatType": "SavedModel",
        "FrameworkType": "PyTorch",
        "SourceType": "TrainingService",
        "SourceId": "region=cn-hangzhou,workspaceId=1,kind=TrainingJob,id=t-1",
        "Labels": [{"Key": "team", "Value": "search"}, {"Key": "stage", "Value": "prod"}],
        "Metrics": {"Results": [{"Metrics": {"cer": 0.175, "steps": 10.0}}]},
        "InferenceSpec": {"processor": "pytorch_gpu_1.10"},
        "TrainingSpec": {},
        "ExtraInfo": {"nested": {"a": [1, 2]}},
        "Options": '{ "b": 2, "a": {"x": true} }',
        "GmtCreateTime": "2026-01-01T00:00:00Z",
    }
    wire.update(changes)
    return ModelVersion.model_validate(wire)


def test_pai_version_manifest_makes_the_first_pass_add_ownership_labels_only() -> None:
    remote = full_version()
    rendered = pai.version_manifest("model-1", remote, name="v1", namespace="team-a", region="cn-hangzhou")
    assert rendered.skipped == {}
    manifest = rendered.manifest
    assert manifest["metadata"] == {"name": "v1", "namespace": "team-a"}
    assert manifest["spec"]["adoptionPolicy"] == "IfExists"
    assert manifest["spec"]["options"] == {"a": {"x": True}, "b": 2}
    assert manifest["spec"]["labels"] == {"team": "search", "stage": "prod"}
    assert "trainingSpec" not in manifest["spec"]  # empty remotely: nothing to manage
    spec = ModelVersionSpec.model_validate(manifest["spec"])
    assert PAI_PLANNER.drift(spec, remote) == []
    calls = PAI_PLANNER.repair(spec, remote, OWNER)
    assert calls == [
        AddLabels(
            "model-1",
            "1.2.0_rc",
            (
                Label(key=OWNER_LABEL_KEY, value="uid-1"),
                Label(key=OWNER_REF_LABEL_KEY, value="team-a/imported"),
            ),
        )
    ]


def test_pai_version_manifest_of_an_already_owned_version_drops_the_old_marks_from_spec() -> None:
    remote = full_version(Labels=[{"Key": OWNER_LABEL_KEY, "Value": "gone"}, {"Key": "team", "Value": "x"}])
    spec = pai.version_manifest("model-1", remote, name="v").manifest["spec"]
    assert spec["labels"] == {"team": "x"}  # the reserved keys may not be in spec (CRD rule)


def test_pai_values_the_spec_cannot_state_are_left_unmanaged_and_said() -> None:
    remote = full_version(FormatType="Safetensors", Options="not json", ApprovalStatus=None)
    rendered = pai.version_manifest("model-1", remote, name="v")
    assert set(rendered.skipped) == {"formatType", "options"}
    spec = ModelVersionSpec.model_validate(rendered.manifest["spec"])
    assert spec.format_type is None
    assert spec.options is None
    assert spec.approval_status is None
    assert isinstance(PAI_PLANNER.repair(spec, remote, OWNER), list)
    assert PAI_PLANNER.drift(spec, remote) == []


def test_pai_version_without_uri_cannot_be_imported() -> None:
    with pytest.raises(ValueError, match="no URI"):
        pai.version_manifest("model-1", full_version(Uri=None), name="v")


def test_pai_model_manifest_adopts_by_id_with_ownership_labels_only() -> None:
    remote = Model.model_validate(
        {
            "ModelId": "model-abc",
            "ModelName": "classifier",
            "WorkspaceId": "1234",
            "Accessibility": "PRIVATE",
            "Domain": "nlp",
            "Task": "text-classification",
            "ModelDescription": "",
            "OrderNumber": 3,
            "ExtraInfo": {"k": 1.0},
            "Labels": [{"Key": "team", "Value": "search"}],
        }
    )
    manifest = pai.model_manifest(remote, name="classifier", region="cn-hangzhou").manifest
    assert manifest["kind"] == "Model"
    spec = ModelSpec.model_validate(manifest["spec"])
    assert (spec.model_id, spec.adoption_policy, spec.workspace_id) == ("model-abc", "IfExists", "1234")
    assert MODEL_PLANNER.drift(spec, remote) == []
    [call] = MODEL_PLANNER.repair(spec, remote, OWNER)
    assert isinstance(call, AddModelLabels)
    assert {label.key for label in call.labels} == {OWNER_LABEL_KEY, OWNER_REF_LABEL_KEY}


def tfy_version(**manifest: Any) -> TfyVersion:
    body: dict[str, Any] = {
        "type": "model-version",
        "name": "m1",
        "ml_repo": "repo-a",
        "version": 3,
        "metadata": {"owner": "ann", ".truefoundry": {"size": 1}},
        "description": "third",
        "version_alias": "v3-prod",
        "source": {"type": "external", "uri": "s3://bucket/m1/3"},
        "framework": {
            "type": "transformers",
            "library_name": "transformers",
            "pipeline_tag": "text-generation",
        },
        "environment": {"python_version": "3.11", "pip_packages": ["torch==2.4.0"]},
        "step": 7,
        "run_id": "run-1",
    }
    body.update(manifest)
    return TfyVersion.model_validate(
        {
            "id": "00000000-0000-4000-8000-000000000003",
            "fqn": "model:acme/repo-a/m1:3",
            "created_by_subject": {"subjectId": "u-1", "subjectType": "user"},
            "manifest": body,
            "ml_repo_id": "17",
            "model_id": "11111111-2222-4333-8444-555555555555",
        }
    )


def test_truefoundry_manifest_makes_the_first_pass_write_the_ownership_key_only() -> None:
    remote = tfy_version()
    manifest = tfy.version_manifest(remote, name="m1-v3", namespace="ml").manifest
    assert manifest["apiVersion"] == "truefoundry.mlops.dev/v1alpha1"
    assert manifest["spec"]["metadata"] == {"owner": "ann"}  # reserved .truefoundry is kept remotely
    assert manifest["spec"]["framework"] == {
        "type": "transformers",
        "libraryName": "transformers",
        "pipelineTag": "text-generation",
    }
    spec = TrueFoundryModelVersionSpec.model_validate(manifest["spec"])
    assert TFY_PLANNER.drift(spec, remote) == []
    [call] = TFY_PLANNER.repair(spec, remote, OWNER)
    assert isinstance(call, Apply)
    assert not call.creates
    sent = call.manifest.to_wire()
    before = remote.manifest.to_wire()
    assert sent["metadata"] == {
        **before["metadata"],
        OWNER_METADATA_KEY: {"uid": "uid-1", "ref": "team-a/imported"},
    }
    assert {k: v for k, v in sent.items() if k != "metadata"} == {
        k: v for k, v in before.items() if k != "metadata"
    }


def test_truefoundry_local_source_cannot_be_imported() -> None:
    with pytest.raises(ValueError, match="source"):
        tfy.version_manifest(tfy_version(source={"type": "local", "file_or_folder": "/x"}), name="x")


@pytest.mark.parametrize(
    ("parts", "name"),
    [
        (("model-ABC", "1.2.0_rc"), "model-abc-1.2.0-rc"),
        (("my_version",), "my-version"),
        (("--x--",), "x"),
        (("__",), "imported"),
        (("a" * 300,), "a" * 253),
    ],
)
def test_object_names_are_dns_subdomains(parts: tuple[str, ...], name: str) -> None:
    assert object_name(*parts) == name


def test_names_are_unique_per_kind() -> None:
    names = Names()
    assert [names.take("ModelVersion", "x"), names.take("ModelVersion", "x"), names.take("Model", "x")] == [
        "x",
        "x-2",
        "x",
    ]


def test_documents_are_one_yaml_stream_with_their_source_and_skipped_fields_as_comments() -> None:
    text = render_documents(
        [
            Imported({"kind": "A", "spec": {"x": 1}}, "PAI m:1.0.0", {"options": "not JSON"}),
            Failed("PAI m:2.0.0", "gone"),
            Imported({"kind": "B"}, "PAI m:3.0.0"),
        ]
    )
    assert "# imported from PAI m:1.0.0\n# not managed: options: not JSON\n" in text
    assert list(yaml.safe_load_all(text)) == [{"kind": "A", "spec": {"x": 1}}, {"kind": "B"}]


def test_documents_quote_the_strings_kubectl_would_read_as_booleans() -> None:
    """go-yaml v2 (kubectl) resolves y/n as booleans where PyYAML does not: found by the import
    round trip, where an Options key `n` reached the API server as `false`."""
    text = render_documents([Imported({"spec": {"options": {"n": 1, "Y": "y", "no": "N"}}}, "x")])
    assert "'n': 1" in text
    assert "'Y': 'y'" in text
    assert "'no': 'N'" in text
    assert next(yaml.safe_load_all(text)) == {"spec": {"options": {"n": 1, "Y": "y", "no": "N"}}}
