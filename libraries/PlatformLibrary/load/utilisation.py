"""Resource utilisation under load: the platform's CPU and memory, sampled (embedded) or read from CloudWatch (AWS).

On the embedded platform psutil samples every process of the platform's process group and its containers, and
computes what ECS's ``CPUUtilization``/``MemoryUtilization`` would say (use of the reservation the platform was
started with). On AWS, CloudWatch is asked for the service's metrics over the same window.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from datetime import timedelta
from typing import Any

import psutil
from robot.api.deco import keyword

from ..aws.observe import service_utilisation
from ..aws.session import clients_for
from ..core.base import LibraryComponent, LibraryContext
from ..report.metrics import MetricsKeywords
from ..targets.embedded.keywords import EmbeddedPlatformKeywords


class UtilisationKeywords(LibraryComponent):
    """``Start Resource Sampling`` / ``Stop Resource Sampling`` / ``Resource Utilisation Should Be Below``."""

    def __init__(self, ctx: LibraryContext, embedded: EmbeddedPlatformKeywords, metrics: MetricsKeywords):
        super().__init__(ctx)
        self.embedded = embedded
        self._metrics = metrics
        self._sampler: _UtilisationSampler | None = None

    @keyword(tags=["load", "utilisation"])
    def start_resource_sampling(self, interval: timedelta | None = None) -> None:
        """Starts sampling the platform's CPU and memory use in the background (see `Stop Resource Sampling`).

        On the embedded platform psutil samples every process of the platform (its process group) and its
        containers every ``interval`` (default 0.5 s). On AWS nothing is sampled here: `Stop Resource Sampling`
        asks CloudWatch for the ECS service's ``CPUUtilization`` and ``MemoryUtilization`` over the window.
        """
        if self._sampler is not None:
            self._sampler.stop()
        seconds = interval.total_seconds() if interval else 0.5
        pgid = int(self.endpoint("PLATFORM_PGID")) if self.profile.is_embedded else None
        instance = str(self.endpoint("PLATFORM_INSTANCE")) if self.profile.is_embedded else ""
        memory_limit, cpu_quota = 0.0, 0.0  # on AWS, CloudWatch reports percentages of the task's reservation
        if self.profile.is_embedded:  # a container's reservation, as the running platform was started with
            memory_limit = float(self.embedded.get_embedded_platform_setting("container_memory_limit"))
            cpu_quota = float(self.embedded.get_embedded_platform_setting("container_cpu_quota"))
        self._sampler = _UtilisationSampler(pgid, instance, seconds, memory_limit, cpu_quota)
        self._sampler.start()

    @keyword(tags=["load", "utilisation"])
    def stop_resource_sampling(self) -> dict:
        """Stops sampling and returns the utilisation over the window, in percent.

        ``cpuPercent`` (mean) and ``memoryPercent`` (peak): the containers' use of what they reserve, as ECS's
        ``CPUUtilization``/``MemoryUtilization`` count it. ``hostCpuPercent`` (mean) and ``hostMemoryPercent``
        (peak): the whole platform's share of this machine. ``samples``: how many samples were taken.
        """
        if self._sampler is None:
            raise AssertionError("Resource sampling was not started; use 'Start Resource Sampling' first.")
        sampler, self._sampler = self._sampler, None
        sampler.stop()
        if self.profile.is_embedded:
            usage = sampler.summary()
        else:
            usage = self._cloudwatch_utilisation(sampler.started_at, time.time())
        for key in ("cpuPercent", "memoryPercent", "hostCpuPercent", "hostMemoryPercent"):
            if key in usage:
                self._metrics.record_metric(f"utilisation_{key}", usage[key], unit="%")
        self.info(f"Resource utilisation: {json.dumps(usage)}")
        return usage

    def _cloudwatch_utilisation(self, start: float, end: float) -> dict:
        """What ECS reported for the service over the sampling window (through the run's AWS session)."""
        cloudwatch = clients_for(self.ctx).client("cloudwatch")
        cluster, service = str(self.endpoint("ECS_CLUSTER")), str(self.endpoint("ECS_SERVICE"))
        out: dict[str, Any] = {"source": "cloudwatch"}
        wanted = (("CPUUtilization", "cpuPercent", "Average"), ("MemoryUtilization", "memoryPercent", "Maximum"))
        for metric, key, statistic in wanted:
            result = service_utilisation(cloudwatch, cluster, service, metric, end - start + 60, statistic, 60, now=end)
            out[key] = round(result["maximum"], 2) if result["count"] else 0.0
            out["samples"] = max(out.get("samples", 0), result["count"])
        return out

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
        self._metrics.check_conditions(
            " ".join(problems) or f"utilisation within limits: {json.dumps(usage)}", passed=not problems
        )
        if problems:
            raise AssertionError("\n".join(problems))


class _UtilisationSampler:
    """Samples the embedded platform's processes with psutil in a thread of its own."""

    def __init__(self, pgid: int | None, instance: str, interval: float, memory_limit: float, cpu_quota: float):
        self.pgid, self.instance, self.interval = pgid, instance, interval
        self.memory_limit, self.cpu_quota = memory_limit, cpu_quota
        self.samples: list[dict[str, float]] = []
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
            self.samples.append(
                {
                    "hostCpu": cpu / cores,
                    "hostMemory": 100 * mem / total_memory,
                    "cpu": c_cpu / (max(containers, 1) * self.cpu_quota) if containers else 0.0,
                    "memory": 100 * c_mem / (max(containers, 1) * self.memory_limit) if containers else 0.0,
                    "containers": containers,
                }
            )

    def summary(self) -> dict[str, Any]:
        samples = self.samples[1:] or self.samples  # the first sample's CPU share covers the warm-up
        if not samples:
            return {"samples": 0, "source": "psutil"}

        def mean(key: str) -> float:
            return round(sum(s[key] for s in samples) / len(samples), 2)

        def peak(key: str) -> float:
            return round(max(s[key] for s in samples), 2)

        return {
            "source": "psutil",
            "samples": len(samples),
            "cpuPercent": mean("cpu"),
            "cpuPercentPeak": peak("cpu"),
            "memoryPercent": peak("memory"),
            "hostCpuPercent": mean("hostCpu"),
            "hostCpuPercentPeak": peak("hostCpu"),
            "hostMemoryPercent": peak("hostMemory"),
            "containers": int(max(s["containers"] for s in samples)),
        }


__all__ = ["UtilisationKeywords"]
