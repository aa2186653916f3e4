"""Our own client (pai_operator.pai.client) runs the SDK scenario against the emulator over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pai_operator.pai.client import PaiClient, PaiClientConfig
from pai_operator.pai.credentials import Credentials, StaticCredentialsProvider
from pai_operator.pai.errors import AuthError, ConflictError, InvalidRequestError, NotFoundError
from pai_operator.pai.models import (
    CreateModelVersionRequest,
    Label,
    ListModelVersionsRequest,
    UpdateModelVersionRequest,
)
from tests.contract.conftest import MODEL_ID, STS_CREDENTIAL
from tests.support.emulator import DEFAULT_CREDENTIAL, AdminClient, Credential, EmulatorProcess


def make_client(emulator: EmulatorProcess, credential: Credential = DEFAULT_CREDENTIAL) -> PaiClient:
    credentials = Credentials(
        credential.access_key_id, credential.access_key_secret, credential.security_token
    )
    return PaiClient(
        PaiClientConfig(endpoint=emulator.url, read_rate=None, write_rate=None, max_read_attempts=1),
        StaticCredentialsProvider(credentials),
    )


@pytest.fixture
async def client(emulator: EmulatorProcess) -> AsyncIterator[PaiClient]:
    async with make_client(emulator) as pai:
        yield pai


async def test_full_scenario(client: PaiClient, admin: AdminClient) -> None:
    metrics = {"Results": [{"Dataset": {"DatasetId": "d-x"}, "Metrics": {"cer": 0.175}}]}
    first = await client.create_model_version(
        MODEL_ID,
        CreateModelVersionRequest(
            uri="oss://bucket.oss-cn-hangzhou.aliyuncs.com/m/",
            version_name="1.0.0",
            format_type="SavedModel",
            framework_type="TensorFlow",
            labels=[Label(key="team", value="search a b")],
            metrics=metrics,
            training_spec={"Image": "train:1"},
        ),
    )
    assert first.version_name == "1.0.0"
    assert first.request_id
    second = await client.create_model_version(MODEL_ID, CreateModelVersionRequest(uri="oss://b.e/p"))
    assert second.version_name == "1.1.0"

    version = await client.get_model_version(MODEL_ID, "1.0.0")
    assert version.metrics == metrics
    assert version.label_map() == {"team": "search a b"}
    assert version.gmt_create_time
    assert version.user_id
    assert version.owner_id

    page = await client.list_model_versions(MODEL_ID, ListModelVersionsRequest(page_size=1, page_number=2))
    assert page.total_count == 2
    assert [v.version_name for v in page.versions] == ["1.1.0"]
    filtered = await client.list_model_versions(MODEL_ID, ListModelVersionsRequest(label="h a b"))
    assert [v.version_name for v in filtered.versions] == ["1.0.0"]
    walked = [
        v.version_name
        async for v in client.iter_model_versions(MODEL_ID, ListModelVersionsRequest(page_size=1))
    ]
    assert walked == ["1.0.0", "1.1.0"]

    await client.update_model_version(
        MODEL_ID, "1.0.0", UpdateModelVersionRequest(approval_status="Approved")
    )
    updated = await client.get_model_version(MODEL_ID, "1.0.0")
    assert updated.approval_status == "Approved"
    assert updated.training_spec == {"Image": "train:1"}

    await client.create_model_version_labels(
        MODEL_ID, "1.0.0", [Label(key="team", value="ads"), Label(key="x", value="y")]
    )
    await client.delete_model_version_labels(MODEL_ID, "1.0.0", ["x", "absent"])
    assert (await client.get_model_version(MODEL_ID, "1.0.0")).label_map() == {"team": "ads"}

    await client.delete_model_version(MODEL_ID, "1.1.0")
    assert [v["VersionName"] for v in admin.versions(MODEL_ID)] == ["1.0.0"]

    with pytest.raises(NotFoundError):
        await client.get_model_version(MODEL_ID, "1.1.0")
    with pytest.raises(NotFoundError):
        await client.list_model_versions("model-missing")
    with pytest.raises(ConflictError):
        await client.create_model_version(
            MODEL_ID, CreateModelVersionRequest(uri="oss://b.e/p", version_name="1.0.0")
        )
    with pytest.raises(InvalidRequestError):
        await client.create_model_version(
            MODEL_ID, CreateModelVersionRequest(uri="oss://b.e/p", version_name="x")
        )
    with pytest.raises(InvalidRequestError):
        await client.update_model_version(
            MODEL_ID, "1.0.0", UpdateModelVersionRequest(metrics={"m": "x" * 8200})
        )
    too_many = [Label(key=f"k{i}", value="v") for i in range(21)]
    with pytest.raises(InvalidRequestError):
        await client.create_model_version(
            MODEL_ID, CreateModelVersionRequest(uri="oss://b.e/p", labels=too_many)
        )


async def test_auth_errors_and_sts(emulator: EmulatorProcess) -> None:
    async with make_client(emulator, Credential(DEFAULT_CREDENTIAL.access_key_id, "wrong")) as wrong:
        with pytest.raises(AuthError):
            await wrong.list_model_versions(MODEL_ID)
    async with make_client(emulator, STS_CREDENTIAL) as sts:
        assert (await sts.list_model_versions(MODEL_ID)).total_count == 0
