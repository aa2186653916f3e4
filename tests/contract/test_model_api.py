"""The model API (CreateModel, GetModel, UpdateModel, ListModels, model labels, DeleteModel):
the official SDK, the PAI Python SDK's ModelAPI and our own client against the emulator."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from alibabacloud_aiworkspace20210204 import models as sdk_models
from alibabacloud_aiworkspace20210204.client import Client

from pai_operator.pai import (
    CreateModelRequest,
    Credentials,
    Label,
    ListModelsRequest,
    ModelNotFoundError,
    PaiClient,
    PaiClientConfig,
    StaticCredentialsProvider,
    UpdateModelRequest,
)
from tests.contract.conftest import MODEL_ID
from tests.contract.test_pai_python_sdk import model_api, pai_error
from tests.contract.test_sdk_scenario import REQUEST_ID, sdk_error
from tests.support.emulator import DEFAULT_CREDENTIAL, AdminClient, AdminError, EmulatorProcess

SEED_EXAMPLE: dict[str, Any] = {
    # The Terraform documentation's alicloud_pai_workspace_model example, field for field.
    "model_name": "terraform_example",
    "workspace_id": "ws-1",
    "origin": "Civitai",
    "task": "text-to-image-synthesis",
    "accessibility": "PRIVATE",
    "model_type": "Checkpoint",
    "order_number": 1,
    "model_description": "ModelDescription.",
    "model_doc": "https://eas-x.oss-cn-hangzhou.aliyuncs.com/s.safetensors",
    "domain": "aigc",
    "extra_info": {"test": "15"},
}


def sdk_create(sdk: Client, **fields: Any) -> str:
    response = sdk.create_model(sdk_models.CreateModelRequest(**fields))
    assert response.status_code == 200
    assert REQUEST_ID.match(response.body.request_id)
    model_id: str = response.body.model_id
    return model_id


def test_official_sdk_create_get_update_labels_list_delete(sdk: Client, admin: AdminClient) -> None:
    labels = [sdk_models.Label(key="base_model", value="SD 1.5")]
    model_id = sdk_create(sdk, labels=labels, **SEED_EXAMPLE)
    assert model_id.startswith("model-")

    got = sdk.get_model(model_id, sdk_models.GetModelRequest()).body
    assert (got.model_id, got.model_name, got.workspace_id) == (model_id, "terraform_example", "ws-1")
    assert (got.origin, got.task, got.model_type, got.domain) == (
        "Civitai",
        "text-to-image-synthesis",
        "Checkpoint",
        "aigc",
    )
    assert (got.order_number, got.extra_info, got.accessibility) == (1, {"test": "15"}, "PRIVATE")
    assert [(label.key, label.value) for label in got.labels] == [("base_model", "SD 1.5")]
    assert got.gmt_create_time
    assert got.owner_id
    assert got.user_id

    # UpdateModel is partial: what is not sent stays.
    sdk.update_model(model_id, sdk_models.UpdateModelRequest(model_description="changed", order_number=2))
    got = sdk.get_model(model_id, sdk_models.GetModelRequest()).body
    assert (got.model_description, got.order_number, got.task) == ("changed", 2, "text-to-image-synthesis")

    sdk.create_model_labels(
        model_id, sdk_models.CreateModelLabelsRequest(labels=[sdk_models.Label(key="k", value="v")])
    )
    sdk.delete_model_labels(model_id, sdk_models.DeleteModelLabelsRequest(label_keys="base_model"))
    assert [
        (label.key, label.value)
        for label in sdk.get_model(model_id, sdk_models.GetModelRequest()).body.labels
    ] == [("k", "v")]

    other = sdk_create(sdk, model_name="other", workspace_id="ws-2")
    listed = sdk.list_models(sdk_models.ListModelsRequest(workspace_id="ws-1")).body
    assert (listed.total_count, [m.model_id for m in listed.models]) == (1, [model_id])
    by_label = sdk.list_models(sdk_models.ListModelsRequest(label="k")).body
    assert [m.model_id for m in by_label.models] == [model_id]
    # Every model of the account without a filter (the seeded ones too), paged.
    everything = sdk.list_models(sdk_models.ListModelsRequest(page_size=100)).body
    assert {model_id, other} <= {m.model_id for m in everything.models}
    first = sdk.list_models(sdk_models.ListModelsRequest(page_size=1, page_number=1)).body
    assert (len(first.models), first.total_count) == (1, everything.total_count)

    sdk.delete_model(model_id, sdk_models.DeleteModelRequest())
    missing = sdk_error(lambda: sdk.get_model(model_id, sdk_models.GetModelRequest()))
    assert (missing.status_code, missing.code) == (400, "201900002")
    assert model_id not in {m["ModelId"] for m in admin.models()}


def test_delete_model_takes_its_versions(sdk: Client, admin: AdminClient) -> None:
    model_id = sdk_create(sdk, model_name="with-versions")
    sdk.create_model_version(model_id, sdk_models.CreateModelVersionRequest(uri="oss://b.e/m/"))
    assert sdk.get_model(model_id, sdk_models.GetModelRequest()).body.latest_version.version_name == "0.1.0"
    sdk.delete_model(model_id, sdk_models.DeleteModelRequest())
    with pytest.raises(AdminError):
        admin.versions(model_id)
    missing = sdk_error(lambda: sdk.list_model_versions(model_id, sdk_models.ListModelVersionsRequest()))
    assert missing.code == "201900002"


def test_create_model_refuses_what_the_service_refuses(sdk: Client) -> None:
    assert sdk_error(lambda: sdk_create(sdk, workspace_id="ws-1")).code == "MissingModelName"
    wrong = sdk_error(lambda: sdk_create(sdk, model_name="m", accessibility="SECRET"))
    assert (wrong.status_code, wrong.code) == (400, "InvalidParameter")
    too_long = sdk_error(lambda: sdk_create(sdk, model_name="m" * 128))
    assert too_long.code == "InvalidParameter"


def test_pai_python_sdk_model_api(emulator: EmulatorProcess, admin: AdminClient) -> None:
    api = model_api(emulator)
    model_id = api.create(
        model_name="from-alipai", workspace_id="ws-contract", labels={"team": "search"}, task="nlp"
    )
    listed = api.list(workspace_id="ws-contract")
    assert (listed.total_count, [item["ModelId"] for item in listed.items]) == (1, [model_id])
    got = api.get(model_id)
    assert (got["ModelName"], got["Task"], got["Labels"]) == (
        "from-alipai",
        "nlp",
        [{"Key": "team", "Value": "search"}],
    )
    api.delete(model_id)
    assert pai_error(lambda: api.get(model_id)).code == "201900002"


def test_our_client(emulator: EmulatorProcess, admin: AdminClient) -> None:
    async def scenario() -> None:
        client = PaiClient(
            PaiClientConfig(endpoint=emulator.url, read_rate=None, write_rate=None),
            StaticCredentialsProvider(
                Credentials(DEFAULT_CREDENTIAL.access_key_id, DEFAULT_CREDENTIAL.access_key_secret)
            ),
        )
        try:
            created = await client.create_model(
                CreateModelRequest(
                    model_name="ours",
                    workspace_id="ws-9",
                    order_number=3,
                    extra_info={"a": {"b": 1}},
                    labels=[Label(key="pai.mlops.dev/owner-uid", value="uid-1")],
                )
            )
            model = await client.get_model(created.model_id)
            assert (model.model_name, model.order_number, model.extra_info) == ("ours", 3, {"a": {"b": 1}})
            await client.update_model(created.model_id, UpdateModelRequest(task="cv"))
            await client.create_model_labels(created.model_id, [Label(key="x", value="y")])
            await client.delete_model_labels(created.model_id, ["x"])
            model = await client.get_model(created.model_id)
            assert (model.task, model.label_map()) == ("cv", {"pai.mlops.dev/owner-uid": "uid-1"})
            for i in range(12):
                await client.create_model(CreateModelRequest(model_name=f"n{i}", workspace_id="ws-9"))
            walked = [
                m.model_id
                async for m in client.iter_models(ListModelsRequest(workspace_id="ws-9", page_size=5))
            ]
            assert len(walked) == len(set(walked)) == 13
            assert walked[0] == created.model_id
            owned = [m async for m in client.iter_models(ListModelsRequest(label="uid-1"))]
            assert [m.model_id for m in owned] == [created.model_id]
            await client.delete_model(created.model_id)
            with pytest.raises(ModelNotFoundError):
                await client.get_model(created.model_id)
        finally:
            await client.aclose()

    asyncio.run(scenario())
    assert MODEL_ID in {m["ModelId"] for m in admin.models()}
