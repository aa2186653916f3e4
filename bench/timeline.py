"""What a bench saw over time, kept for its pictures: sampled series (objects Ready, operator
RSS, the load average), registry calls per interval from the emulator's journal, and the marks
of its phases. Saved as JSON in bench/data/; `python -m bench.plots` draws bench/plots/ from it.

A bench keeps its own figures in bench/RESULTS.md; this only records the curves behind them, so
that a picture can be drawn again (`make plots`) without running the bench again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

DATA = Path(__file__).resolve().parent / "data"

# A probe returns a value per series, or None when there is nothing to read right now (the API
# server restarting, no operator running): the curve then has a gap, not a made-up zero.
Probe = Callable[[], Mapping[str, float] | None]


class Series(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit: str
    points: list[tuple[float, float]] = Field(default_factory=list)  # (seconds since start, value)


class Mark(BaseModel):
    model_config = ConfigDict(extra="forbid")

    t: float  # seconds since start
    label: str


class TimelineData(BaseModel):
    """The file format of bench/data/*.json (written here, read by bench/plots.py)."""

    model_config = ConfigDict(extra="forbid")

    bench: str  # the program: "scale", "chaos"
    case: str  # what this run was, for a title: "N = 1,000 (20 models)"
    date: str
    cpus: int
    params: dict[str, float | int | str] = Field(default_factory=dict)
    series: dict[str, Series] = Field(default_factory=dict)
    marks: list[Mark] = Field(default_factory=list)

    def load_summary(self) -> str:
        """The load average the run was measured under, for a caption or a report."""
        values = self.series.get("load_1m")
        if values is None or not values.points:
            return "load average not recorded"
        loads = [v for _, v in values.points]
        return f"load average (1 min) median {statistics.median(loads):.1f}, max {max(loads):.1f}"


def load_average() -> float:
    """The 1-minute load average (the machine is shared: every figure is read beside it)."""
    return os.getloadavg()[0]


class Timeline:
    """Series and marks of one run, timed from its creation (wall clock, so that the emulator's
    journal times line up). Thread-safe: a sampler thread and the bench write at once."""

    def __init__(self, bench: str, case: str, **params: float | int | str) -> None:
        self.start = time.time()
        self._data = TimelineData(
            bench=bench,
            case=case,
            date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            cpus=os.cpu_count() or 0,
            params=dict(params),
        )
        self._probes: list[tuple[Probe, Mapping[str, str]]] = []
        self._lock = threading.Lock()

    def elapsed(self) -> float:
        return round(time.time() - self.start, 3)

    def record(self, name: str, value: float, unit: str, t: float | None = None) -> None:
        with self._lock:
            series = self._data.series.setdefault(name, Series(unit=unit))
            series.points.append((self.elapsed() if t is None else t, value))

    def mark(self, label: str) -> None:
        with self._lock:
            self._data.marks.append(Mark(t=self.elapsed(), label=label))

    def watch(self, probe: Probe, units: Mapping[str, str]) -> None:
        """Sample `probe` from now on, while `sampling` runs; `units` names its series."""
        with self._lock:
            self._probes.append((probe, units))

    def sample(self) -> None:
        """Read every probe once (the sampler thread does this every interval)."""
        self.record("load_1m", load_average(), "load average, 1 min")
        with self._lock:
            probes = list(self._probes)
        for probe, units in probes:
            try:
                values = probe()
            except Exception as exc:  # a reading is worth less than the bench it watches
                print(f"  (timeline probe failed: {type(exc).__name__}: {exc})", file=sys.stderr)
                continue
            for name, value in (values or {}).items():
                if not math.isnan(value):
                    self.record(name, value, units.get(name, ""))

    @contextlib.contextmanager
    def sampling(self, every: float) -> Iterator[Timeline]:
        """Samples every probe (those watched later too) every `every` seconds on a thread."""
        stop = threading.Event()

        def run() -> None:
            while not stop.is_set():
                self.sample()
                stop.wait(every)

        thread = threading.Thread(target=run, name=f"timeline-{self._data.bench}", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(30)

    def add_calls(
        self,
        entries: Iterable[Mapping[str, Any]],
        bucket: float,
        by: Callable[[Mapping[str, Any]], str] = lambda entry: str(entry["Operation"]),
        prefix: str = "calls:",
    ) -> None:
        """Registry calls per `bucket` seconds from emulator journal entries (their "Time"), one
        series per `by` key (the operation by default), zero-filled from the start to now."""
        counts: Counter[tuple[str, int]] = Counter()
        for entry in entries:
            moment = dt.datetime.fromisoformat(str(entry["Time"])).timestamp() - self.start
            if moment >= 0:
                counts[(by(entry), int(moment // bucket))] += 1
        buckets = int(self.elapsed() // bucket) + 1
        unit = f"calls per {bucket:g} s"
        with self._lock:
            for key in sorted({key for key, _ in counts}):
                points = [(i * bucket, float(counts.get((key, i), 0))) for i in range(buckets)]
                self._data.series[prefix + key] = Series(unit=unit, points=points)
            self._data.params["call_bucket_s"] = bucket

    def data(self) -> TimelineData:
        with self._lock:
            return self._data.model_copy(deep=True)

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.data().model_dump_json() + "\n")
        print(f"  time series written to {path}", file=sys.stderr)
        return path


def read(path: Path) -> TimelineData:
    return TimelineData.model_validate_json(path.read_text())
