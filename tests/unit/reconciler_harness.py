"""Collaborators for Reconciler unit tests, around the REAL PAI emulator (`pai_emulator`) served
in-process on 127.0.0.1 inside the test's own event loop, and the REAL `PaiClient` talking HTTP
(signing, error classification, parsing) to it. No Kubernetes: namespace annotations are a static
map and status patches are applied here as the API server would merge them.

What a pass did is read from both ends of the wire:
- the emulator's journal (admin API): which operations reached PAI, in order, and how each ended;
- the client's transport: the requests as sent (bodies, query parameters) and the request IDs
  of the answers.

Test state is set up through the emulator's public surfaces only: versions are seeded with
CreateModelVersion requests signed by the official Alibaba SDK's signer (independent of the
operator's signing), faults and quotas through the admin API. One emulator per test: it lives in
memory and starts in milliseconds.
"""

from __future__ import annotations

import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from pai_emulator.config import OPERATIONS, READ_OPERATIONS, AccessKey, EmulatorConfig
from pai_operator.pai import (
    Credentials,
    ModelVersion,
    PaiClient,
    PaiClientConfig,
    StaticCredentialsProvider,
)
from pai_operator.pai.backend import PaiBackend
from pai_operator.pai.spec import OWNER_LABEL_KEY, OWNER_REF_LABEL_KEY
from pai_operator.reconciler import ObjectState, ObjectView, PassResult, Reconciler
from pai_operator.settings import OperatorSettings
from tests.support.emulator import Credential, emulator_in_loop, sdk_signed_request

MODEL = "model-abc"
URI = "oss://bucket.oss-cn-hangzhou.aliyuncs.com/models/a/"
UID = "0b9c1f1e-uid-mine"
OTHER_UID = "7d3a2c4b-uid-other"
NAMESPACE = "team-a"
OBJECT_NAME = "mv"
OBJECT_REF = f"{NAMESPACE}/{OBJECT_NAME}"
REGION = "cn-hangzhou"
ACCESS_KEY_ID = "LTAI-test-id"
SECRET = "test-secret-never-shown"

ADMIN_PREFIX = "/_emulator"

# Everything here is plain HTTP on loopback, but httpx builds a TLS context for every transport
# (tens of milliseconds each): one shared context keeps a harness's start-up near zero.
_TLS = ssl.create_default_context()


class RecordingTransport(httpx.AsyncBaseTransport):
    """Real HTTP (httpx's own transport) that keeps every request the client sent, body read,
    and the request ID of every answer that arrived (errors included)."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport(verify=_TLS)
        self.requests: list[httpx.Request] = []
        self.request_ids: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        response = await self._inner.handle_async_request(request)
        request_id = response.headers.get("x-acs-request-id")
        if request_id:
            self.request_ids.append(request_id)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class EmulatedPai:
    """Test-facing view of one running emulator: seed versions, inject faults, read the journal
    and the stored state. Everything goes over HTTP to the emulator's API or admin API."""

    def __init__(self, url: str, seed_credential: Credential, recorder: RecordingTransport) -> None:
        self.url = url
        self._seed_credential = seed_credential
        self._recorder = recorder
        self._http = httpx.AsyncClient(timeout=10.0, verify=_TLS)

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- what the operator's client sent --------------------------------------------------

    @property
    def requests(self) -> list[httpx.Request]:
        """The requests as the operator's client sent them (bodies and query included)."""
        return self._recorder.requests

    @property
    def request_ids(self) -> list[str]:
        """The RequestId of every answer the operator's client received, in order."""
        return self._recorder.request_ids

    # --- the journal: what reached PAI ----------------------------------------------------

    async def journal(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = (await self._admin("GET", "/journal"))["Entries"]
        return entries

    async def actions(self) -> list[str]:
        """The operations that reached the emulator since the last `clear`, in order."""
        return [entry["Operation"] for entry in await self.journal()]

    async def writes(self) -> list[str]:
        return [action for action in await self.actions() if action not in READ_OPERATIONS]

    async def clear(self) -> None:
        """Forget the calls made so far, on both ends of the wire."""
        await self._admin("DELETE", "/journal")
        self._recorder.requests.clear()
        self._recorder.request_ids.clear()

    # --- stored state ---------------------------------------------------------------------

    async def versions(self, model_id: str = MODEL) -> list[dict[str, Any]]:
        """Every stored version of the model (PascalCase, as Get returns it), in creation order."""
        versions: list[dict[str, Any]] = (await self._admin("GET", f"/versions/{model_id}"))["Versions"]
        return versions

    async def names(self, model_id: str = MODEL) -> list[str]:
        return [v["VersionName"] for v in await self.versions(model_id)]

    async def version(self, name: str, model_id: str = MODEL) -> ModelVersion | None:
        for stored in await self.versions(model_id):
            if stored["VersionName"] == name:
                return ModelVersion.model_validate(stored)
        return None

    async def seed(
        self,
        name: str,
        *,
        owner: str | None = UID,
        ref: str | None = None,
        labels: Mapping[str, str] | None = None,
        model_id: str = MODEL,
        **fields: Any,
    ) -> None:
        """A remote version as if created earlier (a real CreateModelVersion, signed by the
        official SDK's signer and then dropped from the journal); `fields` are PascalCase. An
        owned version carries both ownership labels; `ref` defaults to the harness object's
        namespace/name for our UID (another UID's default is another object's name)."""
        all_labels = dict(labels or {})
        if owner is not None:
            default_ref = OBJECT_REF if owner == UID else f"{NAMESPACE}/other"
            all_labels = {OWNER_LABEL_KEY: owner, OWNER_REF_LABEL_KEY: ref or default_ref, **all_labels}
        body = {
            "VersionName": name,
            "Uri": URI,
            **fields,
            "Labels": [{"Key": k, "Value": v} for k, v in all_labels.items()],
        }
        await self._api("POST", f"/api/v1/models/{model_id}/versions", "CreateModelVersion", body=body)
        await self._admin("DELETE", "/journal")

    # --- faults and quotas ----------------------------------------------------------------

    async def fail(self, operation: str, status: int, code: str, *, times: int | None = 1) -> None:
        """Answer the next `times` calls of `operation` (None: every call) with a PAI error."""
        rule: dict[str, Any] = {"Operation": operation, "Mode": "error", "Code": code, "HttpStatus": status}
        if times is not None:
            rule["Count"] = times
        await self._admin("POST", "/faults", rule)

    async def lose_response(self, operation: str) -> None:
        """Commit the next `operation`, then reset the connection instead of answering."""
        await self._admin("POST", "/faults", {"Operation": operation, "Mode": "commit_then_drop", "Count": 1})

    async def clear_faults(self) -> None:
        await self._admin("DELETE", "/faults")

    async def exhaust_quota(self, operation: str, retry_after: int) -> None:
        """Make the emulator's own quota throttle the next `operation` with `x-acs-retry-after:
        retry_after`: a rate of one call per `retry_after` seconds (burst 1), and that one call
        spent now (on a version that does not exist) and dropped from the journal."""
        await self._admin("PUT", "/quotas", {operation: 1 / retry_after})
        assert operation in READ_OPERATIONS, "the spending call is a read"
        path = f"/api/v1/models/{MODEL}/versions" + ("/0.0.0" if operation == "GetModelVersion" else "")
        await self._api("GET", path, operation, expect_error=operation == "GetModelVersion")
        await self._admin("DELETE", "/journal")

    # --- plumbing -------------------------------------------------------------------------

    async def _admin(self, method: str, path: str, body: Any = None) -> Any:
        response = await self._http.request(method, f"{self.url}{ADMIN_PREFIX}{path}", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    async def _api(
        self, method: str, path: str, action: str, *, body: Any = None, expect_error: bool = False
    ) -> Any:
        signed = sdk_signed_request(
            self.url, method, path, action, credential=self._seed_credential, body=body
        )
        response = await self._http.request(
            signed.method, signed.url, headers=signed.headers, content=signed.content
        )
        assert (response.status_code >= 400) == expect_error, response.text
        return response.json()


class SingleClientSource:
    """Every (namespace, region) maps to the one client; the regions and namespaces asked for are
    recorded. `error` set: every request for a client raises it (e.g. NoCredentialsError)."""

    def __init__(self, client: PaiClient) -> None:
        self.client = client
        self.regions: list[str] = []
        self.namespaces: list[str] = []
        self.error: Exception | None = None

    async def for_object(self, namespace: str, region_id: str) -> PaiClient:
        self.namespaces.append(namespace)
        self.regions.append(region_id)
        if self.error is not None:
            raise self.error
        return self.client


class StaticNamespaces:
    """Namespace annotations as Kubernetes would return them; the namespaces asked for are recorded."""

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
    pai: EmulatedPai
    client: PaiClient
    clients: SingleClientSource
    namespaces: StaticNamespaces
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
            name=OBJECT_NAME,
            generation=generation,
            spec=dict(spec),
            status=dict(self.status),
            annotations=dict(annotations or {}),
        )

    async def reconcile(self, spec: Mapping[str, Any], **view: Any) -> PassResult:
        """One pass, then its status patch applied, as the engine does."""
        result = await self.reconciler.reconcile(self.view(spec, **view), self.state)
        self.status = apply_status_patch(self.status, result.status_patch)
        return result


HarnessFactory = Callable[..., Awaitable[Harness]]


@asynccontextmanager
async def harness_factory() -> AsyncIterator[HarnessFactory]:
    """`await make(...)` builds a Harness on its own fresh emulator; all are stopped on exit."""
    stack = AsyncExitStack()

    async def make(
        settings: OperatorSettings | None = None,
        *,
        namespace_annotations: Mapping[str, Mapping[str, str]] | None = None,
        credentials: Credentials | None = None,
        seed: int = 11,
    ) -> Harness:
        """`credentials`: what the operator's client signs with (default: the key the emulator
        knows); seeding always uses the emulator's key."""
        config = EmulatorConfig(
            access_keys=[AccessKey(ACCESS_KEY_ID, SECRET)],
            models=[MODEL],
            admin=True,
            # Unlimited: no test is throttled unless it asks for it (`exhaust_quota`).
            quotas=dict.fromkeys(OPERATIONS, 0.0),
        )
        url = await stack.enter_async_context(emulator_in_loop(config))

        recorder = RecordingTransport()
        client = PaiClient(
            PaiClientConfig(endpoint=url, read_rate=None, write_rate=None, max_read_attempts=1),
            StaticCredentialsProvider(credentials or Credentials(ACCESS_KEY_ID, SECRET)),
            transport=recorder,
            sleep=_no_sleep,
            rng=random.Random(seed),
        )
        pai = EmulatedPai(url, Credential(ACCESS_KEY_ID, SECRET), recorder)
        # Clients before the server: closed connections let the server stop at once.
        stack.push_async_callback(pai.aclose)
        stack.push_async_callback(client.aclose)

        settings = settings or OperatorSettings(region=REGION, backoff_base=1.0, backoff_cap=8.0)
        clients = SingleClientSource(client)
        namespaces = StaticNamespaces(namespace_annotations)
        reconciler = Reconciler(
            settings, PaiBackend(clients, settings.region), namespaces, rng=random.Random(seed)
        )
        return Harness(pai, client, clients, namespaces, settings, reconciler)

    async with stack:
        yield make


def label_map(version: ModelVersion | None) -> dict[str, str]:
    assert version is not None
    return version.label_map()
