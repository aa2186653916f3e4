"""bench/plots.py draws valid PNGs of the series in bench/data/, names what a file lacks, and every
picture bench/RESULTS.md and the README link to exists; bench/timeline.py records the series."""

from __future__ import annotations

import datetime as dt
import re
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from matplotlib.axes import Axes

from bench import plots
from bench.timeline import Mark, Series, Timeline, TimelineData, read

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPO = Path(__file__).resolve().parents[2]


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, after checking the signature."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert head[12:16] == b"IHDR"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def scale_data(n: int = 100) -> TimelineData:
    """A scale run of `n` objects: created from t=10 s, Ready at 6 a second (floor: 20 a second)."""
    ready = [(float(t), float(min(n, max(0, (t - 10) * 6)))) for t in range(0, 60)]
    rss = [(float(t), 80.0 + t / 10) for t in range(0, 60) if t != 40]  # no operator at 40 s
    return TimelineData(
        bench="scale",
        case=f"N = {n} (2 models)",
        date="2026-12-05 17:00 UTC",
        cpus=2,
        params={"objects": n, "models": 2, "write_quota": 20.0, "call_bucket_s": 5.0},
        series={
            "ready": Series(unit="objects Ready", points=ready),
            "created": Series(unit="objects created", points=[(10.0 + i / 10, i + 1.0) for i in range(n)]),
            "operator_rss_mib": Series(unit="MiB", points=rss),
            "load_1m": Series(unit="load", points=[(0.0, 1.5), (30.0, 2.5)]),
            "calls:CreateModelVersion": Series(
                unit="calls per 5 s", points=[(0, 0), (10, 30), (15, 30), (20, 0)]
            ),
            "calls:ListModelVersions": Series(
                unit="calls per 5 s", points=[(0, 0), (30, 2), (35, 0), (40, 2)]
            ),
        },
        marks=[
            Mark(t=10.0, label="create"),
            Mark(t=27.0, label="all Ready"),
            Mark(t=30.0, label="in sync"),
            Mark(t=40.0, label="restart"),
        ],
    )


def chaos_data() -> TimelineData:
    times = [float(t) for t in range(0, 80, 2)]
    return TimelineData(
        bench="chaos",
        case="10 objects, seed 7",
        date="2026-12-05 17:00 UTC",
        cpus=2,
        params={"objects": 10, "call_bucket_s": 5.0},
        series={
            "settled": Series(unit="objects", points=[(t, min(10.0, max(0.0, t - 20) / 2)) for t in times]),
            "present": Series(unit="objects", points=[(t, 10.0 if t < 60 else 0.0) for t in times]),
            "kills": Series(unit="SIGKILLs", points=[(t, float(t > 12) + float(t > 30)) for t in times]),
            "pai:answered": Series(unit="calls per 5 s", points=[(float(t), 8.0) for t in range(0, 80, 5)]),
            "pai:injected fault": Series(
                unit="calls per 5 s", points=[(float(t), 2.0) for t in range(0, 80, 5)]
            ),
        },
        marks=[
            Mark(t=5.0, label="faults on"),
            Mark(t=15.0, label="kube-apiserver restart"),
            Mark(t=35.0, label="faults off"),
            Mark(t=50.0, label="delete all, faults on"),
            Mark(t=58.0, label="faults off"),
        ],
    )


def write(path: Path, data: TimelineData) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data.model_dump_json())
    return path


def test_every_figure_is_a_png_of_its_series_and_embedded(tmp_path: Path) -> None:
    write(tmp_path / "data" / "scale-100.json", scale_data(100))
    write(tmp_path / "data" / "scale-300.json", scale_data(300))
    write(tmp_path / "data" / "chaos-quick.json", chaos_data())
    results = tmp_path / "RESULTS.md"
    results.write_text("# results\n\n<!-- scale:start -->\ntable\n<!-- scale:end -->\n")

    assert (
        plots.main(
            ["--data", str(tmp_path / "data"), "--out", str(tmp_path / "plots"), "--results", str(results)]
        )
        == 0
    )

    expected = {
        "scale-ready.png": (1000, 400),  # one panel per size, 5 x 4 inches each at 100 dpi
        "scale-pai-calls.png": (1200, 640),
        "scale-rss.png": (1000, 400),
        "chaos-quick-convergence.png": (1200, 650),
    }
    for name, size in expected.items():
        path = tmp_path / "plots" / name
        assert png_size(path) == size, name
        assert path.stat().st_size > 10_000, f"{name} is too small to hold a drawing"
    text = results.read_text()
    assert "table" in text  # the other sections are kept
    assert sorted(re.findall(r"!\[[^]]*\]\((plots/[^)]+\.png)\)", text)) == sorted(
        f"plots/{n}" for n in expected
    )


def lines_of(ax: Axes) -> dict[str, tuple[list[float], list[float]]]:
    """The labelled lines of an axes: label -> (x, y)."""
    return {
        str(line.get_label()): (
            np.asarray(line.get_xdata(), dtype=float).tolist(),
            np.asarray(line.get_ydata(), dtype=float).tolist(),
        )
        for line in ax.get_lines()
        if not str(line.get_label()).startswith("_")
    }


def test_the_figures_draw_the_recorded_series(tmp_path: Path) -> None:
    small = plots.Loaded(tmp_path / "scale-100.json", scale_data(100))
    ready = plots.scale_ready([small]).figure.axes[0]
    lines = lines_of(ready)
    # The Ready curve from the first create on, beside the floor: 100 objects at 20/s = 5 s.
    assert lines["objects Ready"][0][:3] == [0.0, 1.0, 2.0]
    assert lines["objects Ready"][1][:3] == [0.0, 6.0, 12.0]
    assert lines["quota floor (20 creates/s)"][0][:2] == [0.0, 5.0]
    assert lines["objects created (API server)"][1][-1] == 100.0
    assert "all Ready after 17 s (3.40x the floor)" in ready.get_title()

    calls = plots.scale_calls([small]).figure.axes[0]
    assert sorted(lines_of(calls)) == ["CreateModelVersion", "ListModelVersions"]
    assert lines_of(calls)["CreateModelVersion"][1] == [0.0, 30.0, 30.0, 0.0]
    rss = lines_of(plots.scale_rss([small]).figure.axes[0])
    assert len(rss["N = 100 (2 models)"][1]) == 59  # the sample missing at 40 s stays missing

    chaos = plots.chaos_convergence(plots.Loaded(tmp_path / "chaos.json", chaos_data()))
    top, bottom = chaos.figure.axes
    settled = lines_of(top)
    assert max(settled["Ready and Synced at the latest generation"][1]) == 10.0
    assert settled["operator SIGKILLed"][0] == [14.0, 32.0]
    legend = bottom.get_legend()
    assert legend is not None
    assert [text.get_text() for text in legend.get_texts()] == ["answered", "injected fault"]
    assert plots.fault_spans(plots.Loaded(tmp_path / "c.json", chaos_data())) == [(5.0, 35.0), (50.0, 58.0)]


def test_a_missing_series_is_named_with_its_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = scale_data()
    del data.series["ready"]
    write(tmp_path / "data" / "scale-100.json", data)

    with pytest.raises(plots.PlotError, match=r"scale-100\.json: no series 'ready' \(it has: calls:"):
        plots.render_all(tmp_path / "data", tmp_path / "plots")
    assert (
        plots.main(["--data", str(tmp_path / "data"), "--out", str(tmp_path / "plots"), "--no-results"]) == 1
    )
    assert "no series 'ready'" in capsys.readouterr().err
    assert plots.main(["--data", str(tmp_path / "empty"), "--no-results"]) == 1


def test_timeline_counts_calls_per_interval_and_keeps_gaps(tmp_path: Path) -> None:
    timeline = Timeline("scale", "N = 1", objects=1)
    answers = iter([{"ready": 1.0}, None, {"ready": 3.0}])
    timeline.watch(lambda: next(answers), {"ready": "objects"})
    for _ in range(3):
        timeline.sample()
    start = dt.datetime.fromtimestamp(timeline.start, dt.UTC)

    def at(seconds: float, operation: str) -> dict[str, str]:
        moment = start + dt.timedelta(seconds=seconds)
        return {
            "Time": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
            "Operation": operation,
        }

    time.sleep(0.3)
    # Each call in the middle of a 0.1 s interval (journal times are whole milliseconds).
    timeline.add_calls([at(-3, "Early"), at(0.05, "Get"), at(0.15, "Get"), at(0.25, "Create")], bucket=0.1)
    data = read(timeline.save(tmp_path / "t.json"))

    assert [v for _, v in data.series["ready"].points] == [1.0, 3.0]  # None: a gap, not a zero
    assert len(data.series["load_1m"].points) == 3
    assert "calls:Early" not in data.series  # before the run started
    assert [v for _, v in data.series["calls:Get"].points][:3] == [1.0, 1.0, 0.0]
    assert [v for _, v in data.series["calls:Create"].points][:3] == [0.0, 0.0, 1.0]
    assert [t for t, _ in data.series["calls:Get"].points][:3] == pytest.approx([0.0, 0.1, 0.2])
    assert data.series["calls:Get"].unit == "calls per 0.1 s"


def test_every_picture_the_docs_show_exists() -> None:
    linked = 0
    for doc in (REPO / "bench" / "RESULTS.md", REPO / "README.md"):
        for target in re.findall(r"\]\(([^)\s]+\.png)\)", doc.read_text()):
            path = (doc.parent / target).resolve()
            assert path.is_file(), f"{doc.name} links to {target}, which does not exist"
            png_size(path)
            linked += 1
    assert linked >= 4  # the scale figures and the chaos one, at least in RESULTS.md
