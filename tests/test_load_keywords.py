"""The load keywords on top of the engine: scenarios, metrics and histograms for the report, threshold messages."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from PlatformLibrary import PlatformLibrary
from PlatformLibrary.core.endpoints import Endpoints
from PlatformLibrary.core.profile import Profile


@pytest.fixture
def library(tmp_path, target):
    state = tmp_path / "state"
    state.mkdir()
    (state / "endpoints.json").write_text(json.dumps({"PLATFORM_API_URL": target}))
    library = PlatformLibrary(run_id="unit")
    library.profile = Profile(
        variables={
            "TARGET": "embedded",
            "PROFILE": "local",
            "PLATFORM_STATE_DIR": str(state),
            "METRICS_DIR": str(tmp_path / "metrics"),
            "LOAD_PROGRESS_INTERVAL": "1 s",
        }
    )
    library.endpoints = Endpoints(library.profile)
    return library


def keyword(library, name):
    return library.keywords[name]


def test_open_load_writes_summary_and_histograms_for_the_report(library, tmp_path):
    result = keyword(library, "run_constant_arrival_rate_load")("health", "100/s", timedelta(seconds=0.5))
    assert result.ok == result.sent == 50
    assert result["p95"] == result.percentile(95)
    metrics = tmp_path / "metrics"
    (record,) = [json.loads(line) for p in metrics.glob("loadruns-*.jsonl") for line in p.read_text().splitlines()]
    assert record["kind"] == "load_run" and record["name"] == "health" and record["sent"] == 50
    assert record["extra"]["apiCalls"] == {"health": 50}
    names = sorted(p.name.rsplit("-", 1)[0] for p in metrics.glob("hist-*.hdr"))
    assert names == ["hist-load.health", "hist-load.health.service"]
    # Over time, for the report's charts: one point per second of the half-second run (and the drain).
    points = record["series"]["points"]
    assert 1 <= len(points) <= 2 and sum(p["answers"] for p in points) == 50


def test_a_latency_threshold_is_recorded_as_the_bound_drawn_over_its_run(library, tmp_path):
    result = keyword(library, "run_constant_arrival_rate_load")("health", "50/s", timedelta(seconds=0.2))
    keyword(library, "load_should_meet_thresholds")(result, "p95 below 2 s", "error rate below 1 %")
    records = [
        json.loads(line) for p in (tmp_path / "metrics").glob("[0-9]*.jsonl") for line in p.read_text().splitlines()
    ]
    (bound,) = [r for r in records if r["name"] == "load_latency_bound"]  # the error rate is no latency bound
    assert bound["value"] == 2.0 and bound["unit"] == "s"
    assert bound["tags"] == {"load": "health", "statistic": "p95", "started_at": f"{result.started_at:.6f}"}


def test_thresholds_pass_and_fail_with_measured_versus_allowed(library):
    result = keyword(library, "run_ramping_arrival_rate_load")("health", "100/s in 0.3 s", start_rate="10/s")
    keyword(library, "load_should_meet_thresholds")(result, "p95 below 2 s", "error rate below 1 %")
    keyword(library, "load_should_meet_thresholds")(result, "p99 below 2 s")
    with pytest.raises(AssertionError) as failure:
        keyword(library, "load_should_meet_thresholds")(result, "p50 below 1 us", "rate above 1000/s")
    lines = str(failure.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("p50 latency of load 'health' was ") and "allowed is below 0.0 ms" in lines[0]
    assert "allowed is above 1000/s" in lines[1]


def test_closed_model_and_background_runs(library):
    handle = keyword(library, "run_closed_model_load")(
        "health", users=2, duration=timedelta(seconds=0.5), pace=timedelta(milliseconds=50), background=True
    )
    keyword(library, "wait_until_load_has_sent")(handle, 5)
    result = keyword(library, "wait_until_load_ends")(handle)
    assert 10 <= result.ok <= 22 and result.model == "closed"  # at most 2 users x (0.5 s / 50 ms + 1) slots
    assert keyword(library, "load_outcome_count")(result, "rejected-429") == 0
    keyword(library, "load_should_have_outcomes")(result)


def test_scenarios_that_need_a_session_say_so(library):
    with pytest.raises(ValueError, match="needs session="):
        keyword(library, "run_constant_arrival_rate_load")("file-ops", "1/s", timedelta(seconds=1))
    with pytest.raises(ValueError, match="Unknown load scenario"):
        keyword(library, "run_constant_arrival_rate_load")("nope", "1/s", timedelta(seconds=1))
    assert keyword(library, "scale_rate")("50/s", 3) == "150/s"


def test_a_load_result_logs_as_one_short_line() -> None:
    """log.html shows ``${LOAD} = ...``: what was measured, never the histogram objects inside."""
    from PlatformLibrary.load.results import LoadResult

    text = repr(LoadResult("file-ops", "open", 100.0, 10.0, 4))
    assert text.startswith("<LoadResult Load 'file-ops'") and "HdrHistogram" not in text and len(text) < 400
