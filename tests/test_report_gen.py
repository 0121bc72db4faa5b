"""The resilience report's JSON: merged across processes, every section of the documented schema."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
from resilience_report.build import SCHEMA, main
from resilience_report.charts import MAX_SERIES, PALETTE, Series, line_chart, log_ticks, nice_ticks
from resilience_report.html import render_percentile_charts
from resilience_report.scorecard import TARGETS, build_scorecard
from robot.api import TestSuiteBuilder as RobotSuiteBuilder

from tests.report_samples import write_sample_metrics

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def report(tmp_path):
    write_sample_metrics(tmp_path)
    assert main([str(tmp_path), "--profile", str(ROOT / "resources" / "profiles" / "local.py")]) == 0
    return json.loads((tmp_path / "resilience-report.json").read_text()), tmp_path


def test_report_has_every_section(report):
    data, folder = report
    assert data["schema"] == SCHEMA
    assert set(data) >= {"run", "performance", "load", "reliability", "costs", "utilisation", "otherMetrics"}
    assert data["run"]["processes"] == 2 and data["run"]["runIds"] == ["abc123"]
    assert (folder / "resilience-report.html").stat().st_size > 2000


def test_performance_has_averages_percentiles_and_targets(report):
    perf = report[0]["performance"]
    cold = perf["containerColdStart"]
    assert cold["count"] == 5 and cold["mean"] == pytest.approx(0.65)
    assert cold["p50"] == pytest.approx(0.65, rel=2e-3) and cold["p99"] == pytest.approx(0.72, rel=2e-3)
    assert cold["p99"] <= cold["max"] and cold["percentilesUndefined"] == ["p95", "p99"]
    # p99 over 5 samples is undefined: the max stands in, as the SLA assertion does.
    assert cold["target"] == {
        "variable": "SLA_COLD_START_P99",
        "statistic": "max",
        "statisticLabel": "max over 5 samples (p99 needs at least 100, so the max is asserted)",
        "bound": "p99",
        "allowed": 1.5,
        "measured": cold["max"],
        "met": True,
    }
    assert perf["sessionCreation"]["target"]["statistic"] == "mean"
    assert perf["autoShutdown"]["count"] == 3
    assert perf["containerStartup"]["count"] == 9


def test_histograms_are_merged_not_averaged(report):
    hist = report[0]["load"]["histograms"]["file-ops"]
    assert hist["count"] == 1000  # 900 from one process, 100 from the other
    assert hist["processes"] == 2
    # 5 of 1000 values are 900 ms: p99 of the merged histogram is fast, p99.9 is the stall; averaging the two
    # processes' p99 (2.9 ms and 900 ms) would have said 451 ms.
    assert hist["p99Ms"] < 5
    assert dict(map(tuple, hist["curve"]))[99.9] == pytest.approx(900, rel=2e-3)
    assert hist["serviceCurve"][-1][1] < 5


def test_reliability_counts_outcomes_tests_and_recovery(report):
    rel = report[0]["reliability"]
    assert rel["requests"] == {"total": 1000, "ok": 997, "successRate": 0.997}
    assert rel["errorsByCategory"] == {"rejected-429": 3}
    assert (rel["tests"]["passed"], rel["tests"]["failed"], rel["tests"]["skipped"]) == (4, 2, 1)
    outside = rel["tests"]["failures"][-1]
    assert outside["message"] == "p95 was 900 ms"
    assert outside["longName"] == "Sample.Paths That Climb Out Of The Workspace Are Refused"
    assert outside["link"] == "log.html#s1-t7"
    assert rel["recovery"]["recovery_time"]["count"] == 3
    assert rel["recovery"]["recovery_time"]["target"]["met"] is True


def test_costs_use_dated_prices_and_without_a_measured_session_give_no_verdict(report):
    """The constants-based estimate is there, labelled as one; no test recorded a session's cost: not measured."""
    costs = report[0]["costs"]
    assert costs["pricing"]["validFrom"] and costs["pricing"]["region"] == "us-east-1"
    assert costs["pricing"]["file"].endswith("resources/pricing.json")  # the local profile's PRICING_FILE
    assert costs["pricing"]["taskVcpu"] == 1 and costs["pricing"]["settingsFrom"] == "profile"
    estimate = costs["estimate"]
    assert "not a measurement" in estimate["label"]
    assert estimate["sessionsMeasured"] == 3 and estimate["containerSeconds"] == pytest.approx(5.8)
    assert estimate["vcpuHours"] == pytest.approx(5.8 / 3600 * costs["pricing"]["taskVcpu"], rel=1e-3)
    assert estimate["dynamodb"]["writeRequestUnits"] > 0
    assert 0 < estimate["typicalSessionUsd"] < costs["budgetPerSessionUsd"] == 0.25
    assert costs["measured"]["count"] == 0 and costs["withinBudget"] is None and costs["verdict"] == "not measured"


def _session_cost(value: float, bounded: bool = True, test: str = "S.Cost") -> dict:
    tags = {"budget": "0.25", "bounded": str(bounded), "billed_seconds": "3601", "after_delete_seconds": "0.1"}
    return {"name": "session_cost", "value": value, "unit": "USD", "tags": tags, "test": test, "profile": "aws"}


@pytest.mark.parametrize(
    ("samples", "within", "verdict"),
    [
        ([_session_cost(0.0494)], True, "within budget"),
        ([_session_cost(0.0494), _session_cost(0.31)], False, "over budget"),
        ([_session_cost(0.0495, bounded=False)], False, "over budget"),  # its billing never ended
    ],
)
def test_the_cost_verdict_comes_from_the_measured_session_cost(tmp_path, samples, within, verdict):
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in samples))
    assert main([str(tmp_path), "--profile", str(ROOT / "resources" / "profiles" / "aws.py")]) == 0
    costs = json.loads((tmp_path / "resilience-report.json").read_text())["costs"]
    assert costs["withinBudget"] is within and costs["verdict"] == verdict
    assert costs["measured"]["count"] == len(samples)
    assert costs["measured"]["maxUsd"] == max(s["value"] for s in samples)
    assert costs["measured"]["unbounded"] == sum(s["tags"]["bounded"] == "False" for s in samples)
    assert costs["estimate"]["typicalSessionUsd"] < 0.25  # the estimate does not judge
    assert verdict in (tmp_path / "resilience-report.html").read_text()


def test_the_aws_profiles_price_with_the_aws_price_file(tmp_path):
    for profile in ("aws.py", "aws_emulated.py", "aws_minimal.py"):
        assert main([str(tmp_path), "--profile", str(ROOT / "resources" / "profiles" / profile)]) == 0
        pricing = json.loads((tmp_path / "resilience-report.json").read_text())["costs"]["pricing"]
        assert pricing["file"].endswith("resources/pricing_aws.json"), profile
        assert pricing["budget"] == 0.25 and pricing["typicalSessionHours"] == 1 and pricing["taskMemoryGb"] == 2


def test_report_builds_from_an_empty_run(tmp_path):
    assert main([str(tmp_path)]) == 0
    data = json.loads((tmp_path / "resilience-report.json").read_text())
    assert data["load"]["runs"] == [] and data["reliability"]["requests"]["total"] == 0


# ---------------------------------------------------------------------------------------------------------- scorecard
def rows_of(data):
    return {row["key"]: row for row in data["scorecard"]["rows"]}


def test_scorecard_has_a_row_per_seed_target_with_both_bounds(report):
    card = report[0]["scorecard"]
    assert [row["key"] for row in card["rows"]] == [t.key for t in TARGETS]
    assert len(card["rows"]) == len(TARGETS) == 21
    cold = rows_of(report[0])["cold-start"]
    assert (cold["profileBound"], cold["seedBound"]) == ("p99 < 1.5 s", "p99 < 60 s")
    assert rows_of(report[0])["recovery-circuit-close"]["seedBound"] == "< 2 min"
    assert rows_of(report[0])["cost"]["seedBound"] == "< $0.25"
    assert card["profile"] == "local" and card["seedProfile"] == "aws" and card["standIn"] is True


def test_a_passing_test_makes_its_row_pass_with_an_honest_sample_count(report):
    cold = rows_of(report[0])["cold-start"]
    assert cold["verdict"] == "pass"
    assert cold["testResults"] == [
        {
            "name": "Cold Start Is Within The SLA",
            "longName": "Sample.Cold Start Is Within The SLA",
            "id": "s1-t1",
            "status": "PASS",
            "link": "log.html#s1-t1",
        }
    ]
    # p99 over 5 samples: the max of 5, never a p99 of 5 (and never above the max).
    assert cold["measured"]["text"] == "max of 5: 720.0 ms" and cold["samples"] == 5
    crash = rows_of(report[0])["recovery-container-crash"]
    assert crash["verdict"] == "pass" and crash["measured"]["text"] == "max 1.020 s" and crash["samples"] == 3


def test_a_failed_test_fails_its_row_even_when_the_numbers_look_fine(report):
    warm = rows_of(report[0])["warm-start"]
    assert warm["measured"]["value"] < 0.3  # what the metrics say is within the bound ...
    assert warm["verdict"] == "fail"  # ... but the test that asserts it failed
    assert "312.0 ms" in warm["note"] and warm["testResults"][0]["link"] == "log.html#s1-t2"


def test_a_skipped_test_makes_its_row_skipped_with_the_skip_message(report):
    creation = rows_of(report[0])["session-creation"]
    assert creation["verdict"] == "skipped"
    assert creation["note"].startswith("Skipped: The machine was too busy to measure")
    assert creation["measured"]["text"] == "mean 16.8 ms" and creation["samples"] == 6


def test_a_target_without_a_test_in_the_run_is_not_run(report):
    rows = rows_of(report[0])
    for key in ("api-p95", "cpu", "memory", "recovery-partition", "orphan-free", "cost", "stable-3x-load"):
        assert rows[key]["verdict"] == "not run", key
        assert rows[key]["testResults"] == []
    # utilisation_cpuPercent was recorded, but by no test of this run's output.xml: it is not this row's evidence.
    assert rows["cpu"]["measured"] is None


def test_the_overall_verdict_fails_and_counts_failures_outside_the_scorecard(report):
    card = report[0]["scorecard"]
    assert card["verdict"] == "FAIL"
    assert card["counts"] == {"pass": 4, "fail": 1, "skipped": 2, "notRun": 14}
    assert card["failedOutsideScorecard"] == 1
    assert card["summary"] == (
        "21 targets of the seed: 4 passed, 1 failed, 2 skipped, 14 not run. 1 failed test outside the scorecard."
    )


def test_load_rows_read_only_their_own_tests_runs(report):
    rows = rows_of(report[0])
    ops = rows["file-ops-p95"]
    assert [t["id"] for t in ops["testResults"]] == ["s1-t4", "s1-t5"]
    # Two runs named file-ops, one per test: the worst p95 over each run's own requests.
    assert ops["measured"]["text"].endswith("(worst of 2 runs)") and ops["samples"] == 1000
    throughput = rows["file-ops-throughput"]
    assert throughput["verdict"] == "pass" and throughput["measured"]["text"].startswith("97.0/s ok")


def test_load_runs_name_their_test_target_and_verdict(report):
    runs = {r["testId"]: r for r in report[0]["load"]["runs"]}
    rate = runs["s1-t5"]
    assert rate["name"] == runs["s1-t4"]["name"] == "file-ops"
    assert rate["testName"] == "A Hundred File Operations Per Second Are Served On Time"
    assert rate["verdict"] == "pass"
    assert rate["target"] == "File operations p95: p95 < 50 ms; File operations throughput: ≥ 100/s, under 1 % dropped"
    assert runs["s1-t4"]["target"] == "File operations p95: p95 < 50 ms"
    for run in runs.values():  # a load run's percentiles are never above its max
        assert all(v <= run["latencyMs"]["max"] for k, v in run["latencyMs"].items() if k.startswith("p"))


def test_the_html_starts_with_the_verdict_and_the_failed_tests(report):
    page = (report[1] / "resilience-report.html").read_text()
    verdict, card, failed, perf = (
        page.index("id='verdict'"),
        page.index("id='scorecard'"),
        page.index("id='failed-tests'"),
        page.index("<h2>Performance</h2>"),
    )
    assert verdict < card < failed < perf
    assert "Profile <b>local</b>: its bounds stand in for the seed's" in page
    assert "<details" not in page  # the failed tests are expanded
    assert "href='log.html#s1-t7'" in page and "p95 was 900 ms" in page
    assert "(max of 5)" in page  # the performance table's p95 and p99 of 5 samples


def card_of(tests, metrics=(), loads=(), profile=None):
    profile = {"PROFILE": "aws", "SLA_COLD_START_P99": "60 s"} if profile is None else profile
    return build_scorecard(tests, list(metrics), list(loads), profile, {"PROFILE": "aws"})


def a_test(name, tags, status="PASS", message="", index=1):
    return {
        "name": name,
        "longName": f"S.{name}",
        "id": f"s1-t{index}",
        "status": status,
        "message": message,
        "tags": tags,
    }


def test_every_target_passing_is_a_pass_without_a_stand_in_banner():
    tests = [a_test(f"T{i}", [t.tests.split("OR")[0]], index=i) for i, t in enumerate(TARGETS, 1)]
    card = card_of(tests)
    assert card["verdict"] == "PASS" and card["standIn"] is False
    assert card["summary"] == "21 targets of the seed: 21 passed."


def test_a_skip_or_a_missing_target_leaves_the_run_incomplete():
    tests = [a_test(f"T{i}", [t.tests.split("OR")[0]], index=i) for i, t in enumerate(TARGETS, 1)]
    assert card_of(tests[:-1])["verdict"] == "INCOMPLETE"  # the cost test did not run
    tests[0] = a_test("T1", ["cold-start"], "SKIP", "too busy", 1)
    assert card_of(tests)["verdict"] == "INCOMPLETE"
    assert card_of(None)["verdict"] == "INCOMPLETE"  # no output.xml at all


def test_one_skipped_test_of_several_makes_the_row_skipped():
    tests = [a_test("Crash", ["container-crash"], index=1), a_test("Views", ["data-consistency"], "SKIP", "busy", 2)]
    row = card_of(tests)["rows"][[t.key for t in TARGETS].index("recovery-container-crash")]
    assert row["verdict"] == "skipped" and row["note"] == "1 of 2 tests skipped: busy"


def test_the_cost_row_reads_the_session_cost_its_test_records():
    test = a_test("A Typical Session Costs Less Than The Budget", ["performance", "cost"])
    metrics = [
        {"name": "session_cost", "value": 0.0412, "unit": "USD", "test": test["longName"]},
        {"name": "session_billed_overhead", "value": 61.0, "unit": "s", "test": test["longName"]},
    ]
    row = card_of([test], metrics, profile={"PROFILE": "aws", "COST_BUDGET_PER_SESSION": 0.25})["rows"][-1]
    assert row["key"] == "cost" and row["verdict"] == "pass" and row["measured"]["text"] == "$0.0412"
    assert row["profileBound"] == "< $0.25" and row["samples"] == 1


def test_every_row_maps_to_tests_of_the_suites():
    """A row's tag pattern selects at least one test in suites/, so renaming or dropping a tag cannot silently turn
    a row into NOT RUN."""
    suite = RobotSuiteBuilder().build(str(ROOT / "suites"))
    tags = [list(test.tags) for test in suite.all_tests]
    for target in TARGETS:
        assert any(target.selects(t) for t in tags), f"no test in suites/ matches the row {target.key}: {target.tests}"


# ---------------------------------------------------------------------------------------------------------- charts
def test_utilisation_is_charted_from_its_samples_over_time(report):
    """Max and mean come from every sample of the window (they differ when the load varies), not from the one
    figure the test recorded; the window keeps its series and the profile's bounds are there to draw."""
    data = report[0]
    cpu = data["utilisation"]["cpuPercent"]
    assert cpu["from"] == "series" and cpu["samples"] == 20
    assert cpu["max"] == 69.0 and cpu["mean"] == 52.0 and cpu["max"] > cpu["mean"]
    assert data["utilisation"]["memoryPercent"]["max"] == 40.0
    series = data["utilisationSeries"]
    assert series["bounds"] == {"cpuPercent": 70.0, "memoryPercent": 80.0}
    (window,) = series["windows"]
    assert window["test"] == "Sample.Other" and window["source"] == "psutil" and window["intervalS"] == 0.5
    assert [p["t"] for p in window["points"]] == [0.5 * i for i in range(1, 21)]
    assert window["summary"]["cpuPercent"] == cpu["mean"]


def test_utilisation_without_a_series_falls_back_to_the_recorded_figures(tmp_path):
    (tmp_path / "metrics").mkdir()
    records = [{"name": "utilisation_cpuPercent", "value": v, "unit": "%", "test": "S.T"} for v in (10.0, 30.0)]
    (tmp_path / "metrics" / "1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert main([str(tmp_path)]) == 0
    data = json.loads((tmp_path / "resilience-report.json").read_text())
    assert data["utilisation"]["cpuPercent"] == {
        "unit": "%",
        "max": 30.0,
        "mean": 20.0,
        "samples": 2,
        "from": "records",
    }
    assert data["utilisationSeries"]["windows"] == []


def test_each_load_run_has_its_series_over_time_and_the_bound_its_test_asserted(report):
    for run in report[0]["load"]["runs"]:
        series = run["series"]
        assert series["intervalS"] == 1.0 and len(series["points"]) == 3 <= series["maxPoints"]
        assert sum(p["answers"] for p in series["points"]) == run["completed"]
        assert run["latencyBounds"] == [{"statistic": "p95", "allowedMs": 50.0}]
    few = next(r for r in report[0]["load"]["runs"] if r["completed"] == 100)["series"]["points"]
    # About 33 answers a second define p95 but not p99: the interval's max stands in, and says so.
    assert all(p["percentilesUndefined"] == ["p99"] and p["p99Ms"] == p["maxMs"] for p in few)
    assert few[-1]["maxMs"] == pytest.approx(900, rel=1e-3) and few[-1]["errors"] == 3
    assert "load_latency_bound" not in report[0]["otherMetrics"]  # a bound, not a measurement


def figures(page: str) -> dict[str, str]:
    """Every chart of the page: its id -> its markup."""
    found = {}
    for part in page.split('<figure class="chart"')[1:]:
        chart_id = part.split('data-chart="', 1)[1].split('"', 1)[0]
        found[chart_id] = part.split("</figure>", 1)[0]
    return found


def test_every_chart_draws_each_of_its_series(report):
    page = (report[1] / "resilience-report.html").read_text()
    charts = figures(page)
    assert {"performance", "recovery", "outcomes", "cost-per-session", "latency-percentiles", "utilisation-1"} <= set(
        charts
    )
    assert {f"run-{i}-{kind}" for i in (1, 2) for kind in ("latency", "throughput", "users")} <= set(charts)
    for chart_id, markup in charts.items():
        expected = int(markup.split('data-series="', 1)[1].split('"', 1)[0])
        drawn = markup.split('class="mark series"')[1:]
        assert expected > 0 and len(drawn) == expected, chart_id
        for series in drawn:
            body = series.split("</g>", 1)[0] if series.lstrip().startswith("data-name") else series
            lines = body.split(' d="', 1)[1].split('"', 1)[0].split("L") if ' d="' in body else []
            bar = 'width="' in body.split(">", 1)[0]
            assert bar or len(lines) >= 2 or "<circle" in body, f"{chart_id}: a series drew nothing"
    run = charts["run-2-latency"]
    assert "bound: p95 &lt; 50 ms" in run  # the bound the test asserted, drawn and in the legend
    assert run.count('fill="#fff"') == 3  # p99 of each second: the max of too few answers, an open circle
    assert "CPU bound 70 % (mean)" in charts["utilisation-1"] and "memory bound 80 % (peak)" in charts["utilisation-1"]


def test_line_charts_have_nice_ticks_grid_lines_and_titled_axes(report):
    charts = figures((report[1] / "resilience-report.html").read_text())
    for chart_id in ("run-1-latency", "run-1-throughput", "run-1-users", "utilisation-1", "latency-percentiles"):
        markup = charts[chart_id]
        assert 4 <= markup.count('class="grid" x1="58"') <= 6, chart_id  # value axis: 4-6 ticks, a grid line each
        assert markup.count('class="l at"') == 2, chart_id  # both axes have a title
    assert ">% used<" in charts["utilisation-1"] and ">ms<" in charts["run-1-latency"]


def test_bars_of_too_few_samples_show_the_max_labelled_and_measured_and_bound_share_a_scale(report):
    perf = figures((report[1] / "resilience-report.html").read_text())["performance"]
    cold = perf.split(">Container cold start<", 1)[1].split('class="g"', 1)[0]
    assert ">max of 5 (for p95, p99)<" in cold and ">p95<" not in cold and ">p99<" not in cold
    # The bound (1.5 s) on the group's own axis, beyond the bars: the axis runs to 2000 ms with its ticks.
    assert "bound: p99 &lt; 1.500 s" in cold and ">2000<" in cold
    x_bound = float(cold.split('class="rule" x1="', 1)[1].split('"', 1)[0])
    bars = cold.split('class="mark series"')[1:]
    ends = [
        float(b.split('x="', 1)[1].split('"', 1)[0]) + float(b.split('width="', 1)[1].split('"', 1)[0]) for b in bars
    ]
    assert len(ends) == 3 and max(ends) < x_bound


def test_the_chart_status_is_a_footer_line_not_in_the_header(report):
    page = (report[1] / "resilience-report.html").read_text()
    header = page.split("<h1>", 1)[1].split("</p>", 1)[0]
    assert "chart-status" not in header and "charts rendered" not in header
    assert page.index("<footer><p id='chart-status'") > page.index("<h2>Costs</h2>")


@pytest.mark.parametrize(
    ("low", "high"), [(0, 1), (0, 7), (0, 11), (0, 0), (0, 0.0032), (0, 1620), (0, 98.7), (-60, 12), (5, 5)]
)
def test_nice_ticks_cover_the_range_in_four_to_six_nice_steps(low, high):
    ticks = nice_ticks(low, high)
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert 4 <= len(ticks) <= 6 and ticks[0] <= low and ticks[-1] >= high
    assert len(steps) == 1
    (step,) = steps
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 6) in (1.0, 2.0, 2.5, 5.0)


def test_nice_ticks_examples():
    assert nice_ticks(0, 1620) == [0, 500, 1000, 1500, 2000]
    assert nice_ticks(0, 98.7) == [0, 20, 40, 60, 80, 100]
    assert nice_ticks(0, 11) == [0, 2.5, 5, 7.5, 10, 12.5]
    assert nice_ticks(0, 11, integer=True) == [0, 5, 10, 15]  # counts: whole steps
    assert nice_ticks(0, 2, integer=True) == [0, 1, 2, 3]
    assert log_ticks(0.08, 900) == [0.01, 0.1, 1, 10, 100, 1000]
    assert log_ticks(1.2, 40) == [1, 2, 5, 10, 20, 50, 100]


def test_a_chart_with_too_many_series_is_refused():
    many = [Series(f"s{i}", [(0, i), (1, i)]) for i in range(MAX_SERIES + 1)]
    with pytest.raises(ValueError, match="split it"):
        line_chart("x", "too many", many, "x", "y")
    assert len(set(PALETTE)) >= 10


def test_many_load_names_are_split_over_charts_of_four_names():
    """Nine load names with their uncorrected curves are 18 lines: three charts of at most eight, not one of 18."""
    curve = [[50, 1.0], [90, 2.0], [99, 5.0], [100, 9.0]]
    histograms = {f"load-{i}": {"curve": curve, "serviceCurve": curve} for i in range(9)}
    page = "".join(render_percentile_charts(histograms))
    charts = figures(page)
    assert list(charts) == ["latency-percentiles", "latency-percentiles-2", "latency-percentiles-3"]
    assert [int(c.split('data-series="', 1)[1].split('"', 1)[0]) for c in charts.values()] == [8, 8, 2]
    assert "(1 of 3)" in charts["latency-percentiles"]
