"""The official Alibaba Cloud SDK drives the emulator over real HTTP and accepts every response."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from alibabacloud_aiworkspace20210204 import models as sdk_models
from alibabacloud_aiworkspace20210204.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException

from tests.contract.conftest import MODEL_ID, OTHER_MODEL_ID
from tests.support.emulator import AdminClient, Credential

ISO_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
REQUEST_ID = re.compile(r"^[0-9A-F-]{36}$")


def create(sdk: Client, model_id: str = MODEL_ID, **fields: Any) -> str:
    fields.setdefault("uri", "oss://bucket.oss-cn-hangzhou.aliyuncs.com/models/m1/")
    response = sdk.create_model_version(model_id, sdk_models.CreateModelVersionRequest(**fields))
    assert response.status_code == 200
    assert REQUEST_ID.match(response.body.request_id)
    name: str = response.body.version_name
    return name


def get(sdk: Client, name: str, model_id: str = MODEL_ID) -> sdk_models.GetModelVersionResponseBody:
    response = sdk.get_model_version(model_id, name, sdk_models.GetModelVersionRequest())
    assert REQUEST_ID.match(response.body.request_id)
    body: sdk_models.GetModelVersionResponseBody = response.body
    return body


def listing(sdk: Client, model_id: str = MODEL_ID, **query: Any) -> sdk_models.ListModelVersionsResponseBody:
    response = sdk.list_model_versions(model_id, sdk_models.ListModelVersionsRequest(**query))
    assert REQUEST_ID.match(response.body.request_id)
    body: sdk_models.ListModelVersionsResponseBody = response.body
    return body


def sdk_error(call: Callable[[], object]) -> ClientException:
    with pytest.raises(ClientException) as caught:
        call()
    return caught.value


def test_full_scenario(sdk: Client, admin: AdminClient) -> None:
    metrics = {"Results": [{"Dataset": {"DatasetId": "d-x"}, "Metrics": {"cer": 0.175}}]}
    first = create(
        sdk,
        version_name="1.0.0",
        version_description="first",
        format_type="SavedModel",
        framework_type="TensorFlow",
        labels=[sdk_models.Label(key="team", value="search"), sdk_models.Label(key="stage", value="dev")],
        metrics=metrics,
        training_spec={"Image": "train:1"},
        inference_spec={"Processor": "tensorflow_cpu_2.3"},
        extra_info={"Note": "x"},
        options='{"Key":"Value"}',
        source_type="TrainingService",
        source_id="region=cn-hangzhou,workspaceId=1,kind=TrainingJob,id=t-1",
        approval_status="Approved",
    )
    assert first == "1.0.0"
    # Without VersionName the server assigns major.(highest minor + 1).0.
    second = create(sdk, framework_type="Pytorch")
    assert second == "1.1.0"
    third = create(sdk, framework_type="PyTorch", labels=[sdk_models.Label(key="stage", value="prod")])
    assert third == "1.2.0"

    version = get(sdk, first)
    assert version.version_name == "1.0.0"
    assert version.uri == "oss://bucket.oss-cn-hangzhou.aliyuncs.com/models/m1/"
    assert version.version_description == "first"
    assert version.format_type == "SavedModel"
    assert version.framework_type == "TensorFlow"
    assert [(label.key, label.value) for label in version.labels] == [("team", "search"), ("stage", "dev")]
    assert version.metrics == metrics
    assert version.training_spec == {"Image": "train:1"}
    assert version.inference_spec == {"Processor": "tensorflow_cpu_2.3"}
    assert version.extra_info == {"Note": "x"}
    assert version.options == '{"Key":"Value"}'
    assert version.source_type == "TrainingService"
    assert version.approval_status == "Approved"
    assert ISO_MILLIS.match(version.gmt_create_time)
    assert version.gmt_modified_time == version.gmt_create_time
    assert version.user_id
    assert version.owner_id
    defaults = get(sdk, second)
    assert (defaults.approval_status, defaults.source_type, defaults.labels) == ("Pending", "Custom", [])

    # Listing: defaults, paging, ordering and every filter.
    everything = listing(sdk)
    assert everything.total_count == 3
    assert [v.version_name for v in everything.versions] == ["1.0.0", "1.1.0", "1.2.0"]
    assert everything.versions[0].metrics == metrics
    page = listing(sdk, page_size=2, page_number=2)
    assert page.total_count == 3
    assert [v.version_name for v in page.versions] == ["1.2.0"]
    assert listing(sdk, page_size=2, page_number=3).versions == []
    descending = listing(sdk, order="DESC", sort_by="VersionName")
    assert [v.version_name for v in descending.versions] == ["1.2.0", "1.1.0", "1.0.0"]
    assert [v.version_name for v in listing(sdk, label="prod").versions] == ["1.2.0"]
    assert [v.version_name for v in listing(sdk, label="stag").versions] == ["1.0.0", "1.2.0"]
    assert listing(sdk, label="no such").total_count == 0
    assert [v.version_name for v in listing(sdk, version_name="1.1.0").versions] == ["1.1.0"]
    assert [v.version_name for v in listing(sdk, approval_status="Approved").versions] == ["1.0.0"]
    assert [v.version_name for v in listing(sdk, format_type="SavedModel").versions] == ["1.0.0"]
    assert [v.version_name for v in listing(sdk, framework_type="PyTorch").versions] == ["1.2.0"]
    assert [v.version_name for v in listing(sdk, source_type="Custom").versions] == ["1.1.0", "1.2.0"]
    source_id = "region=cn-hangzhou,workspaceId=1,kind=TrainingJob,id=t-1"
    assert [v.version_name for v in listing(sdk, source_id=source_id).versions] == ["1.0.0"]

    # Partial update: absent fields stay as they were.
    update = sdk_models.UpdateModelVersionRequest(approval_status="Rejected", metrics={"acc": 0.5})
    response = sdk.update_model_version(MODEL_ID, first, update)
    assert REQUEST_ID.match(response.body.request_id)
    updated = get(sdk, first)
    assert (updated.approval_status, updated.metrics) == ("Rejected", {"acc": 0.5})
    assert updated.version_description == "first"
    assert updated.training_spec == {"Image": "train:1"}
    assert updated.gmt_modified_time >= updated.gmt_create_time
    by_modified = listing(sdk, sort_by="GmtModifiedTime", order="DESC")
    assert by_modified.versions[0].version_name == first

    # Labels: upsert (same key replaces the value) and delete by key list.
    labels = [sdk_models.Label(key="stage", value="prod"), sdk_models.Label(key="owner", value="ana")]
    sdk.create_model_version_labels(
        MODEL_ID, first, sdk_models.CreateModelVersionLabelsRequest(labels=labels)
    )
    assert {(label.key, label.value) for label in get(sdk, first).labels} == {
        ("team", "search"),
        ("stage", "prod"),
        ("owner", "ana"),
    }
    sdk.delete_model_version_labels(
        MODEL_ID, first, sdk_models.DeleteModelVersionLabelsRequest(label_keys="team,owner,absent")
    )
    assert [(label.key, label.value) for label in get(sdk, first).labels] == [("stage", "prod")]

    # Delete, then the version is gone from Get, List and the stored state.
    response = sdk.delete_model_version(MODEL_ID, second, sdk_models.DeleteModelVersionRequest())
    assert REQUEST_ID.match(response.body.request_id)
    assert sdk_error(lambda: get(sdk, second)).code == "201900003"
    assert [v.version_name for v in listing(sdk).versions] == ["1.0.0", "1.2.0"]
    assert [v["VersionName"] for v in admin.versions(MODEL_ID)] == ["1.0.0", "1.2.0"]
    # Models are independent namespaces of versions.
    assert create(sdk, OTHER_MODEL_ID) == "0.1.0"


@pytest.mark.parametrize(
    ("dialect", "status", "model_code", "version_code"),
    [
        ("numeric", 400, "201900002", "201900003"),  # the default
        ("numeric", 404, "201900002", "201900003"),
        ("named", 400, "InvalidModel.NotFound", "InvalidModelVersion.NotFound"),
        ("named", 404, "InvalidModel.NotFound", "InvalidModelVersion.NotFound"),
    ],
)
def test_not_found_errors(
    sdk: Client, admin: AdminClient, dialect: str, status: int, model_code: str, version_code: str
) -> None:
    if (dialect, status) != ("numeric", 400):
        admin.set_dialect(error_dialect=dialect, not_found_status=status)
    missing_model = sdk_error(lambda: listing(sdk, "model-missing"))
    assert (missing_model.status_code, missing_model.code) == (status, model_code)
    assert missing_model.request_id
    # The text never says NotFound: a client must read the numeric dialect by its code.
    assert ("NotFound" in missing_model.message) is False
    assert sdk_error(lambda: create(sdk, "model-missing")).code == model_code
    missing_version = sdk_error(lambda: get(sdk, "9.9.9"))
    assert (missing_version.status_code, missing_version.code) == (status, version_code)
    for call in (
        lambda: sdk.delete_model_version(MODEL_ID, "9.9.9", sdk_models.DeleteModelVersionRequest()),
        lambda: sdk.update_model_version(MODEL_ID, "9.9.9", sdk_models.UpdateModelVersionRequest()),
        lambda: sdk.delete_model_version_labels(
            MODEL_ID, "9.9.9", sdk_models.DeleteModelVersionLabelsRequest(label_keys="a")
        ),
    ):
        assert sdk_error(call).code == version_code


def test_duplicate_version_name_is_rejected(sdk: Client, admin: AdminClient) -> None:
    create(sdk, version_name="2.0.0")
    duplicate = sdk_error(lambda: create(sdk, version_name="2.0.0", uri="oss://b.e/other"))
    assert (duplicate.status_code, duplicate.code) == (409, "InvalidModelVersion.AlreadyExists")
    assert [v["Uri"] for v in admin.versions(MODEL_ID)] == [
        "oss://bucket.oss-cn-hangzhou.aliyuncs.com/models/m1/"
    ]


@pytest.mark.parametrize(
    ("fields", "code", "mentions"),
    [
        ({"uri": None}, "MissingUri", "Uri"),
        ({"uri": "s3://bucket/x"}, "InvalidParameter", "Uri"),
        ({"version_name": "v1"}, "InvalidParameter", "VersionName"),
        ({"version_name": "1.0"}, "InvalidParameter", "VersionName"),
        ({"approval_status": "Maybe"}, "InvalidParameter", "ApprovalStatus"),
        ({"source_type": "Manual"}, "InvalidParameter", "SourceType"),
        ({"format_type": "Pickle"}, "InvalidParameter", "FormatType"),
        ({"framework_type": "pytorch"}, "InvalidParameter", "FrameworkType"),
        ({"options": "not json"}, "InvalidParameter", "Options"),
        (
            {"labels": [sdk_models.Label(key=f"k{i}", value="v") for i in range(21)]},
            "InvalidParameter",
            "labels",
        ),
        ({"metrics": {"m": "x" * 8200}}, "InvalidParameter", "Metrics"),
    ],
)
def test_invalid_create_parameters(sdk: Client, fields: dict[str, Any], code: str, mentions: str) -> None:
    request = {"uri": "oss://b.e/p", **fields}
    error = sdk_error(
        lambda: sdk.create_model_version(MODEL_ID, sdk_models.CreateModelVersionRequest(**request))
    )
    assert (error.status_code, error.code) == (400, code)
    assert mentions in error.message


def test_label_limit_applies_to_the_merged_set(sdk: Client) -> None:
    name = create(sdk, labels=[sdk_models.Label(key=f"k{i}", value="v") for i in range(20)])
    replace = sdk_models.CreateModelVersionLabelsRequest(labels=[sdk_models.Label(key="k0", value="new")])
    sdk.create_model_version_labels(MODEL_ID, name, replace)
    extra = sdk_models.CreateModelVersionLabelsRequest(labels=[sdk_models.Label(key="k20", value="v")])
    error = sdk_error(lambda: sdk.create_model_version_labels(MODEL_ID, name, extra))
    assert (error.status_code, error.code) == (400, "InvalidParameter")
    assert len(get(sdk, name).labels) == 20


def test_invalid_update_and_list_parameters(sdk: Client) -> None:
    name = create(sdk)
    too_long = sdk_models.UpdateModelVersionRequest(metrics={"m": "x" * 8200})
    assert sdk_error(lambda: sdk.update_model_version(MODEL_ID, name, too_long)).code == "InvalidParameter"
    bad_status = sdk_models.UpdateModelVersionRequest(approval_status="Done")
    assert sdk_error(lambda: sdk.update_model_version(MODEL_ID, name, bad_status)).code == "InvalidParameter"
    assert sdk_error(lambda: listing(sdk, page_size=0)).code == "InvalidParameter"
    assert sdk_error(lambda: listing(sdk, order="UP")).code == "InvalidParameter"
    assert sdk_error(lambda: listing(sdk, sort_by="Uri")).code == "InvalidParameter"
    empty_keys = sdk_models.DeleteModelVersionLabelsRequest()
    assert (
        sdk_error(lambda: sdk.delete_model_version_labels(MODEL_ID, name, empty_keys)).code
        == "MissingLabelKeys"
    )


def test_wrong_secret_and_unknown_key(make_sdk: Callable[..., Client]) -> None:
    wrong_secret = make_sdk(Credential("test-access-key-id", "not-the-secret"))
    error = sdk_error(lambda: listing(wrong_secret))
    assert (error.status_code, error.code) == (400, "SignatureDoesNotMatch")
    unknown = make_sdk(Credential("no-such-key", "whatever"))
    error = sdk_error(lambda: listing(unknown))
    assert (error.status_code, error.code) == (404, "InvalidAccessKeyId.NotFound")
