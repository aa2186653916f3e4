"""`pai-operator` flags, their PAI_OPERATOR_* environment variables, and everything generated from
the one declaration of the settings (--help, the README table) or kept in step with it (the Helm
chart's values, schema and env mapping, the kustomize Deployment)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import typing
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from pai_operator import __version__
from pai_operator.cli import build_parser, main
from pai_operator.settings import OPTIONS, OperatorSettings, Option, from_arguments
from tests.support.kube import REPO_ROOT

CHART = REPO_ROOT / "charts" / "pai-operator"
# Where the chart deliberately differs from the operator's own default, and why.
CHART_DEFAULTS = {
    "log_format": "json",  # in a cluster, logs go to a pipeline; a terminal gets the plain default
    # "": the release's full name, so releases sharding the cluster never share a Lease.
    "leader_elect_lease_name": None,
}
# Set by the chart from the Pod itself (downward API), not from a value: the Lease lives in the
# release namespace (POD_NAMESPACE, which the operator reads when the setting is unset) and a
# replica is named after its Pod (POD_NAME, the setting's own variable).
FROM_THE_POD = {"leader_elect_namespace": "POD_NAMESPACE", "identity": "POD_NAME"}


def settings(argv: list[str]) -> OperatorSettings:
    return from_arguments(build_parser().parse_args(["run", *argv]))


def test_defaults_are_the_documented_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("PAI_OPERATOR_")]:
        monkeypatch.delenv(name)
    s = settings([])
    assert s == OperatorSettings()
    assert s.all_namespaces
    assert (s.resync_interval, s.read_rate, s.write_rate, s.concurrency) == (600.0, 50.0, 20.0, 20)
    assert s.default_deletion_policy == "Delete"


def test_environment_then_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAI_OPERATOR_NAMESPACES", "team-a, team-b")
    monkeypatch.setenv("PAI_OPERATOR_RESYNC_INTERVAL", "42")
    monkeypatch.setenv("PAI_OPERATOR_DEFAULT_DELETION_POLICY", "Retain")
    monkeypatch.setenv("PAI_OPERATOR_ENDPOINT", "http://127.0.0.1:9")
    s = settings([])
    assert s.namespaces == ("team-a", "team-b")
    assert s.resync_interval == 42.0
    assert s.default_deletion_policy == "Retain"
    assert s.endpoint == "http://127.0.0.1:9"
    s = settings(["--resync-interval", "5", "--namespace", "x", "--region", "cn-beijing"])
    assert s.namespaces == ("team-a", "team-b", "x")  # argparse appends to the env default
    assert (s.resync_interval, s.region) == (5.0, "cn-beijing")
    assert settings(["--all-namespaces"]).all_namespaces


@pytest.mark.parametrize(
    "argv",
    [["--resync-interval", "0"], ["--write-rate", "-1"], ["--default-deletion-policy", "Orphan"],
     ["--log-format", "xml"], ["--namespace", "a", "--all-namespaces"]],
)  # fmt: skip
def test_bad_settings_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        settings(argv)


def test_version_and_crd_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"pai-operator {__version__}"
    assert main(["crd"]) == 0
    # Both CRDs, so that `pai-operator crd | kubectl apply -f -` installs everything.
    crds = ("pai.mlops.dev_modelversions.yaml", "truefoundry.mlops.dev_modelversions.yaml")
    assert capsys.readouterr().out == "".join((REPO_ROOT / "crds" / name).read_text() for name in crds)


# --- one declaration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [{"resync_interval": 0}, {"concurrency": 0}, {"read_rate": -1}, {"metrics_port": 70000},
     {"default_deletion_policy": "Orphan"}, {"endpoint": "pai.example.com"}, {"region": ""},
     {"backoff_base": 10, "backoff_cap": 5}, {"unknown": 1}],
)  # fmt: skip
def test_validated_however_it_is_built(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        OperatorSettings(**values)


def test_settings_are_immutable() -> None:
    s = OperatorSettings()
    with pytest.raises(ValidationError):
        s.region = "cn-beijing"  # type: ignore[misc]


def test_every_field_is_declared_completely() -> None:
    assert [o.name for o in OPTIONS] == list(OperatorSettings.model_fields)
    envs = [o.env for o in OPTIONS]
    flags = [o.flag for o in OPTIONS] + [o.all_flag[0] for o in OPTIONS if o.all_flag]
    assert len(set(envs)) == len(envs)
    assert len(set(flags)) == len(flags)
    for option in OPTIONS:
        assert option.env.startswith("PAI_OPERATOR_") or option.env in FROM_THE_POD.values(), option
        assert option.flag.startswith("--"), option
        # A sentence a user can act on, not a placeholder.
        assert len(option.description) > 10, option
        assert option.description[0].isupper(), option
        assert option.description.endswith("."), option


def _non_default(option: Option) -> tuple[str, Any]:
    """A raw environment value for `option` and what it must parse to: derived from the type, so
    a new setting is covered without touching this test."""
    annotation = OperatorSettings.model_fields[option.name].annotation
    if option.is_flag:
        return "true", True
    if option.choices:
        other = next(c for c in option.choices if c != option.default)
        return other, other
    if option.repeatable:
        return "a, b", ("a", "b")
    if annotation is int:
        return str(option.default + 1), option.default + 1
    if annotation is float:
        return str(option.default + 0.5), option.default + 0.5
    patterns = [getattr(c, "pattern", None) for c in OperatorSettings.model_fields[option.name].metadata]
    text = "https://example.invalid/x" if any(p and "http" in p for p in patterns) else "example-x"
    return text, text


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.env)
def test_each_environment_variable_sets_its_field(option: Option) -> None:
    raw, expected = _non_default(option)
    parsed = from_arguments(build_parser().parse_args(["run"]), environ={option.env: raw})
    assert getattr(parsed, option.name) == expected
    assert parsed.model_dump(exclude={option.name}) == OperatorSettings().model_dump(exclude={option.name})
    # An empty variable counts as unset (what an empty `value:` in a manifest yields).
    assert from_arguments(build_parser().parse_args(["run"]), environ={option.env: ""}) == OperatorSettings()


def test_invalid_environment_names_the_flag_and_the_variable() -> None:
    with pytest.raises(SystemExit) as exited:
        from_arguments(build_parser().parse_args(["run"]), environ={"PAI_OPERATOR_CONCURRENCY": "many"})
    assert "--concurrency (PAI_OPERATOR_CONCURRENCY)" in str(exited.value.code)


def test_help_lists_every_setting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping inside descriptions
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    for option in OPTIONS:
        assert option.flag in out
        assert option.env in out
        assert option.description.replace("%", "") in out.replace("%", "")
        assert f"default {option.shown_default}]" in out


def test_readme_table_is_generated_from_the_declaration() -> None:
    spec = importlib.util.spec_from_file_location("gen_docs", REPO_ROOT / "hack" / "gen-docs.py")
    assert spec
    assert spec.loader
    gen_docs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_docs)
    readme = (REPO_ROOT / "README.md").read_text()
    assert gen_docs.render(readme) == readme, "README.md settings table is stale: run `make docs`"
    for option in OPTIONS:
        assert f"`{option.env}`" in readme


# --- the Helm chart and deploy/ ------------------------------------------------------------------


def _lookup(tree: dict[str, Any], dotted: str) -> Any:
    for key in dotted.split("."):
        tree = tree[key]
    return tree


def _schema(schema: dict[str, Any], dotted: str) -> dict[str, Any]:
    for key in dotted.split("."):
        schema = schema["properties"][key]
    return schema


CHARTED = [o for o in OPTIONS if o.chart]


def test_every_setting_is_a_chart_value() -> None:
    # A setting the chart cannot set is a setting Helm users cannot use.
    assert [o.name for o in OPTIONS if not o.chart] == list(FROM_THE_POD)


@pytest.mark.parametrize("option", CHARTED, ids=lambda o: o.name)
def test_chart_value_matches_the_declaration(option: Option) -> None:
    assert option.chart
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    default = _lookup(values, option.chart)
    expected = CHART_DEFAULTS.get(option.name, option.default)
    if option.repeatable:
        assert tuple(default) == tuple(expected)
    elif expected is None:
        assert default == ""  # the chart's way of saying "unset"
    else:
        assert default == expected
    rules = _schema(schema, option.chart)
    if option.choices:
        assert tuple(rules["enum"]) == option.choices
    # The chart never admits a value the operator would refuse at start.
    for constraint in OperatorSettings.model_fields[option.name].metadata:
        if getattr(constraint, "gt", None) is not None:
            assert (
                rules.get("exclusiveMinimum", -1) >= constraint.gt or rules.get("minimum", -1) > constraint.gt
            )
        if getattr(constraint, "ge", None) is not None:
            assert rules.get("minimum", -1) >= constraint.ge
        if getattr(constraint, "le", None) is not None:
            assert rules.get("maximum", float("inf")) <= constraint.le


def test_chart_deployment_maps_each_value_to_its_variable() -> None:
    lines = (CHART / "templates" / "deployment.yaml").read_text().splitlines()
    declared = {o.env for o in OPTIONS if o.name not in FROM_THE_POD}
    used = {m for line in lines for m in re.findall(r"name: (PAI_OPERATOR_\w+)", line)}
    assert used == declared
    for variable in FROM_THE_POD.values():
        (i,) = [n for n, line in enumerate(lines) if line.strip() == f"- name: {variable}"]
        assert "fieldRef" in "\n".join(lines[i : i + 4]), variable
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    for option in CHARTED:
        i = next(n for n, line in enumerate(lines) if line.strip() == f"- name: {option.env}")
        # The value is read next to the variable: `value: {{ .Values.x }}`, or a `with`/`if` guard,
        # or a helper of _helpers.tpl that reads it (a default computed from the release).
        near = "\n".join(lines[i - 1 : i + 3])
        included = re.findall(r'include "([\w.-]+)"', near)
        bodies = [helpers.split(f'define "{name}"', 1)[1].split("{{- end }}", 1)[0] for name in included]
        assert any(f".Values.{option.chart}" in text for text in (near, *bodies)), option


def test_kustomize_deployment_sets_only_declared_variables() -> None:
    deployment = yaml.safe_load((REPO_ROOT / "deploy" / "base" / "deployment.yaml").read_text())
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    names = {e["name"] for e in env if e["name"].startswith("PAI_OPERATOR_")}
    assert names <= {o.env for o in OPTIONS}
    # What deploy/ sets must itself be valid.
    environ = {e["name"]: e["value"] for e in env if e["name"] in names and "value" in e}
    from_arguments(build_parser().parse_args(["run"]), environ=environ)


def test_typing_of_the_declaration_is_what_argparse_sees() -> None:
    for option in OPTIONS:
        annotation = OperatorSettings.model_fields[option.name].annotation
        assert option.is_flag == (annotation is bool)
        assert option.repeatable == (typing.get_origin(annotation) is tuple)


def test_identity_defaults_to_host_and_pid_from_the_flags_and_an_empty_pod_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POD_NAME", "")
    s = settings([])
    assert s.identity.endswith(f"-{os.getpid()}")
    assert len(s.identity) > len(f"-{os.getpid()}")
    assert "()" not in s.user_agent
    monkeypatch.setenv("POD_NAME", "pod-7")
    assert settings([]).identity == "pod-7"
    assert settings(["--identity", "me"]).identity == "me"
