"""The Argo CD health check for ModelVersion, run in a real Lua 5.1 interpreter (Argo CD embeds
gopher-lua, a Lua 5.1) against every case of its own health_test.yaml, as Argo CD's CI would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

REPO = Path(__file__).resolve().parents[2]
ARGOCD = REPO / "deploy" / "argocd"
CUSTOMIZATIONS = ARGOCD / "resource_customizations"
CHECK_DIR = CUSTOMIZATIONS / "pai.mlops.dev" / "ModelVersion"
TFY_CHECK_DIR = CUSTOMIZATIONS / "truefoundry.mlops.dev" / "ModelVersion"
HEALTH_LUA = (CHECK_DIR / "health.lua").read_text()
CASES: list[dict[str, Any]] = yaml.safe_load((CHECK_DIR / "health_test.yaml").read_text())["tests"]
TFY_CASES: list[dict[str, Any]] = yaml.safe_load((TFY_CHECK_DIR / "health_test.yaml").read_text())["tests"]


def _to_lua(runtime: Any, value: Any) -> Any:
    # Argo CD hands the script the object as nested Lua tables; lists become 1-based arrays.
    if isinstance(value, dict):
        return runtime.table_from({k: _to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([_to_lua(runtime, v) for v in value])
    return value


def run_health(lua_source: str, obj: dict[str, Any]) -> dict[str, str]:
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = _to_lua(runtime, obj)
    # Argo CD runs the script as a chunk whose return value is the health table.
    result = runtime.execute(lua_source)
    return {"status": result["status"], "message": result["message"]}


@pytest.mark.parametrize("case", CASES, ids=[Path(c["inputPath"]).stem for c in CASES])
def test_health_case(case: dict[str, Any]) -> None:
    obj = yaml.safe_load((CHECK_DIR / case["inputPath"]).read_text())
    assert run_health(HEALTH_LUA, obj) == case["healthStatus"]


@pytest.mark.parametrize("case", TFY_CASES, ids=[Path(c["inputPath"]).stem for c in TFY_CASES])
def test_truefoundry_health_case(case: dict[str, Any]) -> None:
    obj = yaml.safe_load((TFY_CHECK_DIR / case["inputPath"]).read_text())
    assert obj["apiVersion"] == "truefoundry.mlops.dev/v1alpha1"
    assert run_health(HEALTH_LUA, obj) == case["healthStatus"]


def test_truefoundry_reuses_the_pai_script() -> None:
    # One script for both kinds: the TrueFoundry directory links to it instead of copying it.
    link = TFY_CHECK_DIR / "health.lua"
    assert link.is_symlink()
    assert link.resolve() == (CHECK_DIR / "health.lua").resolve()


@pytest.mark.parametrize(
    ("check_dir", "cases"), [(CHECK_DIR, CASES), (TFY_CHECK_DIR, TFY_CASES)], ids=["pai", "tfy"]
)
def test_every_testdata_file_is_a_case(check_dir: Path, cases: list[dict[str, Any]]) -> None:
    used = {Path(c["inputPath"]).name for c in cases}
    assert used == {p.name for p in (check_dir / "testdata").glob("*.yaml")}


def test_every_argocd_status_is_covered() -> None:
    assert {c["healthStatus"]["status"] for c in CASES} == {"Healthy", "Progressing", "Degraded", "Suspended"}


@pytest.mark.parametrize(
    "reason",
    [
        "InvalidSpec",
        "AlreadyExists",
        "ModelNotFound",
        "AuthFailed",
        "NoCredentials",
        "Conflict",
        "ImmutableFieldMismatch",
    ],
)
def test_each_terminal_reason_degrades_even_when_ready(reason: str) -> None:
    obj = {
        "metadata": {"generation": 2},
        "status": {
            "observedGeneration": 2,
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "Available"},
                {"type": "Synced", "status": "False", "reason": reason, "message": "boom"},
            ],
        },
    }
    assert run_health(HEALTH_LUA, obj) == {"status": "Degraded", "message": f"{reason}: boom"}


def test_retryable_error_is_not_degraded() -> None:
    obj = {
        "status": {
            "conditions": [
                {"type": "Synced", "status": "False", "reason": "ReconcileError", "message": "503"}
            ]
        }
    }
    assert run_health(HEALTH_LUA, obj) == {"status": "Progressing", "message": "503"}


def test_argocd_cm_snippet_embeds_the_same_lua() -> None:
    snippet = yaml.safe_load((ARGOCD / "argocd-cm-patch.yaml").read_text())
    assert snippet["kind"] == "ConfigMap"
    assert snippet["metadata"]["name"] == "argocd-cm"
    assert snippet["data"]["resource.customizations.health.pai.mlops.dev_ModelVersion"] == HEALTH_LUA
    assert snippet["data"]["resource.customizations.health.truefoundry.mlops.dev_ModelVersion"] == HEALTH_LUA
    # ...through a YAML alias, so the ConfigMap snippet holds the script once.
    text = (ARGOCD / "argocd-cm-patch.yaml").read_text()
    assert text.count("local terminal = {") == 1
    assert "truefoundry.mlops.dev_ModelVersion: *modelversion-health" in text


def test_argocd_cm_application_health_restores_child_app_health() -> None:
    snippet = yaml.safe_load((ARGOCD / "argocd-cm-patch.yaml").read_text())
    app_lua = snippet["data"]["resource.customizations.health.argoproj.io_Application"]
    child = {"status": {"health": {"status": "Degraded", "message": "pod crashloop"}}}
    assert run_health(app_lua, child) == {"status": "Degraded", "message": "pod crashloop"}
    assert run_health(app_lua, {})["status"] == "Progressing"


def _wave(path: Path) -> int:
    return int(yaml.safe_load(path.read_text())["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])


def test_operator_application_syncs_before_and_prunes_after_model_versions() -> None:
    apps = ARGOCD / "applications"
    operator, models = _wave(apps / "pai-operator.yaml"), _wave(apps / "pai-models.yaml")
    # Argo CD applies lower waves first and prunes higher waves first.
    assert operator < models
    operator_app = yaml.safe_load((apps / "pai-operator.yaml").read_text())
    assert operator_app["spec"]["source"]["path"] == "charts/pai-operator"
    assert (REPO / operator_app["spec"]["source"]["path"] / "Chart.yaml").is_file()


def _object(conditions: list[Any], generation: int = 4) -> dict[str, Any]:
    return {
        "apiVersion": "pai.mlops.dev/v1alpha1",
        "metadata": {"generation": generation},
        "status": {
            "observedGeneration": generation,
            "conditions": [c.model_dump(by_alias=True, exclude_none=True) for c in conditions],
        },
    }


def _rows() -> list[tuple[str, list[Any]]]:
    from pai_operator.conditions import conditions_for_failure, conditions_for_plan
    from tests.unit.test_conditions import FAILURE_TABLE, PLAN_TABLE

    rows = [(name, conditions_for_plan(plan, 4)) for name, plan, _ in PLAN_TABLE]
    rows += [
        (f"{reason.value}-{exists}", conditions_for_failure(reason, "boom", 4, remote_exists=exists))
        for reason, exists, _ in FAILURE_TABLE
    ]
    return rows


@pytest.mark.parametrize(("conditions"), [r[1] for r in _rows()], ids=[r[0] for r in _rows()])
def test_health_agrees_with_the_conditions_the_operator_writes(conditions: list[Any]) -> None:
    # Every condition set the operator can write for a pass, judged by the Lua: Healthy exactly
    # when Ready says this generation is done and nothing needs a human; Degraded when Stalled.
    by_type = {c.type: c for c in conditions}
    health = run_health(HEALTH_LUA, _object(conditions))["status"]
    if by_type["Synced"].reason == "ReconcilePaused":
        assert health == "Suspended"
    elif by_type["Stalled"].status == "True":
        assert health == "Degraded"
    elif by_type["Reconciling"].status == "True":
        assert health == "Progressing"
    elif by_type["Ready"].status == "True":
        assert health == "Healthy"
    else:
        assert health in ("Progressing", "Degraded")
        assert health == ("Degraded" if by_type["Ready"].reason == "Unavailable" else "Progressing")
