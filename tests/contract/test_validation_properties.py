"""Property tests of the emulator's validation boundaries, against the app in this process.

The oracles are written independently of the emulator's code (no shared regex or serializer).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pai_emulator.config import AccessKey, EmulatorConfig
from tests.support.emulator import Credential, InProcessEmulator, sdk_signed_request

MODEL_ID = "model-props"
CREDENTIAL = Credential("prop-key", "prop-secret")
PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
VALID_NAME = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+(_[A-Za-z0-9_]+)?")


class Api:
    def __init__(self, emulator: InProcessEmulator) -> None:
        self.emulator = emulator
        self.http = httpx.Client(timeout=10)

    def call(
        self, method: str, path: str, action: str, body: Any = None, query: dict[str, str] | None = None
    ) -> httpx.Response:
        request = sdk_signed_request(
            self.emulator.url, method, path, action, credential=CREDENTIAL, body=body, query=query
        )
        return request.send(self.http)

    def create(self, body: dict[str, Any]) -> httpx.Response:
        return self.call(
            "POST",
            f"/api/v1/models/{MODEL_ID}/versions",
            "CreateModelVersion",
            {"Uri": "oss://b.e/p", **body},
        )


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    # Quotas off: hypothesis sends far more than 20 writes per second.
    config = EmulatorConfig(
        access_keys=[AccessKey(CREDENTIAL.access_key_id, CREDENTIAL.access_key_secret)],
        models=[MODEL_ID],
        admin=True,
        quotas={},
    )
    with InProcessEmulator(config) as emulator:
        client = Api(emulator)
        yield client
        client.http.close()


def compact_length(value: Any) -> int:
    # Independent statement of the documented choice: compact separators, characters not escaped.
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


def metrics_of_length(length: int, filler: str) -> dict[str, str]:
    overhead = compact_length({"m": ""})
    return {"m": filler * (length - overhead)}


@PROPERTY_SETTINGS
@given(length=st.integers(min_value=8, max_value=8300), filler=st.sampled_from(["x", "é", "指"]))
@example(length=8192, filler="x")
@example(length=8193, filler="x")
@example(length=8192, filler="指")
@example(length=8193, filler="é")
def test_metrics_limit_is_8192_serialized_characters(api: Api, length: int, filler: str) -> None:
    api.emulator.admin.reset()
    metrics = metrics_of_length(length, filler)
    assert compact_length(metrics) == length
    response = api.create({"Metrics": metrics})
    if length <= 8192:
        assert response.status_code == 200, response.text
        name = response.json()["VersionName"]
        stored = api.call("GET", f"/api/v1/models/{MODEL_ID}/versions/{name}", "GetModelVersion").json()
        assert stored["Metrics"] == metrics
    else:
        assert (response.status_code, response.json()["Code"]) == (400, "InvalidParameter")


@PROPERTY_SETTINGS
@given(keys=st.lists(st.sampled_from([f"key-{i}" for i in range(30)]), max_size=40))
@example(keys=[f"key-{i}" for i in range(20)])
@example(keys=[f"key-{i}" for i in range(21)])
def test_at_most_twenty_distinct_labels(api: Api, keys: list[str]) -> None:
    api.emulator.admin.reset()
    labels = [{"Key": key, "Value": f"v{i}"} for i, key in enumerate(keys)]
    response = api.create({"Labels": labels})
    distinct = len(set(keys))
    if distinct <= 20:
        assert response.status_code == 200, response.text
        [stored] = api.emulator.admin.versions(MODEL_ID)
        expected = {key: f"v{max(i for i, k in enumerate(keys) if k == key)}" for key in keys}
        assert {label["Key"]: label["Value"] for label in stored["Labels"]} == expected
    else:
        assert (response.status_code, response.json()["Code"]) == (400, "InvalidParameter")


@PROPERTY_SETTINGS
@given(
    existing=st.integers(min_value=0, max_value=20),
    added=st.lists(st.sampled_from([f"add-{i}" for i in range(25)]), min_size=1, max_size=25),
)
def test_label_upsert_limit_counts_the_merged_set(api: Api, existing: int, added: list[str]) -> None:
    api.emulator.admin.reset()
    labels = [{"Key": f"add-{i}", "Value": "old"} for i in range(existing)]
    name = api.create({"Labels": labels}).json()["VersionName"]
    path = f"/api/v1/models/{MODEL_ID}/versions/{name}/labels"
    response = api.call(
        "POST", path, "CreateModelVersionLabels", {"Labels": [{"Key": k, "Value": "new"} for k in added]}
    )
    merged = {f"add-{i}" for i in range(existing)} | set(added)
    [stored] = api.emulator.admin.versions(MODEL_ID)
    if len(merged) <= 20:
        assert response.status_code == 200, response.text
        assert {label["Key"] for label in stored["Labels"]} == merged
    else:
        assert (response.status_code, response.json()["Code"]) == (400, "InvalidParameter")
        assert len(stored["Labels"]) == existing


name_parts = st.integers(min_value=0, max_value=10**6).map(str)
valid_names = st.builds(
    lambda a, b, c, suffix: f"{a}.{b}.{c}" + (f"_{suffix}" if suffix else ""),
    name_parts,
    name_parts,
    name_parts,
    st.one_of(st.none(), st.text(alphabet="abcXYZ019_", min_size=1, max_size=10)),
)
near_misses = st.one_of(
    valid_names.map(lambda name: name + "\n"),
    valid_names.map(lambda name: " " + name),
    valid_names.map(lambda name: name + "_"),
    valid_names.map(lambda name: name + "-rc1"),
    valid_names.map(lambda name: name.replace(".", "", 1)),
    valid_names.map(lambda name: "v" + name),
    st.text(max_size=12),
    st.just("\u0661.\u0662.\u0663"),  # Arabic-Indic digits: \d in Python, not in the contract
    st.just("1.2.3_é"),
)


@PROPERTY_SETTINGS
@given(name=st.one_of(valid_names, near_misses))
@example(name="0.0.0")
@example(name="1.2.3_beta")
@example(name="1.2.3_")
@example(name="1.2")
@example(name="1.2.3.4")
def test_version_name_regex(api: Api, name: str) -> None:
    api.emulator.admin.reset()
    response = api.create({"VersionName": name})
    if VALID_NAME.fullmatch(name):
        assert response.status_code == 200, response.text
        assert response.json()["VersionName"] == name
    else:
        assert (response.status_code, response.json()["Code"]) == (400, "InvalidParameter"), response.text
        assert api.emulator.admin.versions(MODEL_ID) == []


@PROPERTY_SETTINGS
@given(names=st.lists(valid_names, max_size=6, unique=True))
def test_assigned_name_is_next_minor_of_the_highest(api: Api, names: list[str]) -> None:
    api.emulator.admin.reset()
    for name in names:
        assert api.create({"VersionName": name}).status_code == 200
    assigned = api.create({}).json()["VersionName"]
    if not names:
        assert assigned == "0.1.0"
    else:
        major, minor = max(tuple(int(part) for part in name.split("_")[0].split(".")[:2]) for name in names)
        assert assigned == f"{major}.{minor + 1}.0"
