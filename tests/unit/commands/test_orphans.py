"""Who owns a marked version (`LiveObjects`), and the manifests that take orphans back. The
search and deletion themselves run against the emulator and the API server
(tests/integration/test_import_orphans.py)."""

from __future__ import annotations

import yaml

from pai_operator.commands.importing import Imported, render_documents
from pai_operator.commands.orphans import LiveObjects, Orphan, adoption_documents
from pai_operator.pai.labels import owner_ref_label
from pai_operator.pai.models import ModelVersion

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
