"""The operator's own Kubernetes reads outside kopf (pai_operator.kube) against a real
kube-apiserver: Namespace annotations are read as plain JSON, not through CoreV1Api's models."""

from __future__ import annotations

import pytest
from kubernetes import client

from pai_operator.kube import NamespaceAnnotationCache, NamespaceReadError
from tests.support.kube import unique_name

pytestmark = pytest.mark.integration


async def test_namespace_annotations_are_read_and_a_missing_namespace_is_an_error(
    kube_api: client.ApiClient, namespace: str
) -> None:
    annotations = {"pai.mlops.dev/role-arn": "acs:ram::1:role/team-a", "team": "a"}
    client.CoreV1Api(kube_api).patch_namespace(namespace, {"metadata": {"annotations": annotations}})
    cache = NamespaceAnnotationCache(api_client=kube_api)

    assert await cache.get_strict(namespace) == annotations
    assert cache.peek(namespace) == annotations

    missing = unique_name("gone")
    assert await cache.get(missing) == {}  # lenient: the deletion-policy default
    with pytest.raises(NamespaceReadError):
        await cache.get_strict(missing)  # an identity never falls back on a failed read
