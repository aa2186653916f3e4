"""Where the operator's resident memory goes: RSS at 0 and at N in-sync objects, and with
`--tracemalloc` the Python allocations behind it, grouped by package and by line.

    .venv/bin/python -m bench.profile_memory [--objects 5000] [--models 50] [--settle 45]
        [--variant LABEL[:ENV=VALUE,...]]... [--tracemalloc FRAMES] [--hold]

On the real control plane and the emulator as a process (bench/harness.py's environment):

1. RSS of an operator watching an empty namespace (the process baseline: imports, threads);
2. N objects over M models are created with the emulator's quotas lifted and made Ready by an
   operator (the first variant), whose memory is read `--settle` seconds later;
3. for each variant, an operator is started on those N objects with the shipped defaults (as
   bench/scale.py's restart does: the RSS row of bench/RESULTS.md is read the same way), waits
   until every object was observed, then `--settle` seconds (the operator trims freed memory
   15 s and 30 s after its start), and its memory is read from /proc.

A variant is a label and environment variables for the operator (MALLOC_ARENA_MAX=2, ...);
one with PYTHONTRACEMALLOC=FRAMES also reports Python allocations (and its RSS includes
tracemalloc's own overhead, so compare RSS only between variants without it).
`--hold` keeps the environment after the variants and measures again for each line read from
stdin (see HOLD_HELP): edit the operator's code in between, it runs from the worktree.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import textwrap
import time
import tracemalloc
from collections import Counter
from pathlib import Path

from bench.harness import (
    URI,
    Env,
    all_observed,
    create_batch,
    environment,
    metric,
    numbered_specs,
    proc_memory,
    wait_until,
)
from tests.support.operator import ModelVersions, OperatorProcess

# Loaded by every Python process whose PYTHONPATH holds its directory (only the profiled
# operator's): with tracemalloc on, SIGUSR1 dumps a snapshot. Nothing of it is in the product.
SITECUSTOMIZE = textwrap.dedent(
    """
    import os, signal, tracemalloc

    def _dump(*_):
        import gc
        gc.collect()
        path = os.environ["PAI_PROFILE_SNAPSHOT"]
        tracemalloc.take_snapshot().dump(path + ".tmp")
        os.replace(path + ".tmp", path)

    if tracemalloc.is_tracing() and os.environ.get("PAI_PROFILE_SNAPSHOT"):
        signal.signal(signal.SIGUSR1, _dump)
    """
)


def fmt(mem: dict[str, float]) -> str:
    return (
        f"RSS {mem['VmRSS']:.1f} MiB (peak {mem['VmHWM']:.1f}, anon {mem['RssAnon']:.1f}, "
        f"file {mem['RssFile']:.1f}), {mem['Threads']:.0f} threads"
    )


def owner(trace: tracemalloc.Traceback) -> str:
    """The package an allocation is charged to: "import" for code objects and module dicts made
    by the import system itself, else the innermost frame outside the standard library."""
    frames = list(reversed(trace))  # tracemalloc orders frames oldest first
    if not frames:
        return "?"
    if "importlib._bootstrap" in frames[0].filename:
        return "import (code objects, module dicts)"
    for frame in frames:
        for marker in ("/site-packages/", "/operator/"):
            if marker in frame.filename:
                return frame.filename.split(marker, 1)[1].split("/", 1)[0]
    return "stdlib: " + Path(frames[0].filename).name


def report_snapshot(path: Path, top: int) -> None:
    snapshot = tracemalloc.Snapshot.load(str(path))
    total = sum(stat.size for stat in snapshot.statistics("filename"))
    print(f"    tracemalloc: {total / 2**20:.1f} MiB traced by Python", file=sys.stderr)
    by_owner: Counter[str] = Counter()
    for stat in snapshot.statistics("traceback"):
        by_owner[owner(stat.traceback)] += stat.size
    for name, size in by_owner.most_common(top):
        print(f"      {size / 2**20:7.2f} MiB  {name}", file=sys.stderr)
    print("    top lines:", file=sys.stderr)
    for stat in snapshot.statistics("lineno")[:top]:
        frame = stat.traceback[0]
        print(
            f"      {stat.size / 2**20:7.2f} MiB {stat.count:8d}  {frame.filename}:{frame.lineno}",
            file=sys.stderr,
        )


class Profiler:
    def __init__(self, env: Env, args: argparse.Namespace) -> None:
        self.env = env
        self.args = args
        self.site_dir = Path(tempfile.mkdtemp(prefix="pai-profile-"))
        (self.site_dir / "sitecustomize.py").write_text(SITECUSTOMIZE)
        self.namespaces = 0

    def namespace(self, prefix: str) -> str:
        """A fresh namespace (no Recorder: nothing here counts writes)."""
        self.namespaces += 1
        name = f"{prefix}-{self.namespaces}"
        self.env.cluster.create_namespace(name)
        return name

    def start(self, namespace: str, extra_env: dict[str, str]) -> OperatorProcess:
        env = dict(extra_env)
        if "PYTHONTRACEMALLOC" in env:
            env.update(PYTHONPATH=str(self.site_dir), PAI_PROFILE_SNAPSHOT=str(self.site_dir / "snapshot"))
        # The shipped defaults (no --verbose, default back-off, resync 600 s).
        return self.env.start_operator([namespace], 600.0, production_like=True, extra_env=env)

    def read(self, label: str, n: int, extra_env: dict[str, str], how: str) -> dict[str, float]:
        """Wait `--settle` seconds, read the operator's memory, report, stop it."""
        op = self.env.operator
        assert op is not None
        assert op.proc is not None
        time.sleep(self.args.settle)
        mem = proc_memory(op.proc.pid)
        print(f"  [{label}] N={n}: {fmt(mem)}; {how}, read {self.args.settle:.0f} s later", file=sys.stderr)
        if "PYTHONTRACEMALLOC" in extra_env:
            snapshot = self.site_dir / "snapshot"
            snapshot.unlink(missing_ok=True)
            os.kill(op.proc.pid, signal.SIGUSR1)
            wait_until("a tracemalloc snapshot", snapshot.exists, 120)
            report_snapshot(snapshot, self.args.top)
        self.env.stop_operator()
        return mem

    def restart(self, label: str, namespace: str, n: int, extra_env: dict[str, str]) -> dict[str, float]:
        """An operator started on N objects in sync (what bench/scale.py's RSS row reads)."""
        t0 = time.monotonic()
        op = self.start(namespace, extra_env)
        wait_until("every object observed", lambda: all_observed(op, n), 300)
        return self.read(label, n, extra_env, f"all observed {time.monotonic() - t0:.1f} s after start")

    def create(
        self, label: str, n: int, models: int, extra_env: dict[str, str], lift_quotas: bool = True
    ) -> tuple[str, dict[str, float]]:
        """N objects created while an operator runs, until all are Ready; with the emulator's
        quotas lifted (fast, and the most status writes at once) unless `lift_quotas` is off."""
        namespace = self.namespace("mem-create")
        mvs = ModelVersions(self.env.api, namespace)
        model_ids = [self.env.new_model() for _ in range(models)]
        defaults = self.env.emulator.admin.quotas()
        if lift_quotas:
            self.env.emulator.admin.set_quotas(dict.fromkeys(defaults, 0.0))
        op = self.start(namespace, extra_env)
        t0 = time.monotonic()

        try:
            create_batch(mvs, numbered_specs(n, model_ids, f"{URI}{namespace}/"))
            ready = 'pai_operator_objects{condition="Ready",status="True"}'
            wait_until(f"{n} Ready", lambda: metric(op, ready) >= n, 900)
        finally:
            self.env.emulator.admin.set_quotas(defaults)
        how = f"all Ready {time.monotonic() - t0:.0f} s after the first create"
        return namespace, self.read(label, n, extra_env, how)


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    label, _, rest = text.partition(":")
    pairs = [p for p in rest.replace(",", " ").split() if p]
    return label, dict(p.split("=", 1) for p in pairs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--settle", type=float, default=45.0, help="seconds before memory is read")
    parser.add_argument("--variant", action="append", default=[], help="LABEL[:ENV=VALUE,...]")
    parser.add_argument("--tracemalloc", type=int, default=0, metavar="FRAMES", help="every variant traced")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--hold", action="store_true", help="measure again for each stdin line")
    args = parser.parse_args(argv)
    variants = [parse_variant(v) for v in args.variant] or [("shipped", {})]
    if args.tracemalloc:
        for _, extra in variants:
            extra.setdefault("PYTHONTRACEMALLOC", str(args.tracemalloc))
    with environment() as env:
        profiler = Profiler(env, args)
        empty = profiler.namespace("mem-empty")
        for label, extra in variants:
            profiler.restart(label, empty, 0, extra)
        label, extra = variants[0]
        full, _ = profiler.create(f"{label}, creating", args.objects, args.models, extra)
        for label, extra in variants:
            profiler.restart(label, full, args.objects, extra)
        if args.hold:
            print(HOLD_HELP, file=sys.stderr)
            for line in sys.stdin:
                words = line.split()
                try:
                    if not words:
                        continue
                    if words[0] == "create" and len(words) >= 3:
                        label, extra = parse_variant(f"{words[1]}:{' '.join(words[3:])}")
                        n = int(words[2])
                        profiler.create(label, n, max(1, n // 100), extra)
                    elif words[0] == "empty" and len(words) >= 2:
                        label, extra = parse_variant(f"{words[1]}:{' '.join(words[2:])}")
                        profiler.restart(label, empty, 0, extra)
                    else:
                        label, extra = parse_variant(f"{words[0]}:{' '.join(words[1:])}")
                        profiler.restart(label, full, args.objects, extra)
                except Exception as exc:  # keep the environment for the next line
                    print(f"  [{words[0]}] failed: {exc!r}", file=sys.stderr)
    return 0


HOLD_HELP = """  holding; one measurement per stdin line:
    LABEL [ENV=VALUE ...]             restart on the N objects
    empty LABEL [ENV=VALUE ...]       an operator with no objects
    create LABEL N [ENV=VALUE ...]    N new objects created (quotas lifted) until Ready"""


if __name__ == "__main__":
    sys.exit(main())
