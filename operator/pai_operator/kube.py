"""The operator's own Kubernetes writes and reads, outside kopf: status patches and Namespace
annotations.

kopf watches and owns the finalizer; the engine writes status itself because most passes (drift
checks, retries) do not run inside a kopf handler. The synchronous `kubernetes` client runs in
worker threads: writes happen only when something changed (creates, updates, failures), so a
second asynchronous Kubernetes stack next to kopf's would not pay for itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)


class StatusConflict(Exception):
    """The object is gone or was replaced (another UID): the status belongs to nobody now."""


def _load_api_client() -> Any:
    from kubernetes import client, config

    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


class KubeStatusWriter:
    """Merge-patches `status` through the status subresource, guarded by the object's UID."""

    def __init__(self, api_client: Any | None = None, *, resource: tuple[str, str, str]) -> None:
        self._api_client = api_client
        self._api: Any = None
        self._resource = resource  # (group, version, plural)

    def _custom(self) -> Any:
        if self._api is None:
            from kubernetes import client

            self._api = client.CustomObjectsApi(self._api_client or _load_api_client())
        return self._api

    async def patch_status(
        self, namespace: str, name: str, uid: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Returns the object as the API server stored it (spec and metadata included, so the
        caller never mistakes its own write for the newest view when the spec moved meanwhile)."""
        return await asyncio.to_thread(self._patch, namespace, name, uid, dict(patch))

    def _patch(self, namespace: str, name: str, uid: str, patch: dict[str, Any]) -> dict[str, Any]:
        from kubernetes.client import ApiException

        # metadata.uid is a precondition: an object deleted and re-created under the same name
        # (a restore, `kubectl replace --force`) must never receive the old object's status.
        body = {"metadata": {"uid": uid}, "status": patch}
        group, version, plural = self._resource
        try:
            response = self._custom().patch_namespaced_custom_object_status(
                group,
                version,
                namespace,
                plural,
                name,
                body,
                _content_type="application/merge-patch+json",
                _preload_content=False,
            )
        except ApiException as exc:
            if exc.status in (404, 409, 422):
                raise StatusConflict(f"{namespace}/{name}: {exc.status} {exc.reason}") from None
            raise
        data: dict[str, Any] = json.loads(response.data)
        return data


def get_json(api_client: Any, path: str) -> dict[str, Any] | None:
    """GET a Kubernetes API path as plain JSON (no generated models: see NamespaceReader); None
    when it does not exist (404)."""
    from kubernetes.client import ApiException

    request = api_client.param_serialize(
        method="GET",
        resource_path=path,
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
    )
    response = api_client.call_api(*request, _request_timeout=30)
    response.read()
    if response.status == 404:
        return None
    if not 200 <= response.status <= 299:
        raise ApiException.from_response(http_resp=response, body=None, data=None)
    data: dict[str, Any] = json.loads(response.data)
    return data


class _KeptApiClient:
    """A Kubernetes client loaded on first use and kept for every later read. The readers below
    are polled (a missing CRD every 2 s): loading the kubeconfig and opening a TLS connection per
    read was a quarter of the operator's CPU in sync (bench/RESULTS.md section 7)."""

    def __init__(self, api_client: Any | None) -> None:
        self._api_client = api_client

    def api_client(self) -> Any:
        if self._api_client is None:
            self._api_client = _load_api_client()
        return self._api_client


class CrdReader(_KeptApiClient):
    """Whether a CRD is being deleted: GET of one CustomResourceDefinition by name (RBAC: `get`
    on exactly the operator's CRD names), shared by concurrent deletion passes."""

    def __init__(self, name: str, api_client: Any | None = None) -> None:
        from pai_operator.deletion_safety import SharedFreshRead

        super().__init__(api_client)
        self.name = name
        self._shared = SharedFreshRead(self._read)

    async def terminating(self, *, not_before: float) -> bool:
        return await self._shared.get(not_before)

    async def _read(self) -> bool:
        from pai_operator.deletion_safety import CrdReadError

        path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{self.name}"
        try:
            crd = await asyncio.to_thread(get_json, self.api_client(), path)
        except Exception as exc:
            raise CrdReadError(f"cannot read CustomResourceDefinition {self.name}: {exc}") from None
        # Gone: nothing of it can be served any more, so this is an uninstall too.
        return crd is None or bool((crd.get("metadata") or {}).get("deletionTimestamp"))


def release_all(
    resource: tuple[str, str, str], finalizer: str, namespaces: tuple[str, ...], api_client: Any | None = None
) -> int:
    """Remove our finalizer from every object of a resource whose CRD is being deleted, without
    touching the registry; the number released. Needed when the operator (re)starts after the
    CRD deletion began: the API server's discovery then no longer offers `patch` for the
    resource, so kopf refuses to serve it and no deletion handler would ever run."""
    from kubernetes import client
    from kubernetes.client import ApiException

    group, version, plural = resource
    custom: Any = client.CustomObjectsApi(api_client or _load_api_client())
    items: list[dict[str, Any]] = []
    if namespaces:
        for ns in namespaces:
            listed = custom.list_namespaced_custom_object(group, version, ns, plural, _request_timeout=60)
            items += listed["items"]
    else:
        items = custom.list_cluster_custom_object(group, version, plural, _request_timeout=60)["items"]
    released = 0
    for item in items:
        meta = item.get("metadata") or {}
        finalizers = list(meta.get("finalizers") or [])
        if finalizer not in finalizers:
            continue
        # "test" first: a concurrent change of the list fails this patch rather than being undone.
        kept = [f for f in finalizers if f != finalizer]
        patch = [
            {"op": "test", "path": "/metadata/finalizers", "value": finalizers},
            {"op": "replace", "path": "/metadata/finalizers", "value": kept},
        ]
        try:
            custom.patch_namespaced_custom_object(
                group,
                version,
                meta["namespace"],
                plural,
                meta["name"],
                patch,
                _content_type="application/json-patch+json",
                _request_timeout=60,
            )
            released += 1
        except ApiException as exc:
            if exc.status not in (404, 409, 422):
                raise
    return released


class LeaseConfirmations(_KeptApiClient):
    """The deletion breaker's confirmation: an annotation on the operator's own Lease (the RBAC
    to read it by name is leader election's)."""

    def __init__(self, namespace: str, lease: str, annotation: str, api_client: Any | None = None) -> None:
        self.namespace = namespace
        self.lease = lease
        self.annotation = annotation
        super().__init__(api_client)

    async def confirmed_batch(self) -> str | None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/{self.lease}"
        lease = await asyncio.to_thread(get_json, self.api_client(), path)
        annotations = ((lease or {}).get("metadata") or {}).get("annotations") or {}
        value = annotations.get(self.annotation)
        return str(value) if value is not None else None

    def how_to_confirm(self, batch: str) -> str:
        return (
            f"kubectl annotate lease -n {self.namespace} {self.lease} {self.annotation}={batch} --overwrite"
        )


class NamespaceReader:
    """GET /api/v1/namespaces/NAME as plain JSON.

    Not `CoreV1Api.read_namespace`: kubernetes >= 37 generates pydantic models, and importing
    CoreV1Api imports all ~250 models of the core group for one small GET per namespace per
    minute: 16 MiB more resident memory at 5,000 objects (bench/profile_memory.py)."""

    def __init__(self, api_client: Any) -> None:
        self._api_client = api_client

    def annotations(self, name: str) -> dict[str, str]:
        from kubernetes.client import ApiException

        request = self._api_client.param_serialize(
            method="GET",
            resource_path="/api/v1/namespaces/{name}",
            path_params={"name": name},
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        response = self._api_client.call_api(*request, _request_timeout=30)
        response.read()
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        metadata = json.loads(response.data).get("metadata") or {}
        return {str(k): str(v) for k, v in (metadata.get("annotations") or {}).items()}


class NamespaceReadError(Exception):
    """A Namespace could not be read and nothing is known about it yet."""


class NamespaceAnnotationCache:
    """Namespace annotations: the deletion-policy default (read when deleting) and the namespace's
    identity (`pai.mlops.dev/role-arn`, read by the client pool).

    One read per namespace per `ttl`, however many objects it holds, and concurrent askers share
    it. A failed read is remembered like a successful one (no read storm while the API server is
    unwell); the lenient `get` then answers {} (the deletion-policy default), while `get_strict`
    answers the last annotations it did read, or raises: an identity must never silently fall back
    to the operator's own because a read failed.
    """

    def __init__(self, ttl: float = 30.0, api_client: Any | None = None) -> None:
        self._ttl = ttl
        self._api_client = api_client
        self._cache: dict[str, tuple[float, Mapping[str, str] | None]] = {}
        self._last_good: dict[str, Mapping[str, str]] = {}
        self._pending: dict[str, asyncio.Future[Mapping[str, str] | None]] = {}
        self._api: Any = None

    def _reader(self) -> NamespaceReader:
        if self._api is None:
            self._api = NamespaceReader(self._api_client or _load_api_client())
        reader: NamespaceReader = self._api
        return reader

    async def get(self, namespace: str) -> Mapping[str, str]:
        annotations = await self._fresh(namespace)
        return annotations if annotations is not None else {}

    async def get_strict(self, namespace: str) -> Mapping[str, str]:
        annotations = await self._fresh(namespace)
        if annotations is None:
            annotations = self._last_good.get(namespace)
        if annotations is None:
            raise NamespaceReadError(f"cannot read namespace {namespace}")
        return annotations

    def peek(self, namespace: str) -> Mapping[str, str] | None:
        """The last annotations read, however old; None before the first successful read. No I/O."""
        return self._last_good.get(namespace)

    async def _fresh(self, namespace: str) -> Mapping[str, str] | None:
        cached = self._cache.get(namespace)
        if cached and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        # Many objects of one namespace at once must cost one read, not one each.
        pending = self._pending.get(namespace)
        if pending is None:
            pending = self._pending[namespace] = asyncio.ensure_future(self._read(namespace))
            pending.add_done_callback(lambda _: self._pending.pop(namespace, None))
        return await asyncio.shield(pending)

    async def _read(self, namespace: str) -> Mapping[str, str] | None:
        annotations: Mapping[str, str] | None
        try:
            annotations = await asyncio.to_thread(self._reader().annotations, namespace)
            self._last_good[namespace] = annotations
        except Exception as exc:  # RBAC may forbid it, or the API server is unwell
            log.warning("cannot read namespace %s annotations: %s", namespace, exc)
            annotations = None
        self._cache[namespace] = (time.monotonic(), annotations)
        return annotations
