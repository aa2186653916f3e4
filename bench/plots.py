"""The benchmarks' pictures: PNGs in bench/plots/ drawn from the time series in bench/data/.

    .venv/bin/python -m bench.plots [--data bench/data] [--out bench/plots] [--results FILE | --no-results]

Draws what is there, without running anything (`make plots`; `make bench` ends with it):

- scale-ready.png: objects Ready over time against the quota floor (every create is one
  CreateModelVersion, at most 20 a second), one panel per size of bench/scale.py;
- scale-pai-calls.png: PAI calls per interval by operation through the scale run's phases
  (create, in sync, drift, restart, idle);
- scale-rss.png: the operator's resident memory over the scale runs;
- <chaos data>-convergence.png: objects settled under faults, kills, restarts and an outage, and
  what became of the PAI calls meanwhile (bench/chaos.py).

Each figure says the load average it was measured under (the machine is shared). The figures and
their captions go into bench/RESULTS.md between the `plots` markers.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: files only

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bench.harness import RESULTS, write_section
from bench.timeline import DATA, TimelineData, read

PLOTS = Path(__file__).resolve().parent / "plots"
DPI = 100


class PlotError(Exception):
    """A data file lacks what a figure needs (a series, a mark, a parameter)."""


@dataclass(frozen=True)
class Drawing:
    figure: Figure
    title: str
    caption: str


@dataclass(frozen=True)
class Drawn:
    path: Path
    title: str
    caption: str


@dataclass(frozen=True)
class Loaded:
    source: Path
    data: TimelineData

    def series(self, name: str) -> tuple[list[float], list[float]]:
        found = self.data.series.get(name)
        if found is None:
            raise PlotError(
                f"{self.source}: no series {name!r} (it has: "
                f"{', '.join(sorted(self.data.series)) or 'none'}); run bench/{self.data.bench}.py again"
            )
        return [t for t, _ in found.points], [v for _, v in found.points]

    def prefixed(self, prefix: str) -> dict[str, tuple[list[float], list[float]]]:
        names = sorted(name for name in self.data.series if name.startswith(prefix))
        if not names:
            raise PlotError(
                f"{self.source}: no series named {prefix}* (run bench/{self.data.bench}.py again)"
            )
        return {name.removeprefix(prefix): self.series(name) for name in names}

    def mark(self, label: str) -> float:
        for mark in self.data.marks:
            if mark.label == label:
                return mark.t
        raise PlotError(f"{self.source}: no mark {label!r} (it has: {[m.label for m in self.data.marks]})")

    def param(self, name: str) -> float:
        value = self.data.params.get(name)
        if not isinstance(value, int | float):
            raise PlotError(f"{self.source}: no numeric parameter {name!r}")
        return float(value)

    def provenance(self) -> str:
        """Which run, when, under which load: every caption says it."""
        return f"{self.data.case}: recorded {self.data.date}, {self.data.load_summary()}"


def load_dir(data_dir: Path) -> list[Loaded]:
    return [Loaded(path, read(path)) for path in sorted(data_dir.glob("*.json"))]


def save(drawing: Drawing, path: Path) -> Drawn:
    path.parent.mkdir(parents=True, exist_ok=True)
    # No creation time or version in the file: drawing the same data again gives the same bytes.
    drawing.figure.savefig(path, dpi=DPI, format="png", metadata={"Software": None})
    return Drawn(path, drawing.title, drawing.caption)


def phase_marks(ax: Axes, run: Loaded, skip: Sequence[str] = ()) -> None:
    """The run's phases as dotted lines, labelled along the top of the axes."""
    for mark in run.data.marks:
        if mark.label in skip:
            continue
        ax.axvline(mark.t, color="0.5", linestyle=":", linewidth=1)
        ax.annotate(
            mark.label,
            (mark.t, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, -2),
            textcoords="offset points",
            rotation=90,
            va="top",
            fontsize=7,
            color="0.35",
        )


# --- bench/scale.py ------------------------------------------------------------------------------


def scale_ready(runs: list[Loaded]) -> Drawing:
    fig = Figure(figsize=(5 * len(runs), 4), layout="constrained")
    axes = fig.subplots(1, len(runs), squeeze=False)[0]
    notes = []
    for ax, run in zip(axes, runs, strict=True):
        n, quota = run.param("objects"), run.param("write_quota")
        start, done = run.mark("create"), run.mark("all Ready")
        times, ready = run.series("ready")
        end = (done - start) * 1.15 + 5
        shown = [(t - start, v) for t, v in zip(times, ready, strict=True) if 0 <= t - start <= end]
        ax.plot([t for t, _ in shown], [v for _, v in shown], label="objects Ready", linewidth=2)
        if "created" in run.data.series:  # recorded since 2026-12-05; earlier files lack it
            created_t, created = run.series("created")
            ax.plot(
                [t - start for t in created_t],
                created,
                label="objects created (API server)",
                linewidth=1,
                color="0.6",
            )
        floor = n / quota
        ax.plot(
            [0, floor, end],
            [0, n, n],
            linestyle="--",
            color="0.3",
            label=f"quota floor ({quota:g} creates/s)",
        )
        ax.axvline(done - start, color="tab:green", linestyle=":", linewidth=1)
        ratio = (done - start) / floor
        ax.set_title(
            f"{run.data.case}: all Ready after {done - start:.0f} s ({ratio:.2f}x the floor)", fontsize=9
        )
        ax.set_xlabel("seconds since the first create")
        ax.set_ylabel("objects")
        ax.set_xlim(0, end)
        ax.set_ylim(0, n * 1.05)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        notes.append(
            f"{run.provenance()}; all Ready {done - start:.0f} s after the first create, floor {floor:.0f} s"
        )
    return Drawing(
        fig,
        "Objects Ready over time against the quota floor",
        "Counted from the first create, as the scale table's row is; " + "; ".join(notes) + ".",
    )


def scale_calls(runs: list[Loaded]) -> Drawing:
    fig = Figure(figsize=(12, 3.2 * len(runs)), layout="constrained")
    axes = fig.subplots(len(runs), 1, squeeze=False)[:, 0]
    for ax, run in zip(axes, runs, strict=True):
        bucket = run.param("call_bucket_s")
        for operation, (times, counts) in run.prefixed("calls:").items():
            ax.step(times, counts, where="post", label=operation, linewidth=1.2)
        ax.axhline(run.param("write_quota") * bucket, color="0.3", linestyle="--", linewidth=1)
        ax.set_yscale("log")
        ax.set_ylim(0.8, None)
        ax.set_ylabel(f"PAI calls per {bucket:g} s")
        ax.set_title(f"{run.data.case} (dashed: the write quota of one operation)", fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1), fontsize=8)
        phase_marks(ax, run)
    axes[-1].set_xlabel("seconds since the run started")
    return Drawing(
        fig,
        "PAI calls per interval",
        "Emulator journal, by operation, through the phases marked (since 2026-12-05 21:00: create, "
        "restart, 60 s in sync, 20 drift repairs; the 1,000 run before it: create, in sync, drift, "
        "restart, idle) (log scale; intervals without a call are not drawn); "
        + "; ".join(run.provenance() for run in runs)
        + ".",
    )


def scale_rss(runs: list[Loaded]) -> Drawing:
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.subplots()
    for run in runs:
        times, rss = run.series("operator_rss_mib")
        (line,) = ax.plot(times, rss, ".", markersize=2, label=run.data.case)
        restart = run.mark("restart")
        ax.axvline(restart, color=line.get_color(), linestyle=":", linewidth=1)
        ax.annotate(
            "restart", (restart, 0.02), xycoords=("data", "axes fraction"), fontsize=7, color=line.get_color()
        )
    ax.axhline(150, color="tab:red", linestyle="--", linewidth=1, label="target 150 MiB")
    ax.set_xlabel("seconds since the run started")
    ax.set_ylabel("operator RSS (MiB)")
    ax.set_ylim(0, None)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1), fontsize=8)
    return Drawing(
        fig,
        "Operator RSS over the run",
        "From /proc every second; a new operator process after the restart; "
        + "; ".join(run.provenance() for run in runs)
        + ".",
    )


# --- bench/chaos.py ------------------------------------------------------------------------------


def fault_spans(run: Loaded) -> list[tuple[float, float]]:
    """From each mark that turns faults on to the next "faults off"."""
    spans, on = [], None
    for mark in run.data.marks:
        if "faults on" in mark.label:
            on = mark.t
        elif mark.label == "faults off" and on is not None:
            spans.append((on, mark.t))
            on = None
    return spans


def chaos_convergence(run: Loaded) -> Drawing:
    fig = Figure(figsize=(12, 6.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    times, settled = run.series("settled")
    present_t, present = run.series("present")
    kill_t, kills = run.series("kills")
    top.plot(times, settled, label="Ready and Synced at the latest generation", linewidth=2)
    top.plot(present_t, present, label="objects present", linewidth=1, color="0.4")
    killed_at = [t for t, before, after in zip(kill_t[1:], kills, kills[1:], strict=False) if after > before]
    top.plot(killed_at, [0] * len(killed_at), "|", color="tab:red", markersize=12, label="operator SIGKILLed")
    for ax in (top, bottom):
        for start, end in fault_spans(run):
            ax.axvspan(start, end, color="tab:orange", alpha=0.12)
    phase_marks(top, run, skip=("faults off",))
    top.set_ylabel("objects")
    top.set_ylim(-0.03 * run.param("objects"), run.param("objects") * 1.05)
    top.grid(alpha=0.3)
    top.legend(loc="upper left", bbox_to_anchor=(1.005, 1), fontsize=8)
    top.set_title(
        f"Chaos, {run.data.case}, bench/data/{run.source.name} (shaded: faults injected)", fontsize=10
    )
    # Answered calls at the bottom of the stack, the rest above them.
    outcomes = dict(sorted(run.prefixed("pai:").items(), key=lambda item: (item[0] != "answered", item[0])))
    first = next(iter(outcomes.values()))[0]
    bottom.stackplot(first, *(counts for _, counts in outcomes.values()), labels=list(outcomes), step="post")
    bottom.set_ylabel(f"PAI calls per {run.param('call_bucket_s'):g} s")
    bottom.set_xlabel("seconds since the run started")
    bottom.grid(alpha=0.3)
    bottom.legend(loc="upper left", bbox_to_anchor=(1.005, 1), fontsize=8)
    return Drawing(
        fig,
        f"Chaos convergence ({run.data.case}, {run.source.name})",
        f"Objects listed every 2 s (gaps: the API server was being restarted); PAI calls from the "
        "emulator's journal by outcome (other answers by HTTP status and PAI error code); operator "
        f"SIGKILLed every {run.data.params.get('kill_every', '?')}, the PAI emulator stopped for "
        f"{run.data.params.get('outage_s', '?')} s; {run.provenance()}.",
    )


# --- all of it ----------------------------------------------------------------------------------


def render_all(data_dir: Path, out_dir: Path) -> list[Drawn]:
    loaded = load_dir(data_dir)
    drawn: list[Drawn] = []
    scale = sorted((run for run in loaded if run.data.bench == "scale"), key=lambda run: run.param("objects"))
    if scale:
        drawn.append(save(scale_ready(scale), out_dir / "scale-ready.png"))
        drawn.append(save(scale_calls(scale), out_dir / "scale-pai-calls.png"))
        drawn.append(save(scale_rss(scale), out_dir / "scale-rss.png"))
    for run in loaded:
        if run.data.bench == "chaos":
            drawn.append(save(chaos_convergence(run), out_dir / f"{run.source.stem}-convergence.png"))
    return drawn


def section(drawn: list[Drawn], results: Path) -> str:
    lines = [
        "<!-- plots:start -->",
        "## Pictures\n",
        "Drawn by `.venv/bin/python -m bench.plots` (`make plots`; `make bench` ends with it) from the "
        "time series the benches above recorded in bench/data/. Each caption says when its run was "
        "recorded and under which load (the machine is shared); a table above may come from another "
        "run (`make bench` writes both from the same one).\n",
    ]
    for item in drawn:
        link = (
            item.path.relative_to(results.parent) if item.path.is_relative_to(results.parent) else item.path
        )
        lines += [f"### {item.title}\n", f"![{item.title}]({link.as_posix()})\n", item.caption + "\n"]
    lines.append("<!-- plots:end -->")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="where the benches' JSON is (bench/data)")
    parser.add_argument("--out", type=Path, default=PLOTS, help="where the PNGs go (bench/plots)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the report to embed them in")
    parser.add_argument("--no-results", action="store_true", help="draw the PNGs only")
    args = parser.parse_args(argv)
    try:
        drawn = render_all(args.data, args.out)
    except PlotError as exc:
        print(f"bench.plots: {exc}", file=sys.stderr)
        return 1
    if not drawn:
        print(
            f"bench.plots: no bench data in {args.data}; run `make bench` or `make chaos` first",
            file=sys.stderr,
        )
        return 1
    for item in drawn:
        print(f"  {item.path}", file=sys.stderr)
    if not args.no_results:
        write_section(args.results, "plots", section(drawn, args.results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
