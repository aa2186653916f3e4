"""What every subcommand for people starts from: the registry flags `run` takes, the backends
built from them exactly as the operator builds them (`registry.PLUGINS`), and the cluster when
one is named (`--kubeconfig`).

The backends are the operator's own, so a command reads the registry with the same client,
credentials chain, identity rules and error classification; the commands only ever call their
read methods (the backends can write: keeping to reads is each command's duty, and their tests
count the registry's write calls).
"""

from __future__ import annotations

import argparse
import asyncio
import builtins
import logging
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from pai_operator.backend import Backend, Resource
from pai_operator.registry import PLUGINS, OperatorSettings
from pai_operator.settings import OPTIONS, Option, add_run_arguments, from_arguments

AnyBackend = Backend[Any, Any, Any, Any]


def registry_options() -> tuple[Option, ...]:
    """The settings of the registry plug-ins (`--endpoint`, `--region`, `--sts-endpoint`,
    `--truefoundry-host` ...): what reaching a registry takes, without the operator's own knobs."""
    names = {name for plugin in PLUGINS for name in plugin.settings.model_fields}
    return tuple(o for o in OPTIONS if o.name in names)


def add_registry_arguments(parser: argparse.ArgumentParser) -> None:
    """The registry flags, as `run` takes them (same names, same PAI_OPERATOR_* variables). PAI
    credentials come from the Alibaba Cloud default chain (environment, RRSA, profile, ECS role),
    TrueFoundry's API key from TFY_API_KEY, as for `run`."""
    group = parser.add_argument_group("registry (as for `pai-operator run`)")
    add_run_arguments(group, registry_options())


def add_cluster_arguments(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    group = parser.add_argument_group("cluster")
    where = (
        "(default: KUBECONFIG, ~/.kube/config or the in-cluster service account)"
        if required
        else "(without it: no cluster is read)"
    )
    group.add_argument(
        "--kubeconfig", metavar="PATH", help=f"read the live objects' status with this kubeconfig {where}"
    )
    group.add_argument("--context", metavar="NAME", help="the kubeconfig context to use")


def registry_settings(args: argparse.Namespace) -> OperatorSettings:
    """Flags over PAI_OPERATOR_* variables over defaults, validated as for `run` (exits on error)."""
    return from_arguments(args)


def quiet_logging(verbose: bool = False) -> None:
    """stderr gets warnings only (stdout is the report): the client's request lines and the
    credential libraries' chatter stay out of a plan a CI job posts."""
    level = logging.DEBUG if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # The Kubernetes client's retries: the final failure is reported once (ClusterReadError).
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    # alibabacloud-credentials' refresh logger may echo a security token on failure (see cli.py).
    logging.getLogger("credentials").addFilter(lambda record: False)


class NoNamespaceAnnotations:
    """Namespace annotations without a cluster: none, so every namespace acts as the caller's own
    identity (the credentials chain), as an unmapped namespace does in the operator."""

    async def get(self, namespace: str) -> Mapping[str, str]:
        return {}

    async def get_strict(self, namespace: str) -> Mapping[str, str]:
        return {}

    def peek(self, namespace: str) -> Mapping[str, str] | None:
        return {}


@dataclass
class Registries:
    """The operator's backends, by resource; `backend(resource)` is None for a registry that is
    not configured (TrueFoundry without `--truefoundry-host`)."""

    settings: OperatorSettings
    backends: dict[str, AnyBackend] = field(default_factory=dict)  # by Resource.crd_name

    def backend(self, resource: Resource) -> AnyBackend | None:
        return self.backends.get(resource.crd_name)

    def why_off(self, resource: Resource) -> str:
        plugin = next(p for p in PLUGINS if resource in p.resources)
        return f"{plugin.name} is not configured ({plugin.describe(self.settings)})"


@asynccontextmanager
async def open_registries(
    settings: OperatorSettings, namespaces: Any | None = None
) -> AsyncIterator[Registries]:
    """Every configured backend, built by its plug-in as `run` builds it, closed on exit.
    `namespaces`: the cluster's Namespace annotations (a namespace's RAM role), else none."""
    registries = Registries(settings)
    closers: list[Callable[[], Awaitable[None]]] = []
    for plugin in PLUGINS:
        for built in plugin.build(settings, namespaces or NoNamespaceAnnotations()):
            registries.backends[built.backend.names.crd_name] = built.backend
            closers.extend(built.closers)
    try:
        yield registries
    finally:
        for close in closers:
            await close()


# --- the cluster (optional) -------------------------------------------------------------------


class ClusterReadError(Exception):
    """The cluster could not be read (unreachable, RBAC): the command cannot do its work."""


class Cluster:
    """Reads of the live objects through the Kubernetes API (the synchronous client in worker
    threads, as `pai_operator.kube` does). Read-only: GET and LIST only."""

    def __init__(self, api_client: Any) -> None:
        from pai_operator.kube import NamespaceAnnotationCache

        self.api_client = api_client
        self.namespaces = NamespaceAnnotationCache(api_client=api_client)

    async def _get(self, path: str) -> dict[str, Any] | None:
        from pai_operator.kube import get_json

        try:
            return await asyncio.to_thread(get_json, self.api_client, path)
        except Exception as exc:  # the client's ApiException, urllib3's connection errors
            status = getattr(exc, "status", None)
            reason = getattr(exc, "reason", None) or type(exc).__name__
            raise ClusterReadError(
                f"cannot read {path} from the cluster: {status or ''} {reason}".strip()
            ) from None

    @staticmethod
    def _path(resource: Resource, namespace: str | None, name: str | None = None) -> str:
        path = f"/apis/{resource.group}/{resource.version}"
        if namespace:
            path += f"/namespaces/{urllib.parse.quote(namespace)}"
        path += f"/{resource.plural}"
        return f"{path}/{urllib.parse.quote(name)}" if name else path

    async def get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        """The live object, or None when there is none."""
        return await self._get(self._path(resource, namespace, name))

    async def list(self, resource: Resource, namespace: str | None = None) -> builtins.list[dict[str, Any]]:
        """Every object of the kind (in every namespace when `namespace` is None); [] when the
        CRD is not installed."""
        found = await self._get(self._path(resource, namespace))
        return [item for item in (found or {}).get("items") or [] if isinstance(item, dict)]

    async def serves(self, resource: Resource) -> bool:
        """Whether the kind's CRD is installed."""
        crd = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{resource.crd_name}"
        return await self._get(crd) is not None

    async def events(self, namespace: str, uid: str) -> builtins.list[dict[str, Any]]:
        """The core/v1 Events about one object (the operator posts through kopf, which writes
        core/v1 Events), oldest first."""
        selector = urllib.parse.quote(f"involvedObject.uid={uid}")
        path = f"/api/v1/namespaces/{urllib.parse.quote(namespace)}/events?fieldSelector={selector}"
        found = await self._get(path)
        items = [item for item in (found or {}).get("items") or [] if isinstance(item, dict)]
        return sorted(items, key=_event_time)


def _event_time(event: Mapping[str, Any]) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or "")


def connect_cluster(args: argparse.Namespace, *, required: bool = False) -> Cluster | None:
    """The cluster `--kubeconfig`/`--context` name; None when none is named and none is required
    (then the default kubeconfig, or the in-cluster service account, is used)."""
    kubeconfig = getattr(args, "kubeconfig", None)
    context = getattr(args, "context", None)
    if not kubeconfig and not required:
        return None
    from kubernetes import config

    if kubeconfig or context:
        api_client = config.new_client_from_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
        return Cluster(api_client)
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    from kubernetes import client

    return Cluster(client.ApiClient())


def failed(message: str) -> int:
    """A command that cannot do its work at all: one line on stderr, exit 1."""
    import sys

    sys.stderr.write(f"pai-operator: {message}\n")
    return 1


__all__ = [
    "AnyBackend",
    "Cluster",
    "ClusterReadError",
    "NoNamespaceAnnotations",
    "Registries",
    "add_cluster_arguments",
    "add_registry_arguments",
    "connect_cluster",
    "failed",
    "open_registries",
    "quiet_logging",
    "registry_options",
    "registry_settings",
]
