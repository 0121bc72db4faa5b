"""Is this machine quiet enough to measure? A same-run reference and the CPU that others used meanwhile.

A latency or duration bound means something only on a machine that gives the platform its cores. Before a
measurement the suite takes a *reference*: keep-alive round trips to a trivial HTTP server in a process of its
own (no platform code on the path, so a slow platform cannot hide behind it). During the measurement it counts
the CPU that processes other than the test's own (its robot process and the platform it measures) used, plus the
hypervisor's steal time. When either shows the machine too busy, a measuring test skips with both figures
instead of failing the platform or passing it: see ``MachineKeywords`` and docs in README ("Measurements").
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path

import psutil
from robot.api import SkipExecution
from robot.api.deco import keyword
from robot.libraries.BuiltIn import BuiltIn, RobotNotRunningError

from .base import LibraryComponent, LibraryContext

_SERVER = """
import http.server, socket
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), H)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@dataclass(frozen=True)
class Reference:
    """Keep-alive round trips to a trivial local server, taken just before a measurement."""

    round_trips: int
    p50_ms: float
    p95_ms: float


def take_reference(round_trips: int = 200, timeout: float = 10.0) -> Reference:
    """Starts the trivial server, times ``round_trips`` keep-alive GETs to it and stops it again (by PID)."""
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        port_line = _read_line(server, timeout)
        connection = HTTPConnection("127.0.0.1", int(port_line), timeout=timeout)
        connection.connect()
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        timings: list[float] = []
        for _ in range(round_trips + 10):  # the first few warm the connection up and are not counted
            began = time.perf_counter()
            connection.request("GET", "/")
            connection.getresponse().read()
            timings.append(time.perf_counter() - began)
        connection.close()
    finally:
        server.kill()
        server.wait(timeout)
    counted = sorted(timings[10:])
    return Reference(
        round_trips=len(counted),
        p50_ms=1000 * counted[len(counted) // 2],
        p95_ms=1000 * counted[min(len(counted) - 1, int(len(counted) * 0.95))],
    )


def _read_line(process: subprocess.Popen, timeout: float) -> str:
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not result or not result[0].strip():
        raise RuntimeError(f"The reference server did not start within {timeout:g} s.")
    return result[0].strip()


CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cpu_cgroup_dirs(pid: int | None = None) -> list[Path]:
    """The cpu-controller folders of the process's cgroup, itself first, then its parents up to the root.

    cgroup v1 names the controller (``4:cpu,cpuacct:/path``), v2 has one line ``0::/path``; a quota set on a
    parent caps everything below it, so the whole chain is read.
    """
    try:
        lines = Path(f"/proc/{pid or 'self'}/cgroup").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        names = controllers.split(",")
        if "cpu" in names:
            base = CGROUP_ROOT / controllers
            if not base.exists():
                base = CGROUP_ROOT / "cpu"
        elif controllers == "" and (CGROUP_ROOT / "cgroup.controllers").exists():
            base = CGROUP_ROOT  # pure v2 (a hybrid host keeps cpu on v1, found above)
        else:
            continue
        folder = base / path.lstrip("/")
        chain = [folder, *folder.parents]
        return [f for f in chain if f == base or base in f.parents]
    return []


def cpu_quota_cores(pid: int | None = None) -> float | None:
    """The CPU the process may use by its cgroup quota (the tightest along its chain), ``None`` without one."""
    quotas = []
    for folder in _cpu_cgroup_dirs(pid):
        try:
            if (folder / "cpu.max").exists():
                quota, period = (folder / "cpu.max").read_text().split()
                if quota != "max":
                    quotas.append(int(quota) / int(period))
            elif (folder / "cpu.cfs_quota_us").exists():
                quota_us = int((folder / "cpu.cfs_quota_us").read_text())
                if quota_us > 0:
                    quotas.append(quota_us / int((folder / "cpu.cfs_period_us").read_text()))
        except (OSError, ValueError):
            continue
    return min(quotas) if quotas else None


def cpu_throttling(pid: int | None = None) -> tuple[int, int]:
    """``(periods, throttled periods)`` of the process's cgroup so far (``cpu.stat``; zeros without a quota)."""
    for folder in _cpu_cgroup_dirs(pid):
        try:
            stat = dict(line.split() for line in (folder / "cpu.stat").read_text().splitlines() if " " in line)
        except (OSError, ValueError):
            continue
        if "nr_periods" in stat and int(stat["nr_periods"]) > 0:
            return int(stat["nr_periods"]), int(stat.get("nr_throttled", 0))
    return 0, 0


def _busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores), steal included: everything but idle and iowait."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0) - getattr(times, "guest", 0.0)


def _steal_seconds() -> float:
    return getattr(psutil.cpu_times(), "steal", 0.0)


@dataclass
class CpuWindow:
    """Counts, from ``start`` on, the CPU used by processes that are not ours.

    Ours: this process and its children, and every process in ``own_groups`` (the platform's process group,
    containers included). A thread samples their CPU times every ``interval`` so that a process that ends
    during the window still counts as ours up to its last sample.
    """

    own_groups: tuple[int, ...] = ()
    interval: float = 0.2
    started: float = 0.0
    _busy0: float = 0.0
    _steal0: float = 0.0
    _first: dict[int, float] = field(default_factory=dict)
    _last: dict[int, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> CpuWindow:
        self.started = time.monotonic()
        self._busy0, self._steal0 = _busy_seconds(), _steal_seconds()
        self._periods0 = cpu_throttling()
        self._sample(first=True)
        self._thread = threading.Thread(target=self._loop, name="cpu-window", daemon=True)
        self._thread.start()
        return self

    def _ours(self) -> list[psutil.Process]:
        me = psutil.Process()
        procs = [me, *me.children(recursive=True)]
        if self.own_groups:
            for proc in psutil.process_iter(["pid"]):
                try:
                    if os.getpgid(proc.pid) in self.own_groups:
                        procs.append(proc)
                except (ProcessLookupError, PermissionError):
                    continue
        return procs

    def _sample(self, first: bool = False) -> None:
        for proc in self._ours():
            try:
                cpu = proc.cpu_times()
                used = cpu.user + cpu.system  # not children_*: the children are sampled themselves
            except psutil.Error:
                continue
            with self._lock:
                if proc.pid not in self._first:
                    # A process that existed at the start counts from there; a new one from its birth.
                    self._first[proc.pid] = used if first else 0.0
                self._last[proc.pid] = used

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def stop(self) -> CpuReading:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._sample()
        wall = max(time.monotonic() - self.started, 1e-6)
        busy = _busy_seconds() - self._busy0
        steal = _steal_seconds() - self._steal0
        with self._lock:
            ours = sum(max(0.0, self._last[pid] - self._first[pid]) for pid in self._last)
        periods, throttled = (now - before for now, before in zip(cpu_throttling(), self._periods0, strict=True))
        cores = float(psutil.cpu_count() or 1)
        quota = cpu_quota_cores()
        return CpuReading(
            seconds=wall,
            foreign_cores=max(0.0, busy - ours) / wall,
            own_cores=ours / wall,
            steal_cores=max(0.0, steal) / wall,
            machine_cores=cores,
            quota_cores=quota,
            throttled_share=throttled / periods if periods > 0 else 0.0,
        )


@dataclass(frozen=True)
class CpuReading:
    """Over a window of ``seconds``: cores used by others (steal included), by us, and stolen by the host; the
    cores the run could have (the machine's, and its cgroup quota's when one caps it) and the share of the quota's
    periods in which the kernel throttled it."""

    seconds: float
    foreign_cores: float
    own_cores: float
    steal_cores: float
    machine_cores: float = 0.0  # 0: not known
    quota_cores: float | None = None
    throttled_share: float = 0.0

    @property
    def saturation(self) -> float:
        """How full the run kept the CPU it could use: the machine's cores (ours and others' together), or its
        cgroup quota (ours alone), whichever is fuller; 1.0 when the kernel throttled its quota in every period."""
        shares = [self.throttled_share]
        if self.machine_cores:
            shares.append((self.own_cores + self.foreign_cores) / self.machine_cores)
        if self.quota_cores:
            shares.append(self.own_cores / self.quota_cores)
        return max(shares)

    def describe_saturation(self) -> str:
        limit = f"{self.machine_cores:g} cores" + (
            f", its cgroup quota {self.quota_cores:g} cores" if self.quota_cores else ""
        )
        throttled = f", throttled in {self.throttled_share * 100:.0f} % of its periods" if self.quota_cores else ""
        return (
            f"the run itself (the platform and its load) used {self.own_cores:.2f} cores and others "
            f"{self.foreign_cores:.2f} of the {limit}{throttled}: {self.saturation * 100:.0f} % full"
        )


@dataclass(frozen=True)
class Verdict:
    """Whether the machine was quiet enough, and the figures that say so."""

    quiet: bool
    reference: Reference
    cpu: CpuReading
    reference_max_ms: float
    foreign_max_cores: float
    saturation_max: float | None = None
    saturated: bool = False  # the run filled the CPU it could use: latency then measures the cores, not the platform

    def describe(self) -> str:
        text = (
            f"reference round trip p50 {self.reference.p50_ms:.3f} ms over {self.reference.round_trips} "
            f"(limit {self.reference_max_ms:g} ms); other processes used {self.cpu.foreign_cores:.2f} cores "
            f"beside the test over {self.cpu.seconds:.1f} s, steal {self.cpu.steal_cores:.2f} "
            f"(limit {self.foreign_max_cores:g} cores)"
        )
        if self.saturation_max is not None:
            text += f"; {self.cpu.describe_saturation()} (limit {self.saturation_max * 100:g} %)"
        return text


def judge(
    reference: Reference,
    cpu: CpuReading,
    reference_max_ms: float,
    foreign_max_cores: float,
    saturation_max: float | None = None,
) -> Verdict:
    """Quiet: the reference was fast and others left the cores alone. Saturated (judged apart, because it only
    matters to latency and rates): the run itself kept the CPU it could use at least ``saturation_max`` full."""
    quiet = reference.p50_ms <= reference_max_ms and cpu.foreign_cores <= foreign_max_cores
    saturated = saturation_max is not None and cpu.saturation >= saturation_max
    return Verdict(quiet, reference, cpu, reference_max_ms, foreign_max_cores, saturation_max, saturated)


# --------------------------------------------------------------------------------------------- keywords
MEASUREMENT_TAG = "measurement"


class MachineKeywords(LibraryComponent):
    """Measurements on a quiet machine: a reference before, the CPU of others during, a skip when busy.

    A test tagged ``measurement`` runs in the run's quiet phase (see README, "Measurements") and calls
    `Start Measurement` in its setup. Every SLA assertion of the library (`Percentile Should Be Below`,
    `Load Should Meet Thresholds`, `Duration Should Be Below` ...) then asks this component first: when the
    machine was too busy to measure, the test is skipped with the reference, the CPU figures and what the
    measurement would have said; a quiet machine gets the verdict of the bound, unchanged. Only timing may be
    excused so: a correctness failure of the same check (an error rate, a drop, an unexpected status) fails the
    test on any machine (see `guard`).
    """

    def __init__(self, ctx: LibraryContext):
        super().__init__(ctx)
        self._window: CpuWindow | None = None
        self._reference: Reference | None = None
        self._verdict: Verdict | None = None
        self._test: str | None = None
        self._outcomes: list[str] = []

    @staticmethod
    def _current_test() -> str | None:
        try:
            builtin = BuiltIn()
            return f"{builtin.get_variable_value('${SUITE NAME}')}.{builtin.get_variable_value('${TEST NAME}')}"
        except RobotNotRunningError:
            return None

    @keyword(tags=["measurement"])
    def start_measurement(self) -> None:
        """Takes the machine's reference and starts counting the CPU that others use, for this test's SLA checks.

        The reference is ``${MEASURE_REFERENCE_ROUND_TRIPS}`` keep-alive round trips to a trivial local server
        (its p50 must stay below ``${MEASURE_REFERENCE_P50_MAX}``); the CPU of processes other than this robot
        process and the platform it measures must stay below ``${MEASURE_FOREIGN_CPU_MAX}`` cores.

        Example:
        | Start Measurement |
        | Run Constant Arrival Rate Load | api-read | 50/s | 5 s |
        | Load Should Meet Thresholds | ${result} | p95 below ${SLA_API_P95} |
        """
        if self._window is not None:
            self._window.stop()
        groups: tuple[int, ...] = ()
        if self.profile.is_embedded:
            try:
                groups = (int(self.endpoint("PLATFORM_PGID")),)
            except (KeyError, ValueError, TypeError, OSError):
                groups = ()
        self._reference = take_reference(self.profile.integer("MEASURE_REFERENCE_ROUND_TRIPS", 200))
        self._verdict = None
        self._outcomes = []
        self._test = self._current_test()
        self._window = CpuWindow(own_groups=groups).start()
        self.info(f"Counting as the run's own: this process, its children and process groups {list(groups)}.")
        self.info(
            f"Reference before the measurement: round trip p50 {self._reference.p50_ms:.3f} ms, "
            f"p95 {self._reference.p95_ms:.3f} ms over {self._reference.round_trips}."
        )

    def conditions(self, fresh_only: bool = False) -> Verdict | None:
        """The verdict on the open measurement (computed once, at its first SLA check), or ``None``.

        With ``fresh_only``, only a verdict computed by this very call is returned (to record it once).
        """
        if self._test != self._current_test():  # a measurement belongs to the test that started it
            if self._window is not None:
                self._window.stop()
            self._window, self._reference, self._verdict, self._test = None, None, None, None
            return None
        if self._verdict is None and self._window is not None and self._reference is not None:
            cpu = self._window.stop()
            self._window = None
            self._verdict = judge(
                self._reference,
                cpu,
                reference_max_ms=1000 * self.profile.seconds("MEASURE_REFERENCE_P50_MAX", 0.001),
                foreign_max_cores=float(self.profile.get("MEASURE_FOREIGN_CPU_MAX", 0.3)),
                saturation_max=self._saturation_max(),
            )
            self.info(f"The machine during the measurement: {self._verdict.describe()}.")
            return self._verdict
        return None if fresh_only else self._verdict

    def _saturation_max(self) -> float | None:
        """``${MEASURE_SATURATION_MAX}`` as a share (``85 %`` or ``0.85``); empty or absent: not judged."""
        value = str(self.profile.get("MEASURE_SATURATION_MAX", "") or "").strip()
        if not value:
            return None
        return float(value.rstrip("%").strip()) / 100 if value.endswith("%") else float(value)

    def guard(
        self, outcome: str, passed: bool, saturation_matters: bool = True, *, correctness: Sequence[str] = ()
    ) -> None:
        """Before the verdict of a measuring assertion, split in its two parts.

        ``correctness`` lists what failed of the part no machine excuses (statuses, errors, drops, lost or wrong
        data): any entry fails the test at once with an ``AssertionError``, busy machine or quiet, and the message
        also says how the timing part came out. ``outcome`` and ``passed`` are the timing part (latency, rates,
        durations: what a busy machine distorts); an empty ``outcome`` means there was none. On a busy machine a
        failed timing part skips the test at once (with every timing outcome so far); a passed one is kept for
        `End Measurement`, which then skips the test. On a quiet machine (or with no measurement open) the caller
        judges the timing part itself.

        ``saturation_matters``: a latency, duration or rate bound also cannot be judged when the run itself
        filled the CPU it could use (the load generator and the platform share the machine: the figure then
        measures the machine's cores). A utilisation bound is not such a figure and passes ``False``."""
        verdict = self.conditions()
        unjudged = verdict is not None and not (verdict.quiet and not (saturation_matters and verdict.saturated))
        if correctness:
            raise AssertionError(self._correctness_message(list(correctness), outcome, passed, unjudged))
        if not outcome or verdict is None:
            return
        if not unjudged:
            self.info(f"Measured on a quiet machine: {verdict.describe()}.")
            return
        self._outcomes.append(outcome)
        if not passed:
            message = self._busy_message("failed")
            self._outcomes = []  # said here: End Measurement has nothing left to add
            raise SkipExecution(message)

    def _correctness_message(self, failures: list[str], outcome: str, passed: bool, unjudged: bool) -> str:
        """The correctness failures, then what became of the timing part (judged, or not on a busy machine)."""
        message = "\n".join(failures)
        timing = [*self._outcomes, outcome] if unjudged and outcome else list(self._outcomes)
        if timing:  # kept outcomes all passed; a failed one would have skipped the test already
            assert self._verdict is not None
            would = "passed" if passed or not (unjudged and outcome) else "failed"
            why = self._why_unjudged()
            message += (
                f"\nTiming not judged: {why[0].lower() + why[1:]} ({self._verdict.describe()}); "
                f"it would have {would}: " + " ".join(timing)
            )
        if not unjudged and outcome and not passed:
            message += f"\nTiming also failed: {outcome}"
        self._outcomes = []  # the test fails here: End Measurement must not turn it into a skip
        return message

    def _busy_message(self, would: str) -> str:
        assert self._verdict is not None
        return (
            f"{self._why_unjudged()}: {self._verdict.describe()}. Only the timing is left unjudged (correctness is "
            f"judged on any machine); the timing measurement would have {would}: " + " ".join(self._outcomes)
        )

    def _why_unjudged(self) -> str:
        # Unjudged on a quiet machine means the run itself filled the CPU it could use.
        if self._verdict is not None and self._verdict.quiet:
            return "The run filled the CPU it could use, so its timing measured the machine's cores, not the platform"
        return "The machine was too busy to measure"

    @keyword(tags=["measurement"])
    def end_measurement(self) -> None:
        """Closes this test's measurement (in the test teardown, after the cleanup).

        When the machine was too busy to measure, the test is skipped here with the figures, also when every
        bound held: a measurement on a busy machine is neither a platform failure nor a pass. A test that has
        already failed (a wrong status, a lost session: anything no machine excuses) is never turned into a skip:
        the figures are only logged.

        Example:
        | [Teardown] | End Measurement |
        """
        busy = self._verdict is not None and bool(self._outcomes)  # outcomes are kept only when not judged
        message = self._busy_message("passed") if busy else ""
        if self._window is not None:
            self._window.stop()
        self._window, self._reference, self._verdict, self._test = None, None, None, None
        self._outcomes = []
        if busy and self._test_failed():
            self.info(f"Not skipped, the test failed already. {message}")
            return
        if busy:
            raise SkipExecution(message)

    @staticmethod
    def _test_failed() -> bool:
        """Whether the running test has failed so far (``${TEST STATUS}`` in its teardown)."""
        try:
            return BuiltIn().get_variable_value("${TEST STATUS}") == "FAIL"
        except RobotNotRunningError:
            return False
