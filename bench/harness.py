"""What the measurement programs in bench/ share: a control plane with the CRD, the PAI emulator
and the operator as processes, a watch that times and counts Kubernetes writes, readings of
metrics and /proc, bounded waits, and the sections of bench/RESULTS.md each program owns.

Everything runs on loopback: etcd + kube-apiserver (hack/controlplane.py), the emulator and the
operator as processes (tests/support). Every wait is bounded; everything started here is stopped
on exit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from kubernetes import client, config, watch

from tests.support.emulator import DEFAULT_CREDENTIAL, EmulatorProcess
from tests.support.kube import controlplane
from tests.support.operator import GROUP, PLURAL, VERSION, ModelVersions, OperatorProcess

if TYPE_CHECKING:
    from alibabacloud_aiworkspace20210204.client import Client as SdkClient

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "RESULTS.md"
CRD_DIR = REPO_ROOT / "crds"  # every CRD an install ships: a missing one reads as an uninstall
URI = "oss://bench-bucket.oss-cn-hangzhou-internal.aliyuncs.com/models/bench/"


# --- bench/RESULTS.md: each program owns one section between `<!-- NAME:start/end -->` markers ---

MARKED = re.compile(r"<!-- ([\w-]+):start -->.*?<!-- \1:end -->\n?", re.DOTALL)


def marked_sections(text: str) -> list[str]:
    """Every marked section of `text`, in order (kept when a program rewrites the whole file)."""
    return [match.group(0) for match in MARKED.finditer(text)]


def write_section(path: Path, name: str, section: str) -> None:
    """Replace section `name` in `path` with `section` (which carries its own markers), or
    append it when the file has none yet."""
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(rf"<!-- {name}:start -->.*?<!-- {name}:end -->\n?", re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = (text.rstrip("\n") + "\n\n" if text else "") + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def utc_now() -> str:
    """The date line of a report."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- readings ---------------------------------------------------------------------------------


def fmt_counts(counter: Counter[str] | dict[str, int]) -> str:
    items = sorted((k, v) for k, v in counter.items() if v)
    return ", ".join(f"{k} {v}" for k, v in items) or "none"


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_memory(pid: int) -> dict[str, float]:
    """VmRSS, VmHWM (peak), RssAnon, RssFile in MiB and the thread count, from /proc (Linux)."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0]) / 1024
        elif key == "Threads":
            out[key] = int(value)
    return out


def metric_sum(text: str, sample: str, **labels: str) -> float:
    """Sum of the samples of one metric (a name, or a name with its labels) in Prometheus text;
    `labels` keeps only samples with those label values (whatever their other labels)."""
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    total = 0.0
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        named = line.startswith(sample) and (len(line) == len(sample) or line[len(sample)] in " {")
        if named and all(w in series for w in wanted):
            total += float(value)
    return total


def metric(op: OperatorProcess, sample: str, **labels: str) -> float:
    """One metric of a running operator; -1 while it does not answer (starting, or gone)."""
    try:
        return metric_sum(op.metrics(), sample, **labels)
    except httpx.HTTPError:
        return -1.0


def all_observed(op: OperatorProcess, n: int) -> bool:
    """The operator tracks `n` objects and batched observation has seen every one of them (what
    a restart waits for)."""
    return (
        metric(op, "pai_operator_tracked_objects") >= n and metric(op, "pai_operator_unobserved_objects") == 0
    )


def ready_for_generation(obj: dict[str, Any] | None) -> bool:
    """Ready=True about the object's current generation."""
    if not obj:
        return False
    generation = obj.get("metadata", {}).get("generation")
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True" and cond.get("observedGeneration") == generation)
    return False


def wait_until(what: str, probe: Callable[[], bool], timeout: float, interval: float = 0.5) -> float:
    """Poll `probe` until it is true; returns the seconds it took, or raises TimeoutError."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if probe():
            return time.monotonic() - started
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def sdk_client(endpoint: str) -> SdkClient:
    """The official PAI SDK against the emulator (the second client: drift made by hand)."""
    from alibabacloud_aiworkspace20210204.client import Client
    from alibabacloud_tea_openapi.models import Config

    return Client(
        Config(
            access_key_id=DEFAULT_CREDENTIAL.access_key_id,
            access_key_secret=DEFAULT_CREDENTIAL.access_key_secret,
            endpoint=endpoint,
            protocol="http",
            read_timeout=30_000,
            connect_timeout=5_000,
        )
    )


# --- objects ----------------------------------------------------------------------------------


def numbered_specs(n: int, model_ids: list[str], uri: str) -> dict[str, dict[str, Any]]:
    """`mv-00000` ... over the models in turn, each with a fixed version name and a managed
    description (drift in it is repaired)."""
    return {
        f"mv-{i:05d}": {
            "modelId": model_ids[i % len(model_ids)],
            "uri": f"{uri}{i}/",
            "versionName": f"1.{i}.0",
            "versionDescription": f"bench object {i}",
        }
        for i in range(n)
    }


def create_batch(mvs: ModelVersions, specs: Mapping[str, dict[str, Any]]) -> dict[str, float]:
    """Create objects in parallel (8 threads); returns the monotonic time each create was sent."""
    sent: dict[str, float] = {}

    def one(name: str) -> None:
        sent[name] = time.monotonic()
        mvs.create(name, specs[name])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, specs))
    return sent


# --- the watch that counts Kubernetes writes -----------------------------------------------------


def changed_parts(before: dict[str, Any] | None, after: dict[str, Any]) -> str:
    """Which parts of the object one write changed (for the write breakdown)."""
    if before is None:
        return "new"
    parts = []
    bm, am = before.get("metadata", {}), after.get("metadata", {})
    for key in ("finalizers", "annotations", "labels", "deletionTimestamp"):
        if bm.get(key) != am.get(key):
            parts.append(key)
    for key in ("spec", "status"):
        if before.get(key) != after.get(key):
            parts.append(key)
    return "+".join(parts) or "nothing(rv only)"


@dataclass
class Seen:
    t: float
    kind: str  # ADDED / MODIFIED / DELETED
    name: str
    rv: str
    parts: str
    ready: bool


@dataclass
class Recorder:
    """Watches ModelVersions of one namespace on a thread and keeps every event with its time."""

    api: client.ApiClient
    namespace: str
    seen: list[Seen] = field(default_factory=list)
    _last: dict[str, dict[str, Any]] = field(default_factory=dict)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _stop: threading.Event = field(default_factory=threading.Event)
    _ready_event: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Recorder:
        self._thread = threading.Thread(target=self._run, name=f"watch-{self.namespace}", daemon=True)
        self._thread.start()
        # The watch must be established before anything is created, or ADDED events are replayed
        # from the list and their times would be wrong. Listing first gives a resourceVersion.
        return self

    def _list_version(self, custom: client.CustomObjectsApi) -> str:
        listing: dict[str, Any] = custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)  # type: ignore[assignment]
        return str(listing["metadata"]["resourceVersion"])

    def _run(self) -> None:
        custom = client.CustomObjectsApi(self.api)
        rv: str | None = self._list_version(custom)
        self._ready_event.set()
        while not self._stop.is_set():
            w = watch.Watch()  # type: ignore[no-untyped-call]
            try:
                if rv is None:
                    rv = self._list_version(custom)
                for event in w.stream(  # type: ignore[no-untyped-call]
                    custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    PLURAL,
                    resource_version=rv,
                    timeout_seconds=5,
                ):
                    obj = event["object"]
                    name = obj["metadata"]["name"]
                    rv = obj["metadata"]["resourceVersion"]
                    with self._cond:
                        self.seen.append(
                            Seen(
                                time.monotonic(),
                                event["type"],
                                name,
                                rv,
                                changed_parts(self._last.get(name), obj),
                                ready_for_generation(obj),
                            )
                        )
                        self._last[name] = obj
                        if event["type"] == "DELETED":
                            self._last.pop(name, None)
                        self._cond.notify_all()
                    if self._stop.is_set():
                        break
            except Exception as exc:
                if self._stop.is_set():
                    break
                if isinstance(exc, client.ApiException) and exc.status == 410:
                    # A namespace where nothing happens keeps the list's resourceVersion until etcd
                    # compacts it away (5 min); every watch from it is then 410 Gone, and retrying
                    # the same version would loop for ever. List again: nothing happened, nothing
                    # was missed.
                    print(
                        f"  (watch {self.namespace}: resourceVersion expired, listing again)", file=sys.stderr
                    )
                    rv = None
                else:  # a dropped watch is resumed from the last resourceVersion
                    print(f"  (watch {self.namespace} restarted: {type(exc).__name__})", file=sys.stderr)
                    time.sleep(0.2)

    def wait_started(self) -> None:
        if not self._ready_event.wait(30):
            raise TimeoutError("watch did not start")
        time.sleep(0.3)  # let the watch request itself reach the apiserver

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def wait(self, what: str, predicate: Callable[[], bool], timeout: float) -> None:
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")

    def ready_time(self, name: str, after: float) -> float | None:
        for s in self.seen:
            if s.name == name and s.t >= after and s.ready:
                return s.t
        return None

    def ready_count(self) -> int:
        """Objects whose latest event shows Ready for their generation."""
        with self._cond:
            return sum(1 for obj in self._last.values() if ready_for_generation(obj))

    def gone(self, name: str) -> bool:
        return any(s.name == name and s.kind == "DELETED" for s in self.seen)

    def between(self, name: str, start: float, end: float) -> list[Seen]:
        with self._cond:
            return [s for s in self.seen if s.name == name and start <= s.t <= end]

    def writes_between(self, start: float, end: float) -> int:
        """Writes to any object (every event but a creation) in the window."""
        with self._cond:
            return sum(1 for s in self.seen if start <= s.t <= end and s.kind != "ADDED")


# --- the environment ----------------------------------------------------------------------------


def default_api_client(kubeconfig: Path) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]


@dataclass
class Cluster:
    root: Path  # a temporary directory for the programs' files too; removed on exit
    plane: controlplane.ControlPlane
    api: client.ApiClient

    def kubectl(self, *args: str) -> None:
        subprocess.run(
            [str(self.plane.binaries.kubectl), "--kubeconfig", str(self.plane.kubeconfig), *args],
            check=True,
            capture_output=True,
            timeout=90,
        )

    def create_namespace(self, name: str) -> None:
        client.CoreV1Api(self.api).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
        )


@contextlib.contextmanager
def cluster(
    prefix: str, api_client: Callable[[Path], client.ApiClient] = default_api_client
) -> Iterator[Cluster]:
    """etcd + kube-apiserver in a new temporary directory, the CRDs of crds/ established (as an
    install has them: an operator missing one of its CRDs waits for it to come back, polling)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    plane = controlplane.ControlPlane(root / "cluster")
    api: client.ApiClient | None = None
    try:
        print("starting control plane ...", file=sys.stderr, flush=True)
        plane.start()
        api = api_client(plane.kubeconfig)
        found = Cluster(root, plane, api)
        crds = sorted(CRD_DIR.glob("*.yaml"))
        found.kubectl("apply", "--server-side", "--force-conflicts", *(f"--filename={f}" for f in crds))
        found.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        yield found
    finally:
        if api is not None:
            api.close()  # type: ignore[no-untyped-call]
        plane.stop()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Env:
    """A cluster, the emulator (PAI's default quotas, no models) and at most one operator."""

    cluster: Cluster
    emulator: EmulatorProcess
    operator: OperatorProcess | None = None
    recorders: list[Recorder] = field(default_factory=list)

    @property
    def plane(self) -> controlplane.ControlPlane:
        return self.cluster.plane

    @property
    def api(self) -> client.ApiClient:
        return self.cluster.api

    def pids(self) -> dict[str, int]:
        """The processes whose CPU time is worth reporting."""
        pids = {"emulator": self.emulator.pid or 0}
        pids.update(zip(("etcd", "kube-apiserver"), (p.pid for p in self.plane.processes), strict=False))
        if self.operator is not None and self.operator.proc is not None:
            pids["operator"] = self.operator.proc.pid
        return pids

    def cpu(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids().items() if pid}

    def namespace(self, name: str) -> tuple[ModelVersions, Recorder]:
        """A new namespace, and a started watch that records every write in it."""
        self.cluster.create_namespace(name)
        recorder = Recorder(self.api, name).start()
        recorder.wait_started()
        self.recorders.append(recorder)
        return ModelVersions(self.api, name), recorder

    def start_operator(
        self,
        namespaces: list[str],
        resync: float,
        production_like: bool = False,
        extra: tuple[str, ...] = (),
        extra_env: dict[str, str] | None = None,
    ) -> OperatorProcess:
        """Replaces the running operator. production_like: the shipped defaults where the test
        harness deviates (no --verbose, back-off base 2 s, so the scheduler ticks once a second
        instead of four times)."""
        self.stop_operator()
        self.operator = OperatorProcess(
            self.plane.kubeconfig,
            self.emulator.url,
            DEFAULT_CREDENTIAL,
            namespaces=namespaces,
            resync_interval=resync,
            extra_args=extra,
            extra_env=extra_env,
            test_tuning=not production_like,
        ).start()
        return self.operator

    def stop_operator(self) -> None:
        if self.operator is not None:
            self.operator.stop()
            self.operator = None

    def new_model(self) -> str:
        model = f"model-bench-{uuid.uuid4().hex[:8]}"
        self.emulator.admin.add_model(model)
        return model

    def journal_len(self) -> int:
        return len(self.emulator.admin.journal())

    def journal_since(self, index: int) -> list[dict[str, Any]]:
        return self.emulator.admin.journal()[index:]

    def events_of(self, namespace: str) -> dict[str, list[tuple[str, str, int]]]:
        """Per involved object: (uid, reason, count) of every Event in the namespace."""
        out: dict[str, list[tuple[str, str, int]]] = {}
        for ev in client.CoreV1Api(self.api).list_namespaced_event(namespace).items:
            out.setdefault(str(ev.involved_object.name), []).append(
                (str(ev.metadata.uid), ev.reason or "", int(ev.count or 1))
            )
        return out


@contextlib.contextmanager
def environment(prefix: str = "pai-bench-") -> Iterator[Env]:
    with cluster(prefix) as plane, EmulatorProcess(models=()) as emulator:
        env = Env(plane, emulator)
        try:
            yield env
        finally:
            env.stop_operator()
            for recorder in env.recorders:
                recorder.stop()
