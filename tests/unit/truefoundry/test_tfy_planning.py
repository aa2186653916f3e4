"""TrueFoundry planning through the shared skeleton (`plans.plan_reconcile` / `plan_deletion`):
pure, no I/O. The remote versions are the client's wire models, built as the service returns them."""

from __future__ import annotations

from typing import Any

import pytest

from pai_operator.plans import Action, DeletionAction, Owner, Policies, plan_deletion, plan_reconcile
from pai_operator.truefoundry.models import ModelVersion
from pai_operator.truefoundry.planning import PLANNER, Apply, Delete
from pai_operator.truefoundry.spec import OWNER_METADATA_KEY, PAUSED_ANNOTATION, TrueFoundryModelVersionSpec
from pai_operator.vocabulary import Reason

UID = "uid-1"
OWNER = Owner(UID, "ns/obj")
MANAGE = Policies(deletion="Delete", management="Manage", adoption="Never", paused=False)
ADOPT = Policies(deletion="Delete", management="Manage", adoption="IfExists", paused=False)
OBSERVE = Policies(deletion="Delete", management="Observe", adoption="Never", paused=False)
PAUSED = Policies(deletion="Delete", management="Manage", adoption="Never", paused=True)
RETAIN = Policies(deletion="Retain", management="Manage", adoption="Never", paused=False)


def spec(**fields: Any) -> TrueFoundryModelVersionSpec:
    raw = {"mlRepo": "repo-a", "name": "m1", "source": {"type": "external", "uri": "s3://b/x"}, **fields}
    return TrueFoundryModelVersionSpec.model_validate(raw)


def remote(version: int = 1, *, owner: Owner | None = OWNER, **manifest: Any) -> ModelVersion:
    metadata = dict(manifest.pop("metadata", {}))
    if owner is not None:
        metadata[OWNER_METADATA_KEY] = {"uid": owner.uid, "ref": owner.ref}
    return ModelVersion.model_validate(
        {
            "id": f"id-{version}",
            "fqn": f"model:t/repo-a/m1:{version}",
            "created_by_subject": {"subjectId": "s", "subjectType": "user", "subjectSlug": "me@x"},
            "ml_repo_id": "1001",
            "model_id": "model-uuid",
            "created_at": f"2026-01-0{version}T00:00:00Z",
            "manifest": {
                "type": "model-version",
                "name": "m1",
                "ml_repo": "repo-a",
                "version": version,
                "metadata": metadata,
                "source": {"type": "external", "uri": "s3://b/x"},
                "step": 0,
                **manifest,
            },
        }
    )


def plan(s: TrueFoundryModelVersionSpec, policies: Policies = MANAGE, **kw: Any) -> Any:
    kw.setdefault("observed", None)
    kw.setdefault("owned", [])
    kw.setdefault("recorded_key", None)
    return plan_reconcile(
        PLANNER, s, owner=OWNER, policies=policies, problems=[], paused_annotation=PAUSED_ANNOTATION, **kw
    )


def test_create_sends_no_version_and_marks_the_metadata() -> None:
    p = plan(spec(description="d", metadata={"a": 1}))
    assert p.action is Action.CREATE
    (call,) = p.calls
    assert isinstance(call, Apply)
    assert call.creates
    wire = call.manifest.to_wire()
    assert "version" not in wire
    assert wire["metadata"] == {"a": 1, OWNER_METADATA_KEY: {"uid": UID, "ref": "ns/obj"}}
    assert wire["description"] == "d"
    assert wire["step"] == 0


def test_a_fixed_version_that_does_not_exist_is_never_created() -> None:
    p = plan(spec(version=3), observed=None, owned=[])
    assert p.action is Action.BLOCKED
    assert not p.calls
    assert p.reason is Reason.CONFLICT
    assert "remove spec.version" in p.message


def test_a_lost_create_is_found_by_its_mark_not_created_again() -> None:
    p = plan(spec(), owned=[remote(4)])
    assert p.action is Action.IN_SYNC
    assert not p.calls
    assert p.version_name == "4"


def test_two_marked_versions_are_a_conflict_not_a_guess() -> None:
    p = plan(spec(), owned=[remote(2), remote(3)])
    assert p.action is Action.BLOCKED
    assert p.reason is Reason.CONFLICT
    assert "model repo-a/m1" in p.message
    assert "2, 3" in p.message


def test_update_lays_the_spec_over_the_remote_manifest() -> None:
    current = remote(2, description="old", version_alias="v1", environment={"python_version": "3.10"})
    p = plan(
        spec(description="new", environment={"pipPackages": ["x==1"]}), observed=current, recorded_key="2"
    )
    assert p.action is Action.UPDATE
    assert p.drift == ["description", "environment"]
    (call,) = p.calls
    wire = call.manifest.to_wire()
    assert wire["version"] == 2
    assert not call.creates
    assert wire["description"] == "new"
    assert wire["version_alias"] == "v1"  # unset in spec: kept as it is remotely
    assert wire["environment"] == {"python_version": "3.10", "pip_packages": ["x==1"]}
    assert wire["metadata"][OWNER_METADATA_KEY]["uid"] == UID


def test_in_sync_makes_no_call() -> None:
    current = remote(2, description="d", metadata={"a": 1})
    p = plan(spec(description="d", metadata={"a": 1}), observed=current, recorded_key="2")
    assert p.action is Action.IN_SYNC
    assert not p.calls
    assert p.drift == []


def test_source_change_is_immutable() -> None:
    current = remote(2)
    s = spec(source={"type": "external", "uri": "s3://b/other"})
    p = plan(s, observed=current, recorded_key="2")
    assert p.action is Action.BLOCKED
    assert p.reason is Reason.IMMUTABLE_FIELD_MISMATCH
    assert "TrueFoundry cannot change" in p.message


@pytest.mark.parametrize(
    ("policies", "action", "reason"),
    [(MANAGE, Action.BLOCKED, Reason.ALREADY_EXISTS), (ADOPT, Action.ADOPT, None)],
)
def test_adoption_of_an_unmarked_version(policies: Policies, action: Action, reason: Reason | None) -> None:
    p = plan(spec(version=1), policies, observed=remote(1, owner=None))
    assert p.action is action
    if reason:
        assert p.reason is reason
        assert "choose another version" in p.message
    else:
        (call,) = p.calls
        assert call.manifest.to_wire()["metadata"][OWNER_METADATA_KEY] == {"uid": UID, "ref": "ns/obj"}


def test_a_version_of_another_live_object_is_never_touched() -> None:
    p = plan(spec(version=1), ADOPT, observed=remote(1, owner=Owner("other", "ns/other")))
    assert p.action is Action.BLOCKED
    assert p.reason is Reason.CONFLICT
    assert not p.calls


def test_observe_and_pause_never_write() -> None:
    current = remote(1, description="old")
    observed = plan(spec(version=1, description="new"), OBSERVE, observed=current)
    assert observed.action is Action.OBSERVE
    assert not observed.calls
    assert observed.drift == ["description"]
    paused = plan(spec(version=1, description="new"), PAUSED, observed=current)
    assert paused.action is Action.PAUSED
    assert not paused.calls


def test_delete_and_retain() -> None:
    current = remote(2, metadata={"a": 1})
    gone = plan_deletion(PLANNER, spec(), owner=OWNER, policies=MANAGE, observed=current, owned=None)
    assert gone.action is DeletionAction.DELETE
    assert gone.calls == (Delete("id-2", "2"),)
    kept = plan_deletion(PLANNER, spec(), owner=OWNER, policies=RETAIN, observed=current, owned=None)
    assert kept.action is DeletionAction.RELEASE
    assert kept.best_effort
    (release,) = kept.calls
    assert release.manifest.to_wire()["metadata"] == {"a": 1}  # the mark removed, the rest kept
    other = remote(2, owner=Owner("other", "ns/other"))
    left = plan_deletion(PLANNER, spec(), owner=OWNER, policies=MANAGE, observed=other, owned=None)
    assert left.action is DeletionAction.NOTHING
    assert not left.calls


INTERNAL = {".truefoundry": {"created_by": {"job_run_name": "train-7"}, "artifact_size": 1234}}


def test_reserved_metadata_is_never_drift_and_never_erased() -> None:
    """A version logged with `truefoundry`, adopted, then its metadata managed: `.truefoundry`
    stays as it was, whatever the spec's metadata says."""
    logged = remote(1, owner=None, metadata={"team": "a", **INTERNAL}, description="by hand")
    adopted = plan(spec(version=1, metadata={"team": "a"}), ADOPT, observed=logged)
    assert adopted.action is Action.ADOPT
    assert adopted.drift == []  # .truefoundry is not drift
    (call,) = adopted.calls
    assert call.manifest.to_wire()["metadata"] == {
        "team": "a",
        **INTERNAL,
        OWNER_METADATA_KEY: {"uid": UID, "ref": "ns/obj"},
    }
    owned = remote(1, metadata={"team": "a", **INTERNAL}, description="by hand")
    assert plan(spec(version=1, metadata={"team": "a"}), observed=owned, recorded_key="1").calls == ()
    updated = plan(spec(version=1, metadata={"team": "b"}), observed=owned, recorded_key="1")
    assert updated.drift == ["metadata"]
    (repair,) = updated.calls
    assert repair.manifest.to_wire()["metadata"][".truefoundry"] == INTERNAL[".truefoundry"]
    released = plan_deletion(
        PLANNER, spec(version=1), owner=OWNER, policies=RETAIN, observed=owned, owned=None
    )
    (release,) = released.calls
    assert release.manifest.to_wire()["metadata"] == {"team": "a", **INTERNAL}


def test_a_step_without_a_run_is_never_compared() -> None:
    # TrueFoundry keeps no step without a run: the answer says 0 whatever the spec said.
    p = plan(spec(step=5), observed=remote(1), recorded_key="1")
    assert p.action is Action.IN_SYNC
    assert p.drift == []
    with_run = plan(spec(step=5, runId="r1"), observed=remote(1, run_id="r1", step=4), recorded_key="1")
    assert with_run.action is Action.BLOCKED
    assert with_run.reason is Reason.IMMUTABLE_FIELD_MISMATCH


def test_a_truefoundry_source_is_never_created_but_may_be_adopted() -> None:
    source = {"type": "truefoundry", "uri": "s3://tfy/root/1/"}
    refused = plan(spec(source=source))
    assert refused.action is Action.BLOCKED
    assert refused.reason is Reason.INVALID_SPEC
    assert "source.type external" in refused.message
    assert not refused.calls
    logged = remote(1, owner=None, source=source, metadata=INTERNAL)
    adopted = plan(spec(version=1, source=source), ADOPT, observed=logged)
    assert adopted.action is Action.ADOPT
    (call,) = adopted.calls
    assert call.manifest.to_wire()["source"] == source
