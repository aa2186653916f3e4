"""TrueFoundry's own ML client (`truefoundry` 0.17.5, not only `truefoundry-sdk`) drives the
emulator as a data scientist would: `client.log_model(...)` from a local folder (stage, signed-URL
uploads, the PUT that commits the staged version, then the fqn lookup) or from a bucket path, and
`ModelVersion.from_fqn(...).update()` (the whole manifest sent back, read without internal
metadata). It runs in a venv of its own (tests/support/tfy_ml.py: its pins exclude the project's),
as a subprocess; every assertion reads the emulator's admin API, an independent view."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.tfy_emulator import TfyAdminClient, TfyEmulatorProcess
from tests.support.tfy_ml import run_driver

REPO = "repo-ml"
TENANT = "acme"


def _jwt(**claims: object) -> str:
    """A JWT-shaped key: `truefoundry` decodes it without verifying (tenantName, exp), so no login
    round trip is needed; the emulator only compares it with its configured keys."""

    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


API_KEY = _jwt(tenantName=TENANT, exp=int(time.time()) + 24 * 3600, username="data-scientist")

DIALECTS = {
    "mlflow": {"error_shape": "mlflow"},
    "mlflow-409": {"error_shape": "mlflow", "conflict_status": 409},
    "current": {"error_shape": "current"},
    "deleted-visible": {"deleted_visible": True},
}


@pytest.fixture(scope="module")
def process() -> Iterator[TfyEmulatorProcess]:
    with TfyEmulatorProcess(api_key=API_KEY, subject="ds@acme.io", ml_repos=[REPO], tenant=TENANT) as running:
        yield running


@pytest.fixture
def admin(process: TfyEmulatorProcess) -> Iterator[TfyAdminClient]:
    process.admin.reset()
    yield process.admin
    process.admin.reset()  # the dialect too


@pytest.fixture(params=list(DIALECTS))
def dialect(admin: TfyAdminClient, request: pytest.FixtureRequest) -> str:
    """Each dialect switch (a driver run costs seconds: only the update path runs under all)."""
    admin.set_dialect(**DIALECTS[request.param])
    return str(request.param)


def tfy(process: TfyEmulatorProcess, **action: Any) -> dict[str, Any]:
    return run_driver(process.url, API_KEY, action)


def stored(admin: TfyAdminClient, name: str) -> dict[str, Any]:
    (version,) = admin.versions(REPO, name)
    return version


def test_log_model_stages_uploads_and_commits(process: TfyEmulatorProcess, admin: TfyAdminClient) -> None:
    name = f"m-{uuid.uuid4().hex[:8]}"
    logged = tfy(process, action="log", ml_repo=REPO, name=name, metadata={"team": "a"}, description="d")

    calls = [e["Operation"] for e in admin.journal()]
    assert calls == [
        "StageArtifactVersion",
        "GetSignedUrls",
        "ApplyModelVersion",
        "ListModelVersions",
        "GetModel",
    ]
    assert all(e["Status"] == 200 for e in admin.journal())
    staged_id = admin.journal("StageArtifactVersion")[0]["VersionId"]
    version = stored(admin, name)
    assert version["id"] == staged_id == logged["id"]
    assert logged["fqn"] == version["fqn"] == f"model:{TENANT}/{REPO}/{name}:1"
    assert version["manifest"]["source"]["type"] == "truefoundry"
    assert staged_id in version["manifest"]["source"]["uri"]
    assert set(version["Files"]) == {"model.joblib", "README.md"}
    # truefoundry's own metadata: stored, hidden from what the client read back.
    internal = version["manifest"]["metadata"][".truefoundry"]
    assert internal["artifact_size"] == sum(version["Files"].values())
    assert logged["metadata"] == {"team": "a"}
    assert "step" not in version["manifest"]  # log_model sends step 0 and no run: not kept


def test_update_keeps_internal_metadata(
    process: TfyEmulatorProcess, admin: TfyAdminClient, dialect: str
) -> None:
    name = f"m-{uuid.uuid4().hex[:8]}"
    logged = tfy(process, action="log", ml_repo=REPO, name=name, metadata={"team": "a"})
    internal = stored(admin, name)["manifest"]["metadata"][".truefoundry"]
    admin.clear_journal()

    updated = tfy(
        process,
        action="update",
        fqn=logged["fqn"],
        description="tuned",
        metadata={"team": "b"},
        version_alias="v1-rc",
    )
    assert [e["Operation"] for e in admin.journal()] == [
        "ListModelVersions",  # from_fqn: get_by_fqn, internal metadata not asked for
        "GetModel",
        "ApplyModelVersion",  # update(): the whole manifest, with its version
    ]
    assert "include_internal_metadata=false" in admin.journal("ListModelVersions")[0]["Query"]
    version = stored(admin, name)
    assert (version["manifest"]["description"], version["manifest"]["version_alias"]) == ("tuned", "v1-rc")
    assert version["manifest"]["metadata"] == {"team": "b", ".truefoundry": internal}
    assert (updated["description"], updated["metadata"]) == ("tuned", {"team": "b"})
    assert version["id"] == logged["id"]


def test_log_model_from_a_bucket_path_is_an_external_source(
    process: TfyEmulatorProcess, admin: TfyAdminClient
) -> None:
    name = f"m-{uuid.uuid4().hex[:8]}"
    uri = "s3://team-bucket/models/churn/2026-12-01/"
    tfy(process, action="log", ml_repo=REPO, name=name, external_uri=uri)
    assert [e["Operation"] for e in admin.journal()][:1] == ["ApplyModelVersion"]  # nothing staged
    version = stored(admin, name)
    assert version["manifest"]["source"] == {"type": "external", "uri": uri}
    assert ".truefoundry" in version["manifest"]["metadata"]
