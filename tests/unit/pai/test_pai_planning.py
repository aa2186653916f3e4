"""The reconcile decision, exhaustively: a pure function, so every case is a table row."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pai_operator.normalize import compact_json
from pai_operator.pai.comparison import compute_drift
from pai_operator.pai.models import Label, ModelVersion
from pai_operator.pai.planning import (
    Action,
    AddLabels,
    CreateVersion,
    DeleteLabels,
    DeleteVersion,
    DeletionAction,
    RemoteCall,
    UpdateVersion,
    filter_owned,
    lookup_name,
    needs_owner_search,
)
from pai_operator.pai.spec import OWNER_LABEL_KEY, OWNER_REF_LABEL_KEY, RESERVED_LABEL_KEYS, ModelVersionSpec
from pai_operator.pai.validation import (
    Policies,
    Recorded,
    effective_region,
    parse_spec,
    resolve_policies,
    validate_spec,
)
from pai_operator.vocabulary import Reason
from tests.unit.pai.pai_plans import plan_deletion, plan_reconcile

UID = "0b9c1f1e-uid-mine"
OTHER_UID = "7d3a2c4b-uid-other"
OTHER = OTHER_UID
REF = "team-a/mv"  # this object's namespace/name
MODEL = "model-abc"
URI = "oss://bucket.oss-cn-hangzhou.aliyuncs.com/models/a/"
OWNER = Label(key=OWNER_LABEL_KEY, value=UID)

MANAGE = Policies(deletion="Delete", management="Manage", adoption="Never", paused=False)
ADOPT = Policies(deletion="Delete", management="Manage", adoption="IfExists", paused=False)
OBSERVE = Policies(deletion="Delete", management="Observe", adoption="Never", paused=False)
PAUSED = Policies(deletion="Delete", management="Manage", adoption="Never", paused=True)
RETAIN = Policies(deletion="Retain", management="Manage", adoption="Never", paused=False)


def mk_spec(**fields: Any) -> ModelVersionSpec:
    body: dict[str, Any] = {"modelId": MODEL, "uri": URI, "versionName": "1.0.0"}
    body.update(fields)
    return ModelVersionSpec.model_validate({k: v for k, v in body.items() if v is not None})


def mk_remote(name: str = "1.0.0", *, owner: str | None = UID, **fields: Any) -> ModelVersion:
    labels = dict(fields.pop("labels", {}))
    if owner is not None:
        labels[OWNER_LABEL_KEY] = owner
    base: dict[str, Any] = {"version_name": name, "uri": URI}
    base.update(fields)
    return ModelVersion(**base, labels=[Label(key=k, value=v) for k, v in labels.items()])


def plan(
    spec: ModelVersionSpec,
    remote: ModelVersion | None,
    *,
    policies: Policies = MANAGE,
    recorded: Recorded | None = None,
    owned: list[ModelVersion] | None = None,
) -> Any:
    recorded = recorded or Recorded()
    if owned is None and needs_owner_search(spec, recorded, remote):
        owned = []  # the search ran and found nothing
    return plan_reconcile(spec, uid=UID, policies=policies, recorded=recorded, observed=remote, owned=owned)


# --- A small in-memory PAI that stores values the way a JSON round trip may return them. -------


def _go_like(value: Any) -> Any:
    """What a server that decodes numbers as float64 and re-encodes maps sends back: every number
    a float, object keys in another order."""
    decoded = json.loads(json.dumps(value), parse_int=float)

    def reorder(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: reorder(v[k]) for k in reversed(list(v))}
        if isinstance(v, list):
            return [reorder(x) for x in v]
        return v

    return reorder(decoded)


def _restring(options: str) -> str:
    try:
        return json.dumps(_go_like(json.loads(options)), indent=2)
    except ValueError:
        return options


def apply_calls(remote: ModelVersion | None, calls: tuple[RemoteCall, ...]) -> ModelVersion:
    for call in calls:
        if isinstance(call, CreateVersion):
            assert remote is None
            wire = call.request.model_dump(exclude_none=True)
            labels = wire.pop("labels", [])
            name = wire.pop("version_name", None) or "0.1.0"
            remote = ModelVersion(version_name=name, labels=[Label(**lab) for lab in labels], **wire)
        elif isinstance(call, UpdateVersion):
            assert remote is not None
            changes = call.request.model_dump(exclude_none=True)
            remote = remote.model_copy(update=changes)
        elif isinstance(call, AddLabels):
            assert remote is not None
            current = remote.label_map()
            for label in call.labels:
                # CreateModelVersionLabels upserts: an existing key's value is replaced in place.
                current[label.key] = label.value
            remote = remote.model_copy(update={"labels": [Label(key=k, value=v) for k, v in current.items()]})
        elif isinstance(call, DeleteLabels):
            assert remote is not None
            kept = [lab for lab in remote.labels if lab.key not in call.keys]
            remote = remote.model_copy(update={"labels": kept})
        else:  # pragma: no cover - DeleteVersion is not part of a reconcile plan
            raise AssertionError(f"unexpected call {call!r}")
    assert remote is not None
    return mangle(remote)


def mangle(remote: ModelVersion) -> ModelVersion:
    update: dict[str, Any] = {}
    for attr in (
        "metrics",
        "training_spec",
        "inference_spec",
        "evaluation_spec",
        "compression_spec",
        "distillation_spec",
        "extra_info",
    ):
        value = getattr(remote, attr)
        if value is not None:
            update[attr] = _go_like(value)
    if remote.options:
        update["options"] = _restring(remote.options)
    update["labels"] = list(reversed(remote.labels))
    return remote.model_copy(update=update)


# --- Policies, identity, reads ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec_policy", "ns_annotation", "default", "expected"),
    [
        (None, None, "Delete", "Delete"),
        (None, None, "Retain", "Retain"),
        (None, "Retain", "Delete", "Retain"),
        (None, "Delete", "Retain", "Delete"),
        (None, "bogus", "Retain", "Retain"),
        ("Delete", "Retain", "Retain", "Delete"),
        ("Retain", "Delete", "Delete", "Retain"),
    ],
)
def test_deletion_policy_precedence(
    spec_policy: str | None, ns_annotation: str | None, default: Any, expected: str
) -> None:
    ns = {"pai.mlops.dev/deletion-policy": ns_annotation} if ns_annotation else {}
    policies = resolve_policies(
        mk_spec(deletionPolicy=spec_policy), namespace_annotations=ns, default_deletion=default
    )
    assert policies.deletion == expected


@pytest.mark.parametrize(
    ("annotations", "paused"),
    [
        ({}, False),
        ({"pai.mlops.dev/paused": "true"}, True),
        ({"pai.mlops.dev/paused": "True"}, True),
        ({"pai.mlops.dev/paused": "false"}, False),
        ({"kopf.zalando.org/paused": "true"}, False),
    ],
)
def test_pause_annotation(annotations: dict[str, str], paused: bool) -> None:
    assert resolve_policies(mk_spec(), annotations=annotations).paused is paused


def test_policy_defaults_come_from_spec_schema() -> None:
    policies = resolve_policies(mk_spec())
    assert (policies.management, policies.adoption, policies.deletion) == ("Manage", "Never", "Delete")


def test_recorded_from_status_ignores_junk() -> None:
    assert Recorded.from_status(None) == Recorded()
    assert Recorded.from_status({"versionName": "", "regionId": 3}) == Recorded()
    assert Recorded.from_status({"versionName": "0.1.0", "regionId": "cn-beijing"}) == Recorded(
        "0.1.0", "cn-beijing"
    )


@pytest.mark.parametrize(
    ("spec_region", "recorded_region", "expected"),
    [
        (None, None, "cn-default"),
        (None, "cn-beijing", "cn-beijing"),
        ("cn-shanghai", None, "cn-shanghai"),
        ("cn-beijing", "cn-beijing", "cn-beijing"),
    ],
)
def test_effective_region(spec_region: str | None, recorded_region: str | None, expected: str) -> None:
    spec = mk_spec(regionId=spec_region)
    assert effective_region(spec, Recorded(region_id=recorded_region), "cn-default") == expected


@pytest.mark.parametrize(
    ("spec_name", "recorded_name", "expected"),
    [("1.0.0", None, "1.0.0"), ("1.0.0", "1.0.0", "1.0.0"), (None, "0.2.0", "0.2.0"), (None, None, None)],
)
def test_lookup_name(spec_name: str | None, recorded_name: str | None, expected: str | None) -> None:
    assert lookup_name(mk_spec(versionName=spec_name), Recorded(version_name=recorded_name)) == expected


@pytest.mark.parametrize(
    ("spec_name", "recorded_name", "observed", "expected"),
    [
        ("1.0.0", None, None, True),  # fixed name, no status: a server-assigned create may precede it
        ("1.0.0", "1.0.0", None, False),  # fixed and recorded: GET is authoritative, even on 404
        ("1.0.0", None, mk_remote(), False),
        (None, None, None, True),  # server-assigned, nothing known yet (or status write lost)
        (None, "0.1.0", None, True),  # recorded version vanished: look for ours by label
        (None, "0.1.0", mk_remote("0.1.0"), False),
    ],
)
def test_needs_owner_search(
    spec_name: str | None, recorded_name: str | None, observed: ModelVersion | None, expected: bool
) -> None:
    spec = mk_spec(versionName=spec_name)
    assert lookup_name(spec, Recorded(version_name=recorded_name)) == (spec_name or recorded_name)
    assert needs_owner_search(spec, Recorded(version_name=recorded_name), observed) is expected


def test_filter_owned_is_exact_not_substring() -> None:
    versions = [
        mk_remote("0.1.0", owner=UID),
        mk_remote("0.2.0", owner=UID + "-suffix"),
        mk_remote("0.3.0", owner=None, labels={"note": UID}),
    ]
    assert [v.version_name for v in filter_owned(versions, UID)] == ["0.1.0"]


def test_plan_refuses_to_guess_without_the_owner_search() -> None:
    with pytest.raises(ValueError, match="ownership search"):
        plan_reconcile(
            mk_spec(versionName=None),
            uid=UID,
            policies=MANAGE,
            recorded=Recorded(),
            observed=None,
            owned=None,
        )


# --- Validation beyond the schema: terminal, no calls ------------------------------------------


def _metrics_of_size(chars: int) -> dict[str, Any]:
    base = compact_json({"k": ""})
    return {"k": "x" * (chars - len(base))}


@pytest.mark.parametrize(
    ("fields", "policies", "recorded", "fragment"),
    [
        ({"metrics": _metrics_of_size(8193)}, MANAGE, Recorded(), "8193 characters"),
        ({"metrics": {"k": "\u00e9" * 8185}}, MANAGE, Recorded(), "8193 characters"),  # chars, not bytes
        ({"labels": {OWNER_LABEL_KEY: "x"}}, MANAGE, Recorded(), "reserves"),
        ({"labels": {"": "x"}}, MANAGE, Recorded(), "empty key"),
        ({"options": {"x": float("nan")}}, MANAGE, Recorded(), "spec.options is not serialisable"),
        ({"extraInfo": {"x": float("inf")}}, MANAGE, Recorded(), "spec.extraInfo is not serialisable"),
        (
            {"options": {"a": [1, {"id": 2**53 + 1}]}},
            MANAGE,
            Recorded(),
            "spec.options.a[1].id is the integer",
        ),
        ({"metrics": {"n": -(2**60)}}, MANAGE, Recorded(), "beyond +-2^53"),
        ({"uri": "s3://bucket/m/"}, MANAGE, Recorded(), "spec.uri 's3://bucket/m/' must start with oss://"),
        ({"versionName": None}, OBSERVE, Recorded(), "Observe needs spec.versionName"),
        ({"versionName": "2.0.0"}, MANAGE, Recorded(version_name="0.1.0"), "set it to 0.1.0"),
        ({"regionId": "cn-shanghai"}, MANAGE, Recorded(region_id="cn-beijing"), "set it to cn-beijing"),
    ],
)
def test_invalid_spec_is_terminal_and_makes_no_calls(
    fields: dict[str, Any], policies: Policies, recorded: Recorded, fragment: str
) -> None:
    spec = mk_spec(**fields)
    assert any(fragment in p for p in validate_spec(spec, policies, recorded))
    result = plan(spec, mk_remote(), policies=policies, recorded=recorded, owned=[])
    assert result.action is Action.BLOCKED
    assert result.problem is not None
    assert result.problem.reason is Reason.INVALID_SPEC
    assert fragment in result.message
    assert result.calls == ()


def test_too_many_labels_beyond_the_schema_is_invalid() -> None:
    # The CRD's maxProperties normally stops this; the planner does not rely on it.
    spec = mk_spec().model_copy(update={"labels": {f"k{i}": "v" for i in range(20)}})
    assert any("at most 20" in p for p in validate_spec(spec, MANAGE, Recorded()))
    result = plan(spec, mk_remote())
    assert result.action is Action.BLOCKED
    assert result.calls == ()


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"uri": URI}, "spec.modelId: Field required"),
        ({"modelId": MODEL, "uri": URI, "versionName": "v1"}, "spec.versionName: String should match"),
        ({"modelId": MODEL, "uri": URI, "labels": {f"k{i}": "v" for i in range(20)}}, "spec.labels"),
        ({"modelId": MODEL, "uri": URI, "frameworkType": "pytorch"}, "spec.frameworkType"),
        ({"modelId": MODEL, "uri": URI, "approvalStatus": "approved"}, "spec.approvalStatus"),
    ],
)
def test_parse_spec_turns_schema_errors_into_messages(raw: dict[str, Any], fragment: str) -> None:
    result = parse_spec(raw)
    assert isinstance(result, list)
    assert any(fragment in message for message in result), result


def test_parse_spec_accepts_a_valid_spec() -> None:
    assert parse_spec({"modelId": MODEL, "uri": URI}) == mk_spec(versionName=None)


@pytest.mark.parametrize(
    "fields",
    [
        {"metrics": _metrics_of_size(8192)},
        {"labels": {f"k{i}": "v" for i in range(18)}},
        {"versionName": "0.1.0"},  # pinning the name PAI assigned is allowed
        {"regionId": "cn-beijing"},
        {"metrics": {"n": 2**53, "f": 1e300, "ok": True}},  # exactly representable
        {"uri": "https://example.com/m/"},
    ],
)
def test_valid_edges(fields: dict[str, Any]) -> None:
    recorded = Recorded(version_name="0.1.0", region_id="cn-beijing")
    assert validate_spec(mk_spec(**{"versionName": "0.1.0", **fields}), MANAGE, recorded) == []


# --- Create, including the ownership label ------------------------------------------------------


def test_create_sends_every_set_field_and_the_ownership_label() -> None:
    spec = mk_spec(
        versionName="1.0.0",
        formatType="SavedModel",
        frameworkType="PyTorch",
        versionDescription="first",
        approvalStatus="Pending",
        sourceType="TrainingService",
        sourceId="region=cn-hangzhou,workspaceId=1,kind=TrainingJob,id=j",
        labels={"k1": "vs1"},
        metrics={"Results": [{"Metrics": {"cer": 0.175}}]},
        trainingSpec={"a": 1},
        inferenceSpec={"processor": "tf"},
        evaluationSpec={"e": True},
        compressionSpec={"c": None},
        distillationSpec={"d": [1, 2]},
        extraInfo={"nested": {"x": {"y": 1}}},
        options={"b": 1, "a": {"z": 2}},
    )
    result = plan(spec, None)
    assert result.action is Action.CREATE
    (call,) = result.calls
    assert isinstance(call, CreateVersion)
    assert call.model_id == MODEL
    wire = call.request.to_wire()
    assert wire["Uri"] == URI
    assert wire["VersionName"] == "1.0.0"
    assert wire["FormatType"] == "SavedModel"
    assert wire["FrameworkType"] == "PyTorch"
    assert wire["Labels"] == [{"Key": OWNER_LABEL_KEY, "Value": UID}, {"Key": "k1", "Value": "vs1"}]
    assert wire["Options"] == '{"a":{"z":2},"b":1}'
    assert wire["Metrics"] == {"Results": [{"Metrics": {"cer": 0.175}}]}
    assert wire["ExtraInfo"] == {"nested": {"x": {"y": 1}}}
    assert wire["ApprovalStatus"] == "Pending"
    assert wire["SourceType"] == "TrainingService"


def test_create_minimal_sends_only_what_is_set() -> None:
    result = plan(mk_spec(versionName=None), None, owned=[])
    (call,) = result.calls
    assert isinstance(call, CreateVersion)
    assert call.request.to_wire() == {"Uri": URI, "Labels": [{"Key": OWNER_LABEL_KEY, "Value": UID}]}
    assert result.version_name is None  # learned from the create response


def test_created_version_is_in_sync_on_the_next_pass() -> None:
    spec = mk_spec(labels={"a": "1"}, metrics={"m": 1.0}, options={"x": [1, 2.5]}, approvalStatus="Pending")
    created = apply_calls(None, plan(spec, None).calls)
    again = plan(spec, created)
    assert again.action is Action.IN_SYNC
    assert again.calls == ()
    assert again.drift == []


# --- Lost-create recovery: the ownership search -----------------------------------------------


def test_lost_create_with_fixed_name_is_found_by_get_not_duplicated() -> None:
    # The create committed but its response was lost: GET finds the version with our label.
    result = plan(mk_spec(), mk_remote("1.0.0", owner=UID))
    assert result.action is Action.IN_SYNC
    assert result.ours


def test_lost_create_with_server_assigned_name_is_found_by_label() -> None:
    spec = mk_spec(versionName=None)
    found = mk_remote("0.3.0", owner=UID)
    result = plan(spec, None, owned=[mk_remote("0.2.0", owner=OTHER_UID), found])
    assert result.action is Action.IN_SYNC
    assert result.version_name == "0.3.0"
    assert result.observed == found
    assert result.calls == ()


def test_recorded_version_gone_and_nothing_owned_recreates() -> None:
    result = plan(mk_spec(versionName=None), None, recorded=Recorded(version_name="0.1.0"), owned=[])
    assert result.action is Action.CREATE


def test_recorded_fixed_version_gone_recreates_under_same_name() -> None:
    result = plan(mk_spec(), None, recorded=Recorded(version_name="1.0.0"))
    assert result.action is Action.CREATE
    (call,) = result.calls
    assert isinstance(call, CreateVersion)
    assert call.request.version_name == "1.0.0"


def test_two_owned_versions_are_a_conflict_not_a_guess() -> None:
    owned = [
        mk_remote("0.2.0", gmt_create_time="2024-01-02"),
        mk_remote("0.1.0", gmt_create_time="2024-01-01"),
    ]
    result = plan(mk_spec(versionName=None), None, owned=owned)
    assert result.action is Action.BLOCKED
    assert result.calls == ()
    assert result.problem is not None
    assert result.problem.reason is Reason.CONFLICT
    assert "0.1.0, 0.2.0" in result.message


def test_named_spec_reports_a_stray_server_assigned_version_instead_of_creating() -> None:
    """Hole 2: versionName set before the assigned name reached status. Creating 1.0.0 would
    orphan 0.1.0 (it carries our label); the plan reports it, with both ways out, and calls nothing."""
    result = plan(mk_spec(versionName="1.0.0"), None, owned=[mk_remote("0.1.0")])
    assert result.action is Action.BLOCKED
    assert result.calls == ()
    assert result.problem is not None
    assert result.problem.reason is Reason.CONFLICT
    assert "spec.versionName: 0.1.0" in result.message
    assert "to have 1.0.0 created" in result.message


def test_named_spec_creates_when_the_search_finds_only_other_objects_versions() -> None:
    result = plan(mk_spec(versionName="1.0.0"), None, owned=[mk_remote("0.1.0", owner=OTHER)])
    assert result.action is Action.CREATE


def _restored(alive: set[str]) -> dict[str, Any]:
    return {"ref": REF, "owner_alive": alive.__contains__}


def test_restored_object_takes_over_its_predecessors_version_in_one_upsert() -> None:
    """Hole 1: same namespace/name, new UID, predecessor gone: the version is ours by succession;
    the ownership label is rewritten by one CreateModelVersionLabels (no delete first)."""
    remote = mk_remote(owner=OTHER, labels={OWNER_REF_LABEL_KEY: REF})
    result = plan_reconcile(
        mk_spec(),
        uid=UID,
        policies=MANAGE,
        recorded=Recorded(),
        observed=remote,
        owned=None,
        **_restored(set()),
    )
    assert result.action is Action.ADOPT
    assert result.ours
    assert result.calls == (AddLabels(MODEL, "1.0.0", (Label(key=OWNER_LABEL_KEY, value=UID),)),)
    assert "no longer exists" in result.message


def test_restored_object_never_takes_a_version_whose_owner_is_alive() -> None:
    remote = mk_remote(owner=OTHER, labels={OWNER_REF_LABEL_KEY: REF})
    result = plan_reconcile(
        mk_spec(),
        uid=UID,
        policies=MANAGE,
        recorded=Recorded(),
        observed=remote,
        owned=None,
        **_restored({OTHER}),
    )
    assert result.action is Action.BLOCKED
    assert result.calls == ()
    assert result.problem is not None
    assert result.problem.reason is Reason.CONFLICT


def test_a_dead_owner_of_another_name_is_not_inherited() -> None:
    remote = mk_remote(owner=OTHER, labels={OWNER_REF_LABEL_KEY: "team-a/someone-else"})
    result = plan_reconcile(
        mk_spec(),
        uid=UID,
        policies=MANAGE,
        recorded=Recorded(),
        observed=remote,
        owned=None,
        **_restored(set()),
    )
    assert result.action is Action.BLOCKED
    assert "team-a/someone-else" in result.message


def test_restored_server_assigned_object_finds_its_version_instead_of_creating() -> None:
    remote = mk_remote("0.1.0", owner=OTHER, labels={OWNER_REF_LABEL_KEY: REF})
    result = plan_reconcile(
        mk_spec(versionName=None),
        uid=UID,
        policies=MANAGE,
        recorded=Recorded(),
        observed=None,
        owned=[remote],
        **_restored(set()),
    )
    assert result.action is Action.ADOPT
    assert result.version_name == "0.1.0"


def test_deleting_a_restored_object_deletes_the_inherited_version() -> None:
    remote = mk_remote("0.1.0", owner=OTHER, labels={OWNER_REF_LABEL_KEY: REF})
    result = plan_deletion(
        mk_spec(versionName=None), uid=UID, policies=MANAGE, observed=None, owned=[remote], **_restored(set())
    )
    assert result.calls == (DeleteVersion(MODEL, "0.1.0"),)


# --- Ownership and adoption ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("owner", "policies", "action", "reason"),
    [
        (UID, MANAGE, Action.IN_SYNC, None),
        (UID, ADOPT, Action.IN_SYNC, None),
        (None, MANAGE, Action.BLOCKED, Reason.ALREADY_EXISTS),
        (None, ADOPT, Action.ADOPT, None),
        (OTHER_UID, MANAGE, Action.BLOCKED, Reason.CONFLICT),
        (OTHER_UID, ADOPT, Action.BLOCKED, Reason.CONFLICT),  # never fight another object
    ],
)
def test_ownership_decides(
    owner: str | None, policies: Policies, action: Action, reason: Reason | None
) -> None:
    result = plan(mk_spec(), mk_remote(owner=owner), policies=policies)
    assert result.action is action
    assert (result.problem.reason if result.problem else None) == reason
    if action is Action.BLOCKED:
        assert result.calls == ()


def test_adopt_adds_only_the_ownership_label_when_labels_unmanaged() -> None:
    result = plan(mk_spec(), mk_remote(owner=None, labels={"team": "x"}), policies=ADOPT)
    assert result.calls == (AddLabels(MODEL, "1.0.0", (OWNER,)),)
    assert result.ours


def test_adopt_repairs_fields_and_labels_in_safe_order() -> None:
    spec = mk_spec(labels={"a": "1"}, versionDescription="new")
    remote = mk_remote(owner=None, labels={"b": "2"}, version_description="old")
    result = plan(spec, remote, policies=ADOPT)
    assert result.action is Action.ADOPT
    kinds = [type(c) for c in result.calls]
    assert kinds == [DeleteLabels, AddLabels, UpdateVersion]
    assert result.calls[1] == AddLabels(MODEL, "1.0.0", (OWNER, Label(key="a", value="1")))
    assert apply_calls(remote, result.calls).label_map() == {OWNER_LABEL_KEY: UID, "a": "1"}


def test_adopt_refused_when_remote_labels_leave_no_room() -> None:
    remote = mk_remote(owner=None, labels={f"k{i}": "v" for i in range(20)})
    result = plan(mk_spec(), remote, policies=ADOPT)
    assert result.action is Action.BLOCKED
    assert result.calls == ()
    assert "at most 19" in result.message


def test_adopt_with_managed_labels_can_make_room() -> None:
    remote = mk_remote(owner=None, labels={f"k{i}": "v" for i in range(20)})
    spec = mk_spec(labels={"k0": "v"})
    result = plan(spec, remote, policies=ADOPT)
    assert result.action is Action.ADOPT
    assert isinstance(result.calls[0], DeleteLabels)  # deletes first: never over PAI's 20
    assert apply_calls(remote, result.calls).label_map() == {"k0": "v", OWNER_LABEL_KEY: UID}


@pytest.mark.parametrize(
    ("field", "spec_value", "remote_attr", "remote_value"),
    [
        ("uri", "oss://b/other/", "uri", URI),
        ("formatType", "ONNX", "format_type", "SavedModel"),
        ("formatType", "ONNX", "format_type", None),
        ("frameworkType", "TensorFlow", "framework_type", "PyTorch"),
    ],
)
@pytest.mark.parametrize("owner", [UID, None])
def test_create_only_mismatch_is_terminal(
    field: str, spec_value: str, remote_attr: str, remote_value: str | None, owner: str | None
) -> None:
    remote = mk_remote(owner=owner).model_copy(update={remote_attr: remote_value})
    result = plan(mk_spec(**{field: spec_value}, versionDescription="x"), remote, policies=ADOPT)
    assert result.action is Action.BLOCKED
    assert result.calls == ()
    assert result.problem is not None
    assert result.problem.reason is Reason.IMMUTABLE_FIELD_MISMATCH
    assert field in result.message
    assert field in result.drift


@pytest.mark.parametrize(
    ("spec_value", "remote_value"), [("Pytorch", "PyTorch"), ("PyTorch", "Pytorch"), ("PyTorch", "PyTorch")]
)
def test_framework_spelling_is_not_drift(spec_value: str, remote_value: str) -> None:
    result = plan(mk_spec(frameworkType=spec_value), mk_remote(framework_type=remote_value))
    assert result.action is Action.IN_SYNC


@pytest.mark.parametrize(("attr", "value"), [("format_type", "ONNX"), ("framework_type", "Keras")])
def test_create_only_fields_unset_in_spec_are_unmanaged(attr: str, value: str) -> None:
    assert plan(mk_spec(), mk_remote(**{attr: value})).action is Action.IN_SYNC


# --- Updates: every updatable field set/unset/equal/different -----------------------------------

# (spec name, python attr, a value, an equal-after-normalisation remote value, a different remote value)
UPDATABLE: list[tuple[str, str, Any, Any, Any]] = [
    ("versionDescription", "version_description", "desc", "desc", "other"),
    ("approvalStatus", "approval_status", "Approved", "Approved", "Pending"),
    ("sourceType", "source_type", "PAIFlow", "PAIFlow", "Custom"),
    ("sourceId", "source_id", "id-1", "id-1", "id-2"),
    ("metrics", "metrics", {"a": 1, "b": [1, 2.5]}, {"b": [1.0, 2.5], "a": 1.0}, {"a": 2, "b": [1, 2.5]}),
    ("trainingSpec", "training_spec", {"lr": 0.1}, {"lr": 0.1}, {"lr": 0.2}),
    ("inferenceSpec", "inference_spec", {"p": {"q": 1}}, {"p": {"q": 1.0}}, {"p": {"q": 1, "r": 2}}),
    ("evaluationSpec", "evaluation_spec", {"flag": True}, {"flag": True}, {"flag": 1}),
    ("compressionSpec", "compression_spec", {"x": None}, {"x": None}, {}),
    ("distillationSpec", "distillation_spec", {"l": []}, {"l": []}, {"l": [0]}),
    ("extraInfo", "extra_info", {"deep": {"a": {"b": "c"}}}, {"deep": {"a": {"b": "c"}}}, {"deep": {}}),
    (
        "options",
        "options",
        {"b": 1, "a": [1, {"z": 0}]},
        ' { "a": [1.0, {"z": 0.0}], "b": 1 } ',
        '{"a":[1],"b":1}',
    ),
]


@pytest.mark.parametrize(("name", "attr", "value", "equal", "different"), UPDATABLE)
@pytest.mark.parametrize("case", ["unset", "equal", "different", "remote-absent"])
def test_updatable_field(name: str, attr: str, value: Any, equal: Any, different: Any, case: str) -> None:
    spec_fields = {} if case == "unset" else {name: value}
    remote_value = {"unset": different, "equal": equal, "different": different, "remote-absent": None}[case]
    remote = mk_remote(**{attr: remote_value})
    result = plan(mk_spec(**spec_fields), remote)
    if case in ("unset", "equal"):
        assert result.action is Action.IN_SYNC
        assert result.calls == ()
        assert result.drift == []
        return
    assert result.action is Action.UPDATE
    assert result.drift == [name]
    (call,) = result.calls
    assert isinstance(call, UpdateVersion)
    assert call.fields == (name,)
    sent = call.request.model_dump(exclude_none=True)
    assert list(sent) == [attr]  # only the changed field
    if attr == "options":
        assert json.loads(sent[attr]) == value
    else:
        assert sent[attr] == value
    assert plan(mk_spec(**spec_fields), apply_calls(remote, result.calls)).action is Action.IN_SYNC


@pytest.mark.parametrize(
    ("attr", "spec_value", "remote_value", "drifts"),
    [
        ("version_description", "", None, False),
        ("version_description", "", "", False),
        ("source_id", "x", "", True),
        ("metrics", {}, None, False),
        ("metrics", {"a": 1}, None, True),
        ("metrics", {"a": True}, {"a": 1}, True),  # JSON true is not 1
        ("metrics", {"a": 1}, {"a": 1.5}, True),
        ("metrics", {"a": 10**20}, {"a": 1e20}, False),
        ("metrics", {"a": [1, 2]}, {"a": [2, 1]}, True),  # list order matters
        ("options", {}, None, False),
        ("options", {}, "", False),
        ("options", {}, "{}", False),
        ("options", {"a": 1}, "not json", True),
        ("options", {"a": 1}, '{"a":"1"}', True),
    ],
)
def test_normalisation(attr: str, spec_value: Any, remote_value: Any, drifts: bool) -> None:
    spec_name = {"version_description": "versionDescription", "source_id": "sourceId"}.get(attr, attr)
    result = plan(mk_spec(**{spec_name: spec_value}), mk_remote(**{attr: remote_value}))
    assert (result.action is Action.UPDATE) is drifts
    assert (result.drift == [spec_name]) is drifts


def test_update_bundles_all_changed_fields_in_one_call() -> None:
    spec = mk_spec(versionDescription="d", approvalStatus="Approved", metrics={"a": 1}, sourceId="s")
    remote = mk_remote(version_description="d", approval_status="Pending", metrics={"a": 2}, source_id="s")
    result = plan(spec, remote)
    (call,) = result.calls
    assert isinstance(call, UpdateVersion)
    assert call.fields == ("approvalStatus", "metrics")
    assert call.request.to_wire() == {"ApprovalStatus": "Approved", "Metrics": {"a": 1}}


def test_approval_unset_leaves_console_approval_alone() -> None:
    result = plan(
        mk_spec(versionDescription="d"), mk_remote(version_description="d", approval_status="Approved")
    )
    assert result.action is Action.IN_SYNC


# --- Labels: set algebra ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("desired", "remote_user", "delete", "add"),
    [
        (None, {"x": "1"}, (), ()),  # unmanaged
        ({}, {"x": "1", "y": "2"}, ("x", "y"), ()),  # empty map = remove every user label
        ({"a": "1"}, {}, (), (("a", "1"),)),
        ({"a": "1"}, {"a": "1"}, (), ()),
        ({"a": "1", "b": "2"}, {"a": "1", "c": "3"}, ("c",), (("b", "2"),)),
        ({"a": "new"}, {"a": "old"}, (), (("a", "new"),)),  # a changed value is one upsert
        ({"a": "1"}, {"a": "1", "z": "9"}, ("z",), ()),
    ],
)
def test_label_set_difference(
    desired: dict[str, str] | None,
    remote_user: dict[str, str],
    delete: tuple[str, ...],
    add: tuple[tuple[str, str], ...],
) -> None:
    remote = mk_remote(labels=remote_user)
    result = plan(mk_spec(labels=desired), remote)
    expected: list[RemoteCall] = []
    if delete:
        expected.append(DeleteLabels(MODEL, "1.0.0", delete))
    if add:
        expected.append(AddLabels(MODEL, "1.0.0", tuple(Label(key=k, value=v) for k, v in add)))
    assert list(result.calls) == expected
    assert OWNER_LABEL_KEY not in {k for c in result.calls if isinstance(c, DeleteLabels) for k in c.keys}
    assert ("labels" in result.drift) is bool(expected)
    final = apply_calls(remote, result.calls).label_map()
    assert final[OWNER_LABEL_KEY] == UID
    assert {k: v for k, v in final.items() if k != OWNER_LABEL_KEY} == (
        desired if desired is not None else remote_user
    )


# --- Observe and paused ------------------------------------------------------------------------


def test_observe_reports_drift_and_never_writes() -> None:
    spec = mk_spec(versionDescription="want", labels={"a": "1"}, uri="oss://b/x/", approvalStatus="Approved")
    remote = mk_remote(owner=None, version_description="have", labels={"a": "2"}, approval_status="Approved")
    result = plan(spec, remote, policies=OBSERVE)
    assert result.action is Action.OBSERVE
    assert result.calls == ()
    assert result.drift == ["uri", "versionDescription", "labels"]
    assert "drift in uri, versionDescription, labels" in result.message


@pytest.mark.parametrize("owner", [UID, OTHER_UID, None])
def test_observe_ignores_ownership(owner: str | None) -> None:
    result = plan(mk_spec(), mk_remote(owner=owner), policies=OBSERVE)
    assert result.action is Action.OBSERVE
    assert result.drift == []
    assert result.calls == ()
    assert result.ours is (owner == UID)


def test_observe_missing_remote_never_creates() -> None:
    result = plan(mk_spec(), None, policies=OBSERVE)
    assert result.action is Action.OBSERVE
    assert result.calls == ()
    assert result.observed is None
    assert "never creates" in result.message


@pytest.mark.parametrize(
    ("remote", "ours"),
    [(None, False), (mk_remote(version_description="old"), True), (mk_remote(owner=None), False)],
)
def test_paused_makes_no_calls_but_reports_drift(remote: ModelVersion | None, ours: bool) -> None:
    result = plan(mk_spec(versionDescription="new"), remote, policies=PAUSED)
    assert result.action is Action.PAUSED
    assert result.calls == ()
    assert result.ours is ours
    if remote is not None:
        assert result.drift == ["versionDescription"]


# --- Deletion -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policies", "observed", "owned", "action", "calls", "best_effort"),
    [
        (MANAGE, mk_remote(), None, DeletionAction.DELETE, (DeleteVersion(MODEL, "1.0.0"),), False),
        (
            RETAIN,
            mk_remote(),
            None,
            DeletionAction.RELEASE,
            (DeleteLabels(MODEL, "1.0.0", RESERVED_LABEL_KEYS),),
            True,
        ),
        (OBSERVE, mk_remote(), None, DeletionAction.NOTHING, (), False),
        (MANAGE, None, None, DeletionAction.NOTHING, (), False),  # remote already gone
        (MANAGE, None, [], DeletionAction.NOTHING, (), False),
        (MANAGE, mk_remote(owner=None), None, DeletionAction.NOTHING, (), False),  # never ours
        (MANAGE, mk_remote(owner=OTHER_UID), None, DeletionAction.NOTHING, (), False),
        (PAUSED, mk_remote(), None, DeletionAction.DELETE, (DeleteVersion(MODEL, "1.0.0"),), False),
        (
            MANAGE,
            None,
            [mk_remote("0.2.0"), mk_remote("0.1.0"), mk_remote("0.3.0", owner=OTHER_UID)],
            DeletionAction.DELETE,
            (DeleteVersion(MODEL, "0.1.0"), DeleteVersion(MODEL, "0.2.0")),
            False,
        ),
        (
            MANAGE,
            mk_remote("0.1.0"),
            [mk_remote("0.1.0")],
            DeletionAction.DELETE,
            (DeleteVersion(MODEL, "0.1.0"),),
            False,
        ),
    ],
)
def test_deletion(
    policies: Policies,
    observed: ModelVersion | None,
    owned: list[ModelVersion] | None,
    action: DeletionAction,
    calls: tuple[RemoteCall, ...],
    best_effort: bool,
) -> None:
    result = plan_deletion(mk_spec(), uid=UID, policies=policies, observed=observed, owned=owned)
    assert result.action is action
    assert result.calls == calls
    assert result.best_effort is best_effort


def test_deletion_of_foreign_version_says_whose_it_is() -> None:
    result = plan_deletion(
        mk_spec(), uid=UID, policies=MANAGE, observed=mk_remote(owner=OTHER_UID), owned=None
    )
    assert OTHER_UID in result.message
    assert "left untouched" in result.message


def test_deletion_ignores_an_invalid_spec() -> None:
    spec = mk_spec(metrics=_metrics_of_size(9000))
    result = plan_deletion(spec, uid=UID, policies=MANAGE, observed=mk_remote(), owned=None)
    assert result.action is DeletionAction.DELETE


# --- Properties: applying a plan converges, with any JSON shape the server returns ---------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.text(max_size=5)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=8,
)
json_objects = st.dictionaries(st.text(max_size=4), json_values, max_size=4)
label_maps = st.dictionaries(
    st.text(alphabet="abcxyz", min_size=1, max_size=3), st.text(alphabet="01", max_size=2), max_size=6
)
maybe = st.none


@st.composite
def specs(draw: st.DrawFn) -> ModelVersionSpec:
    fields: dict[str, Any] = {
        "versionDescription": draw(maybe() | st.text(max_size=5)),
        "approvalStatus": draw(maybe() | st.sampled_from(["Pending", "Approved", "Rejected"])),
        "sourceType": draw(maybe() | st.sampled_from(["Custom", "PAIFlow", "TrainingService"])),
        "sourceId": draw(maybe() | st.text(max_size=5)),
        "labels": draw(maybe() | label_maps),
    }
    for name in (
        "metrics",
        "trainingSpec",
        "inferenceSpec",
        "evaluationSpec",
        "compressionSpec",
        "distillationSpec",
        "extraInfo",
        "options",
    ):
        fields[name] = draw(maybe() | json_objects)
    return mk_spec(**fields)


@st.composite
def remotes(draw: st.DrawFn) -> ModelVersion:
    fields: dict[str, Any] = {
        "version_description": draw(maybe() | st.text(max_size=5)),
        "approval_status": draw(maybe() | st.sampled_from(["Pending", "Approved", "Rejected"])),
        "source_type": draw(maybe() | st.sampled_from(["Custom", "PAIFlow", "TrainingService"])),
        "source_id": draw(maybe() | st.text(max_size=5)),
        "labels": draw(label_maps),
        "options": draw(maybe() | json_objects.map(json.dumps) | st.just("garbage")),
    }
    for attr in (
        "metrics",
        "training_spec",
        "inference_spec",
        "evaluation_spec",
        "compression_spec",
        "distillation_spec",
        "extra_info",
    ):
        fields[attr] = draw(maybe() | json_objects)
    return mk_remote(owner=draw(st.sampled_from([UID, None])), **fields)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs(), remote=remotes())
def test_applying_a_plan_converges(spec: ModelVersionSpec, remote: ModelVersion) -> None:
    first = plan(spec, remote, policies=ADOPT)
    assert first.action in (Action.IN_SYNC, Action.UPDATE, Action.ADOPT)
    assert (first.calls == ()) is (first.action is Action.IN_SYNC)
    converged = apply_calls(remote, first.calls)
    second = plan(spec, converged, policies=ADOPT)
    assert second.action is Action.IN_SYNC, second
    assert second.calls == ()
    assert second.drift == []
    assert compute_drift(spec, converged) == []
    assert converged.label_map()[OWNER_LABEL_KEY] == UID
    # Unmanaged fields are untouched.
    for attr in ("approval_status", "version_description", "metrics"):
        if getattr(spec, attr) is None:
            assert getattr(converged, attr) == getattr(mangle(remote), attr)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs())
def test_create_then_replan_is_in_sync(spec: ModelVersionSpec) -> None:
    created = apply_calls(None, plan(spec, None).calls)
    assert plan(spec, created).action is Action.IN_SYNC


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs(), remote=remotes())
def test_observe_and_paused_never_write(spec: ModelVersionSpec, remote: ModelVersion) -> None:
    for policies in (OBSERVE, PAUSED):
        result = plan(spec, remote, policies=policies)
        assert result.calls == ()
        assert result.drift == compute_drift(spec, remote)


def test_a_fixed_name_present_since_creation_needs_no_ownership_search() -> None:
    """Generation 1: the name was there from the start, no server-assigned create can have
    happened, so a create costs GET + Create + GET (no Lists); later generations search."""
    named = ModelVersionSpec.model_validate({"modelId": MODEL, "uri": URI, "versionName": "1.0.0"})
    nothing = Recorded()
    assert not needs_owner_search(named, nothing, None, generation=1)
    assert needs_owner_search(named, nothing, None, generation=2)
    assert needs_owner_search(named, nothing, None)  # unknown: search
    assert not needs_owner_search(named, Recorded(version_name="1.0.0"), None, generation=2)
