#!/usr/bin/env python3
"""Start and stop a local Kubernetes control plane (etcd + kube-apiserver) on loopback, and with
`--with-node` a one-node cluster around it (hack/node.py: controller-manager, scheduler, kubelet
on containerd/runc; root only).

The same binaries envtest uses, built by hack/build-tools.sh, run as plain processes: no Docker,
no kubelet, no controller-manager. Used three ways:

* `python hack/controlplane.py up --dir DIR` / `down --dir DIR` (what `make cluster-up/down` run);
* imported by the pytest fixtures (`ControlPlane.start()` / `.stop()`);
* by the demo.

Only the standard library and the `openssl` command are used, so it runs before any virtualenv.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HACK_DIR = Path(__file__).resolve().parent
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"


def _versions() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (HACK_DIR / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    # Same rule as hack/lib.sh: an explicit KUBERNETES_VERSION in the environment wins, so
    # `KUBERNETES_VERSION=v1.34.4 make test` builds, starts and expects that release.
    requested = os.environ.get("KUBERNETES_VERSION")
    if requested:
        if not re.fullmatch(r"v1\.\d+\.\d+", requested):
            raise SystemExit(f"KUBERNETES_VERSION={requested} is not a release (want v1.MINOR.PATCH)")
        values["KUBERNETES_VERSION"] = requested
    return values


VERSIONS = _versions()


def cache_root() -> Path:
    explicit = os.environ.get("PAI_OPERATOR_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "pai-operator"


KSTATUS_SOURCES = ("go.mod", "go.sum", "main.go")


def kstatus_binary() -> Path:
    """The kstatus checker hack/build-tools.sh builds from hack/kstatus, keyed by its sources' hash
    exactly as hack/lib.sh keys it (KSTATUS_KEY)."""
    digest = hashlib.sha256(b"".join((HACK_DIR / "kstatus" / n).read_bytes() for n in KSTATUS_SOURCES))
    return cache_root() / f"kstatus-{digest.hexdigest()[:16]}" / "kstatus"


def ensure_kstatus() -> Path:
    """The kstatus checker, built first when missing (a fresh clone, or changed sources)."""
    binary = kstatus_binary()
    if not os.access(binary, os.X_OK):
        subprocess.run(["bash", str(HACK_DIR / "build-tools.sh"), "kstatus"], check=True)
    return binary


@dataclass(frozen=True)
class Binaries:
    etcd: Path
    kube_apiserver: Path
    kubectl: Path
    helm: Path

    @classmethod
    def from_cache(cls) -> Binaries:
        root = cache_root()
        k8s = root / f"kubernetes-{VERSIONS['KUBERNETES_VERSION']}"
        return cls(
            etcd=root / f"etcd-{VERSIONS['ETCD_VERSION']}" / "etcd",
            kube_apiserver=k8s / "kube-apiserver",
            kubectl=k8s / "kubectl",
            helm=root / f"helm-{VERSIONS['HELM_VERSION']}-kv" / "helm",
        )

    def missing(self) -> list[Path]:
        return [
            p for p in (self.etcd, self.kube_apiserver, self.kubectl, self.helm) if not os.access(p, os.X_OK)
        ]

    def ensure(self) -> None:
        """Build whatever is missing (idempotent; a warm cache costs nothing)."""
        if self.missing():
            subprocess.run(["bash", str(HACK_DIR / "build-tools.sh")], check=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def generate_pki(pki: Path) -> None:
    """CA, serving certificate, admin client certificate (system:masters) and SA signing keys."""
    pki.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "3650",
        "-subj",
        "/CN=pai-operator-local-ca",
        cwd=pki,
    )

    def signed(name: str, subject: str, extensions: str) -> None:
        (pki / f"{name}.ext").write_text(extensions)
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=pki)
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.crt",
            "-days",
            "3650",
            "-extfile",
            f"{name}.ext",
            cwd=pki,
        )

    signed(
        "apiserver",
        "/CN=kube-apiserver",
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
        "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.0.0.1\n"
        "extendedKeyUsage=serverAuth\n",
    )
    signed("admin", "/O=system:masters/CN=pai-operator-admin", "extendedKeyUsage=clientAuth\n")
    # The apiserver signs ServiceAccount tokens (TokenRequest) with this key pair.
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa.key", cwd=pki)
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(
    path: Path, server: str, ca: Path, user: dict[str, str], name: str = "pai-local"
) -> None:
    """A kubeconfig with embedded data (usable after the PKI directory moves)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": _b64(ca)}}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }
    # JSON is valid YAML; kubectl and the Python client both read it.
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)


@dataclass
class ControlPlane:
    """One etcd + kube-apiserver pair whose files all live under `root`."""

    root: Path
    binaries: Binaries = field(default_factory=Binaries.from_cache)
    # A kubelet and controllers join (hack/node.py): pods run, so ServiceAccount admission is on.
    with_node: bool = False
    etcd_port: int = 0
    apiserver_port: int = 0
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    def start(self, timeout: float = 120.0) -> ControlPlane:
        self.binaries.ensure()
        self.root.mkdir(parents=True, exist_ok=True)
        pki = self.root / "pki"
        generate_pki(pki)
        self.etcd_port, peer_port, self.apiserver_port = free_port(), free_port(), free_port()
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        etcd_url = f"http://127.0.0.1:{self.etcd_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        self._spawn(
            "etcd",
            [
                str(self.binaries.etcd),
                f"--data-dir={self.root / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                # A throwaway test database: durability buys nothing and fsync dominates latency.
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
            logs,
        )
        self._spawn(
            "kube-apiserver",
            [
                str(self.binaries.kube_apiserver),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.apiserver_port}",
                f"--cert-dir={pki}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                "--authorization-mode=RBAC",
                f"--service-account-issuer={SA_ISSUER}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                # No controller-manager runs, so nothing would create the token/default SA the
                # ServiceAccount admission plugin waits for; pods are never scheduled anyway.
                # With the node the controller-manager does, and pods need their tokens.
                *([] if self.with_node else ["--disable-admission-plugins=ServiceAccount"]),
                # `kubectl logs` goes through the kubelet, which accepts the admin certificate.
                f"--kubelet-client-certificate={pki / 'admin.crt'}",
                f"--kubelet-client-key={pki / 'admin.key'}",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                # Loopback cannot be published as the kubernetes Service endpoint, and nothing
                # in this cluster routes to Services anyway.
                "--endpoint-reconciler-type=none",
                "--v=1",
            ],
            logs,
        )
        write_kubeconfig(
            self.kubeconfig,
            self.server,
            pki / "ca.crt",
            {"client-certificate-data": _b64(pki / "admin.crt"), "client-key-data": _b64(pki / "admin.key")},
        )
        (self.root / "state.json").write_text(
            json.dumps({"pids": [p.pid for p in self.processes], "server": self.server})
        )
        try:
            self._wait_ready(pki, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, name: str, argv: list[str], logs: Path) -> None:
        log = (logs / f"{name}.log").open("wb")
        # A session of its own: a Ctrl-C aimed at pytest must not kill etcd under a live apiserver.
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(proc)

    def _wait_ready(self, pki: Path, timeout: float) -> None:
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        deadline = time.monotonic() + timeout
        last_error = ""
        while time.monotonic() < deadline:
            for proc in self.processes:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{proc.args[0]} exited with {proc.returncode}; see {self.root / 'logs'}"
                    )
            try:
                with urllib.request.urlopen(f"{self.server}/readyz", context=context, timeout=5) as resp:  # noqa: S310 - our https URL
                    if resp.status == 200:
                        return
            except OSError as exc:
                last_error = str(exc)
            time.sleep(0.25)
        raise TimeoutError(
            f"kube-apiserver not ready after {timeout}s ({last_error}); see {self.root / 'logs'}"
        )

    def restart(self, component: str, timeout: float = 120.0) -> None:
        """Stop one component (SIGTERM) and start it again with the same arguments, ports and data,
        then wait until the API server is ready again (bench/chaos.py). `component`: "etcd" or
        "kube-apiserver"."""
        index = {"etcd": 0, "kube-apiserver": 1}[component]
        old = self.processes[index]
        _terminate(old.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            old.wait(timeout=15)
        log = (self.root / "logs" / f"{component}.log").open("ab")
        self.processes[index] = subprocess.Popen(
            old.args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        (self.root / "state.json").write_text(
            json.dumps({"pids": [p.pid for p in self.processes], "server": self.server})
        )
        self._wait_ready(self.root / "pki", timeout)

    def stop(self) -> None:
        # apiserver first, then etcd: the reverse of start order.
        for proc in reversed(self.processes):
            _terminate(proc.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
        self.processes.clear()


def _terminate(pid: int, grace: float = 10.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        # Reap if it is our child; otherwise just poll for its disappearance.
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def down(root: Path) -> None:
    """Stop a control plane started by `up` in another process, and remove its files."""
    state = root / "state.json"
    if state.exists():
        saved = json.loads(state.read_text())
        if saved.get("nodes"):
            sys.path.insert(0, str(HACK_DIR))
            import node

            # Containers, containerd, mounts and cgroups; then the control plane below.
            for worker in reversed(saved["nodes"]):
                node.stop_node(Path(worker["dir"]), worker["pids"], _terminate)
        node_pids = {pid for worker in saved.get("nodes", []) for pid in worker["pids"]}
        for pid in reversed(saved["pids"]):
            if pid not in node_pids:
                _terminate(int(pid))
    shutil.rmtree(root, ignore_errors=True)


def _node_binaries() -> dict[str, Path]:
    k8s = cache_root() / f"kubernetes-{VERSIONS['KUBERNETES_VERSION']}"
    names = ("kubelet", "kube-controller-manager", "kube-scheduler", "kubectl")
    return {name: k8s / name for name in names}


def up_with_node(root: Path, nodes: int = 1) -> ControlPlane:
    """Control plane, then `nodes` nodes 127.0.0.1, 127.0.0.2, ... (hack/node.py), each with its
    own containerd and kubelet; state.json lists every pid for `down`."""
    sys.path.insert(0, str(HACK_DIR))
    import node

    problems = node.machine_problems()
    if problems:
        raise SystemExit("cannot run a node here:\n  " + "\n  ".join(problems))
    binaries = _node_binaries()
    if not all(os.access(p, os.X_OK) for p in binaries.values()):
        subprocess.run(["bash", str(HACK_DIR / "build-tools.sh"), "node"], check=True)
    cp = ControlPlane(root, with_node=True).start()
    started: list[tuple[Path, list[int]]] = []
    try:
        for index in range(nodes):
            ports = {
                name: free_port()
                for name in ("kubelet", "kubelet-healthz", "kube-controller-manager", "kube-scheduler")
            }
            directory = root / ("node" if index == 0 else f"node-{index + 1}")
            worker = node.Node(
                directory, cp.server, root / "pki", cp.kubeconfig, binaries,
                name=f"127.0.0.{index + 1}", controllers=index == 0,
            )  # fmt: skip
            try:
                started.append((directory, worker.start(ports)))
            except BaseException:
                started.append((directory, [p.pid for p in worker.processes]))
                raise
    except BaseException:
        for directory, pids in reversed(started):
            node.stop_node(directory, pids, _terminate)
        cp.stop()
        raise
    state = json.loads((root / "state.json").read_text())
    # Control plane first in the list: `down` stops in reverse order, so the nodes go first.
    state["nodes"] = [{"dir": str(d), "pids": pids} for d, pids in started]
    state["pids"] += [pid for _, pids in started for pid in pids]
    (root / "state.json").write_text(json.dumps(state))
    return cp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up_cmd = sub.add_parser("up", help="start etcd + kube-apiserver and print KUBECONFIG=<path>")
    up_cmd.add_argument("--dir", type=Path, default=None, help="state directory (default: a new temp dir)")
    up_cmd.add_argument(
        "--with-node",
        action="store_true",
        help="also a kubelet on containerd + controller-manager + scheduler",
    )
    up_cmd.add_argument("--nodes", type=int, default=1, help="with --with-node: how many nodes (127.0.0.<n>)")
    down_cmd = sub.add_parser("down", help="stop a control plane started with `up` and delete its files")
    down_cmd.add_argument("--dir", type=Path, required=True)
    sub.add_parser("binaries", help="print the cached binary paths as shell assignments")
    args = parser.parse_args(argv)

    if args.command == "binaries":
        b = Binaries.from_cache()
        print(f"ETCD={b.etcd}\nKUBE_APISERVER={b.kube_apiserver}\nKUBECTL={b.kubectl}\nHELM={b.helm}")
        return 0
    if args.command == "down":
        down(args.dir.resolve())
        print(f"control plane in {args.dir} stopped", file=sys.stderr)
        return 0
    root = (args.dir or Path(tempfile.mkdtemp(prefix="pai-cp-"))).resolve()
    if (root / "state.json").exists():
        down(root)
    started = time.monotonic()
    cp = up_with_node(root, args.nodes) if args.with_node else ControlPlane(root).start()
    print(
        f"control plane ready at {cp.server} in {time.monotonic() - started:.1f}s "
        f"(logs: {root / 'logs'}; stop with: make cluster-down)",
        file=sys.stderr,
    )
    print(f"KUBECONFIG={cp.kubeconfig}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
