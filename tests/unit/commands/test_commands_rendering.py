"""Rendering of plan and explain, without a registry: field views, diffs, headlines, exit codes,
ages and due times."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest

from pai_operator.commands.explain import age, kinds, next_due
from pai_operator.commands.fields import FieldChange, changes, remote_fields, render_change, spec_fields
from pai_operator.commands.manifests import parse_documents
from pai_operator.commands.output import Output
from pai_operator.commands.preview import ObjectPlan, Outcome, exit_code, headline, render
from pai_operator.core_settings import CoreSettings
from pai_operator.pai.models import Label, ModelVersion
from pai_operator.pai.planning import assigned_version_name
from pai_operator.pai.spec import OWNER_LABEL_KEY, RESOURCE, ModelVersionSpec
from pai_operator.truefoundry.models import ModelVersion as TfyVersion
from pai_operator.truefoundry.spec import OWNER_METADATA_KEY, TrueFoundryModelVersionSpec


def test_a_pai_version_is_seen_in_spec_terms_without_the_ownership_labels() -> None:
    remote = ModelVersion(
        version_name="1.0.0",
        uri="oss://b/",
        labels=[Label(key="team", value="risk"), Label(key=OWNER_LABEL_KEY, value="uid")],
        inference_spec={"processor": "pmml"},
        options='{"a": 1}',
    )
    view = remote_fields(ModelVersionSpec, remote, "pai.mlops.dev/")
    assert view["labels"] == {"team": "risk"}
    assert view["inferenceSpec"] == {"processor": "pmml"}
    assert view["versionName"] == "1.0.0"
    assert "modelId" not in view  # a version does not carry it
    spec = ModelVersionSpec.model_validate({"modelId": "m", "uri": "oss://b/", "options": {"a": 2}})
    assert spec_fields(spec)["options"] == {"a": 2}
    # Options is a JSON string remotely: parsed when the spec holds an object.
    assert changes(["options"], spec_fields(spec), view) == [FieldChange("options", {"a": 1}, {"a": 2})]


def test_a_truefoundry_version_is_read_through_its_manifest() -> None:
    remote = TfyVersion.model_validate(
        {
            "id": "v-1",
            "fqn": "model:t/repo/m:3",
            "created_by_subject": {"subjectId": "u", "subjectType": "user"},
            "ml_repo_id": "r",
            "model_id": "m",
            "manifest": {
                "name": "m",
                "ml_repo": "repo",
                "version": 3,
                "description": "old",
                "metadata": {"k": 1, OWNER_METADATA_KEY: {"uid": "x"}, ".truefoundry": {"x": 1}},
                "source": {"type": "external", "uri": "s3://b/m"},
            },
        }
    )
    view = remote_fields(TrueFoundryModelVersionSpec, remote, "truefoundry.mlops.dev/")
    assert view["description"] == "old"
    assert view["metadata"] == {"k": 1}  # neither the ownership key nor TrueFoundry's own
    assert view["source"] == {"type": "external", "uri": "s3://b/m"}
    assert view["mlRepo"] == "repo"


def test_changes_render_scalars_mappings_and_json_diffs() -> None:
    assert render_change(FieldChange("versionDescription", None, "new")) == [
        'versionDescription: (unset) → "new"'
    ]
    assert render_change(FieldChange("labels", {"a": "1", "b": "2"}, {"a": "3", "c": "4"})) == [
        "labels:",
        '  ~ a: "1" → "3"',
        '  - b: "2"',
        '  + c: "4"',
    ]
    lines = render_change(FieldChange("inferenceSpec", {"x": {"cpu": 1}}, {"x": {"cpu": 2}}))
    assert lines[0] == "inferenceSpec:"
    assert "  --- remote" in lines
    assert "  +++ spec" in lines
    assert '  -    "cpu": 1' in lines
    assert '  +    "cpu": 2' in lines


def _plan(outcome: Outcome, **kwargs: Any) -> ObjectPlan:
    text = "apiVersion: pai.mlops.dev/v1alpha1\nkind: ModelVersion\nmetadata: {name: v, namespace: ns}\n"
    (manifest,) = parse_documents([("f.yaml", text)]).objects
    return ObjectPlan(manifest, outcome, "message", **kwargs)


def test_headlines_and_exit_codes_follow_terraform() -> None:
    adopt = _plan(Outcome.ADOPT)
    assert headline(adopt) == "adopt: ownership labels only"
    assert headline(_plan(Outcome.ADOPT, changes=[FieldChange("uri", "a", "b")])) == "adopt"
    assert headline(_plan(Outcome.BLOCKED, reason="Conflict")) == "blocked: Conflict"
    none, update = _plan(Outcome.NONE), _plan(Outcome.UPDATE)
    assert exit_code([none], detailed=True) == 0
    assert exit_code([none, update], detailed=True) == 2
    assert exit_code([none, update], detailed=False) == 0
    assert exit_code([update, _plan(Outcome.ERROR, reason="AuthFailed")], detailed=True) == 1
    assert exit_code([_plan(Outcome.OBSERVE), _plan(Outcome.PAUSED)], detailed=True) == 0
    # Imported manifests: the ownership labels are written, no field of the version changes.
    assert exit_code([none, adopt], detailed=True) == 0
    assert exit_code([_plan(Outcome.ADOPT, changes=[FieldChange("uri", "a", "b")])], detailed=True) == 2


def test_plan_report_piped_is_plain_text() -> None:
    stream = io.StringIO()
    plans = [_plan(Outcome.UPDATE, version="m:1.0.0", changes=[FieldChange("uri", "a", "b")])]
    render(Output("text", stream), plans, ["f.yaml#2: Secret v1 is not ours, ignored"])
    assert stream.getvalue() == (
        "# f.yaml#2: Secret v1 is not ours, ignored\n"
        "~ ModelVersion ns/v (PAI m:1.0.0): update\n"
        "    message\n"
        '    uri: "a" → "b"\n'
        "Plan: 1 update.\n"
    )


def test_ages_read_like_kubectl() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert age("2026-01-02T03:04:00Z", now) == "5s"
    assert age("2026-01-02T02:00:00Z", now) == "1h"
    assert age("2025-12-30T03:04:05Z", now) == "3d"
    assert age(None, now) == "?"
    assert age("yesterday", now) == "?"


def _body(reason: str = "ReconcileSuccess", **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"generation": 2, **meta},
        "status": {
            "observedGeneration": 2,
            "conditions": [{"type": "Synced", "status": "True", "reason": reason}],
        },
    }


@pytest.mark.parametrize(
    ("body", "when"),
    [
        (_body(), "within 11m"),  # 600 s default resync +10 %
        (_body(generation=3), "now"),
        (_body(annotations={"pai.mlops.dev/reconcile-requested-at": "t1"}), "now"),
        (_body(deletionTimestamp="2026-01-01T00:00:00Z"), "now"),
        (_body("ReconcileError"), "within 5m"),
        (_body("ModelNotFound"), "every 5m"),
        (_body("Conflict"), "within 11m"),
        (_body("ReferenceNotReady"), "when the referenced object is Ready"),
    ],
)
def test_next_pass_follows_the_engine(body: dict[str, Any], when: str) -> None:
    assert next_due(body, RESOURCE, CoreSettings()).when == when


def test_kinds_accept_short_and_qualified_names_only_where_unambiguous() -> None:
    names = kinds()
    assert names["pmv"].group == "pai.mlops.dev"
    assert names["tfmv"].group == "truefoundry.mlops.dev"
    assert names["model"].kind == "Model"
    assert names["modelversions.truefoundry.mlops.dev"].group == "truefoundry.mlops.dev"
    assert "modelversion" not in names  # both registries have one


def test_the_name_pai_would_assign() -> None:
    assert assigned_version_name([]) == "0.1.0"
    assert assigned_version_name(["0.1.0", "0.2.0"]) == "0.3.0"
    assert assigned_version_name(["1.9.3", "1.10.0_beta", "0.20.0"]) == "1.11.0"
    assert assigned_version_name(["custom", "2.0.0-rc"]) == "0.1.0"
