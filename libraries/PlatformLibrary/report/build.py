"""The resilience report: one JSON file and one self-contained HTML page, merged across pabot processes.

Run after the suites (``run.sh`` does, even when tests failed)::

    python -m PlatformLibrary.report results --profile resources/profiles/local.py

(with ``libraries`` on ``PYTHONPATH``). It reads ``results/metrics/`` (every process's ``<pid>.jsonl`` metrics,
``loadruns-<pid>.jsonl`` load-run summaries and ``hist-<name>-<pid>.hdr`` HdrHistograms, which are *added*, never
averaged), ``results/output.xml`` for test outcomes, the profile for SLA targets and ``resources/pricing.json`` for
prices, and writes ``results/resilience-report.json`` and ``results/resilience-report.html``. The JSON schema is
documented in ``docs/load-and-report.md``. The HTML page has inline SVG charts and a few lines of inline script:
it works offline, nothing is fetched.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import sys
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from ..load.results import new_histogram, parse_duration
from .html import HTML_NAME, JSON_NAME, render_html
from .metrics import load_histograms

SCHEMA = "resilience-report/1"
PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_PRICING = PROJECT_ROOT / "resources" / "pricing.json"

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


def read_tests(output_xml: Path | None) -> dict[str, Any] | None:
    """Totals and failures from Robot Framework's output.xml (the merged one under pabot)."""
    if output_xml is None or not output_xml.is_file():
        return None
    try:
        root = ET.parse(output_xml).getroot()
    except ET.ParseError:
        return None
    total = root.find("./statistics/total/stat")
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    if total is not None:
        counts = {
            "passed": int(total.get("pass", 0)),
            "failed": int(total.get("fail", 0)),
            "skipped": int(total.get("skip", 0)),
        }
    failures, by_suite = [], Counter()
    for test in root.iter("test"):
        status = test.find("status")
        if status is not None and status.get("status") == "FAIL":
            failures.append({"test": test.get("name"), "message": (status.text or "")[:300]})
    for suite in root.iter("suite"):
        status = suite.find("status")
        if status is not None and status.get("status") == "FAIL" and suite.find("test") is not None:
            by_suite[suite.get("name") or "?"] += 1
    run = sum(counts.values())
    return {
        "total": run,
        **counts,
        "passRate": round(counts["passed"] / (run - counts["skipped"]), 4) if run - counts["skipped"] > 0 else None,
        "failures": failures[:50],
    }


# ---------------------------------------------------------------------------------------------------------- numbers
def stats(values: list[float]) -> dict[str, Any]:
    """count, mean, p50/p95/p99 (HdrHistogram, microseconds), min and max of values in seconds."""
    hist = new_histogram()
    for value in values:
        hist.record_value(min(max(1, round(value * 1_000_000)), 3_600_000_000))
    return {
        "count": len(values),
        "mean": round(sum(values) / len(values), 6),
        **hist_stats(hist, scale=1e-6),
        "min": round(min(values), 6),
        "max": round(max(values), 6),
    }


def hist_stats(hist: HdrHistogram, scale: float) -> dict[str, float]:
    return {
        "p50": round(hist.get_value_at_percentile(50) * scale, 6),
        "p95": round(hist.get_value_at_percentile(95) * scale, 6),
        "p99": round(hist.get_value_at_percentile(99) * scale, 6),
    }


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
    key = "mean" if percentile == "mean" else ("max" if percentile == 100 else f"p{percentile}")
    measured = summary.get(key)
    return {
        "variable": name,
        "statistic": key,
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
    metric_files = sorted(p for p in metrics_dir.glob("*.jsonl") if not p.name.startswith("loadruns-"))
    metrics = read_jsonl(metric_files) if metrics_dir.is_dir() else []
    loads = read_jsonl(sorted(metrics_dir.glob("loadruns-*.jsonl"))) if metrics_dir.is_dir() else []
    histograms = load_histograms(metrics_dir) if metrics_dir.is_dir() else {}
    profile = read_profile(profile_path)
    pricing = json.loads((pricing_path or DEFAULT_PRICING).read_text())

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
        if name not in PERFORMANCE and name not in RECOVERY and not name.startswith("utilisation_")
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
                "suite",
                "test",
                "pid",
                "startedAt",
                "stoppedEarly",
            )
        }
        | {"scenario": (r.get("extra") or {}).get("scenario"), "apiCalls": (r.get("extra") or {}).get("apiCalls")}
        for r in sorted(loads, key=lambda r: r.get("startedAt") or 0)
    ]
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
    tests = read_tests(output_xml)
    reliability = {
        "requests": {"total": total, "ok": ok, "successRate": round(ok / total, 6) if total else None},
        "tests": tests,
        "recovery": {name: {"unit": "s", **stats(values[name])} for name in RECOVERY if values.get(name)},
        "errorsByCategory": dict(errors.most_common()),
    }
    if values.get("recovery_time") and "SLA_RECOVERY_MAX" in profile:
        summary = reliability["recovery"]["recovery_time"]
        summary["target"] = sla(profile, "SLA_RECOVERY_MAX", 100, summary)

    costs = build_costs(loads, values, pricing)
    utilisation = {
        name[len("utilisation_") :]: {"unit": "%", "max": max(v), "mean": round(sum(v) / len(v), 2)}
        for name, v in (
            (n, [float(r["value"]) for r in metrics if r.get("name") == n])
            for n in sorted({r.get("name") for r in metrics if str(r.get("name")).startswith("utilisation_")})
        )
        if v
    }
    return {
        "schema": SCHEMA,
        "generatedAt": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
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
        "load": {"runs": load_runs, "histograms": load_hists},
        "reliability": reliability,
        "costs": costs,
    }


def build_costs(loads: list[dict[str, Any]], values: dict[str, list[float]], pricing: dict[str, Any]) -> dict[str, Any]:
    """Fargate task-hours of the sessions the suite created and deleted, DynamoDB request units from the API calls
    the load runs counted, and the estimated cost per session against the budget."""
    lifetimes = values.get("session_container_seconds", [])
    container_seconds = sum(lifetimes)
    vcpu_hours = container_seconds / 3600 * float(pricing["task_vcpu"])
    gb_hours = container_seconds / 3600 * float(pricing["task_memory_gb"])
    factors = pricing.get("dynamodb_requests_per_call", {})
    calls: Counter = Counter()
    for r in loads:
        for kind, count in ((r.get("extra") or {}).get("apiCalls") or {}).items():
            calls[kind] += int(count)
    writes = sum(calls[k] * float(factors.get(k, {}).get("write", 0)) for k in calls)
    reads = sum(calls[k] * float(factors.get(k, {}).get("read", 0)) for k in calls)
    writes += container_seconds * float(pricing.get("dynamodb_activity_writes_per_running_second", 0))
    fargate = vcpu_hours * float(pricing["fargate_vcpu_hour"]) + gb_hours * float(pricing["fargate_gb_hour"])
    dynamodb = (
        writes * float(pricing["dynamodb_write_request_unit_per_million"])
        + reads * float(pricing["dynamodb_read_request_unit_per_million"])
    ) / 1e6
    # Fargate per session from the sessions whose whole life the suite saw (created and deleted by it), DynamoDB
    # per session from every create the load runs counted.
    sessions = len(lifetimes)
    creates = calls.get("create", 0) or sessions
    per_session = (fargate / sessions if sessions else 0.0) + (dynamodb / creates if creates else 0.0)
    if not sessions and not creates:
        per_session = None
    hours = float(pricing.get("typical_session_hours", 1.0))
    per_create = factors.get("create", {})
    per_delete = factors.get("delete", {})
    typical_writes = (
        float(per_create.get("write", 0))
        + float(per_delete.get("write", 0))
        + hours * 3600 * float(pricing.get("dynamodb_activity_writes_per_running_second", 0))
    )
    typical_reads = float(per_create.get("read", 0)) + float(per_delete.get("read", 0))
    typical = (
        hours * float(pricing["task_vcpu"]) * float(pricing["fargate_vcpu_hour"])
        + hours * float(pricing["task_memory_gb"]) * float(pricing["fargate_gb_hour"])
        + (
            typical_writes * float(pricing["dynamodb_write_request_unit_per_million"])
            + typical_reads * float(pricing["dynamodb_read_request_unit_per_million"])
        )
        / 1e6
    )
    budget = float(pricing["budget_per_session"])
    return {
        "pricing": {k: v for k, v in pricing.items() if k != "dynamodb_requests_per_call"},
        "sessionsMeasured": sessions,
        "sessionsCreated": creates,
        "containerSeconds": round(container_seconds, 3),
        "vcpuHours": round(vcpu_hours, 6),
        "gbHours": round(gb_hours, 6),
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
        "perSessionUsd": {
            "measured": round(per_session, 8) if per_session is not None else None,
            "typical": round(typical, 6),
            "typicalSessionHours": hours,
        },
        "budgetPerSessionUsd": budget,
        "withinBudget": typical <= budget and (per_session is None or per_session <= budget),
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
        prog="python -m PlatformLibrary.report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("results", nargs="?", default="results", help="results folder (default: results)")
    parser.add_argument("--metrics", help="metrics folder (default: <results>/metrics)")
    parser.add_argument("--profile", help="profile variable file with the SLA targets")
    parser.add_argument("--pricing", help=f"prices (default: {DEFAULT_PRICING})")
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
