"""Measurements on a quiet machine: the reference, the CPU of others, the skip, the sample-count rule and the
pabot ordering that gives measuring tests a quiet phase."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
from robot import api as robot_api
from robot.api import SkipExecution

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "libraries"))

from PlatformLibrary import PlatformLibrary
from PlatformLibrary.core.endpoints import Endpoints
from PlatformLibrary.core.machine import CpuReading, CpuWindow, Reference, judge, take_reference
from PlatformLibrary.core.profile import Profile
from PlatformLibrary.core.stats import defined_statistic, samples_needed
from PlatformLibrary.load.results import LoadResult, check_threshold, is_timing_threshold

ROOT = Path(__file__).resolve().parents[1]
HOG = [sys.executable, "-c", "while True: pass"]


def make_library(**variables) -> PlatformLibrary:
    library = PlatformLibrary(run_id="unit")
    library.profile = Profile(variables={"TARGET": "aws", **variables})
    library.endpoints = Endpoints(library.profile)
    return library


def test_reference_server_answers_and_is_stopped():
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    reference = take_reference(50)
    assert reference.round_trips == 50
    assert 0 < reference.p50_ms <= reference.p95_ms
    assert {p.pid for p in psutil.Process().children(recursive=True)} == before


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def test_cpu_window_sees_a_hog_that_is_not_ours():
    """The window counts a hog as ours or as others' by process, whatever else the machine is doing: each figure is
    compared with the CPU the hog itself was given meanwhile (on a busy machine it may get far less than a core)."""
    hog = subprocess.Popen(HOG)
    try:
        before = _cpu_seconds(psutil.Process(hog.pid))
        window = CpuWindow().start()
        time.sleep(1.0)  # the hog is our child, so it counts as ours: the window must see its CPU as ours
        ours = window.stop()
        hog_cores = (_cpu_seconds(psutil.Process(hog.pid)) - before) / ours.seconds
    finally:
        hog.kill()
        hog.wait()
    assert hog_cores > 0.05, f"the hog got no CPU at all ({hog_cores:.2f} cores): nothing to judge"
    assert ours.own_cores >= 0.8 * hog_cores, (ours, hog_cores)
    foreign = subprocess.Popen(["setsid", *HOG])  # own session: still our child, so hide it from the window
    try:
        before = _cpu_seconds(psutil.Process(foreign.pid))
        window = CpuWindow()
        window._ours = lambda: [psutil.Process()]  # only this process is ours
        window.start()
        time.sleep(1.0)
        reading = window.stop()
        foreign_cores = (_cpu_seconds(psutil.Process(foreign.pid)) - before) / reading.seconds
    finally:
        foreign.kill()
        foreign.wait()
    assert foreign_cores > 0.05, f"the hog got no CPU at all ({foreign_cores:.2f} cores): nothing to judge"
    assert reading.foreign_cores >= 0.8 * foreign_cores, (reading, foreign_cores)
    assert reading.own_cores < 0.5 * foreign_cores, (reading, foreign_cores)


def test_judge_needs_both_figures_within_limits():
    quiet_ref, busy_ref = Reference(200, 0.15, 0.3), Reference(200, 3.0, 9.0)
    quiet_cpu, busy_cpu = CpuReading(5.0, 0.05, 1.2, 0.0), CpuReading(5.0, 0.98, 1.2, 0.0)
    assert judge(quiet_ref, quiet_cpu, 1.0, 0.3).quiet
    assert not judge(busy_ref, quiet_cpu, 1.0, 0.3).quiet
    verdict = judge(quiet_ref, busy_cpu, 1.0, 0.3)
    assert not verdict.quiet
    assert "0.98 cores" in verdict.describe() and "0.150 ms" in verdict.describe()


@pytest.mark.parametrize(("pct", "needed"), [(99, 100), (95, 20), (90, 10), (50, 2), (99.9, 1000), (100, 1)])
def test_samples_needed(pct, needed):
    assert samples_needed(pct) == needed


def test_a_percentile_over_too_few_samples_asserts_the_max():
    assert defined_statistic(99, 100) == (99, "p99 over 100 samples")
    asserted, name = defined_statistic(99, 5)
    assert asserted == 100.0
    assert "max over 5 samples" in name and "p99 needs at least 100" in name


def test_percentile_keyword_says_n_and_asserts_the_max_when_p_is_undefined():
    keyword = make_library().keywords["percentile_should_be_below"]
    values = [0.1, 0.1, 0.1, 0.1, 2.0]  # p99 over 5 is the max
    with pytest.raises(AssertionError, match=r"max over 5 samples \(p99 needs at least 100.*2\.00\d s"):
        keyword(values, 99, timedelta(seconds=1.5), name="Cold start")


def test_load_threshold_over_too_few_answers_asserts_the_max():
    result = LoadResult(name="few", model="open", target_rate=1.0, duration=1.0, users=1)
    for ms in (10, 10, 10, 400):
        result.corrected.record_value(ms * 1000)
    result.completed = 4
    passed, message = check_threshold(result, "p95 below 100 ms")
    assert not passed
    assert "max over 4 samples (p95 needs at least 20" in message


def library_measuring(reading: CpuReading, **variables) -> PlatformLibrary:
    """A library whose open measurement (a quiet reference) will read ``reading`` for the CPU of its window."""
    library = make_library(MEASURE_REFERENCE_P50_MAX="1 ms", MEASURE_FOREIGN_CPU_MAX=0.3, **variables)
    machine = library.keywords["start_measurement"].__self__
    machine._current_test = staticmethod(lambda: "Suite.Test")
    machine._test = "Suite.Test"
    machine._reference = Reference(200, 0.15, 0.3)

    class _Window:
        def stop(self) -> CpuReading:
            return reading

    machine._window = _Window()
    return library


def _guarded_library(quiet: bool, **variables) -> PlatformLibrary:
    return library_measuring(CpuReading(4.0, 0.05 if quiet else 0.95, 1.0, 0.0), **variables)


def test_a_failed_bound_on_a_busy_machine_skips_with_both_figures():
    library = _guarded_library(quiet=False)
    with pytest.raises(
        SkipExecution,
        match=r"too busy to measure: reference round trip p50 0\.150 ms.*0\.95 cores.*"
        r"would have failed: Recovery time was 2\.000 s",
    ):
        library.keywords["duration_should_be_below"](2.0, timedelta(seconds=1), name="Recovery time")


def test_a_skip_for_a_failed_bound_is_not_repeated_as_passed_in_the_teardown():
    library = _guarded_library(quiet=False)
    with pytest.raises(SkipExecution, match="would have failed"):
        library.keywords["duration_should_be_below"](2.0, timedelta(seconds=1), name="Recovery time")
    library.keywords["end_measurement"]()  # nothing more to say


def test_a_passed_bound_on_a_busy_machine_is_not_a_pass_either():
    library = _guarded_library(quiet=False)
    library.keywords["duration_should_be_below"](0.5, timedelta(seconds=1), name="Recovery time")
    with pytest.raises(SkipExecution, match=r"would have passed: Recovery time 500\.0 ms"):
        library.keywords["end_measurement"]()


def test_on_a_quiet_machine_the_bound_decides():
    library = _guarded_library(quiet=True)
    with pytest.raises(AssertionError, match=r"Recovery time was 2\.000 s, allowed is below 1\.000 s"):
        library.keywords["duration_should_be_below"](2.0, timedelta(seconds=1), name="Recovery time")
    library.keywords["end_measurement"]()  # no skip


def test_a_measurement_belongs_to_the_test_that_started_it():
    library = _guarded_library(quiet=False)
    machine = library.keywords["start_measurement"].__self__
    machine._current_test = staticmethod(lambda: "Suite.Another Test")
    with pytest.raises(AssertionError, match="allowed is below"):  # an ordinary failure, no skip
        library.keywords["duration_should_be_below"](2.0, timedelta(seconds=1), name="Recovery time")


def _load_with_server_errors() -> LoadResult:
    """100 answers, 5 of them HTTP 500 (5 %), latency 40 ms each: correct timing, wrong outcome."""
    result = LoadResult(name="api", model="open", target_rate=100.0, duration=1.0, users=10)
    result.scheduled = result.sent = result.completed = 100
    result.outcomes.update({"ok": 95, "http-500": 5})
    result.statuses.update({200: 95, 500: 5})
    for _ in range(100):
        result.corrected.record_value(40_000)
        result.uncorrected.record_value(40_000)
    result.elapsed = 1.0
    return result


def _thresholds(library: PlatformLibrary) -> Callable[..., None]:
    return library.keywords["load_should_meet_thresholds"]


def test_server_errors_fail_the_load_on_a_busy_machine_and_the_timing_is_told(tmp_path):
    """5 % HTTP 500 on a machine too busy to measure: a FAIL (never a skip), naming the error rate, and saying the
    timing (p95 10 ms missed as well) was not judged."""
    library = _guarded_library(quiet=False, METRICS_DIR=str(tmp_path / "metrics"))
    check = _thresholds(library)
    result = _load_with_server_errors()
    with pytest.raises(AssertionError) as failure:
        check(result, "error rate below 1 %", "p95 below 10 ms")
    assert not isinstance(failure.value, SkipExecution)
    message = str(failure.value)
    assert message.startswith("error rate of load 'api' was 5.00 % (5 of 100), allowed is below 1 %")
    assert "Timing not judged: the machine was too busy to measure" in message and "0.95 cores" in message
    assert "would have failed: p95 latency of load 'api' was 40.0 ms" in message
    library.keywords["end_measurement"]()  # the test failed: the teardown must not turn it into a skip


def test_server_errors_fail_on_a_busy_machine_also_when_the_timing_held(tmp_path):
    library = _guarded_library(quiet=False, METRICS_DIR=str(tmp_path / "metrics"))
    check = _thresholds(library)
    with pytest.raises(AssertionError, match=r"(?s)error rate .*5\.00 %.*would have passed: p95 latency") as failure:
        check(_load_with_server_errors(), "p95 below 1 s", "error rate below 1 %")
    assert not isinstance(failure.value, SkipExecution)


def test_a_pure_timing_miss_on_a_busy_machine_skips_with_the_figures(tmp_path):
    library = _guarded_library(quiet=False, METRICS_DIR=str(tmp_path / "metrics"))
    check = _thresholds(library)
    result = _load_with_server_errors()
    result.outcomes = Counter({"ok": 100})
    result.statuses = Counter({200: 100})
    with pytest.raises(SkipExecution) as skipped:
        check(result, "error rate below 1 %", "p95 below 10 ms")
    message = str(skipped.value)
    assert "too busy to measure: reference round trip p50 0.150 ms" in message and "0.95 cores" in message
    assert "Only the timing is left unjudged" in message
    assert "would have failed: p95 latency of load 'api' was 40.0 ms, allowed is below 10.0 ms" in message
    assert "held: error rate of load 'api' was 0.00 %" in message


def test_a_pure_timing_miss_on_a_quiet_machine_fails(tmp_path):
    library = _guarded_library(quiet=True, METRICS_DIR=str(tmp_path / "metrics"))
    check = _thresholds(library)
    result = _load_with_server_errors()
    result.outcomes = Counter({"ok": 100})
    with pytest.raises(
        AssertionError, match=r"^p95 latency of load 'api' was 40\.0 ms, allowed is below 10\.0 ms"
    ) as e:
        check(result, "error rate below 1 %", "p95 below 10 ms")
    assert not isinstance(e.value, SkipExecution)
    library.keywords["end_measurement"]()  # no skip


def test_server_errors_fail_on_a_quiet_machine_with_the_timing_miss_listed(tmp_path):
    library = _guarded_library(quiet=True, METRICS_DIR=str(tmp_path / "metrics"))
    check = _thresholds(library)
    with pytest.raises(AssertionError, match=r"(?s)^error rate .*\nTiming also failed: p95 latency"):
        check(_load_with_server_errors(), "error rate below 1 %", "p95 below 10 ms")


def test_a_correctness_only_check_on_a_busy_machine_leaves_no_skip_behind(tmp_path):
    """Errors and drops judged on a busy machine are a verdict: the teardown does not skip for them."""
    library = _guarded_library(quiet=False, METRICS_DIR=str(tmp_path / "metrics"))
    check = _thresholds(library)
    result = _load_with_server_errors()
    result.outcomes = Counter({"ok": 100})
    check(result, "errors below 1", "dropped below 1")
    library.keywords["end_measurement"]()


def test_a_failed_test_is_not_turned_into_a_skip_by_end_measurement(monkeypatch):
    library = _guarded_library(quiet=False)
    library.keywords["duration_should_be_below"](0.5, timedelta(seconds=1), name="Recovery time")
    machine = library.keywords["start_measurement"].__self__
    monkeypatch.setattr(machine, "_test_failed", staticmethod(lambda: True))
    library.keywords["end_measurement"]()  # logged, not skipped


@pytest.mark.parametrize(
    ("expression", "timing"),
    [
        ("p95 below 50 ms", True),
        ("mean below 1 s", True),
        ("max below 2 s", True),
        ("late below 5", True),
        ("rate above 9/s", True),
        ("throughput at least 9/s", True),
        ("error rate below 1 %", False),
        ("errors below 1", False),
        ("dropped below 1 %", False),
    ],
)
def test_only_timing_thresholds_may_be_excused_by_a_busy_machine(expression, timing):
    assert is_timing_threshold(expression) is timing


def _ordering() -> tuple[list[str], list[str]]:
    lines = [line.strip() for line in (ROOT / "suites" / "pabot-ordering.txt").read_text().splitlines()]
    wait = lines.index("#WAIT")
    before = [line.removeprefix("--suite ") for line in lines[:wait] if line.startswith("--suite ")]
    group = lines[wait + 1 :]
    assert group[0] == "{" and group[-1] == "}", "after #WAIT comes one { ... } group: the quiet phase runs serially"
    return before, [line.removeprefix("--suite ") for line in group[1:-1]]


def test_every_measuring_suite_runs_in_the_quiet_phase_and_every_other_suite_before_it():
    suite = robot_api.TestSuiteBuilder(included_extensions=("robot",)).build(str(ROOT / "suites"))
    measuring, others = set(), set()

    def walk(node) -> None:
        if node.tests:
            tagged = any("measurement" in test.tags for test in node.tests)
            (measuring if tagged else others).add(node.full_name)
        for child in node.suites:
            walk(child)

    walk(suite)
    parallel, quiet = _ordering()
    assert set(quiet) == measuring, (
        "suites/pabot-ordering.txt: the quiet group must hold exactly the suites with tests tagged measurement"
    )
    assert set(parallel) == others, (
        "suites/pabot-ordering.txt: every suite without a measurement must be listed before #WAIT "
        "(an unlisted suite would run beside the measurements)"
    )
