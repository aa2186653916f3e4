"""Reading PAI versions and models out of a Terraform v4 state and a `pulumi stack export`.

The fixtures are written to the documented formats with the providers' attribute names; the
sources are cited in fixtures/README.md (hashicorp/terraform statefile/version4.go,
aliyun/terraform-provider-alicloud resource_alicloud_pai_workspace_model{,_version}.go,
pulumi/pulumi apitype/core.go, pulumi/pulumi-alicloud pai/workspace_model_version.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pai_operator.pai.foreign_state import (
    ForeignObject,
    StateFormatError,
    pulumi_objects,
    terraform_objects,
)

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def test_terraform_state_gives_every_current_model_and_version_with_its_address() -> None:
    found = terraform_objects(load("terraform.tfstate"))
    assert found == [
        ForeignObject(
            model_id="model-tfclassifier01",
            address="alicloud_pai_workspace_model.classifier",
            suggested_name="classifier",
        ),
        ForeignObject(
            model_id="model-tfclassifier01",
            version_name="1.0.0",
            address="alicloud_pai_workspace_model_version.release",
            suggested_name="release",
        ),
        ForeignObject(
            model_id="model-tfclassifier01",
            version_name="1.1.0_beta",
            address='module.canaries.alicloud_pai_workspace_model_version.canary["beta"]',
            suggested_name="canary-beta",
        ),
        # Tainted is still Terraform's object (it would replace it); the deposed 0.8.0 is not.
        ForeignObject(
            model_id="model-tfclassifier01",
            version_name="0.9.0",
            address='module.canaries.alicloud_pai_workspace_model_version.canary["old"]',
            suggested_name="canary-old",
        ),
    ]
    assert [f.kind for f in found] == ["Model", "ModelVersion", "ModelVersion", "ModelVersion"]


def test_terraform_version_without_attributes_falls_back_to_its_id() -> None:
    state = {
        "version": 4,
        "resources": [
            {
                "mode": "managed",
                "type": "alicloud_pai_workspace_model_version",
                "name": "v",
                "instances": [{"index_key": 0, "attributes": {"id": "model-a:2.0.0"}}],
            }
        ],
    }
    [found] = terraform_objects(state)
    assert (found.model_id, found.version_name, found.address) == (
        "model-a",
        "2.0.0",
        "alicloud_pai_workspace_model_version.v[0]",
    )


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"version": 3, "modules": []}, "only version 4"),
        (
            {
                "version": 4,
                "resources": [
                    {
                        "mode": "managed",
                        "type": "alicloud_pai_workspace_model_version",
                        "name": "v",
                        "instances": [{"attributes": {"id": "no-colon"}}],
                    }
                ],
            },
            "names no model_id",
        ),
    ],
)
def test_terraform_state_it_cannot_read_is_refused_with_the_reason(state: Any, message: str) -> None:
    with pytest.raises(StateFormatError, match=message):
        terraform_objects(state)


def test_pulumi_export_gives_models_and_versions_but_not_those_pending_deletion() -> None:
    found = pulumi_objects(load("pulumi-stack.json"))
    assert found == [
        ForeignObject(
            model_id="model-puranker0001",
            address="urn:pulumi:prod::models::alicloud:pai/workspaceModel:WorkspaceModel::ranker",
            suggested_name="ranker",
        ),
        ForeignObject(
            model_id="model-puranker0001",
            version_name="2.0.0",
            address="urn:pulumi:prod::models::alicloud:pai/workspaceModelVersion:WorkspaceModelVersion::ranker-v2",
            suggested_name="ranker-v2",
        ),
    ]


def test_pulumi_version_without_properties_falls_back_to_its_id() -> None:
    export = {
        "version": 3,
        "deployment": {
            "resources": [
                {
                    "urn": "urn:pulumi:s::p::alicloud:pai/workspaceModelVersion:WorkspaceModelVersion::v",
                    "custom": True,
                    "id": "model-b:3.0.0",
                    "type": "alicloud:pai/workspaceModelVersion:WorkspaceModelVersion",
                }
            ]
        },
    }
    [found] = pulumi_objects(export)
    assert (found.model_id, found.version_name, found.suggested_name) == ("model-b", "3.0.0", "v")


def test_an_old_pulumi_deployment_is_refused() -> None:
    with pytest.raises(StateFormatError, match="version 3 or later"):
        pulumi_objects({"version": 2, "deployment": {"resources": []}})
