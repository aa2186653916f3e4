"""Quotas, every fault mode, the journal, admin gating, the state file and the CLI contract."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from alibabacloud_aiworkspace20210204 import models as sdk_models
from alibabacloud_aiworkspace20210204.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException, ThrottlingException

from pai_emulator.config import EmulatorConfig
from tests.contract.conftest import MODEL_ID
from tests.support.emulator import (
    AdminClient,
    AdminError,
    EmulatorProcess,
    InProcessEmulator,
    sdk_signed_request,
)

CREATE = sdk_models.CreateModelVersionRequest(uri="oss://b.e/p")


def list_versions(sdk: Client) -> sdk_models.ListModelVersionsResponseBody:
    body: sdk_models.ListModelVersionsResponseBody = sdk.list_model_versions(
        MODEL_ID, sdk_models.ListModelVersionsRequest()
    ).body
    return body


def test_quota_throttles_with_retry_after(sdk: Client, admin: AdminClient, emulator: EmulatorProcess) -> None:
    quotas = admin.set_quota("ListModelVersions", 2)
    assert quotas["ListModelVersions"] == 2
    assert quotas["GetModelVersion"] == 50
    assert quotas["CreateModelVersion"] == 20
    list_versions(sdk)
    list_versions(sdk)
    with pytest.raises(ThrottlingException) as caught:
        list_versions(sdk)
    assert (caught.value.status_code, caught.value.code) == (429, "Throttling.User")
    assert caught.value.retry_after >= 1
    raw = sdk_signed_request(emulator.url, "GET", f"/api/v1/models/{MODEL_ID}/versions", "ListModelVersions")
    response = raw.send()
    assert response.status_code == 429
    assert int(response.headers["x-acs-retry-after"]) >= 1
    # Other operations have their own buckets.
    sdk.create_model_version(MODEL_ID, CREATE)
    time.sleep(1.0)
    assert list_versions(sdk).total_count == 1
    assert [e["Code"] for e in admin.journal("ListModelVersions")].count("Throttling.User") == 2


def test_default_quota_allows_a_burst_of_fifty_reads(sdk: Client, admin: AdminClient) -> None:
    for _ in range(50):
        list_versions(sdk)
    admin.set_quota("ListModelVersions", 0)  # 0 = unlimited
    for _ in range(60):
        list_versions(sdk)
    assert all(entry["Status"] == 200 for entry in admin.journal())


def test_reset_restores_quotas(admin: AdminClient) -> None:
    admin.set_quota("GetModelVersion", 1)
    admin.reset()
    assert admin.quotas()["GetModelVersion"] == 50
    with pytest.raises(AdminError) as caught:
        admin.set_quota("NoSuchOperation", 1)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("code", "status", "expected_status", "expected_code"),
    [
        (None, None, 503, "ServiceUnavailable"),
        ("InternalError", None, 500, "InternalError"),
        ("ServiceUnavailable", 503, 503, "ServiceUnavailable"),
    ],
)
def test_error_fault(
    sdk: Client,
    admin: AdminClient,
    code: str | None,
    status: int | None,
    expected_status: int,
    expected_code: str,
) -> None:
    admin.add_fault("CreateModelVersion", "error", code=code, http_status=status, count=1)
    with pytest.raises(ServerException) as caught:
        sdk.create_model_version(MODEL_ID, CREATE)
    assert (caught.value.status_code, caught.value.code) == (expected_status, expected_code)
    assert admin.versions(MODEL_ID) == []
    # Count=1: the rule is spent, the next call goes through.
    assert sdk.create_model_version(MODEL_ID, CREATE).body.version_name == "0.1.0"
    assert admin.faults()[0]["Remaining"] == 0


def test_error_fault_with_client_status(sdk: Client, admin: AdminClient) -> None:
    admin.add_fault("*", "error", code="InvalidParameter", http_status=400)
    with pytest.raises(ClientException) as caught:
        list_versions(sdk)
    assert (caught.value.status_code, caught.value.code) == (400, "InvalidParameter")
    admin.clear_faults()
    assert list_versions(sdk).total_count == 0


def test_reset_fault_drops_the_connection_without_writing(sdk: Client, admin: AdminClient) -> None:
    admin.add_fault("CreateModelVersion", "reset", count=1)
    with pytest.raises(Exception, match="Connection") as caught:
        sdk.create_model_version(MODEL_ID, CREATE)
    assert not isinstance(caught.value, ClientException | ServerException)
    assert admin.versions(MODEL_ID) == []
    [entry] = admin.journal("CreateModelVersion")
    assert (entry["Status"], entry["Fault"]) == (0, "reset")


def test_commit_then_drop_performs_the_write(sdk: Client, admin: AdminClient) -> None:
    admin.add_fault("CreateModelVersion", "commit_then_drop", count=1)
    with pytest.raises(Exception, match="Connection"):
        sdk.create_model_version(
            MODEL_ID, sdk_models.CreateModelVersionRequest(uri="oss://b.e/p", version_name="1.0.0")
        )
    # The client saw a network error, yet the version exists: exactly the crash-safety hazard.
    assert [v["VersionName"] for v in admin.versions(MODEL_ID)] == ["1.0.0"]
    [entry] = admin.journal("CreateModelVersion")
    assert (entry["Status"], entry["VersionName"], entry["Fault"]) == (200, "1.0.0", "commit_then_drop")
    with pytest.raises(ClientException) as caught:
        sdk.create_model_version(
            MODEL_ID, sdk_models.CreateModelVersionRequest(uri="oss://b.e/p", version_name="1.0.0")
        )
    assert caught.value.code == "InvalidModelVersion.AlreadyExists"


def test_fixed_latency(sdk: Client, admin: AdminClient) -> None:
    admin.add_fault("ListModelVersions", "latency", latency_ms=300)
    started = time.perf_counter()
    list_versions(sdk)
    assert time.perf_counter() - started >= 0.3
    [entry] = admin.journal("ListModelVersions")
    assert entry["LatencyMs"] >= 300
    assert entry["Status"] == 200


def test_latency_distribution_and_composition_with_errors(sdk: Client, admin: AdminClient) -> None:
    admin.add_fault("*", "latency", latency_ms=20, latency_ms_max=60)
    admin.add_fault("GetModelVersion", "error", count=1)
    for _ in range(5):
        list_versions(sdk)
    with pytest.raises(ServerException):
        sdk.get_model_version(MODEL_ID, "0.1.0", sdk_models.GetModelVersionRequest())
    latencies = [entry["LatencyMs"] for entry in admin.journal()]
    assert len(latencies) == 6
    assert all(20 <= latency < 200 for latency in latencies)


def test_error_rate_is_probabilistic(sdk: Client, admin: AdminClient) -> None:
    admin.add_fault("ListModelVersions", "error", error_rate=0.5)
    admin.add_fault("GetModelVersion", "error", error_rate=0.0)
    outcomes = []
    for _ in range(40):  # below the 50-request burst of the read quota
        try:
            list_versions(sdk)
            outcomes.append(True)
        except ServerException:
            outcomes.append(False)
    # P(all 40 the same) = 2 * 0.5**40: both outcomes must appear.
    assert any(outcomes)
    assert not all(outcomes)
    with pytest.raises(ClientException) as caught:  # the 0-rate rule never fires: a plain not-found
        sdk.get_model_version(MODEL_ID, "0.1.0", sdk_models.GetModelVersionRequest())
    assert caught.value.code == "201900003"


def test_fault_rules_are_validated(admin: AdminClient) -> None:
    for bad in (
        {"operation": "Nope", "mode": "error"},
        {"operation": "*", "mode": "explode"},
        {"operation": "*", "mode": "latency"},
        {"operation": "*", "mode": "error", "error_rate": 1.5},
    ):
        with pytest.raises(AdminError) as caught:
            admin.add_fault(**bad)
        assert caught.value.status == 400


def test_journal_records_every_call(sdk: Client, admin: AdminClient) -> None:
    sdk.create_model_version(MODEL_ID, CREATE)
    sdk.get_model_version(MODEL_ID, "0.1.0", sdk_models.GetModelVersionRequest())
    with pytest.raises(ClientException):
        sdk.get_model_version(MODEL_ID, "7.7.7", sdk_models.GetModelVersionRequest())
    entries = admin.journal()
    assert [(e["Operation"], e["ModelId"], e["VersionName"], e["Status"], e["Code"]) for e in entries] == [
        ("CreateModelVersion", MODEL_ID, "0.1.0", 200, None),
        ("GetModelVersion", MODEL_ID, "0.1.0", 200, None),
        ("GetModelVersion", MODEL_ID, "7.7.7", 400, "201900003"),
    ]
    assert all(entry["LatencyMs"] >= 0 and entry["Time"].endswith("Z") for entry in entries)
    # Which client called (the operator puts its replica's name there): the SDK's own User-Agent.
    agents = {entry["UserAgent"] for entry in entries}
    assert len(agents) == 1
    assert "AlibabaCloud" in agents.pop()
    admin.clear_journal()
    assert admin.journal() == []


def test_admin_models_and_reset(sdk: Client, admin: AdminClient) -> None:
    with pytest.raises(ClientException):
        sdk.list_model_versions("model-dynamic", sdk_models.ListModelVersionsRequest())
    assert admin.add_model("model-dynamic") is True
    assert admin.add_model("model-dynamic") is False
    sdk.create_model_version("model-dynamic", CREATE)
    assert len(admin.versions("model-dynamic")) == 1
    admin.add_fault("*", "latency", latency_ms=1)
    admin.reset()
    assert admin.faults() == []
    assert admin.journal() == []
    assert admin.versions(MODEL_ID) == []
    with pytest.raises(AdminError) as caught:
        admin.versions("model-dynamic")
    assert (caught.value.status, caught.value.body["Code"]) == (400, "201900002")


def test_admin_api_is_absent_unless_enabled() -> None:
    with InProcessEmulator(EmulatorConfig(models=[MODEL_ID], admin=False)) as emulator:
        response = httpx.post(f"{emulator.url}/_emulator/reset")
        assert response.status_code == 404
        assert response.json()["Code"] == "InvalidApi.NotFound"


def test_state_file_survives_a_restart(tmp_path: Path, make_sdk: Callable[..., Client]) -> None:
    state = tmp_path / "state.json"
    with EmulatorProcess(models=[MODEL_ID], state_file=state) as first:
        sdk = Client_for(first)
        sdk.create_model_version(
            MODEL_ID, sdk_models.CreateModelVersionRequest(uri="oss://b.e/p", version_name="3.1.0")
        )
        before = first.admin.versions(MODEL_ID)
        first.admin.add_model("model-added")
    assert state.exists()
    with EmulatorProcess(models=[MODEL_ID], state_file=state) as second:
        assert second.admin.versions(MODEL_ID) == before
        assert second.admin.versions("model-added") == []
        assert Client_for(second).create_model_version(MODEL_ID, CREATE).body.version_name == "3.2.0"


def Client_for(emulator: EmulatorProcess) -> Client:
    from alibabacloud_tea_openapi.models import Config

    cred = emulator.credentials[0]
    return Client(
        Config(
            access_key_id=cred.access_key_id,
            access_key_secret=cred.access_key_secret,
            endpoint=emulator.endpoint,
            protocol="http",
        )
    )


def test_cli_prints_url_and_stops_cleanly_on_sigterm() -> None:
    process = EmulatorProcess(models=[MODEL_ID], admin=False).start()
    assert process.url.startswith("http://127.0.0.1:")
    assert process.port > 0
    assert process.stop() == 0
    assert "shutting down" in process.log_text()
