"""The seam every subcommand builds on: manifests from -f, the registry flags, the output."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from pai_operator.commands.context import add_registry_arguments, registry_options, registry_settings
from pai_operator.commands.manifests import ManifestError, load_manifests, parse_documents
from pai_operator.commands.output import Output

MIXED = """\
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: pai.mlops.dev/v1alpha1
kind: ModelVersion
metadata: {name: v1, namespace: team-a}
spec: {modelId: m-1, uri: "oss://b/v1/"}
---
apiVersion: pai.mlops.dev/v1alpha1
kind: Model
metadata: {name: fraud}
spec: {modelName: fraud}
---
apiVersion: truefoundry.mlops.dev/v1alpha1
kind: ModelVersion
metadata: {name: tv}
spec: {}
---
apiVersion: pai.mlops.dev/v1alpha1
kind: ModelVersion
spec: {}
"""


def test_keeps_the_served_kinds_and_notes_the_rest() -> None:
    found = parse_documents([("all.yaml", MIXED)], namespace="ns")
    assert [(m.resource.group, m.resource.kind, m.namespace, m.name) for m in found.objects] == [
        ("pai.mlops.dev", "ModelVersion", "team-a", "v1"),  # its own namespace wins over -n
        ("pai.mlops.dev", "Model", "ns", "fraud"),
        ("truefoundry.mlops.dev", "ModelVersion", "ns", "tv"),
    ]
    assert found.objects[0].origin == "all.yaml#2"
    assert len(found.notes) == 2
    assert "Namespace v1 is not ours" in found.notes[0]
    assert "without metadata.name" in found.notes[1]


def test_lists_are_unwrapped_and_namespace_defaults() -> None:
    text = (
        "apiVersion: v1\nkind: List\nitems:\n"
        "- {apiVersion: pai.mlops.dev/v1alpha1, kind: ModelVersion, metadata: {name: a}, spec: {}}\n"
    )
    found = parse_documents([("list.yaml", text)])
    assert [(m.namespace, m.name, m.origin) for m in found.objects] == [
        ("default", "a", "list.yaml.items[1]")
    ]


def test_directories_are_read_in_name_order_and_stdin(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yml").write_text(MIXED.split("---\n")[1])
    (tmp_path / "a.yaml").write_text(MIXED.split("---\n")[2])
    (tmp_path / "notes.txt").write_text("not a manifest")
    found = load_manifests([str(tmp_path)])
    assert [m.name for m in found.objects] == ["fraud", "v1"]
    piped = load_manifests(["-"], stdin=io.StringIO(MIXED))
    assert len(piped.objects) == 3
    with pytest.raises(ManifestError, match="no such file"):
        load_manifests([str(tmp_path / "missing.yaml")])
    (tmp_path / "bad.yaml").write_text("a: [")
    with pytest.raises(ManifestError, match=r"bad\.yaml"):
        load_manifests([str(tmp_path / "bad.yaml")])


def test_registry_flags_are_runs_own() -> None:
    names = {o.flag for o in registry_options()}
    assert {"--endpoint", "--region", "--sts-endpoint", "--truefoundry-host"} <= names
    assert "--resync-interval" not in names  # the operator's own knobs stay with `run`
    parser = argparse.ArgumentParser()
    add_registry_arguments(parser)
    args = parser.parse_args(["--region", "cn-shanghai", "--endpoint", "http://127.0.0.1:1"])
    settings = registry_settings(args)
    assert (settings.region, settings.endpoint) == ("cn-shanghai", "http://127.0.0.1:1")


def test_piped_output_is_plain() -> None:
    stream = io.StringIO()
    out = Output("text", stream)
    assert not out.styled
    out.line("hello", style="bold red")
    out.table(["NAME", "ACTION"], [["a", "create"], ["longer-name", "update"]])
    assert stream.getvalue() == "hello\nNAME         ACTION\na            create\nlonger-name  update\n"
    assert "\x1b" not in stream.getvalue()


def test_an_unreachable_cluster_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pai_operator.cli import main

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: x}}]\n"
    )
    manifest = tmp_path / "v.yaml"
    manifest.write_text(MIXED)
    assert main(["plan", "-f", str(manifest), "--kubeconfig", str(kubeconfig)]) == 1
    assert main(["explain", "ns/v1", "--kubeconfig", str(kubeconfig)]) == 1
    err = capsys.readouterr().err
    assert err.count("pai-operator: cannot read /apis/pai.mlops.dev/v1alpha1/") == 2
    assert "Traceback" not in err
