"""The load engine: schedules, open and closed models, coordinated-omission correction, thresholds, histograms."""

from __future__ import annotations

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
from PlatformLibrary.load.results import check_threshold, merge_histograms, new_histogram, parse_duration, parse_rate
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
