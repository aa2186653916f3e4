"""The emulator's dialects, label limits and model operations, certified by the official SDK.

Where PAI's docs are silent the emulator has a switch (README "Dialects"); each setting must still
be something the official SDK parses as it would the real service's answer.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from alibabacloud_aiworkspace20210204 import models as sdk_models
from alibabacloud_aiworkspace20210204.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException

from tests.contract.conftest import MODEL_ID, OTHER_MODEL_ID
from tests.contract.test_sdk_scenario import create, get, listing
from tests.support.emulator import AdminClient, AdminError, EmulatorProcess


def sdk_error(call: Callable[[], object]) -> ClientException:
    with pytest.raises(ClientException) as caught:
        call()
    return caught.value


def add_labels(sdk: Client, name: str, *pairs: tuple[str, str]) -> None:
    labels = [sdk_models.Label(key=key, value=value) for key, value in pairs]
    sdk.create_model_version_labels(MODEL_ID, name, sdk_models.CreateModelVersionLabelsRequest(labels=labels))


def label_pairs(sdk: Client, name: str) -> list[tuple[str, str]]:
    return [(label.key, label.value) for label in get(sdk, name).labels]


# --- models ----------------------------------------------------------------------------------


def test_get_model_and_delete_model_with_its_versions(sdk: Client, admin: AdminClient) -> None:
    empty = sdk.get_model(MODEL_ID, sdk_models.GetModelRequest()).body
    assert (empty.model_id, empty.model_name, empty.latest_version) == (MODEL_ID, MODEL_ID, None)
    first = create(sdk)
    second = create(sdk)
    model = sdk.get_model(MODEL_ID, sdk_models.GetModelRequest()).body
    assert model.latest_version.version_name == second
    assert model.gmt_create_time
    assert model.owner_id

    response = sdk.delete_model(MODEL_ID, sdk_models.DeleteModelRequest())
    assert response.status_code == 200
    assert response.body.request_id
    gone = sdk_error(lambda: sdk.get_model(MODEL_ID, sdk_models.GetModelRequest()))
    assert (gone.status_code, gone.code) == (400, "201900002")
    # Its versions went with it: every version call now answers "model not found".
    assert sdk_error(lambda: get(sdk, first)).code == "201900002"
    assert sdk_error(lambda: listing(sdk)).code == "201900002"
    assert sdk_error(lambda: sdk.delete_model(MODEL_ID, sdk_models.DeleteModelRequest())).code == "201900002"
    with pytest.raises(AdminError):
        admin.versions(MODEL_ID)
    # Other models are untouched; a re-added model starts empty.
    assert create(sdk, OTHER_MODEL_ID) == "0.1.0"
    assert admin.add_model(MODEL_ID) is True
    assert listing(sdk).total_count == 0
    assert [e["Operation"] for e in admin.journal() if e["Operation"].endswith("Model")] == [
        "GetModel",
        "GetModel",
        "DeleteModel",
        "GetModel",
        "DeleteModel",
    ]


def test_admin_delete_model(sdk: Client, admin: AdminClient) -> None:
    create(sdk)
    admin.delete_model(MODEL_ID)
    assert sdk_error(lambda: listing(sdk)).code == "201900002"


# --- label limits (Go SDK aiworkspace-20210204/client/label_model.go) ---------------------------


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("k" * 129, "v", "Labels.Key"),
        ("k", "v" * 129, "Labels.Value"),
        ("k", "é" * 65, "Labels.Value"),  # 65 characters, 130 bytes: the limit is in bytes
        ("a=b", "v", "Labels.Key"),
        ("a,b", "v", "Labels.Key"),
        ("k", "x=y", "Labels.Value"),
        ("k", "x,y", "Labels.Value"),
    ],
)
def test_labels_outside_the_documented_limits_are_refused(
    sdk: Client, key: str, value: str, field: str
) -> None:
    label = sdk_models.Label(key=key, value=value)
    refused = sdk_error(lambda: create(sdk, labels=[label]))
    assert (refused.status_code, refused.code) == (400, "InvalidParameter")
    assert field in refused.message
    name = create(sdk)
    refused = sdk_error(lambda: add_labels(sdk, name, (key, value)))
    assert (refused.status_code, refused.code, field in refused.message) == (400, "InvalidParameter", True)
    assert label_pairs(sdk, name) == []


def test_labels_at_the_limits_are_accepted(sdk: Client) -> None:
    at_limit = [sdk_models.Label(key=f"{i:02d}" + "k" * 126, value="é" * 64) for i in range(20)]
    name = create(sdk, labels=at_limit)
    assert len(get(sdk, name).labels) == 20
    refused = sdk_error(lambda: add_labels(sdk, name, ("one-more", "v")))
    assert (refused.code, "at most 20" in refused.message) == ("InvalidParameter", True)


# --- label upsert -------------------------------------------------------------------------------


def test_label_upsert_replace_is_the_default(sdk: Client, admin: AdminClient) -> None:
    assert admin.dialect()["LabelUpsert"] == "replace"
    name = create(
        sdk, labels=[sdk_models.Label(key="stage", value="dev"), sdk_models.Label(key="team", value="a")]
    )
    add_labels(sdk, name, ("stage", "prod"))
    assert label_pairs(sdk, name) == [("stage", "prod"), ("team", "a")]


def test_label_upsert_append_keeps_both_until_the_key_is_deleted(sdk: Client, admin: AdminClient) -> None:
    admin.set_dialect(label_upsert="append")
    name = create(sdk, labels=[sdk_models.Label(key="stage", value="dev")])
    add_labels(sdk, name, ("stage", "prod"))
    assert label_pairs(sdk, name) == [("stage", "dev"), ("stage", "prod")]
    # The duplicated key shows in List and matches a label filter once per version.
    assert [v.version_name for v in listing(sdk, label="prod").versions] == [name]
    sdk.delete_model_version_labels(
        MODEL_ID, name, sdk_models.DeleteModelVersionLabelsRequest(label_keys="stage")
    )
    assert label_pairs(sdk, name) == []


def test_label_upsert_reject_refuses_an_existing_key(sdk: Client, admin: AdminClient) -> None:
    admin.set_dialect(label_upsert="reject")
    name = create(sdk, labels=[sdk_models.Label(key="stage", value="dev")])
    refused = sdk_error(lambda: add_labels(sdk, name, ("team", "a"), ("stage", "prod")))
    assert (refused.status_code, refused.code) == (400, "InvalidParameter")
    assert label_pairs(sdk, name) == [("stage", "dev")]  # the whole request failed
    sdk.delete_model_version_labels(
        MODEL_ID, name, sdk_models.DeleteModelVersionLabelsRequest(label_keys="stage")
    )
    add_labels(sdk, name, ("stage", "prod"))
    assert label_pairs(sdk, name) == [("stage", "prod")]


# --- paging -------------------------------------------------------------------------------------


def test_max_page_size_caps_pages_silently(sdk: Client, admin: AdminClient) -> None:
    admin.set_quota("CreateModelVersion", 0)  # 25 creates: above the write burst
    names = [create(sdk, version_name=f"1.{i}.0") for i in range(25)]
    admin.set_dialect(max_page_size=10)
    first = listing(sdk, page_size=50)
    assert first.total_count == 25
    assert [v.version_name for v in first.versions] == names[:10]
    # PageNumber counts in the served size.
    third = listing(sdk, page_size=50, page_number=3)
    assert [v.version_name for v in third.versions] == names[20:]
    assert listing(sdk, page_size=5).versions[-1].version_name == names[4]  # below the cap: as asked
    admin.set_dialect(max_page_size=None)
    assert len(listing(sdk, page_size=50).versions) == 25


# --- the switches -------------------------------------------------------------------------------


def test_admin_dialect_switches_validates_and_resets(admin: AdminClient) -> None:
    default = {
        "ErrorDialect": "numeric",
        "NotFoundStatus": 400,
        "LabelUpsert": "replace",
        "MaxPageSize": None,
    }
    assert admin.dialect() == default
    changed = admin.set_dialect(
        error_dialect="named", not_found_status=404, label_upsert="append", max_page_size=7
    )
    assert changed == {
        "ErrorDialect": "named",
        "NotFoundStatus": 404,
        "LabelUpsert": "append",
        "MaxPageSize": 7,
    }
    for bad in ({"not_found_status": 410}, {"error_dialect": "chinese"}, {"max_page_size": 0}):
        with pytest.raises(AdminError) as caught:
            admin.set_dialect(**bad)  # type: ignore[arg-type]
        assert caught.value.status == 400
    assert admin.dialect() == changed
    admin.reset()
    assert admin.dialect() == default


def test_cli_flags_set_the_dialect() -> None:
    flags = [
        "--error-dialect",
        "named",
        "--not-found-status",
        "404",
        "--label-upsert",
        "reject",
        "--max-page-size",
        "3",
    ]
    with EmulatorProcess(models=[MODEL_ID], extra_args=flags) as emulator:
        expected = {"ErrorDialect": "named", "NotFoundStatus": 404, "LabelUpsert": "reject", "MaxPageSize": 3}
        assert emulator.admin.dialect() == expected
        emulator.admin.reset()  # reset restores the configured dialect, not the built-in default
        assert emulator.admin.dialect() == expected
