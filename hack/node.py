#!/usr/bin/env python3
"""A one-node cluster on loopback: kube-controller-manager, kube-scheduler and a kubelet on
containerd/runc, next to the control plane of hack/controlplane.py (`make cluster-up WITH_NODE=1`).

Everything binds to 127.0.0.1 and runs as root with its own directories under the cluster
directory: containerd's root/state/socket (never the machine's /run/containerd), the kubelet's
root and pod-log directories, cgroups under /pai-operator-node-<hash of the directory> (cgroupfs). No bridge
network: the CNI configuration holds only the `loopback` plugin, which makes containerd report
the network ready; the pods that must reach the API server use host networking.

Choices that are not obvious (README, "End to end on a real kubelet"):

* cgroup v1: kubelets since 1.35 refuse to start on cgroup v1 unless the KubeletConfiguration says
  `failCgroupV1: false` (KEP-5573); v1.37.2 still runs on it with that setting.
* The node is named 127.0.0.1: the kubelet refuses a loopback --node-ip ("nodeIP can't be loopback
  address"), but takes an IP given as --hostname-override as the node's InternalIP unchecked, so
  `kubectl logs`, probes and the node address all stay on loopback.
* The sandbox image cannot be pulled: hack/base-image.sh builds localhost/pai-operator-pause:local
  from hack/pause.go and this module imports it into containerd before the kubelet starts.
* The kubelet, controller-manager and scheduler authenticate with the admin client certificate
  (system:masters). A test cluster; the operator's own RBAC is what the tests exercise.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

HACK_DIR = Path(__file__).resolve().parent
NODE_NAME = "127.0.0.1"  # the first node; a second one is 127.0.0.2, and so on
PAUSE_IMAGE = "localhost/pai-operator-pause:local"
CONTAINERD_NAMESPACE = "k8s.io"  # the CRI plugin's namespace
READY = '{.status.conditions[?(@.type=="Ready")]'
READY_JSONPATH = f"jsonpath={READY}.status}} {READY}.message}}"


def machine_problems() -> list[str]:
    """Why this machine cannot run the node, as exact as possible; empty when it can."""
    problems = []
    if os.geteuid() != 0:
        problems.append("not root: containerd, runc and the kubelet need root (cgroups, mounts, namespaces)")
    for binary in ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "buildah", "debootstrap"):
        if shutil.which(binary) is None:
            problems.append(f"{binary} not found (install: bash hack/node-deps.sh)")
    if not Path("/usr/lib/cni/loopback").exists() and not Path("/opt/cni/bin/loopback").exists():
        problems.append("CNI loopback plugin not found (containernetworking-plugins; bash hack/node-deps.sh)")
    if "overlay" not in Path("/proc/filesystems").read_text():
        problems.append("no overlay filesystem in /proc/filesystems (containerd's overlayfs snapshotter)")
    return problems


def restrict_oom_score_adj() -> bool:
    """True when this process may not lower OOM scores (no CAP_SYS_RESOURCE in its effective set)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return not (int(line.split()[1], 16) >> 24) & 1  # CAP_SYS_RESOURCE = 24
    return True


def cgroup_root(root: Path) -> str:
    """The kubelet's cgroupRoot, one per cluster directory: two clusters (two worktrees, a test
    and a `make cluster-up`) never share or remove each other's cgroups."""
    return "/pai-operator-node-" + hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:8]


def cni_bin_dir() -> str:
    return "/usr/lib/cni" if Path("/usr/lib/cni/loopback").exists() else "/opt/cni/bin"


@dataclass
class Node:
    """containerd + kube-controller-manager + kube-scheduler + kubelet, files under `root`."""

    root: Path
    server: str  # the API server URL (https://127.0.0.1:<port>)
    pki: Path  # the control plane's PKI (ca.crt, sa.key, admin.crt/key)
    kubeconfig: Path  # admin kubeconfig of the control plane
    binaries: dict[str, Path]
    # Also its name and the address its kubelet (and host-network pods) use: 127.0.0.<n>.
    name: str = NODE_NAME
    # The first node also runs the controller-manager and the scheduler.
    controllers: bool = True
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    @property
    def containerd_socket(self) -> Path:
        return self.root / "containerd" / "containerd.sock"

    def ctr(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ctr", "--address", str(self.containerd_socket), "--namespace", CONTAINERD_NAMESPACE, *args],
            capture_output=True, text=True, check=check, timeout=timeout,
        )  # fmt: skip

    def start(self, ports: dict[str, int], timeout: float = 180.0) -> list[int]:
        """Start everything; returns the pids (for `down` from another process)."""
        logs = self.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self._start_containerd(logs)
        self._load_pause_image()
        if self.controllers:
            self._start_controllers(ports, logs)
        create_cgroups(cgroup_root(self.root))
        kubelet_dir = self.root / "kubelet"
        kubelet_dir.mkdir(exist_ok=True)
        config = kubelet_dir / "config.json"
        config.write_text(json.dumps(self._kubelet_config(ports), indent=2))
        self._spawn(
            "kubelet",
            [
                str(self.binaries["kubelet"]),
                f"--config={config}",
                f"--kubeconfig={self.kubeconfig}",
                f"--root-dir={kubelet_dir / 'root'}",
                f"--cert-dir={kubelet_dir / 'pki'}",
                f"--hostname-override={self.name}",
                "--v=1",
            ],
            logs,
        )
        self._wait_ready(timeout)
        return [p.pid for p in self.processes]

    def _start_controllers(self, ports: dict[str, int], logs: Path) -> None:
        common = [f"--kubeconfig={self.kubeconfig}", "--bind-address=127.0.0.1", "--leader-elect=false"]
        self._spawn(
            "kube-controller-manager",
            [
                str(self.binaries["kube-controller-manager"]), *common,
                f"--secure-port={ports['kube-controller-manager']}",
                # Tokens and the kube-root-ca.crt ConfigMap every projected token volume needs.
                f"--service-account-private-key-file={self.pki / 'sa.key'}",
                f"--root-ca-file={self.pki / 'ca.crt'}",
                "--use-service-account-credentials=true",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                "--v=1",
            ],
            logs,
        )  # fmt: skip
        self._spawn(
            "kube-scheduler",
            [
                str(self.binaries["kube-scheduler"]), *common,
                f"--secure-port={ports['kube-scheduler']}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                "--v=1",
            ],
            logs,
        )  # fmt: skip

    def _kubelet_config(self, ports: dict[str, int]) -> dict[str, object]:
        return {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            # Refused by default since 1.35 on cgroup v1 hosts like this one (KEP-5573).
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": cgroup_root(self.root),
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "address": self.name,
            "port": ports["kubelet"],
            "readOnlyPort": 0,
            "healthzBindAddress": self.name,
            "healthzPort": ports["kubelet-healthz"],
            # The API server reaches the kubelet (logs, exec) with the admin client certificate.
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": False},
                "x509": {"clientCAFile": str(self.pki / "ca.crt")},
            },
            "authorization": {"mode": "AlwaysAllow"},
            "podLogsDir": str(self.root / "pod-logs"),
            "failSwapOn": False,
            "resolvConf": "/etc/resolv.conf",
            "clusterDomain": "cluster.local",
            # A shared development machine: never evict for the host's disk or memory use.
            "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                             "nodefs.inodesFree": "1%"},
            "imageGCHighThresholdPercent": 99,
            "imageGCLowThresholdPercent": 98,
            "serializeImagePulls": False,
            "nodeStatusUpdateFrequency": "2s",
            "syncFrequency": "5s",
        }  # fmt: skip

    def _start_containerd(self, logs: Path) -> None:
        base = self.root / "containerd"
        (self.root / "cni").mkdir(parents=True, exist_ok=True)
        # Only `loopback`: the CRI plugin reports NetworkReady once a configuration loads, and
        # host-network Pods need nothing more. Pods without host networking get `lo` only.
        (self.root / "cni" / "10-loopback.conflist").write_text(
            json.dumps({"cniVersion": "0.4.0", "name": "loopback-only", "plugins": [{"type": "loopback"}]})
        )
        config = base / "config.toml"
        base.mkdir(parents=True, exist_ok=True)
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        config.write_text(
            f"""version = 2
root = "{base / "root"}"
state = "{base / "state"}"
[grpc]
  address = "{self.containerd_socket}"
[ttrpc]
  address = "{self.containerd_socket}.ttrpc"
[metrics]
  address = ""
[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # This machine's root lacks CAP_SYS_RESOURCE, so runc cannot lower oom_score_adj (the sandbox
  # asks for -998: "nsexec: failed to update /proc/self/oom_score_adj: Permission denied");
  # clamp container scores to containerd's own instead.
  restrict_oom_score_adj = {"true" if restrict_oom_score_adj() else "false"}
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        # runc's state next to ours, not the machine-wide /run/containerd/runc.
        Root = "{base / "runc"}"
  [{cri}.cni]
    bin_dir = "{cni_bin_dir()}"
    conf_dir = "{self.root / "cni"}"
"""
        )
        self._spawn("containerd", ["containerd", f"--config={config}"], logs)
        deadline = time.monotonic() + 30
        while self.ctr("version", check=False, timeout=10).returncode != 0:
            if time.monotonic() > deadline or self.processes[-1].poll() is not None:
                raise RuntimeError(f"containerd did not start; see {logs / 'containerd.log'}")
            time.sleep(0.2)

    def _load_pause_image(self) -> None:
        subprocess.run(["bash", str(HACK_DIR / "base-image.sh"), "pause"], check=True)
        self.import_image(PAUSE_IMAGE, PAUSE_IMAGE)

    def import_image(self, buildah_name: str, containerd_name: str) -> None:
        """Copy an image from the project's buildah storage into this node's containerd."""
        archive = self.root / "image.tar"
        subprocess.run(
            ["bash", str(HACK_DIR / "image.sh"), "export", buildah_name, str(archive), containerd_name],
            check=True,
        )
        try:
            self.ctr("images", "import", "--no-unpack", str(archive))
        finally:
            archive.unlink(missing_ok=True)

    def _spawn(self, name: str, argv: list[str], logs: Path) -> None:
        log = (logs / f"{name}.log").open("wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(proc)
        self.names.append(name)

    def _wait_ready(self, timeout: float) -> None:
        kubectl = str(self.binaries["kubectl"])
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for proc, name in zip(self.processes, self.names, strict=True):
                if proc.poll() is not None:
                    # The log's tail in the error: callers remove the directory afterwards.
                    tail = (self.root / "logs" / f"{name}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")
            out = subprocess.run(
                [kubectl, f"--kubeconfig={self.kubeconfig}", "get", "node", self.name, "-o",
                 READY_JSONPATH],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            last = (out.stdout + out.stderr).strip()
            if out.returncode == 0 and out.stdout.startswith("True"):
                return
            time.sleep(1)
        raise TimeoutError(f"node {self.name} not Ready after {timeout}s ({last}); see {self.root / 'logs'}")


def stop_node(root: Path, pids: list[int], terminate: object) -> None:
    """Stop the kubelet and controllers, kill every container, stop containerd, undo mounts and
    cgroups. `terminate` is controlplane._terminate (SIGTERM, then SIGKILL after a grace period)."""
    assert callable(terminate)
    names = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            names[pid] = Path(f"/proc/{pid}/comm").read_text().strip()
    containerd = [pid for pid, name in names.items() if name == "containerd"]
    # The kubelet first, so that nothing restarts the containers killed below. Only pids that
    # still run one of ours: a process that died (a test kills a kubelet) may have a successor
    # under the same pid on a busy machine.
    ours = {"kubelet", "kube-controller", "kube-scheduler"}  # comm is cut at 15 characters
    for pid in [p for p in reversed(pids) if names.get(p) in ours]:
        terminate(pid)
    socket = root / "containerd" / "containerd.sock"
    if socket.exists() and containerd:
        ctr = ["ctr", "--address", str(socket), "--namespace", CONTAINERD_NAMESPACE]
        listing = subprocess.run([*ctr, "tasks", "ls", "-q"], capture_output=True, text=True, check=False)
        for task in listing.stdout.split():
            subprocess.run(
                [*ctr, "tasks", "kill", "-a", "-s", "SIGKILL", task], capture_output=True, check=False
            )
        for task in listing.stdout.split():
            for _ in range(50):
                deleted = subprocess.run([*ctr, "tasks", "delete", task], capture_output=True, check=False)
                if deleted.returncode == 0:
                    break
                time.sleep(0.1)
        containers = subprocess.run(
            [*ctr, "containers", "ls", "-q"], capture_output=True, text=True, check=False
        )
        for container in containers.stdout.split():
            subprocess.run([*ctr, "containers", "delete", container], capture_output=True, check=False)
    for pid in containerd:
        terminate(pid)
    unmount_below(root)
    remove_cgroups(cgroup_root(root))


def unmount_below(root: Path) -> None:
    """Undo every mount under root (overlay snapshots, shm, projected volumes, netns), deepest first."""
    prefix = str(root.resolve()) + "/"
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(prefix):
            mounts.append(point)
    for point in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def create_cgroups(name: str) -> None:
    """The kubelet's cgroupRoot must exist in every v1 hierarchy before it starts."""
    base = Path("/sys/fs/cgroup")
    for hierarchy in base.iterdir():
        if hierarchy.name == "unified" or not hierarchy.is_dir():
            continue
        tree = hierarchy / name.lstrip("/")
        tree.mkdir(exist_ok=True)
        if hierarchy.name == "cpuset":
            # A new v1 cpuset starts with no CPUs and no memory nodes: nothing could run in it.
            for knob in ("cpuset.cpus", "cpuset.mems"):
                (tree / knob).write_text((hierarchy / knob).read_text())


def remove_cgroups(name: str) -> None:
    """The kubelet's cgroup tree under every v1 hierarchy (empty once the containers are gone)."""
    base = Path("/sys/fs/cgroup")
    for hierarchy in base.iterdir() if base.exists() else []:
        tree = hierarchy / name.lstrip("/")
        if tree.is_dir():
            for directory in sorted(
                (p for p in tree.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
            ):
                with contextlib.suppress(OSError):
                    directory.rmdir()
            with contextlib.suppress(OSError):
                tree.rmdir()
