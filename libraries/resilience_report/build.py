"""The resilience report: one JSON file and one self-contained HTML page, merged across pabot processes.

Run after the suites (``run.sh`` does, even when tests failed)::

    python -m resilience_report results --profile resources/profiles/local.py

(with ``libraries`` on ``PYTHONPATH``). It reads ``results/metrics/`` (every process's ``<pid>.jsonl`` metrics,
``loadruns-<pid>.jsonl`` load-run summaries and ``hist-<name>-<pid>.hdr`` HdrHistograms, which are *added*, never
averaged), ``results/output.xml`` for test outcomes, the profile for SLA targets, the cost budget and task size,
and the profile's price file (``PRICING_FILE``; ``resources/pricing.json`` without one) for prices, and writes
``results/resilience-report.json`` and ``results/resilience-report.html``. The JSON schema is documented in
``docs/load-and-report.md``. The HTML page has inline SVG charts and a few lines of inline script:
it works offline, nothing is fetched.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram
from PlatformLibrary.aws.cost import fargate_rates, load_pricing, price_set_for
from PlatformLibrary.core.base import PROJECT_ROOT
from PlatformLibrary.core.profile import to_seconds
from PlatformLibrary.core.stats import (
    LATENCY_BOUND_METRIC,
    defined_statistic,
    new_histogram,
    parse_duration,
    samples_needed,
)
from PlatformLibrary.report.metrics import load_histograms
from robot.api import ExecutionResult, ResultVisitor
from robot.errors import DataError

from .html import HTML_NAME, JSON_NAME, render_html
from .scorecard import SEED_PROFILE, build_scorecard

SCHEMA = "resilience-report/1"
DEFAULT_PRICING = PROJECT_ROOT / "resources" / "pricing.json"
PROFILES = PROJECT_ROOT / "resources" / "profiles"
LOG_NAME = "log.html"

# Metric name -> (report section key, human label, SLA variable, SLA percentile or "mean")
PERFORMANCE = {
    "container_cold_start": ("containerColdStart", "Container cold start", "SLA_COLD_START_P99", 99),
    "container_warm_start": ("containerWarmStart", "Container warm start", "SLA_WARM_START_P95", 95),
    "session_start": ("sessionStartObserved", "Session start (client: create to RUNNING)", None, None),
    "session_creation": ("sessionCreation", "Session creation (POST /sessions)", "SLA_CREATE_MEAN", "mean"),
    "auto_shutdown": ("autoShutdown", "Auto-shutdown (last activity to stopped)", "SLA_AUTO_SHUTDOWN_MAX", 100),
    "scale_out_response": (
        "scaleOutResponse",
        "Auto-scaling response (load step to capacity added)",
        "SLA_SCALE_OUT_MAX",
        100,
    ),
}
RECOVERY = ("recovery_time", "recovery_after_overload", "scale_out_all_running")


# ---------------------------------------------------------------------------------------------------------- reading
def read_jsonl(paths: list[Path]) -> list[dict[str, Any]]:
    records = []
    for path in paths:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a killed process: skip it, keep the rest
    return records


def read_profile(path: Path | None) -> dict[str, Any]:
    if path is None or not path.is_file():
        return {}
    spec = importlib.util.spec_from_file_location(f"profile_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return {k: v for k, v in vars(module).items() if k.isupper()}


class _Tests(ResultVisitor):
    def __init__(self) -> None:
        self.found: list[dict[str, Any]] = []

    def visit_test(self, test) -> None:
        self.found.append(
            {
                "name": test.name,
                "longName": test.full_name,
                "id": test.id,
                "status": test.status,
                "message": test.message or "",
                "tags": list(test.tags),
            }
        )


def read_tests(output_xml: Path | None) -> tuple[dict[str, Any] | None, list[dict[str, Any]] | None]:
    """Totals and failures from Robot Framework's output.xml (the merged one under pabot), and every test with its
    long name, id (``log.html#<id>``), status, message and tags; ``(None, None)`` without a readable output.xml."""
    if output_xml is None or not output_xml.is_file():
        return None, None
    try:
        result = ExecutionResult(str(output_xml))
    except DataError:
        return None, None
    visitor = _Tests()
    result.visit(visitor)
    total = result.statistics.total
    counts = {"passed": total.passed, "failed": total.failed, "skipped": total.skipped}
    failures = [
        {
            "test": t["name"],
            "longName": t["longName"],
            "id": t["id"],
            "link": f"{LOG_NAME}#{t['id']}",
            "message": t["message"][:300],
        }
        for t in visitor.found
        if t["status"] == "FAIL"
    ]
    run = sum(counts.values())
    summary = {
        "total": run,
        **counts,
        "passRate": round(counts["passed"] / (run - counts["skipped"]), 4) if run - counts["skipped"] > 0 else None,
        "failures": failures[:50],
        "failuresLeftOut": max(0, len(failures) - 50),
    }
    return summary, visitor.found


# ---------------------------------------------------------------------------------------------------------- numbers
def stats(values: list[float]) -> dict[str, Any]:
    """count, mean, p50/p95/p99 (HdrHistogram, microseconds, never above the max), min and max of values in
    seconds, and which percentiles too few samples leave undefined (``percentilesUndefined``)."""
    hist = new_histogram()
    for value in values:
        hist.record_value(min(max(1, round(value * 1_000_000)), 3_600_000_000))
    top = round(max(values), 6)
    return {
        "count": len(values),
        "mean": round(sum(values) / len(values), 6),
        **{k: min(v, top) for k, v in hist_stats(hist, scale=1e-6).items()},
        "min": round(min(values), 6),
        "max": top,
        "percentilesUndefined": undefined_percentiles(len(values)),
    }


def undefined_percentiles(count: int, percentiles: tuple[float, ...] = (50, 95, 99)) -> list[str]:
    """The percentiles ``count`` samples are too few to define (``core.stats.samples_needed``)."""
    return [f"p{p:g}" for p in percentiles if count < samples_needed(p)]


def hist_stats(hist: HdrHistogram, scale: float) -> dict[str, float]:
    return {
        "p50": round(hist.get_value_at_percentile(50) * scale, 6),
        "p95": round(hist.get_value_at_percentile(95) * scale, 6),
        "p99": round(hist.get_value_at_percentile(99) * scale, 6),
    }


def clamp_latency(latency: dict[str, Any] | None) -> dict[str, Any] | None:
    """A load run's latency percentiles never above its max (HdrHistogram reports a bucket's upper edge)."""
    if not latency or latency.get("max") is None:
        return latency
    top = latency["max"]
    return {k: (min(v, top) if k.startswith("p") and isinstance(v, int | float) else v) for k, v in latency.items()}


def percentile_curve(hist: HdrHistogram) -> list[list[float]]:
    """HdrHistogram's percentile distribution as [percentile, milliseconds] points, 50 .. 99.999 and max."""
    points = []
    for pct in (0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999, 100):
        points.append([pct, round(hist.get_value_at_percentile(pct) / 1000, 3)])
    return points


def sla(profile: dict[str, Any], name: str | None, percentile: Any, summary: dict[str, Any]) -> dict[str, Any] | None:
    if not name or name not in profile:
        return None
    allowed = parse_duration(profile[name])
    key, label = "mean", "mean"
    if percentile != "mean":
        # Over too few samples a percentile is undefined: the max stands in, as the SLA assertions do.
        asserted, label = defined_statistic(float(percentile), int(summary.get("count") or 0))
        key = "max" if asserted == 100 else f"p{percentile}"
    measured = summary.get(key)
    return {
        "variable": name,
        "statistic": key,
        "statisticLabel": label,
        "bound": "mean" if percentile == "mean" else ("max" if percentile == 100 else f"p{percentile}"),
        "allowed": allowed,
        "measured": measured,
        "met": measured is not None and measured < allowed,
    }


# ---------------------------------------------------------------------------------------------------------- building
def build(
    results: Path,
    metrics_dir: Path | None = None,
    profile_path: Path | None = None,
    pricing_path: Path | None = None,
    output_xml: Path | None = None,
) -> dict[str, Any]:
    metrics_dir = metrics_dir or results / "metrics"
    output_xml = output_xml or results / "output.xml"
    metric_files = sorted(p for p in metrics_dir.glob("*.jsonl") if not p.name.startswith(SERIES_FILES))
    metrics = read_jsonl(metric_files) if metrics_dir.is_dir() else []
    loads = read_jsonl(sorted(metrics_dir.glob("loadruns-*.jsonl"))) if metrics_dir.is_dir() else []
    windows = read_jsonl(sorted(metrics_dir.glob("utilisation-*.jsonl"))) if metrics_dir.is_dir() else []
    histograms = load_histograms(metrics_dir) if metrics_dir.is_dir() else {}
    profile_path = profile_path or profile_of_run(metrics + loads)
    profile = read_profile(profile_path)
    seed = read_profile(PROFILES / f"{SEED_PROFILE}.py")
    pricing = cost_settings(profile, pricing_path)
    tests, every_test = read_tests(output_xml)

    values: dict[str, list[float]] = defaultdict(list)
    for record in metrics:
        if record.get("unit", "s") == "s" and isinstance(record.get("value"), int | float):
            values[record["name"]].append(float(record["value"]))
    pids = {r.get("pid") for r in metrics + loads if r.get("pid") is not None}

    performance: dict[str, Any] = {}
    for metric, (key, label, sla_name, pct) in PERFORMANCE.items():
        if values.get(metric):
            summary = stats(values[metric])
            performance[key] = {
                "metric": metric,
                "label": label,
                "unit": "s",
                **summary,
                "target": sla(profile, sla_name, pct, summary),
            }
    performance["containerStartup"] = (
        {
            "metric": "container_cold_start+container_warm_start",
            "label": "Container startup (cold and warm)",
            "unit": "s",
            **stats(values["container_cold_start"] + values["container_warm_start"]),
            "target": None,
        }
        if values.get("container_cold_start") or values.get("container_warm_start")
        else None
    )
    others = {
        name: {"unit": "s", **stats(v)}
        for name, v in sorted(values.items())
        if name not in PERFORMANCE
        and name not in RECOVERY
        and not name.startswith("utilisation_")
        and name != LATENCY_BOUND_METRIC  # a bound a test asserted, drawn over its run's latency
    }

    # Load runs and their merged histograms.
    load_runs = [
        {
            k: r.get(k)
            for k in (
                "name",
                "model",
                "targetRate",
                "durationS",
                "users",
                "scheduled",
                "sent",
                "completed",
                "ok",
                "errors",
                "errorRate",
                "dropped",
                "late",
                "maxLatenessMs",
                "achievedRate",
                "throughput",
                "latencyMs",
                "serviceTimeMs",
                "outcomes",
                "timeline",
                "series",
                "suite",
                "test",
                "pid",
                "startedAt",
                "stoppedEarly",
            )
        }
        | {
            "scenario": (r.get("extra") or {}).get("scenario"),
            "apiCalls": (r.get("extra") or {}).get("apiCalls"),
            "latencyMs": clamp_latency(r.get("latencyMs")),
            "serviceTimeMs": clamp_latency(r.get("serviceTimeMs")),
            "latencyBounds": latency_bounds(r, metrics),
        }
        for r in sorted(loads, key=lambda r: r.get("startedAt") or 0)
    ]
    budget = {"COST_BUDGET_PER_SESSION": pricing["budget"]}  # a profile's own budget wins
    scorecard = build_scorecard(every_test, metrics, loads, budget | profile, budget | seed, log_name=LOG_NAME)
    annotate_load_runs(load_runs, every_test or [], scorecard)
    utilisation, utilisation_series = utilisation_section(metrics, windows, profile)
    annotate_load_runs(utilisation_series["windows"], every_test or [], scorecard)
    load_hists: dict[str, Any] = {}
    for name, hist in sorted(histograms.items()):
        if not name.startswith("load.") or name.endswith(".service"):
            continue
        service = histograms.get(f"{name}.service")
        load_hists[name[len("load.") :]] = {
            "count": hist.get_total_count(),
            "meanMs": round(hist.get_mean_value() / 1000, 3),
            "p50Ms": round(hist.get_value_at_percentile(50) / 1000, 3),
            "p95Ms": round(hist.get_value_at_percentile(95) / 1000, 3),
            "p99Ms": round(hist.get_value_at_percentile(99) / 1000, 3),
            "maxMs": round(hist.get_max_value() / 1000, 3),
            "curve": percentile_curve(hist),
            "serviceCurve": percentile_curve(service) if service is not None else None,
            "processes": len({r.get("pid") for r in loads if r.get("name") == name[len("load.") :]}),
        }

    # Reliability.
    total = sum(int(r.get("completed") or 0) for r in loads)
    ok = sum(int(r.get("ok") or 0) for r in loads)
    errors: Counter = Counter()
    for r in loads:
        for category, count in (r.get("outcomes") or {}).items():
            if category != "ok":
                errors[category] += int(count)
        if r.get("dropped"):
            errors["dropped-send"] += int(r["dropped"])
    reliability = {
        "requests": {"total": total, "ok": ok, "successRate": round(ok / total, 6) if total else None},
        "tests": tests,
        "recovery": {name: {"unit": "s", **stats(values[name])} for name in RECOVERY if values.get(name)},
        "errorsByCategory": dict(errors.most_common()),
    }
    if values.get("recovery_time") and "SLA_RECOVERY_MAX" in profile:
        summary = reliability["recovery"]["recovery_time"]
        summary["target"] = sla(profile, "SLA_RECOVERY_MAX", 100, summary)

    costs = build_costs(loads, values, pricing, metrics)
    return {
        "schema": SCHEMA,
        "generatedAt": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "scorecard": scorecard,
        "run": {
            "runIds": sorted({str(r.get("run")) for r in metrics + loads if r.get("run")}),
            "profiles": sorted({str(r.get("profile")) for r in metrics + loads if r.get("profile")}),
            "processes": len(pids),
            "metricsDir": str(metrics_dir),
            "outputXml": str(output_xml) if output_xml.is_file() else None,
            "profileFile": str(profile_path) if profile_path else None,
        },
        "performance": {k: v for k, v in performance.items() if v is not None},
        "otherMetrics": others,
        "utilisation": utilisation,
        "utilisationSeries": utilisation_series,
        "load": {"runs": load_runs, "histograms": load_hists},
        "reliability": reliability,
        "costs": costs,
    }


def profile_of_run(records: list[dict[str, Any]]) -> Path | None:
    """Without ``--profile``: the profile file of the one profile the metric records name, if there is one."""
    names = {str(r.get("profile")) for r in records if r.get("profile")}
    if len(names) != 1:
        return None
    path = PROFILES / f"{names.pop().replace('-', '_')}.py"
    return path if path.is_file() else None


VERDICTS = {"PASS": "pass", "FAIL": "fail", "SKIP": "skipped", "NOT RUN": "not run"}
SERIES_FILES = ("loadruns-", "utilisation-")  # in the metrics folder, but not metric records
UTILISATION_KEYS = ("cpuPercent", "memoryPercent", "hostCpuPercent", "hostMemoryPercent")
UTILISATION_BOUNDS = {"cpuPercent": "CPU_UTILISATION_MAX_PERCENT", "memoryPercent": "MEMORY_UTILISATION_MAX_PERCENT"}


def latency_bounds(run: dict[str, Any], metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The latency bounds the run's test asserted on this run (``Load Should Meet Thresholds`` records each as
    metric ``load_latency_bound``, tagged with the run's name and start), in milliseconds, one per statistic."""
    started = f"{float(run.get('startedAt') or 0):.6f}"
    found: dict[str, float] = {}
    for r in metrics:
        tags = r.get("tags") or {}
        if (
            r.get("name") == LATENCY_BOUND_METRIC
            and r.get("test") == run.get("test")
            and tags.get("load") == run.get("name")
            and tags.get("started_at") == started
            and isinstance(r.get("value"), int | float)
        ):
            found[str(tags.get("statistic"))] = round(float(r["value"]) * 1000, 3)
    return [{"statistic": k, "allowedMs": v} for k, v in sorted(found.items())]


def utilisation_section(
    metrics: list[dict[str, Any]], windows: list[dict[str, Any]], profile: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Utilisation: max and mean of each figure over every sample of every sampling window (its series), else over
    the recorded ``utilisation_*`` metrics (one per window); and the windows with their samples over time and the
    profile's bounds, for the chart."""
    stats: dict[str, Any] = {}
    for key in UTILISATION_KEYS:
        sampled = [float(p[key]) for w in windows for p in w.get("points") or [] if isinstance(p.get(key), int | float)]
        recorded = [
            float(r["value"])
            for r in metrics
            if r.get("name") == f"utilisation_{key}" and isinstance(r.get("value"), int | float)
        ]
        values = sampled or recorded
        if values:
            stats[key] = {
                "unit": "%",
                "max": round(max(values), 2),
                "mean": round(sum(values) / len(values), 2),
                "samples": len(values),
                "from": "series" if sampled else "records",
            }
    bounds = {key: float(profile[name]) for key, name in UTILISATION_BOUNDS.items() if name in profile}
    shown = [
        {k: w.get(k) for k in ("test", "suite", "pid", "source", "startedAt", "intervalS", "summary", "points")}
        for w in sorted(windows, key=lambda w: w.get("startedAt") or 0)
    ]
    return stats, {"bounds": bounds, "windows": shown}


def annotate_load_runs(runs: list[dict[str, Any]], tests: list[dict[str, Any]], scorecard: dict[str, Any]) -> None:
    """Each load run gets the test that ran it (``testName``, ``testId``), that test's verdict and the bounds of the
    scorecard rows that test asserts (``target``), so same-named runs of different tests are told apart."""
    by_name = {t["longName"]: t for t in tests}
    for run in runs:
        test = by_name.get(run.get("test") or "")
        bounds = [
            f"{row['target']}: {row['profileBound']}"
            for row in scorecard["rows"]
            if row["profileBound"] and any(t["longName"] == run.get("test") for t in row["testResults"])
        ]
        run["testName"] = test["name"] if test else (run.get("test") or "").rsplit(".", 1)[-1] or None
        run["testId"] = test["id"] if test else None
        run["verdict"] = VERDICTS.get(test["status"], "not run") if test else None
        run["target"] = "; ".join(bounds) or None


def cost_settings(profile: dict[str, Any], pricing_path: Path | None = None) -> dict[str, Any]:
    """The prices and cost settings of the report: the price file given (``--pricing``), else the profile's
    ``PRICING_FILE`` (the AWS profiles: ``resources/pricing_aws.json``), else ``resources/pricing.json``; today's
    Fargate and DynamoDB prices from it; budget, typical session and task size from the profile
    (``COST_BUDGET_PER_SESSION``, ``TYPICAL_SESSION_DURATION``, ``TASK_VCPU``, ``TASK_MEMORY_GB``), else from the
    one-date price file's fields of the same meaning, else $0.25, 1 h, 1 vCPU and 2 GB."""
    file = Path(pricing_path or profile.get("PRICING_FILE") or DEFAULT_PRICING)
    prices = load_pricing(file)
    today = price_set_for(prices)
    rates = fargate_rates(prices)
    flat = json.loads(file.read_text(encoding="utf-8"))
    flat = flat if "priceSets" not in flat else {}
    # The DynamoDB requests per API call are the embedded platform's (its store), not prices: from the one-date
    # price file, which documents them, whichever file the prices come from.
    factors_from = flat if "dynamodb_requests_per_call" in flat else json.loads(DEFAULT_PRICING.read_text())
    dynamo = today.get("dynamodbOnDemand", {})
    typical = profile.get("TYPICAL_SESSION_DURATION")
    return {
        "file": str(file),
        "currency": rates["currency"],
        "region": prices.get("region", ""),
        "validFrom": rates["validFrom"],
        "source": today.get("source", ""),
        "fargateVcpuHour": rates["vcpuHour"],
        "fargateGbHour": rates["gbHour"],
        "minimumSecondsPerTask": rates["minimumSeconds"],
        "dynamodbWritePerMillion": float(dynamo.get("writeRequestUnitsPerMillion", 0.0)),
        "dynamodbReadPerMillion": float(dynamo.get("readRequestUnitsPerMillion", 0.0)),
        "budget": float(profile.get("COST_BUDGET_PER_SESSION", flat.get("budget_per_session", 0.25))),
        "typicalSessionHours": to_seconds(typical) / 3600 if typical else float(flat.get("typical_session_hours", 1)),
        "taskVcpu": float(profile.get("TASK_VCPU", flat.get("task_vcpu", 1.0))),
        "taskMemoryGb": float(profile.get("TASK_MEMORY_GB", flat.get("task_memory_gb", 2.0))),
        "settingsFrom": "profile" if "COST_BUDGET_PER_SESSION" in profile else "price file or defaults",
        "factors": factors_from.get("dynamodb_requests_per_call", {}),
        "activityWritesPerRunningSecond": float(factors_from.get("dynamodb_activity_writes_per_running_second", 0)),
    }


def measured_session_costs(metrics: list[dict[str, Any]], budget: float) -> dict[str, Any]:
    """The cost per session the tests measured (metric ``session_cost`` in USD, with its ``bounded`` and ``budget``
    tags): count, max, mean, how many bills never ended, each sample, and the verdict; ``withinBudget`` is ``None``
    without a sample (not measured), never true by default."""
    samples = []
    for r in metrics:
        if r.get("name") != "session_cost" or r.get("unit") != "USD" or not isinstance(r.get("value"), int | float):
            continue
        tags = r.get("tags") or {}
        bounded = str(tags.get("bounded", "True")).lower() != "false"
        allowed = float(tags.get("budget", budget))
        samples.append(
            {
                "test": r.get("test"),
                "valueUsd": float(r["value"]),
                "budgetUsd": allowed,
                "bounded": bounded,
                "billedSeconds": float(tags["billed_seconds"]) if "billed_seconds" in tags else None,
                "afterDeleteSeconds": float(tags["after_delete_seconds"]) if "after_delete_seconds" in tags else None,
                "withinBudget": bounded and float(r["value"]) < allowed,
                "pricingFile": tags.get("pricing_file"),
                "pricesValidFrom": tags.get("prices_valid_from"),
            }
        )
    values = [s["valueUsd"] for s in samples]
    within = all(s["withinBudget"] for s in samples) if samples else None
    return {
        "metric": "session_cost",
        "count": len(samples),
        "maxUsd": round(max(values), 6) if values else None,
        "meanUsd": round(sum(values) / len(values), 6) if values else None,
        "unbounded": sum(1 for s in samples if not s["bounded"]),
        "samples": samples[:50],
        "withinBudget": within,
    }


def build_costs(
    loads: list[dict[str, Any]],
    values: dict[str, list[float]],
    settings: dict[str, Any],
    metrics: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The cost section: the verdict from the cost per session the tests measured (``measured``), and, labelled an
    estimate, what constants say: a typical session's Fargate and DynamoDB cost from the task size and typical
    duration, and this run's own sessions (container-seconds the suite recorded, DynamoDB units from API calls)."""
    budget = settings["budget"]
    measured = measured_session_costs(metrics or [], budget)
    vcpu, gb = settings["taskVcpu"], settings["taskMemoryGb"]
    per_hour = vcpu * settings["fargateVcpuHour"] + gb * settings["fargateGbHour"]
    write_price, read_price = settings["dynamodbWritePerMillion"], settings["dynamodbReadPerMillion"]
    activity = settings["activityWritesPerRunningSecond"]
    factors = settings["factors"]
    lifetimes = values.get("session_container_seconds", [])
    container_seconds = sum(lifetimes)
    calls: Counter = Counter()
    for r in loads:
        for kind, count in ((r.get("extra") or {}).get("apiCalls") or {}).items():
            calls[kind] += int(count)
    writes = sum(calls[k] * float(factors.get(k, {}).get("write", 0)) for k in calls)
    reads = sum(calls[k] * float(factors.get(k, {}).get("read", 0)) for k in calls)
    writes += container_seconds * activity
    fargate = container_seconds / 3600 * per_hour
    dynamodb = (writes * write_price + reads * read_price) / 1e6
    # The suite's own sessions: Fargate from those whose whole life the suite saw (created and deleted by it),
    # DynamoDB from every create the load runs counted. Seconds-long sessions: no per-task minimum applied.
    sessions = len(lifetimes)
    creates = calls.get("create", 0) or sessions
    per_session = (fargate / sessions if sessions else 0.0) + (dynamodb / creates if creates else 0.0)
    hours = settings["typicalSessionHours"]
    per_create, per_delete = factors.get("create", {}), factors.get("delete", {})
    typical_writes = float(per_create.get("write", 0)) + float(per_delete.get("write", 0)) + hours * 3600 * activity
    typical_reads = float(per_create.get("read", 0)) + float(per_delete.get("read", 0))
    typical_dynamodb = (typical_writes * write_price + typical_reads * read_price) / 1e6
    typical = hours * per_hour + typical_dynamodb
    within = measured["withinBudget"]
    return {
        "pricing": {k: v for k, v in settings.items() if k != "factors"},
        "budgetPerSessionUsd": budget,
        "measured": measured,
        "withinBudget": within,
        "verdict": "not measured" if within is None else ("within budget" if within else "over budget"),
        "verdictBasis": (
            f"{measured['count']} session(s) priced by tests tagged cost (metric session_cost): measured billed time"
            if measured["count"]
            else "no test recorded a cost per session (metric session_cost): nothing measured, no verdict"
        ),
        "estimate": {
            "label": (
                "Estimate from constants, not a measurement (no verdict comes from it): a typical session is "
                f"{hours:g} h of one {vcpu:g} vCPU / {gb:g} GB task plus its create, delete and activity writes; "
                "this run's sessions are the container-seconds the suite recorded and the DynamoDB units its API "
                "calls imply."
            ),
            "typicalSessionUsd": round(typical, 6),
            "typicalSessionHours": hours,
            "typicalDynamodbUsd": round(typical_dynamodb, 8),
            "sessionsMeasured": sessions,
            "sessionsCreated": creates,
            "containerSeconds": round(container_seconds, 3),
            "vcpuHours": round(container_seconds / 3600 * vcpu, 6),
            "gbHours": round(container_seconds / 3600 * gb, 6),
            "apiCalls": dict(calls),
            "dynamodb": {
                "writeRequestUnits": round(writes, 1),
                "readRequestUnits": round(reads, 1),
                "basis": "API calls counted by the load runs x dynamodb_requests_per_call, plus activity writes",
            },
            "costUsd": {
                "fargate": round(fargate, 8),
                "dynamodb": round(dynamodb, 8),
                "total": round(fargate + dynamodb, 8),
            },
            "runSessionUsd": round(per_session, 8) if sessions or creates else None,
        },
    }


def write_report(results: Path, **kwargs: Any) -> tuple[Path, Path]:
    report = build(results, **kwargs)
    results.mkdir(parents=True, exist_ok=True)
    json_path, html_path = results / JSON_NAME, results / HTML_NAME
    json_path.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    html_path.write_text(render_html(report), encoding="utf-8")
    return json_path, html_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m resilience_report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("results", nargs="?", default="results", help="results folder (default: results)")
    parser.add_argument("--metrics", help="metrics folder (default: <results>/metrics)")
    parser.add_argument("--profile", help="profile variable file with the SLA targets")
    parser.add_argument("--pricing", help=f"prices (default: the profile's PRICING_FILE, else {DEFAULT_PRICING})")
    parser.add_argument("--output-xml", help="Robot Framework output.xml (default: <results>/output.xml)")
    args = parser.parse_args(argv)
    results = Path(args.results)
    json_path, html_path = write_report(
        results,
        metrics_dir=Path(args.metrics) if args.metrics else None,
        profile_path=Path(args.profile) if args.profile else None,
        pricing_path=Path(args.pricing) if args.pricing else None,
        output_xml=Path(args.output_xml) if args.output_xml else None,
    )
    print(f"Resilience report: {html_path} and {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
