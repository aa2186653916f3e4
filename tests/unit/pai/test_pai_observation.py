"""What a listed version says: fields a list item does not carry are unknown, never drift."""

from __future__ import annotations

import json

from pai_operator.pai.backend import PaiBackend
from pai_operator.pai.comparison import compute_drift
from pai_operator.pai.models import ModelVersion
from pai_operator.pai.observation import complete_listed
from pai_operator.pai.spec import OWNER_LABEL_KEY, AtProvider, ModelVersionSpec

UID = "uid-1"
SPEC = ModelVersionSpec.model_validate(
    {
        "modelId": "m",
        "uri": "oss://b/m/",
        "versionName": "1.0.0",
        "versionDescription": "mine",
        "approvalStatus": "Approved",
        "labels": {"team": "a"},
        "metrics": {"acc": 0.9},
        "options": {"x": 1},
    }
)


def test_a_summary_item_is_not_drift() -> None:
    summary = ModelVersion.model_validate({"VersionName": "1.0.0", "Uri": "oss://b/m/"})
    filled = complete_listed(summary, SPEC, uid=UID, last_seen=None)
    assert compute_drift(SPEC, filled) == []
    assert filled.label_map() == {OWNER_LABEL_KEY: UID, "team": "a"}


def test_a_carried_field_that_differs_is_drift() -> None:
    item = ModelVersion.model_validate(
        {"VersionName": "1.0.0", "Uri": "oss://b/m/", "VersionDescription": "changed by hand"}
    )
    filled = complete_listed(item, SPEC, uid=UID, last_seen=None)
    assert compute_drift(SPEC, filled) == ["versionDescription"]


def test_unknown_fields_come_from_the_last_observation_first() -> None:
    summary = ModelVersion.model_validate({"VersionName": "1.0.0", "Uri": "oss://b/m/"})
    seen = AtProvider(
        gmt_modified_time="2026-01-01T00:00:00.000Z",
        approval_status="Pending",
        labels={OWNER_LABEL_KEY: UID, "team": "b"},
    )
    filled = complete_listed(summary, SPEC, uid=UID, last_seen=seen)
    assert filled.gmt_modified_time == "2026-01-01T00:00:00.000Z"
    # What status last saw differs from spec: that is drift a GET already reported, kept as is.
    assert compute_drift(SPEC, filled) == ["approvalStatus", "labels"]


def test_a_whole_record_is_taken_as_it_is() -> None:
    whole = ModelVersion.model_validate(
        {"VersionName": "1.0.0", "Uri": "oss://b/m/", "Labels": [], "VersionDescription": "mine"}
    )
    assert complete_listed(whole, SPEC, uid=UID, last_seen=None).labels == []


def test_records_of_one_model_share_one_group_key() -> None:
    # 20,000 records in 200 groups hold 200 keys, not 20,000 copies decoded from their specs.
    backend = PaiBackend(clients=None, default_region="cn-hangzhou")  # type: ignore[arg-type]
    first = backend.group_of(json.loads('{"modelId": "m-1"}'), {}, "")
    second = backend.group_of(json.loads('{"modelId": "m-1"}'), {}, "")
    other = backend.group_of({"modelId": "m-1", "regionId": "cn-beijing"}, {}, "")
    assert first == ("", "cn-hangzhou", "m-1")
    assert second is first
    assert other == ("", "cn-beijing", "m-1")
    assert backend.group_of({}, {}, "") is None
