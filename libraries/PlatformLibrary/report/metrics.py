"""Stopwatches, metric records and SLA assertions.

Metrics go as JSON lines to ``<METRICS_DIR>/<pid>.jsonl`` (one file per process, so pabot workers never
interleave writes); a report step aggregates them later. Percentiles use HdrHistogram at three significant
digits, which rounds up to the bucket's highest value, so SLA checks err on the strict side.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from hdrh.histogram import HdrHistogram
from robot.api.deco import keyword
from robot.libraries.BuiltIn import BuiltIn, RobotNotRunningError

from ..core.base import LibraryComponent, LibraryContext
from ..core.machine import MachineKeywords
from ..core.profile import format_seconds, to_seconds
from ..core.stats import as_number, compute_percentile, defined_statistic


def below_message(what: str, measured: float, allowed: float, unit: str = "s") -> str | None:
    """The failure message when ``measured`` is not below ``allowed``, else ``None``."""
    if measured < allowed:
        return None
    if unit == "s":
        return f"{what} was {format_seconds(measured)}, allowed is below {format_seconds(allowed)}."
    return f"{what} was {measured:g} {unit}, allowed is below {allowed:g} {unit}."


_HIST_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def histogram_file(directory: str | Path, name: str, pid: int | None = None) -> Path:
    """``<directory>/hist-<name>-<pid>.hdr``: one file per histogram name and process (pabot workers never share)."""
    safe = _HIST_NAME.sub("_", name).strip("_") or "unnamed"
    return Path(directory) / f"hist-{safe}-{os.getpid() if pid is None else pid}.hdr"


def save_histogram(directory: str | Path, name: str, histogram: HdrHistogram) -> Path:
    """Appends ``histogram`` (HdrHistogram's compressed base64 encoding, one line) to its file; returns the path.

    Several lines in one file, and the files of several processes, are merged by adding them (see
    `load_histograms`), never by averaging percentiles.
    """
    path = histogram_file(directory, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = histogram.encode()
    with path.open("ab") as handle:
        handle.write(line + b"\n")
    return path


def load_histograms(directory: str | Path) -> dict[str, HdrHistogram]:
    """Every ``hist-<name>-<pid>.hdr`` under ``directory`` merged per name with ``HdrHistogram.add``."""
    merged: dict[str, HdrHistogram] = {}
    for path in sorted(Path(directory).glob("hist-*-*.hdr")):
        name = path.stem[len("hist-") :].rsplit("-", 1)[0]
        for line in path.read_bytes().splitlines():
            if not line.strip():
                continue
            decoded = HdrHistogram.decode(line.strip())
            if name not in merged:
                merged[name] = HdrHistogram(
                    decoded.lowest_trackable_value,
                    decoded.highest_trackable_value,
                    decoded.significant_figures,
                )
            merged[name].add(decoded)
    return merged


class MetricsKeywords(LibraryComponent):
    """Timing, metric recording and SLA checks."""

    def __init__(self, ctx: LibraryContext, machine: MachineKeywords):
        super().__init__(ctx)
        self._machine = machine
        self._stopwatches: dict[str, float] = {}
        self._samples: dict[str, list[float]] = {}
        self._write_lock = threading.Lock()

    @property
    def metrics_file(self) -> Path:
        directory = self.profile.text("METRICS_DIR", "")
        if not directory:
            try:
                directory = str(Path(BuiltIn().get_variable_value("${OUTPUT DIR}")) / "metrics")
            except RobotNotRunningError:
                directory = "results/metrics"
        return Path(directory) / f"{os.getpid()}.jsonl"

    # ------------------------------------------------------------------ stopwatches
    @keyword(tags=["metrics"])
    def start_stopwatch(self, name: str = "default") -> None:
        """Starts (or restarts) the stopwatch ``name``.

        Example:
        | Start Stopwatch | create |
        | Create Session
        | ${seconds} = | Stop Stopwatch | create |
        """
        self._stopwatches[name] = time.perf_counter()

    @keyword(tags=["metrics"])
    def stop_stopwatch(self, name: str = "default") -> float:
        """Stops the stopwatch ``name`` and returns the elapsed seconds; fails when it was never started."""
        try:
            started = self._stopwatches.pop(name)
        except KeyError:
            raise ValueError(f"Stopwatch '{name}' was not started. Use 'Start Stopwatch    {name}' first.") from None
        seconds = time.perf_counter() - started
        self.info(f"Stopwatch '{name}': {format_seconds(seconds)}")
        return seconds

    # ------------------------------------------------------------------ recording
    @keyword(tags=["metrics"])
    def record_metric(self, name: str, value: float, unit: str = "s", **tags: str) -> dict:
        """Appends a metric to ``<METRICS_DIR>/<pid>.jsonl`` and keeps it for `Percentile Of`.

        ``tags`` are free ``key=value`` pairs that help the report group metrics. Each line also carries the
        profile, suite, test and time. Returns the written record.

        Example:
        | Record Metric | recovery_time | ${seconds} | unit=s | signal=SIGKILL |
        """
        if not name or not name.strip():
            raise ValueError("Metric name must not be empty.")
        number = as_number(value)
        record = {
            "ts": time.time(),
            "name": name,
            "value": number,
            "unit": unit,
            "tags": {str(k): str(v) for k, v in tags.items()},
            "profile": self.profile.text("PROFILE", "unknown"),
            "run": self.context.run_id,
            "suite": self.context.current_suite,
            "test": self.context.current_test,
            "pid": os.getpid(),
        }
        path = self.metrics_file
        with self._write_lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record, sort_keys=True) + "\n")
        self._samples.setdefault(name, []).append(number)
        self.info(f"Metric {name} = {number:g} {unit} {record['tags'] or ''}".rstrip())
        return record

    def _values(self, values: list | str) -> list[float]:
        if isinstance(values, str):
            if values not in self._samples:
                known = ", ".join(sorted(self._samples)) or "none"
                raise ValueError(f"No metric named '{values}' was recorded in this run. Known metrics: {known}.")
            return self._samples[values]
        return [as_number(v) for v in values]

    # ------------------------------------------------------------------ statistics
    # ------------------------------------------------------------------ SLA assertions
    @keyword(tags=["metrics", "assertion", "sla"])
    def duration_should_be_below(self, measured: float | timedelta, allowed: timedelta, name: str = "Duration") -> None:
        """Fails unless ``measured`` is below ``allowed``; the message says measured versus allowed.

        ``measured`` is seconds (as returned by the wait keywords) or a time string; ``allowed`` a time
        such as ``10 s`` or ``500 ms``, normally a profile SLA variable.

        Example:
        | Duration Should Be Below | ${recovery} | ${SLA_RECOVERY_MAX} | name=Recovery time |
        """
        measured_s = to_seconds(measured, what="measured duration")
        message = below_message(name, measured_s, allowed.total_seconds())
        self.check_conditions(message or f"{name} {format_seconds(measured_s)}", passed=message is None)
        if message:
            raise AssertionError(message)
        self.info(f"{name} {format_seconds(measured_s)} is below {format_seconds(allowed.total_seconds())}.")

    @keyword(tags=["metrics", "assertion", "sla"])
    def percentile_should_be_below(
        self, values: list | str, percentile: float, allowed: timedelta, name: str | None = None
    ) -> float:
        """Fails unless the ``percentile`` of ``values`` (seconds) is below ``allowed``; returns it.

        A percentile needs enough samples to be defined (p99 at least 100, p95 20: ``100 / (100 - p)``); over
        fewer, the maximum is asserted instead and the message says so. Messages always give the sample count.

        Example:
        | Percentile Should Be Below | cold_start | 99 | ${SLA_COLD_START_P99} |
        """
        numbers = self._values(values)
        pct = as_number(percentile)
        asserted, statistic = defined_statistic(pct, len(numbers))
        measured = compute_percentile(numbers, asserted)
        label = name or (f"{values}" if isinstance(values, str) else "Samples")
        what = f"{label}: {statistic}"
        message = below_message(what, measured, allowed.total_seconds())
        self.check_conditions(message or f"{what} was {format_seconds(measured)}", passed=message is None)
        if message:
            raise AssertionError(message)
        self.info(f"{what} was {format_seconds(measured)}, below {format_seconds(allowed.total_seconds())}.")
        return measured

    def check_conditions(
        self, outcome: str, passed: bool, saturation_matters: bool = True, *, correctness: Sequence[str] = ()
    ) -> None:
        """Before an SLA verdict: ``correctness`` failures fail the test on any machine; the timing part
        (``outcome``, ``passed``; empty ``outcome``: none) skips the test when its measurement ran on a busy
        machine (see `Start Measurement` and ``MachineKeywords.guard``). Records the measurement's reference
        figures once per measurement. ``saturation_matters``: see `MachineKeywords.guard` (``False`` for
        utilisation bounds)."""
        fresh = self._machine.conditions(fresh_only=True)
        if fresh is not None:
            self.record_metric("measurement_reference_p50", fresh.reference.p50_ms / 1000, unit="s")
            self.record_metric("measurement_foreign_cpu", fresh.cpu.foreign_cores, unit="cores")
            self.record_metric("measurement_cpu_saturation", fresh.cpu.saturation, unit="share")
        self._machine.guard(outcome, passed, saturation_matters, correctness=correctness)
