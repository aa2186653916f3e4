"""bench/chaos_models.py's reading of the delete journal: a model deleted in PAI while a version of
its own was still there is caught (PAI's cascade would have taken the version, not its object)."""

from __future__ import annotations

from bench.chaos_models import models_deleted_before_their_versions


def entry(
    operation: str, model: str, version: str | None = None, status: int = 200, fault: str | None = None
) -> dict[str, object]:
    return {
        "Operation": operation,
        "ModelId": model,
        "VersionName": version,
        "Status": status,
        "Fault": fault,
    }


def test_versions_first_passes_and_a_model_first_is_named() -> None:
    tree = {"model-a": {"1.0.0", "2.0.0"}, "model-b": {"1.0.0"}}
    journal = [
        entry("DeleteModelVersion", "model-a", "1.0.0"),
        # Committed, answer lost: the version is gone all the same.
        entry("DeleteModelVersion", "model-a", "2.0.0", status=0, fault="commit_then_drop"),
        entry("DeleteModel", "model-a"),
        entry("DeleteModelVersion", "model-b", "1.0.0", status=503, fault="error"),
        entry("DeleteModel", "model-b"),
        entry("DeleteModelVersion", "model-b", "1.0.0"),
    ]
    assert models_deleted_before_their_versions(journal, tree) == ["model-b (['1.0.0'])"]


def test_a_refused_model_delete_is_not_a_deletion() -> None:
    tree = {"model-a": {"1.0.0"}}
    journal = [
        entry("DeleteModel", "model-a", status=503, fault="error"),
        entry("DeleteModelVersion", "model-a", "1.0.0"),
    ]
    assert models_deleted_before_their_versions(journal, tree) == []
