"""Who owns a marked version (`LiveObjects`), the manifests that take orphans back, and the
TrueFoundry scan and deletion over a mock transport. End to end against the emulators and the
API server: tests/integration/test_import_orphans.py (PAI), test_truefoundry_lifecycle.py."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from pai_operator.commands.importing import Imported, render_documents
from pai_operator.commands.orphan_search import (
    LiveObjects,
    Orphan,
    TrueFoundryRemover,
    delete_orphans,
    find_truefoundry_orphans,
)
from pai_operator.commands.orphans import adoption_documents
from pai_operator.pai.labels import owner_ref_label
from pai_operator.pai.models import ModelVersion
from pai_operator.truefoundry import StaticApiKey, TrueFoundryClient, TrueFoundryClientConfig
from pai_operator.truefoundry.models import ModelVersion as TfyModelVersion
from pai_operator.truefoundry.spec import OWNER_METADATA_KEY as OWNER_KEY
from tests.unit.http_fakes import RecordingTransport, decoded_query
from tests.unit.truefoundry.tfy_fakes import REPO, REPO_ID, data, page, svc_error, version_json

LONG_NAME = "n" * 200  # its reference is past PAI's 128 bytes: the mark holds the digest


def test_a_mark_is_live_by_its_uid_or_by_a_reference_to_a_live_object() -> None:
    live = LiveObjects.of([("team", "a", "uid-a"), ("team", LONG_NAME, "uid-long")])
    assert live.owns("uid-a", None)
    assert live.owns("uid-gone", "team/a")  # a restore: same name, new UID (succession)
    assert live.owns("uid-gone", owner_ref_label(f"team/{LONG_NAME}"))
    assert live.owns("uid-gone", f"team/{LONG_NAME}")  # spelled verbatim by earlier releases
    assert not live.owns("uid-gone", "team/b")
    assert not live.owns("uid-gone", None)
    assert not live.owns(None, None)


def orphan(version: str, ref: str | None) -> Orphan:
    remote = ModelVersion.model_validate({"VersionName": version, "Uri": "oss://b/m/", "Labels": []})
    return Orphan("ModelVersion", "model-1", version, "uid-gone", ref, remote)


def test_adoption_manifests_take_orphans_back_under_their_old_name() -> None:
    digest = owner_ref_label(f"team/{LONG_NAME}")
    outcomes = adoption_documents(
        [orphan("1.0.0", "team/a"), orphan("2.0.0", digest), orphan("3.0.0", None)], "cn-hangzhou"
    )
    assert all(isinstance(o, Imported) for o in outcomes)
    documents = list(yaml.safe_load_all(render_documents(outcomes)))
    assert [d["metadata"] for d in documents] == [
        {"name": "a", "namespace": "team"},
        {"name": "model-1-2.0.0"},  # a digest names no object: a fresh name, the namespace is yours
        {"name": "model-1-3.0.0"},
    ]
    assert {d["spec"]["adoptionPolicy"] for d in documents} == {"IfExists"}
    assert {d["spec"]["regionId"] for d in documents} == {"cn-hangzhou"}


# --- TrueFoundry --------------------------------------------------------------------------
# A real TrueFoundryClient over httpx.MockTransport, answered with TrueFoundry-shaped bodies
# (tests/unit/truefoundry/tfy_fakes.py): the scan reads only, the deletion reads again first.

GONE = {"uid": "uid-gone", "ref": "team/gone"}


def tfy_version(number: int, mark: object = None, name: str = "m1") -> dict[str, Any]:
    metadata: dict[str, Any] = {"team": "search"} if mark is None else {"team": "search", OWNER_KEY: mark}
    return version_json(number, name=name, metadata=metadata)


class FakeTrueFoundry:
    """ListMlRepos, ListModelVersions (the `name` filter exact), GetModelVersion and
    DeleteModelVersion over a dict of versions by id; `marks_now` overrides what a GET returns."""

    def __init__(self, versions: list[dict[str, Any]]) -> None:
        self.versions = {v["id"]: v for v in versions}
        self.marks_now: dict[str, object] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api/svc/v1")
        if path == "/ml-repos":
            repo = {"id": REPO_ID, "manifest": {"type": "ml-repo", "name": REPO}}
            return page([repo], total=1, offset=0, limit=100)
        if path == "/model-versions":
            name = decoded_query(request).get("name")
            items = [v for v in self.versions.values() if name is None or v["manifest"]["name"] == name]
            return page(items, total=len(items), offset=0, limit=100)
        version_id = path.rsplit("/", 1)[1]
        if version_id not in self.versions:
            return svc_error(404, "Model version not found")
        if request.method == "DELETE":
            del self.versions[version_id]
            return httpx.Response(200, json={})
        current = self.versions[version_id]
        if version_id in self.marks_now:
            current = copy.deepcopy(current)
            current["manifest"]["metadata"][OWNER_KEY] = self.marks_now[version_id]
        return data(current)


def tfy_client(fake: FakeTrueFoundry) -> tuple[TrueFoundryClient, RecordingTransport]:
    transport = RecordingTransport(fake)
    config = TrueFoundryClientConfig.model_validate(
        {"host": "http://127.0.0.1:8765", "read_rate": None, "write_rate": None}
    )
    return TrueFoundryClient(config, StaticApiKey("tfy-key"), transport=transport), transport


async def test_truefoundry_versions_whose_mark_no_live_object_holds_are_orphans() -> None:
    fake = FakeTrueFoundry(
        [
            tfy_version(1, GONE),
            tfy_version(2, {"uid": "uid-live", "ref": "team/renamed"}),  # its object lives
            tfy_version(3, {"uid": "uid-gone", "ref": "team/a"}),  # restored: same name, new UID
            tfy_version(4),  # never marked
            tfy_version(5, "not-a-mark"),  # not the operator's shape: not its mark
            tfy_version(6, {"uid": "uid-old"}, name="m2"),
        ]
    )
    live = LiveObjects.of([("team", "a", "uid-live")])
    client, transport = tfy_client(fake)
    async with client:
        found = await find_truefoundry_orphans(client, live)
        only_m1 = await find_truefoundry_orphans(client, live, ml_repos=[REPO], names=["m1"])
    assert [(o.model_id, o.version_name, o.owner_uid, o.owner_ref) for o in found] == [
        (f"{REPO}/m1", "1", "uid-gone", "team/gone"),
        (f"{REPO}/m2", "6", "uid-old", None),
    ]
    assert {o.registry for o in found} == {"TrueFoundry"}
    assert [o.ident for o in only_m1] == [f"{REPO}/m1:1"]
    assert {r.method for r in transport.requests} == {"GET"}  # the scan reads only


async def test_truefoundry_deletion_reads_again_and_keeps_a_version_adopted_meanwhile() -> None:
    versions = [tfy_version(1, GONE), tfy_version(2, GONE), tfy_version(3, GONE)]
    fake = FakeTrueFoundry(versions)
    client, transport = tfy_client(fake)
    async with client:
        orphans = await find_truefoundry_orphans(client, LiveObjects.of([]))
        fake.marks_now[versions[1]["id"]] = {"uid": "uid-new", "ref": "team/new"}  # adopted meanwhile
        del fake.versions[versions[2]["id"]]  # deleted by someone else meanwhile
        done = await delete_orphans({"TrueFoundry": TrueFoundryRemover(client)}, orphans)
    assert [(d.orphan.version_name, d.outcome) for d in done] == [
        ("1", "deleted"),
        ("2", "kept"),
        ("3", "gone"),
    ]
    assert "mark changed" in done[1].reason
    deletes = [r.url.path for r in transport.requests if r.method == "DELETE"]
    assert deletes == [f"/api/svc/v1/model-versions/{versions[0]['id']}"]
    assert sorted(fake.versions) == [versions[1]["id"]]


def test_truefoundry_adoption_manifests_take_orphans_back_under_their_old_name() -> None:
    digest = owner_ref_label(f"team/{LONG_NAME}")
    orphans = [
        Orphan(
            "ModelVersion",
            f"{REPO}/m1",
            "1",
            "uid-gone",
            "team/a",
            TfyModelVersion.model_validate(tfy_version(1, GONE)),
        ),
        Orphan(
            "ModelVersion",
            f"{REPO}/m1",
            "2",
            "uid-gone",
            digest,
            TfyModelVersion.model_validate(tfy_version(2, GONE)),
        ),
    ]
    outcomes = adoption_documents(orphans, "cn-hangzhou")
    assert all(isinstance(o, Imported) for o in outcomes)
    documents = list(yaml.safe_load_all(render_documents(outcomes)))
    assert [(d["apiVersion"], d["kind"], d["metadata"]) for d in documents] == [
        ("truefoundry.mlops.dev/v1alpha1", "ModelVersion", {"name": "a", "namespace": "team"}),
        ("truefoundry.mlops.dev/v1alpha1", "ModelVersion", {"name": f"{REPO}-m1-v2"}),
    ]
    spec = documents[0]["spec"]
    assert (spec["mlRepo"], spec["name"], spec["version"], spec["adoptionPolicy"]) == (
        REPO,
        "m1",
        1,
        "IfExists",
    )
    assert spec["metadata"] == {"team": "search"}  # the stale mark is not carried into the spec


def test_bad_scopes_and_an_unreachable_cluster_are_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pai_operator.cli import main

    monkeypatch.delenv("PAI_OPERATOR_TRUEFOUNDRY_HOST", raising=False)
    monkeypatch.setenv("TFY_API_KEY", "tfy-key")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: x}}]\n"
    )
    base = ["orphans", "--kubeconfig", str(kubeconfig)]
    assert main([*base, "--name", "m1"]) == 1
    assert main([*base, "--ml-repo", REPO]) == 1  # TrueFoundry named, but no host configured
    assert main([*base, "--ml-repo", REPO, "--truefoundry-host", "http://127.0.0.1:1"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3, err
    assert err[0] == "pai-operator: --name goes with --ml-repo (the TrueFoundry ML repo the model is in)"
    assert err[1].startswith("pai-operator: TrueFoundry is not configured")
    assert err[2].startswith(
        "pai-operator: cannot read /apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
        "modelversions.truefoundry.mlops.dev"
    )
