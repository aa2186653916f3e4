"""The official TrueFoundry SDK (truefoundry-sdk 0.6.0, `/api/svc/v1`) drives the emulator as a
process over real HTTP and accepts every answer; the documented `/api/ml/v1` prefix is exercised
with plain httpx against the same handlers."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from truefoundry_sdk import (
    ExternalBlobStorageSource,
    MlRepoManifest,
    ModelManifest,
    ModelVersionEnvironment,
    NotFoundError,
    SklearnFramework,
    TrueFoundry,
    TrueFoundryManagedSource,
)
from truefoundry_sdk.core.api_error import ApiError

from tests.support.tfy_emulator import TfyAdminClient, TfyAdminError, TfyEmulatorProcess

API_KEY = "tfy-contract-key"
SUBJECT = "contract-bot"
OTHER_KEY = "tfy-contract-other-key"
OTHER_SUBJECT = "alice@example.com"
REPO = "contract-repo"
OTHER_REPO = "contract-other"
TENANT = "acme"
URI = "s3://bucket/models/m/"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(scope="module")
def process() -> Iterator[TfyEmulatorProcess]:
    with TfyEmulatorProcess(
        api_key=API_KEY,
        subject=SUBJECT,
        other_api_keys={OTHER_KEY: OTHER_SUBJECT},
        ml_repos=[REPO, OTHER_REPO],
        tenant=TENANT,
    ) as running:
        yield running


@pytest.fixture
def emulator(process: TfyEmulatorProcess) -> Iterator[TfyEmulatorProcess]:
    process.admin.reset()
    yield process
    # Conflicts must never be 409 (the SDK retries 409 twice): whatever a test did, none was.
    assert [e for e in process.admin.journal() if e["Status"] == 409] == []


@pytest.fixture
def admin(emulator: TfyEmulatorProcess) -> TfyAdminClient:
    return emulator.admin


@pytest.fixture
def sdk(emulator: TfyEmulatorProcess) -> TrueFoundry:
    return TrueFoundry(api_key=API_KEY, base_url=emulator.url, timeout=10)


@pytest.fixture
def http(emulator: TfyEmulatorProcess) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=emulator.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
    ) as client:
        yield client


def manifest(name: str = "m1", **fields: Any) -> ModelManifest:
    fields.setdefault("ml_repo", REPO)
    fields.setdefault("metadata", {"team": "search"})
    fields.setdefault("source", ExternalBlobStorageSource(uri=URI))
    return ModelManifest(name=name, **fields)


def api_error(call: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value


def test_create_without_version_numbers_from_one_and_creates_the_model(
    sdk: TrueFoundry, emulator: TfyEmulatorProcess
) -> None:
    first = sdk.models.create_or_update(
        manifest=manifest(
            description="first",
            framework=SklearnFramework(serialization_format="joblib"),
            environment=ModelVersionEnvironment(python_version="3.11", pip_packages=["scikit-learn==1.5"]),
            run_id="run-1",
            step=3,
        )
    ).data
    second = sdk.models.create_or_update(manifest=manifest()).data

    assert first.fqn == emulator.fqn(REPO, "m1", 1) == f"model:{TENANT}/{REPO}/m1:1"
    assert second.fqn == emulator.fqn(REPO, "m1", 2)
    assert uuid.UUID(first.id) != uuid.UUID(second.id)
    assert first.model_id == second.model_id
    uuid.UUID(first.model_id)
    assert first.ml_repo_id.isdigit()
    # The full manifest comes back, name, ml_repo and the assigned version included.
    assert first.manifest.name == "m1"
    assert first.manifest.ml_repo == REPO
    assert first.manifest.version == 1
    assert second.manifest.version == 2
    assert first.manifest.description == "first"
    assert first.manifest.metadata == {"team": "search"}
    assert first.manifest.source == ExternalBlobStorageSource(uri=URI)
    assert isinstance(first.manifest.framework, SklearnFramework)
    assert first.manifest.framework.serialization_format == "joblib"
    assert first.manifest.environment is not None
    assert first.manifest.environment.pip_packages == ["scikit-learn==1.5"]
    assert (first.manifest.step, first.manifest.run_id) == (3, "run-1")
    assert first.created_by_subject.subject_slug == SUBJECT
    assert first.created_by_subject.subject_type == "virtualaccount"
    assert first.created_at is not None
    assert first.created_at == first.updated_at
    assert (first.tags, first.metrics) == ([], [])
    assert first.deployable is True  # a framework is declared
    assert second.deployable is False
    assert first.usage_code_snippet is not None
    assert first.fqn in first.usage_code_snippet

    model = sdk.models.get(id=first.model_id).data
    assert (model.name, model.fqn, model.ml_repo_id) == ("m1", emulator.fqn(REPO, "m1"), first.ml_repo_id)
    assert model.latest_version is not None
    assert model.latest_version.id == second.id
    # The raw wire timestamps: ISO-8601 UTC with milliseconds.
    raw = sdk.model_versions.with_raw_response.get(id=first.id).response.json()["data"]
    assert ISO.match(raw["created_at"])
    assert ISO.match(raw["updated_at"])


def test_created_by_subject_comes_from_the_token(emulator: TfyEmulatorProcess) -> None:
    other = TrueFoundry(api_key=OTHER_KEY, base_url=emulator.url, timeout=10)
    version = other.models.create_or_update(manifest=manifest()).data
    assert version.created_by_subject.subject_slug == OTHER_SUBJECT
    assert version.created_by_subject.subject_type == "user"
    assert emulator.admin.journal("ApplyModelVersion")[-1]["Subject"] == OTHER_SUBJECT


def test_update_with_version_changes_mutable_fields_in_place(sdk: TrueFoundry, admin: TfyAdminClient) -> None:
    created = sdk.models.create_or_update(manifest=manifest(description="d1", version_alias="v1-dev")).data
    time.sleep(0.005)  # timestamps have millisecond resolution
    updated = sdk.models.create_or_update(
        manifest=manifest(
            version=1,
            metadata={"team": "ranking", "nested": {"k": [1, 2]}},
            framework=SklearnFramework(),
            environment=ModelVersionEnvironment(python_version="3.12"),
            version_alias="v1-prod",
        )
    ).data
    assert (updated.id, updated.fqn) == (created.id, created.fqn)
    assert updated.manifest.metadata == {"team": "ranking", "nested": {"k": [1, 2]}}
    assert updated.manifest.version_alias == "v1-prod"
    # Apply semantics: the manifest states every mutable field, so the omitted description is unset.
    assert updated.manifest.description is None
    assert updated.created_at == created.created_at
    assert updated.updated_at is not None
    assert created.updated_at is not None
    assert updated.updated_at > created.updated_at
    # Re-applying the same manifest is a no-op: nothing changes, updated_at included.
    again = sdk.models.create_or_update(manifest=updated.manifest).data
    assert again.updated_at == updated.updated_at
    assert again.manifest == updated.manifest
    assert len(admin.versions(REPO, "m1")) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"source": ExternalBlobStorageSource(uri="s3://bucket/other/")},
        {"source": TrueFoundryManagedSource(uri=URI)},
        {"step": 1},
        {"run_id": "run-2"},
    ],
    ids=["source-uri", "source-type", "step", "run_id"],
)
def test_an_immutable_change_is_400_and_not_retried(
    sdk: TrueFoundry, admin: TfyAdminClient, change: dict[str, Any]
) -> None:
    # With a run, so that the step is stored (and so compared): without one it is dropped.
    sdk.models.create_or_update(manifest=manifest(run_id="run-1"))
    admin.clear_journal()
    change = {"run_id": "run-1", **change}
    error = api_error(lambda: sdk.models.create_or_update(manifest=manifest(version=1, **change)))
    assert error.status_code == 400
    assert error.body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "only description, metadata" in error.body["message"]
    assert [e["Status"] for e in admin.journal("ApplyModelVersion")] == [400]  # one attempt: no retry
    stored = admin.versions(REPO, "m1")[0]
    assert stored["manifest"]["source"] == {"type": "external", "uri": URI}
    assert stored["manifest"]["step"] == 0


def test_put_with_a_version_that_does_not_exist_is_404(sdk: TrueFoundry) -> None:
    sdk.models.create_or_update(manifest=manifest())
    for name, version in (("m1", 2), ("never-created", 1)):
        with pytest.raises(ApiError) as caught:
            sdk.models.create_or_update(manifest=manifest(name, version=version))
        error = caught.value
        assert error.status_code == 404
        assert error.body["message"] == f"model version model:{TENANT}/{REPO}/{name}:{version} not found"


def test_unknown_ml_repo_is_404(sdk: TrueFoundry, admin: TfyAdminClient) -> None:
    error = api_error(lambda: sdk.models.create_or_update(manifest=manifest(ml_repo="no-such-repo")))
    assert error.status_code == 404
    assert error.body == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": "ml repo no-such-repo not found",
    }
    assert admin.state()["Models"] == []


def test_get_by_id_and_by_fqn(sdk: TrueFoundry, emulator: TfyEmulatorProcess, admin: TfyAdminClient) -> None:
    versions = [sdk.models.create_or_update(manifest=manifest()).data for _ in range(3)]
    other = sdk.models.create_or_update(manifest=manifest(ml_repo=OTHER_REPO)).data
    assert sdk.model_versions.get(id=versions[1].id).data == versions[1]
    admin.clear_journal()
    by_fqn = sdk.model_versions.get_by_fqn(fqn=emulator.fqn(REPO, "m1", 2)).data
    assert by_fqn == versions[1]
    (call,) = admin.journal()
    assert call["Operation"] == "ListModelVersions"
    assert (
        call["Query"]
        == f"limit=1&offset=0&fqn=model%3A{TENANT}%2F{REPO}%2Fm1%3A2&include_internal_metadata=false"
    )
    # The same name in another repo is another model.
    assert sdk.model_versions.get_by_fqn(fqn=emulator.fqn(OTHER_REPO, "m1", 1)).data.id == other.id
    assert other.model_id != versions[0].model_id
    # `latest` names the highest version; a model fqn lists its versions, newest first.
    assert sdk.model_versions.get_by_fqn(fqn=emulator.fqn(REPO, "m1") + ":latest").data.id == versions[2].id
    assert [v.id for v in sdk.model_versions.list(fqn=emulator.fqn(REPO, "m1"))] == [
        v.id for v in reversed(versions)
    ]
    with pytest.raises(NotFoundError):
        sdk.model_versions.get_by_fqn(fqn=emulator.fqn(REPO, "m1", 9))
    with pytest.raises(NotFoundError):
        sdk.model_versions.get_by_fqn(fqn=f"model:another-tenant/{REPO}/m1:1")
    with pytest.raises(NotFoundError):
        sdk.model_versions.get(id=str(uuid.uuid4()))
    assert api_error(lambda: sdk.model_versions.get_by_fqn(fqn="m1:1")).status_code == 422


def test_list_pages_through_250_versions_in_descending_order(sdk: TrueFoundry, admin: TfyAdminClient) -> None:
    for _ in range(250):
        sdk.models.create_or_update(manifest=manifest("big"))
    model_id = admin.versions(REPO, "big")[0]["model_id"]
    admin.clear_journal()

    pager = sdk.model_versions.list(model_id=model_id, limit=100)
    numbers = [version.manifest.version for version in pager]

    assert numbers == list(range(250, 0, -1))
    # The SDK pages by offset += len(page) and stops at the first empty page.
    queries = [e["Query"] for e in admin.journal("ListModelVersions")]
    assert [re.findall(r"(?:^|&)offset=(\d+)", query) for query in queries] == [
        ["0"],
        ["100"],
        ["200"],
        ["250"],
    ]
    assert all(re.search(r"(?:^|&)limit=100(&|$)", query) for query in queries)
    last = sdk.model_versions.list(model_id=model_id, limit=100, offset=200)
    assert last.response.pagination.model_dump() == {"total": 250, "offset": 200, "limit": 100}
    assert len(last.items or []) == 50
    past_the_end = sdk.model_versions.list(model_id=model_id, limit=100, offset=300)
    assert (past_the_end.items, past_the_end.response.pagination.total) == ([], 250)


def test_alias_set_move_and_duplicate(sdk: TrueFoundry, admin: TfyAdminClient) -> None:
    sdk.models.create_or_update(manifest=manifest(version_alias="v1-prod"))
    sdk.models.create_or_update(manifest=manifest())
    admin.clear_journal()
    duplicate = api_error(
        lambda: sdk.models.create_or_update(manifest=manifest(version=2, version_alias="v1-prod"))
    )
    assert duplicate.status_code == 400
    assert "v1-prod" in duplicate.body["message"]
    assert [e["Status"] for e in admin.journal("ApplyModelVersion")] == [400]
    # A new version cannot take it either (and nothing is created).
    assert (
        api_error(lambda: sdk.models.create_or_update(manifest=manifest(version_alias="v1-prod"))).status_code
        == 400
    )
    assert len(admin.versions(REPO, "m1")) == 2
    # Moving = unset on the holder, then set on the new version.
    sdk.models.create_or_update(manifest=manifest(version=1))
    moved = sdk.models.create_or_update(manifest=manifest(version=2, version_alias="v1-prod")).data
    assert moved.manifest.version_alias == "v1-prod"
    assert [v["manifest"].get("version_alias") for v in admin.versions(REPO, "m1")] == [None, "v1-prod"]
    # The same alias in another model is fine.
    sdk.models.create_or_update(manifest=manifest("m2", version_alias="v1-prod"))
    # The format: v followed by alphanumerics, "." and "-" inside.
    invalid = api_error(lambda: sdk.models.create_or_update(manifest=manifest(version_alias="prod")))
    assert invalid.status_code == 422
    assert invalid.body["statusCode"] == 422
    assert invalid.body["details"][0]["loc"] == ["body", "manifest", "version_alias"]


def test_tags_are_unique_per_model_and_force_moves_them(sdk: TrueFoundry, admin: TfyAdminClient) -> None:
    one, two = (sdk.models.create_or_update(manifest=manifest()).data for _ in range(2))
    other_model = sdk.models.create_or_update(manifest=manifest("m2")).data

    sdk.model_versions.apply_tags(model_version_id=one.id, tags=["prod", "stable"])
    sdk.model_versions.apply_tags(model_version_id=other_model.id, tags=["prod"])  # another model: fine
    admin.clear_journal()
    taken = api_error(lambda: sdk.model_versions.apply_tags(model_version_id=two.id, tags=["prod"]))
    assert taken.status_code == 400
    assert "force" in taken.body["message"]
    assert [e["Status"] for e in admin.journal("ApplyModelVersionTags")] == [400]
    assert sdk.model_versions.get(id=two.id).data.tags == []

    sdk.model_versions.apply_tags(model_version_id=two.id, tags=["prod", "canary"], force=True)
    assert sdk.model_versions.get(id=one.id).data.tags == ["stable"]
    assert sdk.model_versions.get(id=two.id).data.tags == ["prod", "canary"]
    assert [v.id for v in sdk.model_versions.list(tag="prod", model_id=one.model_id)] == [two.id]
    # The call replaces the version's tag list.
    sdk.model_versions.apply_tags(model_version_id=two.id, tags=["canary"])
    assert sdk.model_versions.get(id=two.id).data.tags == ["canary"]
    sdk.model_versions.apply_tags(model_version_id=two.id, tags=[])
    assert sdk.model_versions.get(id=two.id).data.tags == []
    with pytest.raises(ApiError) as missing:
        sdk.model_versions.apply_tags(model_version_id=str(uuid.uuid4()), tags=["x"])
    assert missing.value.status_code == 404


def test_delete_then_get_is_not_found_and_numbers_are_not_reused(
    sdk: TrueFoundry, emulator: TfyEmulatorProcess, admin: TfyAdminClient
) -> None:
    one, two = (sdk.models.create_or_update(manifest=manifest(version_alias=f"v{n}")).data for n in (1, 2))
    sdk.model_versions.apply_tags(model_version_id=two.id, tags=["prod"])

    assert sdk.model_versions.with_raw_response.delete(id=two.id).response.json() == {}
    with pytest.raises(NotFoundError):
        sdk.model_versions.get(id=two.id)
    with pytest.raises(NotFoundError):
        sdk.model_versions.delete(id=two.id)
    with pytest.raises(NotFoundError):
        sdk.model_versions.get_by_fqn(fqn=two.fqn)
    assert [v.id for v in sdk.model_versions.list(model_id=one.model_id)] == [one.id]
    # Updating a deleted version is a 404 too.
    assert api_error(lambda: sdk.models.create_or_update(manifest=manifest(version=2))).status_code == 404

    # The next version is 3, not 2 again; the deleted version's alias and tag are free.
    three = sdk.models.create_or_update(manifest=manifest(version_alias="v2")).data
    assert three.fqn == emulator.fqn(REPO, "m1", 3)
    sdk.model_versions.apply_tags(model_version_id=three.id, tags=["prod"])
    stored = admin.versions(REPO, "m1")
    assert [(v["manifest"]["version"], v["DeletedAt"] is not None) for v in stored] == [
        (1, False),
        (2, True),
        (3, False),
    ]


def test_models_and_ml_repos(sdk: TrueFoundry, emulator: TfyEmulatorProcess, admin: TfyAdminClient) -> None:
    added = admin.add_ml_repo("added-repo")
    assert admin.add_ml_repo("added-repo") == added  # idempotent
    assert sdk.models.create_or_update(manifest=manifest(ml_repo="added-repo")).data.ml_repo_id == added
    repo = next(iter(sdk.ml_repos.list(name=REPO, limit=1)))
    assert repo.id.isdigit()
    assert (repo.manifest.name, repo.tenant_name) == (REPO, TENANT)
    assert sdk.ml_repos.get(id=repo.id).data == repo
    with pytest.raises(NotFoundError):
        sdk.ml_repos.get(id="999999")

    created = sdk.ml_repos.create_or_update(
        manifest=MlRepoManifest(name="new-repo", storage_integration_fqn="truefoundry:aws:s3:store")
    ).data
    assert created.id.isdigit()
    assert created.created_by_subject.subject_slug == SUBJECT
    version = sdk.models.create_or_update(manifest=manifest(ml_repo="new-repo")).data
    assert version.ml_repo_id == created.id
    sdk.models.create_or_update(manifest=manifest("m2", ml_repo="new-repo"))

    assert sorted(m.name for m in sdk.models.list(ml_repo_id=created.id)) == ["m1", "m2"]
    model = sdk.models.get_by_fqn(fqn=emulator.fqn("new-repo", "m1")).data
    assert model.id == version.model_id
    sdk.models.delete(id=model.id)
    with pytest.raises(NotFoundError):
        sdk.models.get(id=model.id)
    with pytest.raises(NotFoundError):
        sdk.model_versions.get(id=version.id)
    # The same name again is a new model whose numbering starts over.
    again = sdk.models.create_or_update(manifest=manifest(ml_repo="new-repo")).data
    assert again.model_id != model.id
    assert again.manifest.version == 1


def test_list_filters(sdk: TrueFoundry) -> None:
    internal_metadata = {"k": 1, ".truefoundry": {"x": 1}}
    a1 = sdk.models.create_or_update(manifest=manifest("a", run_id="r1", metadata=internal_metadata)).data
    a2 = sdk.models.create_or_update(manifest=manifest("a", run_id="r2", step=5)).data
    b1 = sdk.models.create_or_update(manifest=manifest("b", run_id="r1", ml_repo=OTHER_REPO)).data
    repo_id = a2.ml_repo_id

    def ids(**query: Any) -> list[str]:
        return [v.id for v in sdk.model_versions.list(**query)]

    assert ids(ml_repo_id=repo_id) == [a2.id, a1.id]
    assert ids(name="a", version=1) == [a1.id]
    # Across models: highest version first, then the newest.
    assert ids(run_ids=["r1"]) == [b1.id, a1.id]
    assert set(ids(run_ids=["r1", "r2"])) == {a1.id, a2.id, b1.id}
    assert ids(run_steps=[5]) == [a2.id]
    assert ids(model_id=b1.model_id) == [b1.id]
    assert ids(ml_repo_id="424242") == []
    # Internal metadata (the `.truefoundry` key) is shown only when asked for, by list and get alike.
    (listed,) = sdk.model_versions.list(name="a", version=1)
    assert listed.manifest.metadata == {"k": 1}
    (internal,) = sdk.model_versions.list(name="a", version=1, include_internal_metadata=True)
    assert internal.manifest.metadata == internal_metadata
    assert sdk.model_versions.get(id=a1.id).data.manifest.metadata == {"k": 1}
    asked = {"additional_query_parameters": {"include_internal_metadata": "true"}}
    got = sdk.model_versions.get(id=a1.id, request_options=asked).data  # type: ignore[arg-type]
    assert got.manifest.metadata == internal_metadata


def test_wrong_or_missing_token_is_401(emulator: TfyEmulatorProcess, admin: TfyAdminClient) -> None:
    wrong = TrueFoundry(api_key="tfy-not-a-key", base_url=emulator.url, timeout=10)
    error = api_error(lambda: wrong.models.create_or_update(manifest=manifest()))
    assert error.status_code == 401
    assert error.body["error_code"] == "UNAUTHORIZED"
    assert "tfy-not-a-key" not in str(error.body)
    with httpx.Client(base_url=emulator.url, timeout=10) as anonymous:
        for prefix in ("/api/svc/v1", "/api/ml/v1"):
            response = anonymous.get(f"{prefix}/model-versions")
            assert response.status_code == 401
            assert response.json()["error_code"] == "UNAUTHORIZED"
    assert [e["Status"] for e in admin.journal()] == [401, 401, 401]
    assert admin.state()["Models"] == []
    assert "tfy-not-a-key" not in emulator.log_text()
    assert API_KEY not in emulator.log_text()


def test_an_injected_503_is_retried_by_the_sdk(sdk: TrueFoundry, admin: TfyAdminClient) -> None:
    version = sdk.models.create_or_update(manifest=manifest()).data
    admin.add_fault("GetModelVersion", "error", count=1)  # 503 by default
    admin.clear_journal()
    assert sdk.model_versions.get(id=version.id).data.id == version.id
    attempts = admin.journal("GetModelVersion")
    assert [(e["Status"], e["Fault"]) for e in attempts] == [(503, "error"), (200, None)]
    assert {e["UserAgent"] for e in attempts} == {"truefoundry-sdk/0.6.0"}

    # Retries run out: max_retries + 1 attempts, then the status reaches the caller.
    admin.add_fault("ApplyModelVersion", "error", http_status=500, count=2)
    admin.clear_journal()
    error = api_error(
        lambda: sdk.models.create_or_update(manifest=manifest(), request_options={"max_retries": 1})
    )
    assert error.status_code == 500
    assert error.body == {"error_code": "INTERNAL_ERROR", "message": "Injected fault."}
    assert [e["Status"] for e in admin.journal("ApplyModelVersion")] == [500, 500]
    assert len(admin.versions(REPO, "m1")) == 1  # an injected error writes nothing


def test_a_quota_429_is_honoured_by_the_sdk_retry(
    sdk: TrueFoundry, admin: TfyAdminClient, http: httpx.Client
) -> None:
    version = sdk.models.create_or_update(manifest=manifest()).data
    admin.set_quotas({"GetModelVersion": 1})
    admin.clear_journal()
    sdk.model_versions.get(id=version.id)
    started = time.monotonic()
    sdk.model_versions.get(id=version.id)  # 429 with Retry-After: 1, then a retry that succeeds
    elapsed = time.monotonic() - started
    assert [e["Status"] for e in admin.journal("GetModelVersion")] == [200, 429, 200]
    assert elapsed >= 0.9  # the SDK waited as Retry-After said

    # On the wire: whole seconds until a token is back (one per 10 s here), and an HttpError body.
    admin.set_quotas({"GetModel": 0.1})
    assert http.get(f"/api/svc/v1/models/{version.model_id}").status_code == 200
    throttled = http.get(f"/api/svc/v1/models/{version.model_id}")
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["Retry-After"]) <= 10
    assert throttled.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"


def test_commit_then_drop_commits_the_write_and_loses_the_answer(
    sdk: TrueFoundry, admin: TfyAdminClient
) -> None:
    admin.add_fault("ApplyModelVersion", "commit_then_drop", count=1)
    with pytest.raises(httpx.TransportError):
        sdk.models.create_or_update(manifest=manifest())
    (entry,) = admin.journal("ApplyModelVersion")
    assert (entry["Status"], entry["Fault"]) == (200, "commit_then_drop")
    (stored,) = admin.versions(REPO, "m1")
    assert stored["id"] == entry["VersionId"]


def test_reset_and_latency_faults(sdk: TrueFoundry, admin: TfyAdminClient) -> None:
    admin.add_fault("ApplyModelVersion", "reset", count=1)
    with pytest.raises(httpx.TransportError):
        sdk.models.create_or_update(manifest=manifest())
    (entry,) = admin.journal("ApplyModelVersion")
    assert (entry["Status"], entry["Fault"]) == (0, "reset")
    assert admin.state()["Versions"] == []  # reset before anything was written

    admin.add_fault("*", "latency", latency_ms=300, count=1)
    admin.clear_journal()
    started = time.monotonic()
    sdk.models.create_or_update(manifest=manifest())
    assert time.monotonic() - started >= 0.3
    (entry,) = admin.journal()
    assert entry["LatencyMs"] >= 300
    assert [rule["Remaining"] for rule in admin.faults()] == [0, 0]
    with pytest.raises(TfyAdminError) as unknown:
        admin.add_fault("CreateModelVersion", "error")  # PAI's name, not one of this API's
    assert unknown.value.status == 400


def test_ml_prefix_serves_the_same_handlers(sdk: TrueFoundry, http: httpx.Client) -> None:
    body = {
        "manifest": {
            "type": "model-version",
            "name": "m1",
            "ml_repo": REPO,
            "metadata": {},
            "source": {"type": "external", "uri": URI},
        }
    }
    created = http.put("/api/ml/v1/model-versions", json=body)
    assert created.status_code == 200, created.text
    version = created.json()["data"]
    # Same store behind both prefixes.
    assert sdk.model_versions.get(id=version["id"]).data.fqn == version["fqn"]
    listed = http.get("/api/ml/v1/model-versions", params={"fqn": version["fqn"], "limit": 1}).json()
    assert listed["pagination"]["total"] == 1
    assert listed["data"][0]["id"] == version["id"]
    tags = http.put("/api/ml/v1/model-versions/tags", json={"model_version_id": version["id"], "tags": ["a"]})
    assert (tags.status_code, tags.json()) == (200, {})
    assert http.get(f"/api/ml/v1/models/{version['model_id']}").json()["data"]["name"] == "m1"
    assert (
        http.get("/api/ml/v1/ml-repos", params={"name": REPO}).json()["data"][0]["id"]
        == version["ml_repo_id"]
    )

    # Validation errors: FastAPI's shape on /api/ml, HttpError on /api/svc.
    del body["manifest"]["metadata"]
    ml = http.put("/api/ml/v1/model-versions", json=body)
    assert ml.status_code == 422
    assert ml.json() == {
        "detail": [{"loc": ["body", "manifest", "metadata"], "msg": "Field required", "type": "missing"}]
    }
    svc = http.put("/api/svc/v1/model-versions", json=body)
    assert svc.status_code == 422
    assert svc.json()["statusCode"] == 422
    assert svc.json()["details"] == ml.json()["detail"]
    assert http.get("/api/ml/v1/model-versions", params={"limit": 0}).json()["detail"][0]["loc"] == [
        "query",
        "limit",
    ]
    # Other errors are the fork's shape on both prefixes; every answer is JSON, unknown paths too,
    # and a wrong path says so (ENDPOINT_NOT_FOUND), unlike a missing version.
    missing = http.get(f"/api/ml/v1/model-versions/{uuid.uuid4()}")
    assert (missing.status_code, missing.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    unknown = http.post("/api/ml/v1/model-versions")
    assert (unknown.status_code, unknown.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")
    deleted = http.delete(f"/api/ml/v1/model-versions/{version['id']}")
    assert (deleted.status_code, deleted.json()) == (200, {})


def test_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "tfy-state.json"
    kwargs: dict[str, Any] = {"api_key": API_KEY, "ml_repos": [REPO], "tenant": TENANT, "state_file": state}
    with TfyEmulatorProcess(**kwargs) as first:
        client = TrueFoundry(api_key=API_KEY, base_url=first.url, timeout=10)
        one = client.models.create_or_update(manifest=manifest(version_alias="v1")).data
        two = client.models.create_or_update(manifest=manifest()).data
        client.model_versions.apply_tags(model_version_id=one.id, tags=["prod"])
        client.model_versions.delete(id=two.id)
    with TfyEmulatorProcess(**kwargs) as second:
        client = TrueFoundry(api_key=API_KEY, base_url=second.url, timeout=10)
        restored = client.model_versions.get(id=one.id).data
        assert (restored.fqn, restored.tags, restored.manifest.version_alias) == (one.fqn, ["prod"], "v1")
        with pytest.raises(NotFoundError):
            client.model_versions.get(id=two.id)
        assert client.models.create_or_update(manifest=manifest()).data.manifest.version == 3


def test_a_truefoundry_source_exists_only_after_staging(sdk: TrueFoundry, admin: TfyAdminClient) -> None:
    """`truefoundry`'s log_model: stage, upload, then PUT with uri = the staged storage root."""
    unstaged = api_error(
        lambda: sdk.models.create_or_update(manifest=manifest(source=TrueFoundryManagedSource(uri=URI)))
    )
    assert (unstaged.status_code, unstaged.body["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert "stage" in unstaged.body["message"]

    staged = sdk.artifact_versions.stage(manifest=manifest(metadata={}, source=TrueFoundryManagedSource()))
    committed = sdk.models.create_or_update(
        manifest=manifest(source=TrueFoundryManagedSource(uri=staged.storage_root))
    ).data
    assert committed.id == staged.id
    assert committed.model_id == staged.artifact_id
    assert committed.manifest.source == TrueFoundryManagedSource(uri=staged.storage_root)
    assert [e["Status"] for e in admin.journal("StageArtifactVersion")] == [200]

    # A failed stage (what log_model reports when an upload fails) commits nothing.
    failed = sdk.artifact_versions.stage(manifest=manifest(metadata={}, source=TrueFoundryManagedSource()))
    sdk.artifact_versions.mark_stage_failure(id=failed.id)
    after_failure = api_error(
        lambda: sdk.models.create_or_update(
            manifest=manifest(source=TrueFoundryManagedSource(uri=failed.storage_root))
        )
    )
    assert after_failure.status_code == 404
    assert [v["id"] for v in admin.versions(REPO, "m1")] == [committed.id]


def test_dialect_switches_per_test(admin: TfyAdminClient, http: httpx.Client, sdk: TrueFoundry) -> None:
    first = sdk.models.create_or_update(manifest=manifest(version_alias="v1")).data
    body = {"manifest": manifest(version_alias="v1").model_dump(mode="json", exclude_none=True)}

    conflict = http.put("/api/svc/v1/model-versions", json=body)
    assert (conflict.status_code, conflict.json()["error_code"]) == (400, "RESOURCE_ALREADY_EXISTS")
    admin.set_dialect(conflict_status=409)
    assert http.put("/api/svc/v1/model-versions", json=body).status_code == 409
    admin.set_dialect(error_shape="current")
    current = http.put("/api/svc/v1/model-versions", json=body)
    assert (current.status_code, current.json()["code"]) == (400, "VERSION_ALIAS_IN_USE")
    unknown = http.get("/api/svc/v2/model-versions")
    assert unknown.json() == {"statusCode": 404, "message": "Cannot GET /api/svc/v2/model-versions"}

    sdk.model_versions.delete(id=first.id)
    assert http.get(f"/api/svc/v1/model-versions/{first.id}").status_code == 404
    admin.set_dialect(deleted_visible=True)
    deleted = http.get(f"/api/svc/v1/model-versions/{first.id}")
    assert (deleted.status_code, deleted.json()["data"]["status"]) == (200, "DELETED")
    assert sdk.model_versions.get(id=first.id).data.id == first.id  # the SDK parses it (extra="allow")
    assert http.get("/api/svc/v1/model-versions", params={"name": "m1"}).json()["data"] == []
    admin.reset()
    assert admin.dialect() == {"ErrorShape": "mlflow", "ConflictStatus": 400, "DeletedVisible": False}


def test_metrics_with_float_fields_parse_in_the_sdk(sdk: TrueFoundry, admin: TfyAdminClient) -> None:
    version = sdk.models.create_or_update(manifest=manifest()).data
    admin.set_metrics(version.id, [{"key": "loss", "value": 0.25, "timestamp": 1767225600123.5, "step": 1.5}])
    (metric,) = sdk.model_versions.get(id=version.id).data.metrics or []
    assert (metric.key, metric.timestamp, metric.step) == ("loss", 1767225600123.5, 1.5)
