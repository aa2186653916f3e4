"""The PAI Python SDK (`alipai`, import name `pai`) as a third client of the emulator.

ML engineers register versions with it from training jobs, so the emulator must answer what it
expects. Its `pai.api.model.ModelAPI` is built here on the SDK's own vendored AIWorkSpace client,
configured as `pai.api.client_factory.ClientFactory.create_client` configures it
(`signature_algorithm="v2"`: the older ROA `acs ID:HMAC-SHA1` signature), pointed at the emulator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from alibabacloud_credentials.client import Client as CredentialClient
from alibabacloud_credentials.models import Config as CredentialConfig
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config
from pai.api.model import ModelAPI
from pai.libs.alibabacloud_aiworkspace20210204.client import Client as WorkspaceClient

from tests.contract.conftest import MODEL_ID
from tests.support.emulator import DEFAULT_CREDENTIAL, AdminClient, Credential, EmulatorProcess

PAGE_SIZE = 50  # what pai.model._model.RegisteredModel.list_versions asks for


def model_api(emulator: EmulatorProcess, credential: Credential = DEFAULT_CREDENTIAL) -> ModelAPI:
    credentials = CredentialClient(
        CredentialConfig(
            type="access_key",
            access_key_id=credential.access_key_id,
            access_key_secret=credential.access_key_secret,
        )
    )
    client = WorkspaceClient(
        Config(
            credential=credentials,
            endpoint=emulator.endpoint,
            protocol="http",
            region_id="cn-hangzhou",
            signature_algorithm="v2",  # as ClientFactory.create_client sets it
        )
    )
    return ModelAPI(workspace_id="ws-contract", acs_client=client)


@pytest.fixture
def api(emulator: EmulatorProcess) -> ModelAPI:
    return model_api(emulator)


def all_versions(api: ModelAPI, model_id: str = MODEL_ID) -> Iterator[dict[str, Any]]:
    """RegisteredModel.list_versions' walk: PageSize 50 from page 1 until an empty page."""
    page_number = 1
    while True:
        items = api.list_versions(model_id, page_number=page_number, page_size=PAGE_SIZE).items
        if not items:
            return
        yield from items
        page_number += 1


def pai_error(call: Callable[[], object]) -> ClientException:
    with pytest.raises(ClientException) as caught:
        call()
    return caught.value


def test_register_list_get_update_delete(api: ModelAPI, admin: AdminClient) -> None:
    name = api.create_version(
        MODEL_ID,
        uri="oss://bucket.oss-cn-hangzhou.aliyuncs.com/models/run-7/",
        labels={"stage": "dev", "run": "7"},
        framework_type="PyTorch",
        format_type="TorchScript",
        metrics={"accuracy": 0.93},
        training_spec={"Command": "python train.py"},
        version_description="from a training job",
    )
    assert name == "0.1.0"
    second = api.create_version(MODEL_ID, uri="oss://b.e/m/2/", version_name="1.0.0")

    listed = api.list_versions(MODEL_ID)
    assert listed.total_count == 2
    assert [item["VersionName"] for item in listed.items] == [name, second]
    assert all(item["ModelId"] == MODEL_ID for item in listed.items)

    got = api.get_version(MODEL_ID, name)
    assert {label["Key"]: label["Value"] for label in got["Labels"]} == {"stage": "dev", "run": "7"}
    assert (got["Metrics"], got["FrameworkType"], got["ModelId"]) == ({"accuracy": 0.93}, "PyTorch", MODEL_ID)

    api.update_version(MODEL_ID, name, approval_status="Approved", version_description="promoted")
    stored = {v["VersionName"]: v for v in admin.versions(MODEL_ID)}[name]
    assert (stored["ApprovalStatus"], stored["VersionDescription"]) == ("Approved", "promoted")

    model = api.get(MODEL_ID)
    assert (model["ModelId"], model["LatestVersion"]["VersionName"]) == (MODEL_ID, second)

    api.delete_version(MODEL_ID, second)
    assert [v["VersionName"] for v in admin.versions(MODEL_ID)] == [name]
    missing = pai_error(lambda: api.get_version(MODEL_ID, second))
    assert (missing.status_code, missing.code) == (400, "201900003")

    api.delete(MODEL_ID)
    assert pai_error(lambda: api.get(MODEL_ID)).code == "201900002"
    # Every call arrived signed with the older ROA scheme, which the emulator verifies.
    assert {entry["Status"] for entry in admin.journal()} == {200, 400}


def test_its_paging_walk_is_complete_under_a_page_cap(api: ModelAPI, admin: AdminClient) -> None:
    admin.set_quota("CreateModelVersion", 0)
    names = [
        api.create_version(MODEL_ID, uri=f"oss://b.e/m/{i}/", version_name=f"1.{i}.0") for i in range(60)
    ]
    admin.set_dialect(max_page_size=10)
    assert [item["VersionName"] for item in all_versions(api)] == names
    lists = admin.journal("ListModelVersions")
    assert len(lists) == 7  # six pages of ten, then the empty page that ends its walk


def test_labels_it_would_send_past_the_limits_are_refused(api: ModelAPI) -> None:
    refused = pai_error(lambda: api.create_version(MODEL_ID, uri="oss://b.e/m/", labels={"owner": "a=b"}))
    assert (refused.status_code, refused.code) == (400, "InvalidParameter")
    assert "Labels.Value" in refused.message


def test_a_wrong_secret_is_refused(emulator: EmulatorProcess) -> None:
    wrong = model_api(emulator, Credential(DEFAULT_CREDENTIAL.access_key_id, "not-the-secret"))
    refused = pai_error(lambda: wrong.list_versions(MODEL_ID))
    assert (refused.status_code, refused.code) == (400, "SignatureDoesNotMatch")
