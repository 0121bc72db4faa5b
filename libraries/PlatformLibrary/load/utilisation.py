"""Resource utilisation under load: the platform's CPU and memory, sampled (embedded) or read from CloudWatch (AWS).

On the embedded platform psutil samples every process of the platform's process group and its containers, and
computes what ECS's ``CPUUtilization``/``MemoryUtilization`` would say (use of the reservation the platform was
started with). On AWS, CloudWatch is asked for the service's metrics over the same window.

Besides the figures the assertion judges, every window keeps its samples over time (time offset, CPU %, memory %;
on AWS the CloudWatch datapoints) in ``<METRICS_DIR>/utilisation-<pid>.jsonl``, so the report can chart them. The
series is bounded (``MAX_SERIES_POINTS``: when full, neighbouring points are merged and the stride doubles).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
from robot.api.deco import keyword

from ..aws.observe import service_utilisation
from ..aws.session import clients_for
from ..core.base import LibraryComponent, LibraryContext
from ..report.metrics import MetricsKeywords
from ..targets.embedded.keywords import EmbeddedPlatformKeywords

MAX_SERIES_POINTS = 720  # 6 minutes at the default 0.5 s before points merge
SERIES_FILE = "utilisation-{pid}.jsonl"
# Sample keys -> the series' and the summary's names; CPU is a rate (merged points average it), memory a level
# (merged points keep the peak, which the bound is about).
_KEYS = (("cpu", "cpuPercent"), ("memory", "memoryPercent"), ("hostCpu", "hostCpuPercent"))
_KEYS += (("hostMemory", "hostMemoryPercent"),)
_PEAK_KEYS = {"memory", "hostMemory", "containers"}


class UtilisationKeywords(LibraryComponent):
    """``Start Resource Sampling`` / ``Stop Resource Sampling`` / ``Resource Utilisation Should Be Below``."""

    def __init__(self, ctx: LibraryContext, embedded: EmbeddedPlatformKeywords, metrics: MetricsKeywords):
        super().__init__(ctx)
        self.embedded = embedded
        self._metrics = metrics
        self._sampler: UtilisationSampler | None = None

    @keyword(tags=["load", "utilisation"])
    def start_resource_sampling(self, interval: timedelta | None = None) -> None:
        """Starts sampling the platform's CPU and memory use in the background (see `Stop Resource Sampling`).

        On the embedded platform psutil samples every process of the platform (its process group) and its
        containers every ``interval`` (default 0.5 s). On AWS nothing is sampled here: `Stop Resource Sampling`
        asks CloudWatch for the ECS service's ``CPUUtilization`` and ``MemoryUtilization`` over the window.
        """
        if self._sampler is not None:
            self._sampler.stop()
        self._sampler = self._new_sampler(interval.total_seconds() if interval else 0.5)
        self._sampler.start()

    def _new_sampler(self, seconds: float) -> UtilisationSampler:
        """A sampler of the platform's processes where they run on this machine (its process group, judged against
        the container reservation it was started with); one that samples nothing for a deployment elsewhere, whose
        figures CloudWatch reports as percentages of the task's reservation."""
        memory_limit = self.embedded.known_platform_setting("container_memory_limit")
        if memory_limit is None:
            return UtilisationSampler(None, "", seconds, 0.0, 0.0)
        cpu_quota = float(self.embedded.known_platform_setting("container_cpu_quota"))
        pgid, instance = int(self.endpoint("PLATFORM_PGID")), str(self.endpoint("PLATFORM_INSTANCE"))
        return UtilisationSampler(pgid, instance, seconds, float(memory_limit), cpu_quota)

    @keyword(tags=["load", "utilisation"])
    def stop_resource_sampling(self) -> dict:
        """Stops sampling and returns the utilisation over the window, in percent.

        ``cpuPercent`` (mean) and ``memoryPercent`` (peak): the containers' use of what they reserve, as ECS's
        ``CPUUtilization``/``MemoryUtilization`` count it. ``hostCpuPercent`` (mean) and ``hostMemoryPercent``
        (peak): the whole platform's share of this machine. ``samples``: how many samples were taken.

        The samples over time go to ``<METRICS_DIR>/utilisation-<pid>.jsonl`` for the report's chart.
        """
        if self._sampler is None:
            raise AssertionError("Resource sampling was not started; use 'Start Resource Sampling' first.")
        sampler, self._sampler = self._sampler, None
        sampler.stop()
        if sampler.pgid is not None:  # the platform's own processes were sampled
            usage, points = sampler.summary(), sampler.series()
        else:
            usage, points = self._cloudwatch_utilisation(sampler.started_at, time.time())
        self._persist_series(usage, points, sampler.started_at, sampler.interval * sampler.stride)
        for key in ("cpuPercent", "memoryPercent", "hostCpuPercent", "hostMemoryPercent"):
            if key in usage:
                self._metrics.record_metric(f"utilisation_{key}", usage[key], unit="%")
        self.info(f"Resource utilisation: {json.dumps(usage)}")
        return usage

    def _cloudwatch_utilisation(self, start: float, end: float) -> tuple[dict, list[dict[str, Any]]]:
        """What ECS reported for the service over the sampling window (through the run's AWS session), and its
        datapoints as the series (``t`` from the window's start: a period that began before it is negative)."""
        cloudwatch = clients_for(self.ctx).client("cloudwatch")
        cluster, service = str(self.endpoint("ECS_CLUSTER")), str(self.endpoint("ECS_SERVICE"))
        out: dict[str, Any] = {"source": "cloudwatch"}
        points: dict[float, dict[str, Any]] = {}
        wanted = (("CPUUtilization", "cpuPercent", "Average"), ("MemoryUtilization", "memoryPercent", "Maximum"))
        for metric, key, statistic in wanted:
            result = service_utilisation(cloudwatch, cluster, service, metric, end - start + 60, statistic, 60, now=end)
            out[key] = round(result["maximum"], 2) if result["count"] else 0.0
            out["samples"] = max(out.get("samples", 0), result["count"])
            for datapoint in result["datapoints"]:
                t = round(datapoint["timestamp"] - start, 3)
                points.setdefault(t, {"t": t})[key] = round(datapoint["value"], 2)
        return out, [points[t] for t in sorted(points)]

    def _persist_series(self, usage: dict, points: list[dict[str, Any]], started_at: float, interval: float) -> None:
        """One line per sampling window: what the assertion judged (``summary``) and the samples over time."""
        directory = Path(self._metrics.metrics_file).parent
        directory.mkdir(parents=True, exist_ok=True)
        record = {
            "ts": time.time(),
            "kind": "utilisation",
            "profile": self.profile.text("PROFILE", "unknown"),
            "run": self.context.run_id,
            "suite": self.context.current_suite,
            "test": self.context.current_test,
            "pid": os.getpid(),
            "source": usage.get("source"),
            "startedAt": started_at,
            "intervalS": interval,
            "summary": usage,
            "points": points,
        }
        with (directory / SERIES_FILE.format(pid=os.getpid())).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    @keyword(tags=["load", "utilisation", "assertion", "sla"])
    def resource_utilisation_should_be_below(self, usage: dict, cpu: float, memory: float) -> None:
        """Fails unless CPU (mean) is below ``cpu`` percent and memory (peak) below ``memory`` percent, for the
        containers (as ECS counts them) and, on the embedded platform, for the platform's share of the machine.

        Example:
        | Resource Utilisation Should Be Below | ${usage} | cpu=70 | memory=80 |
        """
        if not usage.get("samples"):
            raise AssertionError(f"No utilisation samples were taken: {usage}")
        problems = []
        checks = [
            ("container CPU (mean)", "cpuPercent", float(cpu)),
            ("container memory (peak)", "memoryPercent", float(memory)),
        ]
        if "hostCpuPercent" in usage:
            checks += [
                ("platform CPU share of the machine (mean)", "hostCpuPercent", float(cpu)),
                ("platform memory share of the machine (peak)", "hostMemoryPercent", float(memory)),
            ]
        for label, key, allowed in checks:
            measured = float(usage.get(key, 0.0))
            if measured >= allowed:
                problems.append(f"{label} was {measured:.1f} %, allowed is below {allowed:g} %.")
            else:
                self.info(f"{label} {measured:.1f} % is below {allowed:g} %.")
        self._metrics.check_conditions(  # a share of the CPU, not a time: a run that fills the CPU is judged
            " ".join(problems) or f"utilisation within limits: {json.dumps(usage)}",
            passed=not problems,
            saturation_matters=False,
        )
        if problems:
            raise AssertionError("\n".join(problems))


class UtilisationSampler:
    """Samples the embedded platform's processes with psutil in a thread of its own."""

    def __init__(
        self,
        pgid: int | None,
        instance: str,
        interval: float,
        memory_limit: float,
        cpu_quota: float,
        max_points: int = MAX_SERIES_POINTS,
    ):
        self.pgid, self.instance, self.interval = pgid, instance, interval
        self.memory_limit, self.cpu_quota = memory_limit, cpu_quota
        # Bounded memory: the summary from running totals over every sample, the chart from at most max_points
        # points, each standing for ``stride`` samples.
        self.count = 0
        self._first: dict[str, float] | None = None
        self._totals: dict[str, float] = {}
        self._peaks: dict[str, float] = {}
        self.points: list[dict[str, float]] = []
        self.max_points, self.stride = max(2, int(max_points)), 1
        self._pending: list[dict[str, float]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="utilisation", daemon=True)
        self._procs: dict[int, psutil.Process] = {}
        self.started_at = time.time()

    def start(self) -> None:
        self.started_at = time.time()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _platform_processes(self) -> list[tuple[psutil.Process, bool]]:
        found = []
        for proc in psutil.process_iter(["pid"]):
            try:
                if os.getpgid(proc.pid) != self.pgid:
                    continue
            except (ProcessLookupError, PermissionError):
                continue
            known = self._procs.setdefault(proc.pid, proc)
            try:
                is_container = "session=" in " ".join(known.cmdline()) and "session=-" not in " ".join(known.cmdline())
            except psutil.Error:
                continue
            found.append((known, is_container))
        return found

    def _loop(self) -> None:
        if self.pgid is None:
            return
        cores = psutil.cpu_count() or 1
        total_memory = psutil.virtual_memory().total
        self._platform_processes()
        for proc in list(self._procs.values()):
            with contextlib.suppress(psutil.Error):
                proc.cpu_percent(None)
        while not self._stop.wait(self.interval):
            cpu = mem = c_cpu = c_mem = 0.0
            containers = 0
            for proc, is_container in self._platform_processes():
                try:
                    p_cpu = proc.cpu_percent(None)
                    p_mem = float(proc.memory_info().rss)
                except psutil.Error:
                    continue
                cpu += p_cpu
                mem += p_mem
                if is_container:
                    containers += 1
                    c_cpu += p_cpu
                    c_mem += p_mem
            self.add(
                {
                    "t": time.time() - self.started_at,
                    "hostCpu": cpu / cores,
                    "hostMemory": 100 * mem / total_memory,
                    "cpu": c_cpu / (max(containers, 1) * self.cpu_quota) if containers else 0.0,
                    "memory": 100 * c_mem / (max(containers, 1) * self.memory_limit) if containers else 0.0,
                    "containers": containers,
                }
            )

    def add(self, sample: dict[str, float]) -> None:
        """Takes one sample (``t`` seconds into the window, ``cpu``, ``memory``, ``hostCpu``, ``hostMemory`` in
        percent, ``containers``) into the totals and the series."""
        with self._lock:
            if self._first is None:
                self._first = sample  # its CPU share covers the warm-up: kept out of the summary and the series
                return
            self.count += 1
            for key, value in sample.items():
                if key != "t":
                    self._totals[key] = self._totals.get(key, 0.0) + value
                    self._peaks[key] = max(self._peaks.get(key, value), value)
            self._pending.append(sample)
            if len(self._pending) >= self.stride:
                self.points.append(_merge(self._pending))
                self._pending = []
                if len(self.points) >= self.max_points:  # full: neighbours merge, each point now stands for more
                    self.points = [_merge(self.points[i : i + 2]) for i in range(0, len(self.points), 2)]
                    self.stride *= 2

    def series(self) -> list[dict[str, Any]]:
        """The samples over time, at most ``max_points``: ``t`` (seconds into the window) and the percentages."""
        with self._lock:
            points = self.points + ([_merge(self._pending)] if self._pending else [])
            if not points and self._first is not None:  # one sample only: it is all there is
                points = [self._first]
        return [
            {
                "t": round(p["t"], 3),
                **{name: round(p[key], 2) for key, name in _KEYS},
                "containers": int(p["containers"]),
            }
            for p in points
        ]

    def summary(self) -> dict[str, Any]:
        with self._lock:
            count, totals, peaks = self.count, dict(self._totals), dict(self._peaks)
            if not count and self._first is not None:  # one sample only: it is all there is
                count, totals, peaks = 1, dict(self._first), dict(self._first)
        if not count:
            return {"samples": 0, "source": "psutil"}

        def mean(key: str) -> float:
            return round(totals[key] / count, 2)

        return {
            "source": "psutil",
            "samples": count,
            "cpuPercent": mean("cpu"),
            "cpuPercentPeak": round(peaks["cpu"], 2),
            "memoryPercent": round(peaks["memory"], 2),
            "hostCpuPercent": mean("hostCpu"),
            "hostCpuPercentPeak": round(peaks["hostCpu"], 2),
            "hostMemoryPercent": round(peaks["hostMemory"], 2),
            "containers": int(peaks["containers"]),
        }


def _merge(samples: list[dict[str, float]]) -> dict[str, float]:
    """Neighbouring samples as one point: at the first one's time, CPU averaged, memory and containers at peak."""
    merged = {"t": samples[0]["t"]}
    for key in samples[0]:
        if key != "t":
            values = [s[key] for s in samples]
            merged[key] = max(values) if key in _PEAK_KEYS else sum(values) / len(values)
    return merged


__all__ = ["UtilisationKeywords", "UtilisationSampler"]
