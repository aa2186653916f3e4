"""The ModelVersion spec/status models: Kubernetes (camelCase) in, typed Python out."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from pai_operator.pai.spec import (
    FINALIZER,
    OWNER_LABEL_KEY,
    PAUSED_ANNOTATION,
    STATUS_KEYS,
    AtProvider,
    ModelVersionSpec,
    ModelVersionStatus,
)
from pai_operator.vocabulary import Condition

BASE = {"modelId": "model-1", "uri": "oss://b.oss-cn-hangzhou.aliyuncs.com/p/"}


def test_fixed_names() -> None:
    assert FINALIZER == "pai.mlops.dev/finalizer"
    assert PAUSED_ANNOTATION == "pai.mlops.dev/paused"
    assert OWNER_LABEL_KEY == "pai.mlops.dev/owner-uid"


def test_camel_case_round_trip() -> None:
    raw = {
        **BASE,
        "versionName": "1.0.0",
        "regionId": "cn-hangzhou",
        "formatType": "SavedModel",
        "frameworkType": "PyTorch",
        "versionDescription": "d",
        "approvalStatus": "Pending",
        "sourceType": "TrainingService",
        "sourceId": "s",
        "labels": {"k1": "vs1"},
        "metrics": {"Results": [{"Metrics": {"cer": 0.175}}]},
        "trainingSpec": {"a": 1},
        "inferenceSpec": {"b": {"c": [1, 2]}},
        "evaluationSpec": {},
        "compressionSpec": {"x": None},
        "distillationSpec": {"y": True},
        "extraInfo": {"deep": {"er": {"est": "v"}}},
        "options": {"o": 1},
        "deletionPolicy": "Retain",
        "managementPolicy": "Observe",
        "adoptionPolicy": "IfExists",
    }
    spec = ModelVersionSpec.model_validate(raw)
    assert spec.framework_type == "PyTorch"
    assert spec.extra_info == {"deep": {"er": {"est": "v"}}}
    assert spec.model_dump(by_alias=True, exclude_none=True) == raw


def test_defaults_and_unset_fields() -> None:
    spec = ModelVersionSpec.model_validate(BASE)
    assert spec.management_policy == "Manage"
    assert spec.adoption_policy == "Never"
    assert spec.deletion_policy is None  # resolved later from the namespace or operator default
    assert spec.version_name is None
    assert spec.labels is None
    assert spec.approval_status is None


def test_unknown_fields_are_ignored() -> None:
    assert ModelVersionSpec.model_validate({**BASE, "futureField": 1}).model_id == "model-1"


@pytest.mark.parametrize(
    ("name", "ok"),
    [("1.0.0", True), ("0.10.200", True), ("2.3.4_beta", True), ("1.0.0_rc_1", True), ("1.0", False),
     ("v1.0.0", False), ("1.0.0-beta", False), ("1.0.0_", False), ("", False), ("1.0.0 ", False)],
)  # fmt: skip
def test_version_name_pattern(name: str, ok: bool) -> None:
    if ok:
        assert ModelVersionSpec.model_validate({**BASE, "versionName": name}).version_name == name
    else:
        with pytest.raises(ValidationError):
            ModelVersionSpec.model_validate({**BASE, "versionName": name})


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        ("frameworkType", "Pytorch", True),
        ("frameworkType", "PyTorch", True),
        ("frameworkType", "pytorch", False),
        ("formatType", "Keras H5", True),
        ("formatType", "ONNX", True),
        ("formatType", "onnx", False),
        ("approvalStatus", "Approved", True),
        ("approvalStatus", "Unknown", False),
        ("sourceType", "PAIFlow", True),
        ("sourceType", "Other", False),
        ("deletionPolicy", "Orphan", False),
        ("managementPolicy", "ObserveOnly", False),
        ("adoptionPolicy", "Always", False),
        ("modelId", "", False),
        ("uri", "", False),
    ],
)
def test_enumerations(field: str, value: str, ok: bool) -> None:
    raw: dict[str, Any] = {**BASE, field: value}
    if ok:
        ModelVersionSpec.model_validate(raw)
    else:
        with pytest.raises(ValidationError):
            ModelVersionSpec.model_validate(raw)


def test_required_fields() -> None:
    with pytest.raises(ValidationError, match="modelId"):
        ModelVersionSpec.model_validate({"uri": "x"})
    with pytest.raises(ValidationError, match="uri"):
        ModelVersionSpec.model_validate({"modelId": "x"})


def test_status_dump_omits_unset_and_uses_camel_case() -> None:
    status = ModelVersionStatus(
        observed_generation=3,
        id="model-1:1.0.0",
        version_name="1.0.0",
        at_provider=AtProvider(approval_status="Pending", gmt_create_time="2024-01-01T00:00:00.000Z"),
        conditions=[Condition(type="Ready", status="True", reason="Available", last_transition_time="t")],
    )
    assert status.to_k8s() == {
        "observedGeneration": 3,
        "id": "model-1:1.0.0",
        "versionName": "1.0.0",
        "atProvider": {"approvalStatus": "Pending", "gmtCreateTime": "2024-01-01T00:00:00.000Z"},
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Available",
                "message": "",
                "lastTransitionTime": "t",
            }
        ],
    }
    assert ModelVersionStatus.model_validate(status.to_k8s()) == status


def test_status_keys_are_the_camel_case_names() -> None:
    assert STATUS_KEYS == (
        "observedGeneration", "id", "versionName", "regionId", "atProvider", "drift", "conditions",
        "lastHandledReconcileAt",
    )  # fmt: skip
