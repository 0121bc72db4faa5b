"""A run that fills the CPU it can use: its timing bounds skip with the figures, its utilisation bounds are judged.

Why: the load generator, the platform and its DynamoDB stand-in share one machine. At three times the normal mix
they fill a 2-core machine (or a cgroup quota of 1.2 cores), and latency then measures the cores, not the
platform: a false alarm on a slower machine. A utilisation bound is a share of the CPU, not a time, so a CPU hog
is still caught on the same machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from robot.api import SkipExecution

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "libraries"))

from PlatformLibrary import PlatformLibrary
from PlatformLibrary.core import machine as machine_module
from PlatformLibrary.core.machine import CpuReading, Reference, judge
from PlatformLibrary.load.results import LoadResult

from tests.test_library_machine import library_measuring

QUIET_REFERENCE = Reference(200, 0.15, 0.3)


def test_saturation_is_the_fuller_of_the_machine_and_the_quota():
    assert CpuReading(10, 0.05, 1.80, 0.0, machine_cores=2).saturation == pytest.approx(0.925)
    assert CpuReading(10, 0.05, 0.50, 0.0, machine_cores=2).saturation == pytest.approx(0.275)
    capped = CpuReading(10, 0.05, 1.15, 0.0, machine_cores=2, quota_cores=1.2)
    assert capped.saturation == pytest.approx(1.15 / 1.2)
    throttled = CpuReading(10, 0.05, 0.5, 0.0, machine_cores=2, quota_cores=1.2, throttled_share=0.97)
    assert throttled.saturation == pytest.approx(0.97)
    assert "cgroup quota 1.2 cores, throttled in 97 % of its periods" in throttled.describe_saturation()


def test_judge_tells_saturated_from_busy():
    full = CpuReading(10, 0.05, 1.9, 0.0, machine_cores=2)
    spare = CpuReading(10, 0.05, 0.6, 0.0, machine_cores=2)
    verdict = judge(QUIET_REFERENCE, full, 1.0, 0.3, saturation_max=0.85)
    assert verdict.quiet and verdict.saturated
    assert "98 % full (limit 85 %)" in verdict.describe()
    assert not judge(QUIET_REFERENCE, spare, 1.0, 0.3, saturation_max=0.85).saturated
    assert not judge(QUIET_REFERENCE, full, 1.0, 0.3, saturation_max=None).saturated  # not judged


def _library(own_cores: float, saturation_max: str = "85 %", **variables: object) -> PlatformLibrary:
    """A measurement on a quiet machine whose run used ``own_cores`` of 2 (others 0.04)."""
    reading = CpuReading(60.0, 0.04, own_cores, 0.0, machine_cores=2)
    return library_measuring(reading, MEASURE_SATURATION_MAX=saturation_max, **variables)


def test_a_timing_miss_of_a_run_that_filled_the_cpu_skips_saying_so():
    library = _library(own_cores=1.9)
    with pytest.raises(
        SkipExecution,
        match=r"The run filled the CPU it could use.*used 1\.90 cores and others 0\.04 of the 2 cores: 97 % full"
        r".*would have failed: Recovery time was 2\.000 s",
    ):
        library.keywords["duration_should_be_below"](2.0, timedelta(seconds=1), name="Recovery time")


def test_a_timing_miss_with_cpu_to_spare_fails():
    library = _library(own_cores=0.9)
    with pytest.raises(AssertionError, match=r"Recovery time was 2\.000 s, allowed is below 1\.000 s"):
        library.keywords["duration_should_be_below"](2.0, timedelta(seconds=1), name="Recovery time")


def test_saturation_not_judged_when_the_profile_leaves_it_empty():
    library = _library(own_cores=1.9, saturation_max="")
    with pytest.raises(AssertionError, match=r"allowed is below 1\.000 s"):
        library.keywords["duration_should_be_below"](2.0, timedelta(seconds=1), name="Recovery time")


def test_a_utilisation_miss_fails_even_when_the_run_filled_the_cpu():
    library = _library(own_cores=1.9)
    usage = {"samples": 30, "cpuPercent": 95.0, "memoryPercent": 10.0, "hostCpuPercent": 95.0, "hostMemoryPercent": 5}
    with pytest.raises(AssertionError, match=r"CPU .*was 95\.0 %, allowed is below 70 %"):
        library.keywords["resource_utilisation_should_be_below"](usage, cpu=70, memory=80)


@pytest.mark.skipif(
    not (Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").exists() and os.access("/sys/fs/cgroup/cpu", os.W_OK)),
    reason="needs a writable cgroup v1 cpu controller (root on Linux)",
)
def test_the_quota_of_a_capped_process_is_read_from_its_cgroup():
    group = Path(f"/sys/fs/cgroup/cpu/test-saturation-{os.getpid()}")
    group.mkdir()
    try:
        (group / "cpu.cfs_period_us").write_text("100000")
        (group / "cpu.cfs_quota_us").write_text("120000")
        child = subprocess.Popen(
            ["sleep", "30"], preexec_fn=lambda: (group / "cgroup.procs").write_text(str(os.getpid()))
        )
        try:
            assert machine_module.cpu_quota_cores(child.pid) == pytest.approx(1.2)
            assert machine_module.cpu_quota_cores(os.getpid()) in (None, pytest.approx(1.2))
        finally:
            child.kill()
            child.wait(5)
    finally:
        group.rmdir()


def test_server_errors_fail_a_run_that_filled_the_cpu_and_the_timing_is_told():
    """Correctness never skips, also when the run itself filled the CPU: 5 % HTTP 500 fail the load check."""
    library = _library(own_cores=1.9)
    result = LoadResult(name="api", model="open", target_rate=100.0, duration=1.0, users=10)
    result.scheduled = result.sent = result.completed = 100
    result.outcomes.update({"ok": 95, "http-500": 5})
    for _ in range(100):
        result.corrected.record_value(40_000)
    with pytest.raises(AssertionError) as failure:
        library.keywords["load_should_meet_thresholds"](result, "error rate below 1 %", "p95 below 10 ms")
    assert not isinstance(failure.value, SkipExecution)
    message = str(failure.value)
    assert message.startswith("error rate of load 'api' was 5.00 % (5 of 100)")
    assert "Timing not judged: the run filled the CPU it could use" in message
    assert "would have failed: p95 latency of load 'api' was 40.0 ms" in message


def _load(outcomes: dict[str, int]) -> LoadResult:
    """100 answers at 20 ms each, with the given outcome categories."""
    result = LoadResult(name="stress-reads", model="open", target_rate=100.0, duration=1.0, users=10)
    result.scheduled = result.sent = result.completed = 100
    result.outcomes.update(outcomes)
    for _ in range(100):
        result.corrected.record_value(20_000)
        result.uncorrected.record_value(20_000)
    result.elapsed = 1.0
    return result


def test_clean_refusals_of_a_run_that_filled_the_cpu_are_capacity_and_skip(tmp_path):
    """3 % clean 429s while the run filled its cores: load shed for want of cores, not breakage: a skip."""
    library = _library(own_cores=1.9, METRICS_DIR=str(tmp_path))
    check = library.keywords["load_should_meet_thresholds"]
    result = _load({"ok": 97, "rejected-429": 3})
    assert (result.refused, result.other_errors) == (3, 0)
    with pytest.raises(
        SkipExecution, match=r"would have failed: share refused with a clean 429 .* 3\.00 % \(3 of 100\)"
    ):
        check(result, "other errors below 1 %", "refused below 1 %", "p95 below 100 ms")


def test_server_errors_beside_refusals_fail_on_a_run_that_filled_the_cpu(tmp_path):
    library = _library(own_cores=1.9, METRICS_DIR=str(tmp_path))
    check = library.keywords["load_should_meet_thresholds"]
    result = _load({"ok": 95, "rejected-429": 2, "http-500": 2, "rejected-429-unclean": 1})
    assert (result.refused, result.other_errors) == (2, 3)
    with pytest.raises(AssertionError) as failure:
        check(result, "other errors below 1 %", "refused below 1 %", "p95 below 100 ms")
    assert not isinstance(failure.value, SkipExecution)
    assert str(failure.value).startswith(
        "share of errors other than clean 429 refusals of load 'stress-reads' was 3.00 %"
    )


def test_clean_refusals_fail_when_the_run_left_cpu_to_spare(tmp_path):
    library = _library(own_cores=0.9, METRICS_DIR=str(tmp_path))
    check = library.keywords["load_should_meet_thresholds"]
    with pytest.raises(AssertionError, match=r"share refused with a clean 429 .* was 3\.00 %"):
        check(_load({"ok": 97, "rejected-429": 3}), "other errors below 1 %", "refused below 1 %")
