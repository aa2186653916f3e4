"""The Kubernetes readers polled while a CRD is missing keep one client: loading the kubeconfig
and opening a TLS connection on every 2-second poll was a quarter of the operator's CPU in sync."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pai_operator import kube


async def test_the_crd_and_lease_readers_load_one_client_for_all_their_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded: list[object] = []
    read_with: list[object] = []

    def load() -> object:
        client = object()
        loaded.append(client)
        return client

    def get_json(api_client: Any, path: str) -> dict[str, Any] | None:
        read_with.append(api_client)
        return None if "customresourcedefinitions" in path else {"metadata": {"annotations": {"a": "b1"}}}

    monkeypatch.setattr(kube, "_load_api_client", load)
    monkeypatch.setattr(kube, "get_json", get_json)
    crd = kube.CrdReader("models.pai.mlops.dev")
    for _ in range(3):
        assert await crd.terminating(not_before=time.monotonic())  # gone: reads as an uninstall
    lease = kube.LeaseConfirmations("ns", "lease", "a")
    for _ in range(2):
        assert await lease.confirmed_batch() == "b1"
    assert len(loaded) == 2  # one per reader, however often it reads
    assert read_with == [loaded[0]] * 3 + [loaded[1]] * 2
    assert crd.api_client() is loaded[0]
