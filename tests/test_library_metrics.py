"""PlatformLibrary metrics: percentiles, means, SLA messages and the JSON-lines metric records."""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "libraries"))

from PlatformLibrary import PlatformLibrary
from PlatformLibrary.core.endpoints import Endpoints
from PlatformLibrary.core.profile import Profile, counted
from PlatformLibrary.core.stats import compute_mean, compute_percentile, defined_statistic
from PlatformLibrary.report.metrics import below_message


def make_library(**variables) -> PlatformLibrary:
    library = PlatformLibrary(run_id="unit")
    library.profile = Profile(variables={"TARGET": "embedded", **variables})
    library.endpoints = Endpoints(library.profile)
    return library


@pytest.mark.parametrize(
    ("pct", "expected"),
    [(50, 50.0), (95, 95.0), (99, 99.0), (100, 100.0)],
)
def test_percentile_of_one_to_hundred(pct, expected):
    values = [float(v) for v in range(1, 101)]
    assert compute_percentile(values, pct) == pytest.approx(expected, rel=2e-3)


def test_counts_read_right_for_any_number():
    assert [counted(n, "sample") for n in (0, 1, 2)] == ["0 samples", "1 sample", "2 samples"]
    assert counted("1", "user") == "1 user"
    assert counted(3, "entry", "entries") == "3 entries"
    assert defined_statistic(99, 1)[1].startswith("max over 1 sample (")


def test_percentile_of_sub_millisecond_durations():
    values = [0.0004] * 90 + [0.0100] * 10
    assert compute_percentile(values, 50) == pytest.approx(0.0004, rel=2e-3)
    assert compute_percentile(values, 95) == pytest.approx(0.0100, rel=2e-3)


def test_percentile_rejects_bad_input():
    with pytest.raises(ValueError, match="no values"):
        compute_percentile([], 95)
    with pytest.raises(ValueError, match="Percentile"):
        compute_percentile([1.0], 0)
    with pytest.raises(ValueError, match="negative"):
        compute_percentile([-1.0, 2.0], 50)
    with pytest.raises(ValueError, match="number"):
        compute_percentile(["fast"], 50)


def test_mean():
    assert compute_mean([1, 2, 3, 6]) == 3.0
    with pytest.raises(ValueError):
        compute_mean([])


def test_below_message_says_measured_and_allowed():
    assert below_message("Recovery time", 1.0, 10.0) is None
    message = below_message("Recovery time", 12.5, 10.0)
    assert message == "Recovery time was 12.500 s, allowed is below 10.000 s."
    assert below_message("p95", 0.0612, 0.05) == "p95 was 61.2 ms, allowed is below 50.0 ms."
    # Equal is not below.
    assert below_message("x", 10.0, 10.0) is not None


def test_duration_should_be_below_keyword():
    metrics = make_library().keywords["duration_should_be_below"]
    metrics(0.5, timedelta(seconds=1), name="Recovery time")
    with pytest.raises(AssertionError, match=r"Recovery time was 2\.000 s, allowed is below 1\.000 s\."):
        metrics(2.0, timedelta(seconds=1), name="Recovery time")


def test_percentile_should_be_below_names_the_sample_count():
    library = make_library()
    keyword = library.keywords["percentile_should_be_below"]
    values = [0.01] * 95 + [0.2] * 5
    assert keyword(values, 90, timedelta(milliseconds=50)) == pytest.approx(0.01, rel=2e-3)
    with pytest.raises(AssertionError, match=r"p99 over 100 samples was 200\.\d ms, allowed is below 50\.0 ms"):
        keyword(values, 99, timedelta(milliseconds=50))


def test_stopwatch_requires_start():
    library = make_library()
    with pytest.raises(ValueError, match="was not started"):
        library.keywords["stop_stopwatch"]("never")
    library.keywords["start_stopwatch"]("op")
    assert library.keywords["stop_stopwatch"]("op") >= 0


def test_record_metric_appends_json_lines_per_process(tmp_path):
    library = make_library(METRICS_DIR=str(tmp_path), PROFILE="local")
    record = library.keywords["record_metric"]
    record("recovery_time", "1.25", unit="s", signal="SIGKILL")
    record("recovery_time", 0.75)
    path = tmp_path / f"{os.getpid()}.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["value"] for line in lines] == [1.25, 0.75]
    assert lines[0]["tags"] == {"signal": "SIGKILL"}
    assert lines[0]["name"] == "recovery_time" and lines[0]["unit"] == "s" and lines[0]["profile"] == "local"
    # Recorded values are available by name.
    library.keywords["percentile_should_be_below"]("recovery_time", 50, timedelta(seconds=2))
    with pytest.raises(ValueError, match="Known metrics: recovery_time"):
        library.keywords["percentile_should_be_below"]("cold_start", 99, timedelta(seconds=2))
    with pytest.raises(ValueError, match="finite"):
        record("bad", float("nan"))
