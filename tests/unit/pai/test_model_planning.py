"""The Model planner on the shared skeleton: pure, no I/O."""

from __future__ import annotations

from typing import Any

from pai_operator.pai.model_planning import (
    MODEL_PLANNER,
    AddModelLabels,
    CreateModel,
    DeleteModel,
    DeleteModelLabels,
    UpdateModel,
)
from pai_operator.pai.model_spec import ModelSpec
from pai_operator.pai.models import Label, Model
from pai_operator.plans import Action, DeletionAction, Owner, Policies, plan_deletion, plan_reconcile
from pai_operator.refs import digest_ref
from pai_operator.vocabulary import Reason

UID = "uid-1"
OWNER = Owner(UID, "ns/m")
MANAGE = Policies(deletion="Delete", management="Manage", adoption="Never", paused=False)
OURS = [Label(key="pai.mlops.dev/owner-uid", value=UID), Label(key="pai.mlops.dev/owner-ref", value="ns/m")]


def spec(**fields: Any) -> ModelSpec:
    return ModelSpec.model_validate({"modelName": "m", "workspaceId": "ws", **fields})


def remote(labels: list[Label] | None = None, **fields: Any) -> Model:
    base: dict[str, Any] = {"model_id": "model-1", "model_name": "m", "workspace_id": "ws"}
    return Model(**{**base, **fields}, labels=OURS if labels is None else labels)


def plan(
    s: ModelSpec, *, observed: Model | None, owned: list[Model] | None = None, policies: Policies = MANAGE
):
    return plan_reconcile(
        MODEL_PLANNER,
        s,
        owner=OWNER,
        policies=policies,
        recorded_key=observed.model_id if observed else None,
        observed=observed,
        owned=owned,
        problems=[],
        paused_annotation="pai.mlops.dev/paused",
    )


def test_create_carries_every_field_and_both_ownership_labels() -> None:
    p = plan(
        spec(task="nlp", orderNumber=1, extraInfo={"a": "1"}, labels={"k": "v"}), observed=None, owned=[]
    )
    assert p.action is Action.CREATE
    (call,) = p.calls
    assert isinstance(call, CreateModel)
    wire = call.request.to_wire()
    assert (wire["ModelName"], wire["WorkspaceId"], wire["Task"], wire["OrderNumber"]) == (
        "m",
        "ws",
        "nlp",
        1,
    )
    assert wire["ExtraInfo"] == {"a": "1"}
    assert wire["Labels"] == [
        {"Key": "pai.mlops.dev/owner-uid", "Value": UID},
        {"Key": "pai.mlops.dev/owner-ref", "Value": "ns/m"},
        {"Key": "k", "Value": "v"},
    ]


def test_a_long_owner_ref_is_written_in_its_digest_spelling() -> None:
    long_ref = "n" * 63 + "/" + "x" * 200
    p = plan_reconcile(
        MODEL_PLANNER,
        spec(),
        owner=Owner(UID, long_ref),
        policies=MANAGE,
        recorded_key=None,
        observed=None,
        owned=[],
        problems=[],
        paused_annotation="p",
    )
    (call,) = p.calls
    assert isinstance(call, CreateModel)
    assert {label.value for label in call.request.labels or []} >= {digest_ref(long_ref)}


def test_a_lost_create_is_found_by_its_labels_not_created_again() -> None:
    found = remote()
    p = plan(spec(), observed=None, owned=[found])
    assert p.action is Action.IN_SYNC
    assert p.version_name == "model-1"


def test_a_model_id_that_does_not_exist_cannot_be_created() -> None:
    p = plan(spec(modelId="model-gone"), observed=None, owned=[])
    assert p.action is Action.BLOCKED
    assert p.problem is not None
    assert p.problem.reason is Reason.MODEL_NOT_FOUND


def test_drift_is_repaired_with_one_update_that_names_the_model() -> None:
    p = plan(spec(task="cv", modelDescription="d"), observed=remote(task="nlp", model_description="d"))
    assert p.action is Action.UPDATE
    assert p.drift == ["task"]
    (call,) = p.calls
    assert isinstance(call, UpdateModel)
    assert call.request.to_wire() == {"ModelName": "m", "Task": "cv"}


def test_unset_fields_are_not_managed_and_equal_json_is_in_sync() -> None:
    observed = remote(task="anything", extra_info={"b": 1, "a": 2.0})
    assert plan(spec(extraInfo={"a": 2, "b": 1}), observed=observed).action is Action.IN_SYNC


def test_labels_delete_then_add() -> None:
    observed = remote(labels=[*OURS, Label(key="old", value="1"), Label(key="k", value="x")])
    p = plan(spec(labels={"k": "v"}), observed=observed)
    assert [type(c) for c in p.calls] == [DeleteModelLabels, AddModelLabels]
    delete, add = p.calls
    assert isinstance(delete, DeleteModelLabels)
    assert isinstance(add, AddModelLabels)
    assert delete.keys == ("old",)
    assert [(label.key, label.value) for label in add.labels] == [("k", "v")]


def test_adoption_needs_if_exists_and_marks_the_model() -> None:
    unowned = remote(labels=[])
    never = plan(spec(modelId="model-1"), observed=unowned)
    assert never.problem is not None
    assert never.problem.reason is Reason.ALREADY_EXISTS
    adopt = plan(
        spec(modelId="model-1"), observed=unowned, policies=Policies("Delete", "Manage", "IfExists", False)
    )
    assert adopt.action is Action.ADOPT
    (call,) = adopt.calls
    assert isinstance(call, AddModelLabels)
    assert [label.key for label in call.labels] == ["pai.mlops.dev/owner-uid", "pai.mlops.dev/owner-ref"]


def test_another_workspace_is_an_immutable_mismatch() -> None:
    p = plan(spec(), observed=remote(workspace_id="other"))
    assert p.problem is not None
    assert p.problem.reason is Reason.IMMUTABLE_FIELD_MISMATCH


def test_deletion_deletes_or_releases_only_its_own_model() -> None:
    deleting = plan_deletion(
        MODEL_PLANNER, spec(), owner=OWNER, policies=MANAGE, observed=remote(), owned=None
    )
    assert deleting.action is DeletionAction.DELETE
    assert deleting.calls == (DeleteModel("model-1"),)
    retain = Policies("Retain", "Manage", "Never", False)
    released = plan_deletion(
        MODEL_PLANNER, spec(), owner=OWNER, policies=retain, observed=remote(), owned=None
    )
    assert released.action is DeletionAction.RELEASE
    assert released.calls == (
        DeleteModelLabels("model-1", ("pai.mlops.dev/owner-uid", "pai.mlops.dev/owner-ref")),
    )
    foreign = plan_deletion(
        MODEL_PLANNER, spec(), owner=OWNER, policies=MANAGE, observed=remote(labels=[]), owned=None
    )
    assert foreign.action is DeletionAction.NOTHING
