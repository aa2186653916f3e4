"""The TrueFoundry emulator's store rules, without HTTP: numbering, apply semantics, aliases, tags,
list filters and ordering, soft deletion, and the state round trip."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tfy_emulator import errors
from tfy_emulator import fqn as fqns
from tfy_emulator.store import FIRST_ML_REPO_ID, ModelQuery, Store, Version, VersionQuery
from tfy_emulator.validation import ApplyModelVersionBody, ModelManifest, parse_body

ALICE = {"subjectId": "a", "subjectType": "user", "subjectSlug": "alice@example.com"}
TENANT = "acme"


class Clock:
    """Each reading is one millisecond after the previous one."""

    def __init__(self) -> None:
        self._now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self._now += timedelta(milliseconds=1)
        return self._now


@pytest.fixture
def store() -> Store:
    counter = itertools.count(1)
    return Store(TENANT, ["repo-a", "repo-b"], clock=Clock(), new_id=lambda: f"id-{next(counter)}")


def manifest(name: str = "m1", **fields: Any) -> ModelManifest:
    body = {
        "type": "model-version",
        "name": name,
        "ml_repo": "repo-a",
        "metadata": {},
        "source": {"type": "external", "uri": "s3://b/m"},
        **fields,
    }
    return parse_body(ApplyModelVersionBody, {"manifest": body}).manifest


def apply(store: Store, name: str = "m1", **fields: Any) -> Version:
    return store.apply_version(manifest(name, **fields), ALICE)


def error_of(call: Any) -> errors.ApiError:
    with pytest.raises(errors.ApiError) as caught:
        call()
    return caught.value


def listed(store: Store, offset: int = 0, limit: int = 100, **query: Any) -> list[str]:
    return [store.version_fqn(v) for v in store.list_versions(VersionQuery(**query), offset, limit)[1]]


def test_seeded_repos_get_numeric_ids_in_order(store: Store) -> None:
    assert [(r.id, r.name) for r in store.ml_repos.values()] == [
        (str(FIRST_ML_REPO_ID), "repo-a"),
        (str(FIRST_ML_REPO_ID + 1), "repo-b"),
    ]
    repo, created = store.add_ml_repo("repo-a")
    assert (repo.id, created) == (str(FIRST_ML_REPO_ID), False)


def test_versions_number_from_one_and_deleted_numbers_are_never_reused(store: Store) -> None:
    one, two, three = (apply(store) for _ in range(3))
    assert [v.number for v in (one, two, three)] == [1, 2, 3]
    assert one.model_id == two.model_id == three.model_id
    store.delete_version(three.id)
    store.delete_version(two.id)
    assert apply(store).number == 4
    assert store.version_fqn(store.get_version(one.id)) == "model:acme/repo-a/m1:1"


def test_deleting_the_model_deletes_its_versions_and_a_new_model_starts_over(store: Store) -> None:
    first = apply(store)
    apply(store)
    store.delete_model(first.model_id)
    assert error_of(lambda: store.get_version(first.id)).status == 404
    assert error_of(lambda: store.get_model(first.model_id)).status == 404
    again = apply(store)
    assert (again.number, again.model_id != first.model_id) == (1, True)


def test_update_replaces_the_mutable_fields_and_keeps_identity(store: Store) -> None:
    created = apply(store, description="d", version_alias="v1", framework={"type": "pytorch"})
    updated = apply(store, version=1, metadata={"k": 1}, environment={"python_version": "3.11"})
    assert updated is created
    assert updated.manifest == {
        "type": "model-version",
        "metadata": {"k": 1},
        "source": {"type": "external", "uri": "s3://b/m"},
        "environment": {"python_version": "3.11"},
    }  # description, alias and framework were left out, so they are unset now (no run: no step)
    assert updated.updated_at > updated.created_at


def test_a_no_op_update_keeps_updated_at(store: Store) -> None:
    created = apply(store, description="d")
    stamp = created.updated_at
    apply(store, version=1, description="d")
    assert created.updated_at == stamp


def test_every_immutable_difference_is_named_in_one_400(store: Store) -> None:
    apply(store, run_id="r1")
    error = error_of(
        lambda: apply(
            store, version=1, source={"type": "truefoundry", "uri": "s3://b/m"}, step=2, run_id="r2"
        )
    )
    assert error.status == 400
    assert "source, step, run_id" in error.message
    assert error_of(lambda: apply(store, version=1)).message.startswith("Cannot change run_id")


def test_put_with_an_unknown_version_or_repo_is_404_and_creates_nothing(store: Store) -> None:
    assert (
        error_of(lambda: apply(store, version=1)).message == "model version model:acme/repo-a/m1:1 not found"
    )
    assert error_of(lambda: apply(store, ml_repo="nope")).message == "ml repo nope not found"
    assert store.models == {}


def test_an_alias_is_unique_within_a_model_and_freed_by_deletion(store: Store) -> None:
    first = apply(store, version_alias="v1-prod")
    apply(store)
    assert error_of(lambda: apply(store, version=2, version_alias="v1-prod")).status == 400
    assert error_of(lambda: apply(store, version_alias="v1-prod")).status == 400
    assert len(store.versions) == 2
    apply(store, "m2", version_alias="v1-prod")  # another model
    apply(store, version=1, version_alias="v1-prod")  # its own alias again: fine
    store.delete_version(first.id)
    assert apply(store, version=2, version_alias="v1-prod").manifest["version_alias"] == "v1-prod"


def test_tags_replace_the_list_and_force_moves_them(store: Store) -> None:
    one, two = apply(store), apply(store)
    other = apply(store, "m2")
    store.apply_tags(one.id, ["prod", "stable", "prod"], force=False)
    assert one.tags == ["prod", "stable"]
    store.apply_tags(other.id, ["prod"], force=False)  # tags are per model

    error = error_of(lambda: store.apply_tags(two.id, ["prod", "new"], force=False))
    assert (error.status, "prod (on model:acme/repo-a/m1:1)" in error.message) == (400, True)
    assert (one.tags, two.tags) == (["prod", "stable"], [])

    stamp = one.updated_at
    store.apply_tags(two.id, ["prod", "new"], force=True)
    assert (one.tags, two.tags, other.tags) == (["stable"], ["prod", "new"], ["prod"])
    assert one.updated_at > stamp
    store.apply_tags(two.id, [], force=False)
    assert two.tags == []


def test_list_orders_by_version_descending_then_newest_and_pages(store: Store) -> None:
    for _ in range(3):
        apply(store, "a")
    apply(store, "b", ml_repo="repo-b")
    apply(store, "c")
    assert listed(store) == [
        "model:acme/repo-a/a:3",
        "model:acme/repo-a/a:2",
        "model:acme/repo-a/c:1",
        "model:acme/repo-b/b:1",
        "model:acme/repo-a/a:1",
    ]
    assert listed(store, offset=1, limit=2) == ["model:acme/repo-a/a:2", "model:acme/repo-a/c:1"]
    total, page = store.list_versions(VersionQuery(), offset=5, limit=10)
    assert (total, page) == (5, [])


def test_list_filters_combine(store: Store) -> None:
    a1 = apply(store, "a", run_id="r1", step=1)
    apply(store, "a", run_id="r2", step=2)
    apply(store, "a", ml_repo="repo-b", run_id="r1")
    store.apply_tags(a1.id, ["prod"], force=False)
    repo_a = str(FIRST_ML_REPO_ID)

    assert listed(store, fqn=fqns.parse("model:acme/repo-a/a")) == [
        "model:acme/repo-a/a:2",
        "model:acme/repo-a/a:1",
    ]
    assert listed(store, fqn=fqns.parse("model:acme/repo-a/a:1")) == ["model:acme/repo-a/a:1"]
    assert listed(store, fqn=fqns.parse("model:acme/repo-a/a:latest")) == ["model:acme/repo-a/a:2"]
    assert listed(store, fqn=fqns.parse("model:other/repo-a/a:1")) == []
    assert listed(store, fqn=fqns.parse("model:acme/repo-a/a:1"), version=2) == []
    assert listed(store, name="a", version=fqns.LATEST) == ["model:acme/repo-a/a:2", "model:acme/repo-b/a:1"]
    assert listed(store, ml_repo_id=repo_a, run_ids=("r1",)) == ["model:acme/repo-a/a:1"]
    assert listed(store, run_steps=(2.0,)) == ["model:acme/repo-a/a:2"]
    assert listed(store, tag="prod") == ["model:acme/repo-a/a:1"]
    assert listed(store, model_id=a1.model_id, version=1) == ["model:acme/repo-a/a:1"]
    assert listed(store, model_id="unknown") == []


def test_list_models_filters_and_empty_models(store: Store) -> None:
    lone = apply(store, "lone")
    apply(store, "kept", run_id="r9")
    store.delete_version(lone.id)

    def names(**query: Any) -> list[str]:
        return [m.name for m in store.list_models(ModelQuery(**query), 0, 100)[1]]

    assert names() == ["kept", "lone"]  # newest first
    assert names(include_empty_models=False) == ["kept"]
    assert names(run_id="r9") == ["kept"]
    assert names(fqn=fqns.parse("model:acme/repo-a/lone")) == ["lone"]


def test_internal_metadata_is_hidden_only_when_asked(store: Store) -> None:
    version = apply(store, metadata={"k": 1, ".truefoundry": {"created_by": "x"}})
    assert store.version_json(version)["manifest"]["metadata"] == {
        "k": 1,
        ".truefoundry": {"created_by": "x"},
    }
    assert store.version_json(version, include_internal_metadata=False)["manifest"]["metadata"] == {"k": 1}


def test_wire_shape_of_a_version(store: Store) -> None:
    version = apply(store, framework={"type": "transformers", "pipeline_tag": "text-generation"})
    body = store.version_json(version)
    assert body["manifest"] == {
        "type": "model-version",
        "name": "m1",
        "ml_repo": "repo-a",
        "version": 1,
        "metadata": {},
        "source": {"type": "external", "uri": "s3://b/m"},
        "framework": {"type": "transformers", "pipeline_tag": "text-generation"},
    }
    assert body["fqn"] == "model:acme/repo-a/m1:1"
    assert (body["ml_repo_id"], body["model_id"], body["id"]) == (str(FIRST_ML_REPO_ID), "id-1", "id-2")
    assert (body["created_by_subject"], body["tags"], body["metrics"], body["deployable"]) == (
        ALICE,
        [],
        [],
        True,
    )
    assert body["created_at"] == "2026-01-01T00:00:00.003Z"  # the third reading: two seeded repos came first


def test_snapshot_round_trips_including_deleted_records(store: Store) -> None:
    one = apply(store, version_alias="v1")
    two = apply(store)
    store.apply_tags(one.id, ["prod"], force=False)
    store.delete_version(two.id)
    doomed = apply(store, "doomed")
    store.delete_model(doomed.model_id)
    store.add_ml_repo("repo-c")
    snapshot = json.loads(json.dumps(store.snapshot()))

    restored = Store(TENANT, ["repo-a", "repo-b"], clock=Clock())
    restored.load(snapshot)
    assert restored.snapshot() == snapshot
    assert apply(restored).number == 3
    assert apply(restored, "doomed").number == 1
    assert restored.add_ml_repo("repo-d")[0].id == str(FIRST_ML_REPO_ID + 3)
    assert error_of(lambda: apply(restored, version=3, version_alias="v1")).status == 400


def test_internal_metadata_survives_an_update_that_leaves_it_out(store: Store) -> None:
    version = apply(store, metadata={"k": 1, ".truefoundry": {"artifact_size": 10}})
    # What `truefoundry`'s ModelVersion.update() sends: metadata as read (hidden key absent).
    apply(store, version=1, metadata={"k": 2})
    assert version.manifest["metadata"] == {"k": 2, ".truefoundry": {"artifact_size": 10}}
    # Sent explicitly, it is replaced.
    apply(store, version=1, metadata={"k": 2, ".truefoundry": {"artifact_size": 11}})
    assert version.manifest["metadata"][".truefoundry"] == {"artifact_size": 11}


def test_step_is_kept_only_with_a_run(store: Store) -> None:
    without_run = apply(store, step=7)
    assert "step" not in without_run.manifest
    # Sending the SDK's default (or any) step back without a run is not an immutable change.
    apply(store, version=1, step=0, description="d")
    with_run = apply(store, step=7, run_id="r1")
    assert (with_run.manifest["step"], with_run.manifest["run_id"]) == (7, "r1")
    assert error_of(lambda: apply(store, version=2, step=8, run_id="r1")).status == 400
    _, found = store.list_versions(VersionQuery(run_steps=(7.0,)), 0, 10)
    assert [v.id for v in found] == [with_run.id]


def test_a_truefoundry_source_commits_only_a_staged_version(store: Store) -> None:
    staged_manifest = manifest(source={"type": "truefoundry"})
    error = error_of(lambda: apply(store, source={"type": "truefoundry", "uri": "s3://b/anything/"}))
    assert (error.status, error.error_code) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert store.versions == {}
    staged, model = store.stage(staged_manifest, ALICE)
    assert staged.storage_root.startswith("s3://")
    assert staged.id in staged.storage_root
    version = apply(store, source={"type": "truefoundry", "uri": staged.storage_root})
    assert (version.id, version.model_id, version.number) == (staged.id, model.id, 1)
    # Consumed: the same root cannot commit a second version.
    again = {"type": "truefoundry", "uri": staged.storage_root}
    assert error_of(lambda: apply(store, source=again)).status == 404
    # A stage marked failed commits nothing.
    failed, _ = store.stage(staged_manifest, ALICE)
    store.mark_stage_failure(failed.id)
    assert (
        error_of(lambda: apply(store, source={"type": "truefoundry", "uri": failed.storage_root})).status
        == 404
    )
    assert error_of(lambda: store.mark_stage_failure("nope")).status == 404


def test_a_deleted_version_is_visible_by_id_only_when_asked(store: Store) -> None:
    version = apply(store)
    store.delete_version(version.id)
    assert error_of(lambda: store.get_version(version.id)).status == 404
    assert store.get_version(version.id, include_deleted=True) is version
    assert store.version_json(version, with_status=True)["status"] == "DELETED"
    assert "status" not in store.version_json(version)
    assert store.list_versions(VersionQuery(), 0, 10) == (0, [])


def test_metrics_keep_float_fields(store: Store) -> None:
    version = apply(store)
    metrics = [{"key": "acc", "value": 0.9, "timestamp": 1767225600123.0, "step": 2.5}]
    store.set_metrics(version.id, metrics)
    assert store.version_json(version)["metrics"] == metrics
