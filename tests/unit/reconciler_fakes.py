"""Collaborators for Reconciler unit tests: an in-memory PAI (the 7 model-version operations)
behind httpx.MockTransport, so the REAL PaiClient (signing, error classification, parsing) is
exercised; a client source; namespace annotations; and a status merge-patch applier.

No network and no Kubernetes: everything a pass does remotely is visible in `FakePai.requests`.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from pai_operator.pai import (
    Credentials,
    Label,
    ModelVersion,
    PaiClient,
    PaiClientConfig,
    StaticCredentialsProvider,
)
from pai_operator.reconciler import ObjectState, ObjectView, PassResult, Reconciler
from pai_operator.settings import OperatorSettings
from pai_operator.spec import OWNER_LABEL_KEY

MODEL = "model-abc"
URI = "oss://bucket.oss-cn-hangzhou.aliyuncs.com/models/a/"
UID = "0b9c1f1e-uid-mine"
OTHER_UID = "7d3a2c4b-uid-other"
NAMESPACE = "team-a"
REGION = "cn-hangzhou"
ENDPOINT = "http://pai.test"
SECRET = "fake-secret-never-shown"

_PAGE_DEFAULT = 10
_MAX_LABELS = 20
_READ_ONLY = ("GmtCreateTime", "GmtModifiedTime", "UserId", "OwnerId")


@dataclass
class _Fault:
    action: str
    times: int | None  # None: every time
    status: int = 0
    code: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    lose_response: bool = False  # perform the operation, then fail the connection


class FakePai:
    """Models and their versions as PAI stores them (PascalCase wire dicts), plus fault injection
    by operation name (the x-acs-action header the client sends)."""

    def __init__(self, models: tuple[str, ...] = (MODEL,)) -> None:
        self.models: dict[str, dict[str, dict[str, Any]]] = {m: {} for m in models}
        self.requests: list[httpx.Request] = []
        self._faults: list[_Fault] = []
        self._request_ids: Iterator[int] = itertools.count(1)
        self._ticks: Iterator[int] = itertools.count(1)

    # --- test-facing API -------------------------------------------------------------------

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    @property
    def actions(self) -> list[str]:
        return [r.headers["x-acs-action"] for r in self.requests]

    @property
    def writes(self) -> list[str]:
        return [a for a in self.actions if not a.startswith(("Get", "List"))]

    def clear(self) -> None:
        self.requests.clear()

    def seed(
        self,
        name: str,
        *,
        owner: str | None = UID,
        labels: Mapping[str, str] | None = None,
        model_id: str = MODEL,
        **fields: Any,
    ) -> None:
        """A remote version as if created earlier; `fields` are PascalCase wire fields."""
        all_labels = dict(labels or {})
        if owner is not None:
            all_labels = {OWNER_LABEL_KEY: owner, **all_labels}
        self.models[model_id][name] = {
            "VersionName": name,
            "Uri": URI,
            **fields,
            "Labels": [{"Key": k, "Value": v} for k, v in all_labels.items()],
            **self._stamps(created=True),
        }

    def version(self, name: str, model_id: str = MODEL) -> ModelVersion | None:
        stored = self.models.get(model_id, {}).get(name)
        return ModelVersion.model_validate(stored) if stored is not None else None

    def fail(
        self,
        action: str,
        status: int,
        code: str,
        *,
        times: int | None = 1,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next `times` calls of `action` (None: all of them) with a PAI error."""
        self._faults.append(_Fault(action, times, status, code, dict(headers or {})))

    def clear_faults(self) -> None:
        self._faults.clear()

    def lose_response(self, action: str) -> None:
        """Commit the next `action`, then drop the connection before the response arrives."""
        self._faults.append(_Fault(action, 1, lose_response=True))

    # --- the server ------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        action = request.headers["x-acs-action"]
        fault = self._take_fault(action)
        if fault is not None and not fault.lose_response:
            return self._error(fault.status, fault.code, "injected fault", fault.headers)
        response = self._dispatch(action, request)
        if fault is not None:
            raise httpx.ReadError("connection reset by peer", request=request)
        return response

    def _take_fault(self, action: str) -> _Fault | None:
        for fault in self._faults:
            if fault.action == action:
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                return fault
        return None

    def _dispatch(self, action: str, request: httpx.Request) -> httpx.Response:
        # /api/v1/models/{model}/versions[/{version}[/labels]]
        parts = request.url.path.strip("/").split("/")
        model_id = parts[3]
        versions = self.models.get(model_id)
        if versions is None:
            return self._error(404, "InvalidModel.NotFound", f"model {model_id} does not exist")
        if action == "ListModelVersions":
            return self._list(versions, request.url.params)
        if action == "CreateModelVersion":
            return self._create(versions, json.loads(request.content))
        name = parts[5]
        stored = versions.get(name)
        if stored is None:
            return self._error(404, "InvalidModelVersion.NotFound", f"version {name} does not exist")
        handlers: dict[str, Callable[[], httpx.Response]] = {
            "GetModelVersion": lambda: self._ok(stored),
            "UpdateModelVersion": lambda: self._update(stored, json.loads(request.content)),
            "DeleteModelVersion": lambda: self._ok({}, versions.pop(name)),
            "CreateModelVersionLabels": lambda: self._add_labels(stored, json.loads(request.content)),
            "DeleteModelVersionLabels": lambda: self._delete_labels(stored, request.url.params["LabelKeys"]),
        }
        return handlers[action]()

    def _list(self, versions: dict[str, dict[str, Any]], params: httpx.QueryParams) -> httpx.Response:
        label = params.get("Label")
        matching = [
            v
            for v in versions.values()
            if label is None or any(label in lb["Key"] or label in lb["Value"] for lb in v["Labels"])
        ]
        size = int(params.get("PageSize", _PAGE_DEFAULT))
        number = int(params.get("PageNumber", 1))
        page = matching[(number - 1) * size : number * size]
        return self._ok({"TotalCount": len(matching), "Versions": page})

    def _create(self, versions: dict[str, dict[str, Any]], body: dict[str, Any]) -> httpx.Response:
        if not body.get("Uri"):
            return self._error(400, "MissingUri", "Uri is required")
        name = body.get("VersionName")
        if name is None:
            # PAI's documented scheme: 0.1.0 first, then the minor number incremented.
            name = next(f"0.{n}.0" for n in itertools.count(1) if f"0.{n}.0" not in versions)
        elif name in versions:
            return self._error(409, "InvalidModelVersion.AlreadyExists", f"version {name} exists")
        versions[name] = {
            **{k: v for k, v in body.items() if k not in _READ_ONLY},
            "VersionName": name,
            "Labels": list(body.get("Labels") or []),
            **self._stamps(created=True),
        }
        return self._ok({"VersionName": name})

    def _update(self, stored: dict[str, Any], body: dict[str, Any]) -> httpx.Response:
        stored.update({k: v for k, v in body.items() if k not in ("Uri", "VersionName", "Labels")})
        stored.update(self._stamps(created=False))
        return self._ok({})

    def _add_labels(self, stored: dict[str, Any], body: dict[str, Any]) -> httpx.Response:
        merged = {lb["Key"]: lb["Value"] for lb in stored["Labels"]}
        merged.update({lb["Key"]: lb["Value"] for lb in body["Labels"]})
        if len(merged) > _MAX_LABELS:
            return self._error(400, "InvalidParameter", f"Labels: at most {_MAX_LABELS}")
        stored["Labels"] = [{"Key": k, "Value": v} for k, v in merged.items()]
        return self._ok({})

    def _delete_labels(self, stored: dict[str, Any], keys: str) -> httpx.Response:
        gone = set(keys.split(","))
        stored["Labels"] = [lb for lb in stored["Labels"] if lb["Key"] not in gone]
        return self._ok({})

    def _stamps(self, *, created: bool) -> dict[str, str]:
        stamp = f"2024-01-01T00:00:{next(self._ticks):02d}.000Z"
        fields = {"GmtModifiedTime": stamp}
        if created:
            fields.update(GmtCreateTime=stamp, UserId="1001", OwnerId="2002")
        return fields

    def _ok(self, body: Mapping[str, Any], _: object = None) -> httpx.Response:
        return httpx.Response(200, json={"RequestId": self._request_id(), **body})

    def _error(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        # A fresh RequestId on every answer, as PAI does: status must never depend on it.
        body = {"RequestId": self._request_id(), "HostId": "pai.test", "Code": code, "Message": message}
        return httpx.Response(status, json=body, headers=dict(headers or {}))

    def _request_id(self) -> str:
        return f"REQ-{next(self._request_ids):04d}"


class SingleClientSource:
    """Every region maps to the one client; the regions asked for are recorded."""

    def __init__(self, client: PaiClient) -> None:
        self.client = client
        self.regions: list[str] = []

    def for_region(self, region_id: str) -> PaiClient:
        self.regions.append(region_id)
        return self.client


class FakeNamespaces:
    def __init__(self, annotations: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.annotations = {ns: dict(a) for ns, a in (annotations or {}).items()}
        self.calls: list[str] = []

    async def get(self, namespace: str) -> Mapping[str, str]:
        self.calls.append(namespace)
        return self.annotations.get(namespace, {})


def apply_status_patch(status: Mapping[str, Any], patch: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the API server stores after a JSON merge patch of `status` (top-level keys only,
    which is how `status_patch` builds it: nested values are resent whole)."""
    merged = dict(status)
    for key, value in (patch or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


async def _no_sleep(_: float) -> None:
    return None


@dataclass
class Harness:
    pai: FakePai
    client: PaiClient
    clients: SingleClientSource
    namespaces: FakeNamespaces
    settings: OperatorSettings
    reconciler: Reconciler
    state: ObjectState = field(default_factory=ObjectState)
    status: dict[str, Any] = field(default_factory=dict)

    def view(
        self,
        spec: Mapping[str, Any],
        *,
        annotations: Mapping[str, str] | None = None,
        uid: str = UID,
        generation: int = 1,
    ) -> ObjectView:
        """The object as Kubernetes would hand it over now (status as patched so far)."""
        return ObjectView(
            uid=uid,
            namespace=NAMESPACE,
            name="mv",
            generation=generation,
            spec=dict(spec),
            status=dict(self.status),
            annotations=dict(annotations or {}),
        )

    async def reconcile(self, spec: Mapping[str, Any], **view: Any) -> PassResult:
        """One pass, then its status patch applied, as the kopf adapter does."""
        result = await self.reconciler.reconcile(self.view(spec, **view), self.state)
        self.status = apply_status_patch(self.status, result.status_patch)
        return result

    async def aclose(self) -> None:
        await self.client.aclose()


def make_harness(
    settings: OperatorSettings | None = None,
    *,
    namespace_annotations: Mapping[str, Mapping[str, str]] | None = None,
    seed: int = 11,
) -> Harness:
    pai = FakePai()
    settings = settings or OperatorSettings(region=REGION, backoff_base=1.0, backoff_cap=8.0)
    client = PaiClient(
        PaiClientConfig(endpoint=ENDPOINT, read_rate=None, write_rate=None, max_read_attempts=1),
        StaticCredentialsProvider(Credentials("LTAI-fake-id", SECRET)),
        transport=pai.transport,
        sleep=_no_sleep,
        rng=random.Random(seed),
    )
    clients = SingleClientSource(client)
    namespaces = FakeNamespaces(namespace_annotations)
    reconciler = Reconciler(settings, clients, namespaces, rng=random.Random(seed))
    return Harness(pai, client, clients, namespaces, settings, reconciler)


def label_map(version: ModelVersion | None) -> dict[str, str]:
    assert version is not None
    return version.label_map()


def owner_label(uid: str = UID) -> Label:
    return Label(key=OWNER_LABEL_KEY, value=uid)
