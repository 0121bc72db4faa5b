"""The resilience report's JSON: merged across processes, every section of the documented schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PlatformLibrary.report.build import SCHEMA, main

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
    assert cold["target"] == {
        "variable": "SLA_COLD_START_P99",
        "statistic": "p99",
        "allowed": 1.5,
        "measured": cold["p99"],
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
    assert rel["tests"]["passed"] == 1 and rel["tests"]["failed"] == 1
    assert rel["tests"]["failures"][0]["message"] == "p95 was 900 ms"
    assert rel["recovery"]["recovery_time"]["count"] == 3
    assert rel["recovery"]["recovery_time"]["target"]["met"] is True


def test_costs_use_dated_prices_and_compare_with_the_budget(report):
    costs = report[0]["costs"]
    assert costs["pricing"]["as_of"] and costs["pricing"]["region"] == "us-east-1"
    assert costs["sessionsMeasured"] == 3 and costs["containerSeconds"] == pytest.approx(5.8)
    assert costs["vcpuHours"] == pytest.approx(5.8 / 3600 * costs["pricing"]["task_vcpu"], rel=1e-3)
    assert costs["dynamodb"]["writeRequestUnits"] > 0
    assert 0 < costs["perSessionUsd"]["typical"] < costs["budgetPerSessionUsd"] == 0.25
    assert costs["withinBudget"] is True


def test_report_builds_from_an_empty_run(tmp_path):
    assert main([str(tmp_path)]) == 0
    data = json.loads((tmp_path / "resilience-report.json").read_text())
    assert data["load"]["runs"] == [] and data["reliability"]["requests"]["total"] == 0
