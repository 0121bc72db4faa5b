"""The load engine: schedules, open and closed models, coordinated-omission correction, thresholds, histograms."""

from __future__ import annotations

import math
import time

import pytest
from PlatformLibrary.load.engine import (
    Answer,
    HttpRequest,
    LoadRun,
    Stage,
    _Client,
    categorize,
    constant_schedule,
    ramping_schedule,
    schedule_count,
)
from PlatformLibrary.load.results import (
    MAX_SERIES_POINTS,
    IntervalSeries,
    check_threshold,
    latency_bound,
    merge_histograms,
    new_histogram,
    parse_duration,
    parse_rate,
)
from PlatformLibrary.report.metrics import load_histograms, save_histogram

HEALTH = HttpRequest("GET", "/health")


def test_rates_and_durations_parse():
    assert parse_rate("100/s") == 100
    assert parse_rate("10/min") == pytest.approx(10 / 60)
    assert parse_rate("3600/h") == 1
    assert parse_rate(5) == 5
    assert parse_duration("500 ms") == 0.5
    assert parse_duration("2 min") == 120
    with pytest.raises(ValueError, match="Rate must be like"):
        parse_rate("fast")
    with pytest.raises(ValueError, match="Unknown rate unit"):
        parse_rate("5/fortnight")


def test_constant_schedule_is_evenly_spaced_and_counted():
    offsets = list(constant_schedule(10, 2))
    assert len(offsets) == 20
    assert offsets[:3] == pytest.approx([0.0, 0.1, 0.2])
    assert offsets[-1] == pytest.approx(1.9)


def test_ramping_schedule_follows_the_area_under_the_rate():
    stages = [Stage(100, 2), Stage(100, 1), Stage(0, 1)]
    offsets = list(ramping_schedule(0, stages))
    assert len(offsets) == schedule_count(0, stages) == 100 + 100 + 50
    per_second = [sum(1 for t in offsets if s <= t < s + 1) for s in range(4)]
    assert per_second == [25, 75, 100, 50]
    assert offsets == sorted(offsets)


def test_models_refuse_unbounded_runs():
    with pytest.raises(ValueError, match="needs a duration"):
        LoadRun("x", base_url="http://127.0.0.1:1", scenario=lambda i: HEALTH, model="closed", users=2)
    with pytest.raises(ValueError, match="above zero"):
        LoadRun("x", base_url="http://127.0.0.1:1", scenario=lambda i: HEALTH, rate=0, duration=1)
    with pytest.raises(ValueError, match="exactly one"):
        LoadRun("x", rate=1, duration=1)


def test_open_model_holds_its_rate(target):
    result = LoadRun("open", base_url=target, scenario=lambda i: HEALTH, rate=200, duration=2).run()
    assert result.sent == result.scheduled == 400
    assert result.ok == 400 and result.dropped == 0
    assert result.send_window == pytest.approx(2.0, abs=0.5)
    assert result.corrected.get_total_count() == 400
    assert [p["sent"] for p in result.timeline] == [200, 200]


def test_open_model_drops_or_queues_when_every_user_is_busy(stalling_target):
    dropped = LoadRun("drop", base_url=stalling_target, scenario=lambda i: HEALTH, rate=50, duration=1.5, max_vus=2)
    result = dropped.run()
    assert result.dropped > 0, result.describe()
    assert result.sent + result.dropped == result.scheduled
    queued = LoadRun(
        "queue",
        base_url=stalling_target,
        scenario=lambda i: HEALTH,
        rate=50,
        duration=1.5,
        max_vus=1,
        on_busy="queue",
    ).run()
    assert queued.dropped == 0 and queued.sent == queued.scheduled
    assert queued.late > 0
    # Coordinated omission: the sends that waited for the stall carry it in the corrected latency only.
    assert queued.percentile(90) > 0.1
    assert queued.percentile(90, corrected=False) < 0.05


def test_closed_model_is_bounded_by_iterations_and_time(target):
    result = LoadRun(
        "closed", base_url=target, scenario=lambda i: HEALTH, model="closed", users=3, duration=5, iterations=90
    ).run()
    assert result.completed == 90 and result.ok == 90
    assert result.elapsed < 5
    paced = LoadRun(
        "paced", base_url=target, scenario=lambda i: HEALTH, model="closed", users=2, duration=1, pace=0.1
    ).run()
    assert 12 <= paced.completed <= 20


def test_errors_are_categorised_and_connection_failures_counted():
    result = LoadRun("nothing", base_url="http://127.0.0.1:9", scenario=lambda i: HEALTH, rate=20, duration=0.2).run()
    assert result.completed == result.sent == 4
    assert result.ok == 0
    assert set(result.outcomes) == {"connect-error"}
    assert categorize(Answer(429)) == "rejected-429"
    assert categorize(Answer(503)) == "unavailable-503"
    assert categorize(Answer(500)) == "http-500"
    assert categorize(Answer(201)) == "ok"


def test_action_scenarios_run_in_threads():
    calls = []

    def action(i: int) -> str:
        calls.append(i)
        time.sleep(0.01)
        return "ok" if i % 2 else "failed: odd one out"

    result = LoadRun("action", action=action, rate=50, duration=0.4, max_vus=4).run()
    assert sorted(calls) == list(range(20))
    assert result.ok == 10 and result.errors == 10


def test_thresholds_say_measured_versus_allowed(target):
    result = LoadRun("t", base_url=target, scenario=lambda i: HEALTH, rate=100, duration=0.5).run()
    assert check_threshold(result, "p95 below 2 s")[0]
    passed, message = check_threshold(result, "p95 below 1 us")
    assert not passed
    assert message.startswith("p95 latency of load 't' was ") and "allowed is below 0.0 ms" in message
    assert check_threshold(result, "error rate below 1 %")[0]
    assert check_threshold(result, "dropped below 1")[0]
    assert check_threshold(result, "rate above 90/s")[0]
    passed, message = check_threshold(result, "rate above 200/s")
    assert not passed and "send rate of load 't' was 100.00/s, allowed is above 200/s" in message
    with pytest.raises(ValueError, match="Unknown threshold"):
        check_threshold(result, "p95 is fine")
    # The latency bounds the report draws over a run's latency: percentiles, mean and max held below a time.
    assert latency_bound("p95 below 50 ms") == ("p95", 0.05)
    assert latency_bound("max at most 2 s") == ("max", 2.0)
    assert latency_bound("error rate below 1 %") is None and latency_bound("rate above 90/s") is None


def test_client_parses_chunked_and_close_delimited_answers():
    answers = []
    client = _Client("127.0.0.1")
    client._done = answers.append
    client.data_received(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n")
    assert answers[-1].status == 200 and answers[-1].body == b"Wikipedia"
    client._done = answers.append
    client.data_received(b"HTTP/1.1 429 Too Many\r\nRetry-After: 1\r\nContent-Length: 2\r\n\r\n{}")
    assert answers[-1].status == 429 and answers[-1].header("retry-after") == "1"


def test_histograms_are_saved_per_process_and_added(tmp_path):
    first, second = new_histogram(), new_histogram()
    for value in range(1, 1001):
        first.record_value(value)
    for value in range(100_000, 100_010):
        second.record_value(value)
    save_histogram(tmp_path, "load.x", first)
    save_histogram(tmp_path, "load.x", second)  # same process: a second line
    (tmp_path / "hist-load.x-99999.hdr").write_bytes(first.encode() + b"\n")  # another process
    merged = load_histograms(tmp_path)["load.x"]
    assert merged.get_total_count() == 2010
    assert merged.get_max_value() == pytest.approx(100_009, rel=1e-3)
    assert merge_histograms([first, second]).get_total_count() == 1010


def test_a_stopped_run_counts_what_it_never_sent_as_dropped(target):
    run = LoadRun("stop", base_url=target, scenario=lambda i: HEALTH, rate=100, duration=5).start(report_progress=False)
    deadline = time.monotonic() + 5
    while run.result.sent < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    run.stop("enough")
    result = run.wait()
    assert result.stopped_early == "enough"
    assert result.sent + result.dropped == result.scheduled == 500
    assert result.dropped > 300


# ---------------------------------------------------------------------------------------------------------- over time
def test_open_model_keeps_latency_throughput_and_in_flight_per_second(target):
    result = LoadRun("series", base_url=target, scenario=lambda i: HEALTH, rate=200, duration=3).run()
    series = result.summary()["series"]
    points = series["points"]
    assert series["intervalS"] == 1.0
    assert 3 <= len(points) <= 4  # one point per second; the drain may add a short last one
    assert [p["t"] for p in points] == [float(i) for i in range(len(points))]
    assert sum(p["sent"] for p in points) == result.sent == 600
    assert sum(p["answers"] for p in points) == result.completed and sum(p["ok"] for p in points) == result.ok
    for p in points[:3]:
        assert 150 <= p["answers"] <= 250 and p["throughput"] == p["answers"], p  # 200/s, a busy machine aside
        assert p["percentilesUndefined"] == []  # about 200 answers define p99
        assert 0 < p["p50Ms"] <= p["p95Ms"] <= p["p99Ms"] <= p["maxMs"]
        assert p["inFlightMax"] >= 1 and 0 < p["inFlightMean"] <= p["inFlightMax"]
        assert p["p99Ms"] <= result.max() * 1000


def test_the_series_shows_a_stall_where_it_happened(stalling_target):
    """The target stops answering for 0.5 s at the end of every 1.5 s: some second's p99 carries the stall, and the
    requests in flight pile up to the limit while it lasts."""
    result = LoadRun(
        "stall", base_url=stalling_target, scenario=lambda i: HEALTH, rate=50, duration=3, max_vus=10
    ).run()
    points = result.summary()["series"]["points"]
    worst = max(p["maxMs"] or 0 for p in points)
    assert worst > 300, points
    assert min(p["p50Ms"] for p in points if p["answers"]) < 100, points
    assert max(p["inFlightMax"] for p in points) == 10, points


def test_a_closed_model_has_its_users_in_flight(target):
    result = LoadRun(
        "users", base_url=target, scenario=lambda i: HEALTH, model="closed", users=3, duration=1.5, pace=0.02
    ).run()
    points = result.summary()["series"]["points"]
    assert max(p["inFlightMax"] for p in points) <= 3
    assert all(0 <= p["inFlightMean"] <= 3 for p in points)
    assert sum(p["answers"] for p in points) == result.completed


def test_a_percentile_over_too_few_answers_is_the_intervals_max():
    series = IntervalSeries(1.0, horizon=3)
    for k, micros in enumerate((1000, 2000, 50_000)):  # three answers in the first second
        series.sent(0.1 * k, 1)
        series.answered(0.1 * k + 0.05, micros, True, 0)
    for k in range(120):  # then 120 answers in the second one
        series.sent(1 + k / 200, 1)
        series.answered(1 + k / 200 + 0.001, 1000 + k, True, 0)
    series.finish(2.0)
    first, second = series.points
    assert first["percentilesUndefined"] == ["p95", "p99"]
    assert first["p95Ms"] == first["p99Ms"] == first["maxMs"] == 50.0 and first["p50Ms"] < 50
    assert second["percentilesUndefined"] == [] and second["answers"] == 120
    assert second["p99Ms"] <= second["maxMs"] == pytest.approx(1.119)


def test_the_series_is_bounded_in_points():
    """60 s at 1 s intervals are 60 points; a run of three hours gets wider intervals and never more than the cap;
    seconds without an answer are points of their own (no answers, in flight held)."""
    minute = IntervalSeries(1.0, horizon=60)
    for k in range(600):
        minute.sent(k / 10, 1)
        minute.answered(k / 10 + 0.01, 1000, True, 0)
    minute.finish(60.0)
    assert len(minute.points) == 60 and [p["t"] for p in minute.points] == [float(s) for s in range(60)]
    long = IntervalSeries(1.0, horizon=3 * 3600 + 11, max_points=MAX_SERIES_POINTS)
    assert long.width == 32.0
    for k in range(0, 3 * 3600, 7):
        long.sent(k, 1)
        long.answered(k + 0.5, 1000, k % 2 == 0, 0)
    long.finish(3 * 3600.0)
    assert len(long.points) == math.ceil(3 * 3600 / 32) <= MAX_SERIES_POINTS
    gap = IntervalSeries(1.0, horizon=5)
    gap.sent(0.2, 1)
    gap.answered(3.5, 3_300_000, True, 0)  # in flight for 3.3 s, answered in the fourth second
    gap.finish(3.6)
    assert [p["answers"] for p in gap.points] == [0, 0, 0, 1]
    assert [p["inFlightMax"] for p in gap.points] == [1, 1, 1, 1]
    assert gap.points[1]["inFlightMean"] == pytest.approx(1.0) and gap.points[1]["p99Ms"] is None
