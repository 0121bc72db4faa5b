"""Sample metrics of a two-process run, as the library writes them, and the output.xml of its tests, for the
report tests."""

from __future__ import annotations

import json
from pathlib import Path

import robot
from PlatformLibrary.core.stats import new_histogram
from PlatformLibrary.load.engine import LoadRun
from PlatformLibrary.load.results import IntervalSeries
from PlatformLibrary.load.utilisation import UtilisationSampler

# The tests of the sample run (suite file sample.robot, so long names start with "Sample."): one passes, one fails
# while its numbers look fine, one is skipped, two load tests pass, a recovery test passes, and a test outside the
# scorecard fails. Every other target of the scorecard has no test: NOT RUN.
SUITE = """*** Test Cases ***
Cold Start Is Within The SLA
    [Tags]    performance    cold-start
    Log    measured

Warm Start Is Within The SLA
    [Tags]    performance    warm-start
    Fail    Warm start seen by the client: max over 4 samples was 312.0 ms, allowed is below 300.0 ms.

Session Creation Latency Is Within The SLA
    [Tags]    performance    session-creation
    Skip    The machine was too busy to measure: reference round trip p50 1.9 ms over 200 (limit 1 ms).

File Operation Latency Is Within The SLA
    [Tags]    performance    file-ops
    Log    measured

A Hundred File Operations Per Second Are Served On Time
    [Tags]    stress    file-ops-rate
    Log    measured

Container Killed With SIGKILL Is Restarted With The Workspace Intact
    [Tags]    recovery    container-crash
    Log    recovered

Paths That Climb Out Of The Workspace Are Refused
    [Tags]    workspace-isolation
    Fail    p95 was 900 ms
"""
TEST_OF = {
    "container_cold_start": "Sample.Cold Start Is Within The SLA",
    "container_warm_start": "Sample.Warm Start Is Within The SLA",
    "session_creation": "Sample.Session Creation Latency Is Within The SLA",
    "recovery_time": "Sample.Container Killed With SIGKILL Is Restarted With The Workspace Intact",
}
LOAD_TEST_OF = {
    101: "Sample.File Operation Latency Is Within The SLA",
    202: "Sample.A Hundred File Operations Per Second Are Served On Time",
}


def write_sample_output(folder: Path) -> Path:
    """Runs the sample suite with Robot Framework; returns its output.xml."""
    (folder / "sample.robot").write_text(SUITE)
    robot.run(str(folder / "sample.robot"), outputdir=str(folder), log="NONE", report="NONE", stdout=None)
    return folder / "output.xml"


def write_sample_metrics(folder: Path) -> Path:
    """Writes ``<folder>/metrics`` as two pabot workers (pids 101 and 202) would and the tests' output.xml."""
    metrics = folder / "metrics"
    metrics.mkdir(parents=True)
    lines = {101: [], 202: []}
    samples = {
        "container_cold_start": [0.61, 0.65, 0.72, 0.58, 0.69],
        "container_warm_start": [0.031, 0.028, 0.044, 0.036],
        "session_creation": [0.012, 0.015, 0.019, 0.011, 0.030, 0.014],
        "session_start": [0.7, 0.05, 0.8, 0.06],
        "auto_shutdown": [2.21, 2.35, 2.28],
        "scale_out_response": [1.12],
        "recovery_time": [0.91, 1.02, 0.88],
        "recovery_after_overload": [0.11],
        "session_container_seconds": [1.8, 2.1, 1.9],
        "utilisation_cpuPercent": [12.5],
    }
    for index, (name, values) in enumerate(samples.items()):
        for j, value in enumerate(values):
            pid = 101 if (index + j) % 2 else 202
            unit = "%" if name.startswith("utilisation_") else "s"
            lines[pid].append(
                {
                    "ts": 1.0,
                    "name": name,
                    "value": value,
                    "unit": unit,
                    "tags": {},
                    "profile": "local",
                    "run": "abc123",
                    "suite": "Sample",
                    "test": TEST_OF.get(name, "Sample.Other"),
                    "pid": pid,
                }
            )
    for pid, (ok, slow) in {101: (900, 0), 202: (95, 5)}.items():
        result = LoadRun("file-ops", action=lambda i: "ok", rate=1, duration=1).result
        corrected, service = new_histogram(), new_histogram()
        for i in range(ok):
            corrected.record_value(2000 + i)
            service.record_value(1500 + i)
        for _ in range(slow):
            corrected.record_value(900_000)
            service.record_value(3000)
        result.corrected, result.uncorrected = corrected, service
        result.sent = result.completed = ok + slow
        result.outcomes.update({"ok": ok + slow - (3 if pid == 202 else 0), "rejected-429": 3 if pid == 202 else 0})
        result.timeline = [
            {"t": 0, "sent": ok, "ok": ok, "errors": 0, "dropped": 0},
            {"t": 1, "sent": slow, "ok": slow, "errors": 0, "dropped": 0},
        ]
        result.started_at = 1000.0 + pid
        result.series = sample_series(ok, slow, 3 if pid == 202 else 0, seconds=3)
        lines[pid].append(latency_bound(pid, result.started_at))
        result.extra = {"scenario": "file-ops", "apiCalls": {"file": ok + slow, "create": 3}}
        record = {
            "kind": "load_run",
            "pid": pid,
            "run": "abc123",
            "profile": "local",
            "suite": "Sample",
            "test": LOAD_TEST_OF[pid],
            **result.summary(),
        }
        (metrics / f"loadruns-{pid}.jsonl").write_text(json.dumps(record) + "\n")
        (metrics / f"hist-load.file-ops-{pid}.hdr").write_bytes(corrected.encode() + b"\n")
        (metrics / f"hist-load.file-ops.service-{pid}.hdr").write_bytes(service.encode() + b"\n")
    for pid, records in lines.items():
        (metrics / f"{pid}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (metrics / "utilisation-101.jsonl").write_text(json.dumps(utilisation_window()) + "\n")
    write_sample_output(folder)
    return metrics


def sample_series(ok: int, slow: int, errors: int, seconds: int) -> IntervalSeries:
    """A run's per-interval series as the engine keeps it: answers spread evenly over ``seconds``, the slow ones
    (900 ms) and the ``errors`` last, one request in flight at a time."""
    series = IntervalSeries(1.0, horizon=seconds + 1)
    total = ok + slow
    for i in range(total):
        t = i * seconds / total
        series.sent(t, 1)
        series.answered(t + 0.001, 900_000 if i >= ok else 2000 + i, i < total - errors, 0)
    series.finish(float(seconds))
    return series


def latency_bound(pid: int, started_at: float) -> dict:
    """What ``Load Should Meet Thresholds`` records for ``p95 below 50 ms`` on the run of process ``pid``."""
    return {
        "ts": 2.0,
        "name": "load_latency_bound",
        "value": 0.05,
        "unit": "s",
        "tags": {"load": "file-ops", "statistic": "p95", "started_at": f"{started_at:.6f}"},
        "profile": "local",
        "run": "abc123",
        "suite": "Sample",
        "test": LOAD_TEST_OF[pid],
        "pid": pid,
    }


def utilisation_window() -> dict:
    """A sampling window as ``Stop Resource Sampling`` writes it: 20 samples of 0.5 s, CPU rising and falling with
    the load (so its max and mean differ), memory creeping up."""
    sampler = UtilisationSampler(None, "", 0.5, 512 * 2**20, 0.5)
    for i in range(21):
        busy = 0 < i < 15
        cpu = 10.0 + (45.0 if busy else 0.0) + i
        sampler.add(
            {"t": 0.5 * i, "cpu": cpu, "memory": 20.0 + i, "hostCpu": cpu / 4, "hostMemory": 1.5, "containers": 2}
        )
    return {
        "ts": 3.0,
        "kind": "utilisation",
        "profile": "local",
        "run": "abc123",
        "suite": "Sample",
        "test": "Sample.Other",
        "pid": 101,
        "source": "psutil",
        "startedAt": 1500.0,
        "intervalS": 0.5,
        "summary": sampler.summary(),
        "points": sampler.series(),
    }
