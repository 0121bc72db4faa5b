"""The resilience report: one JSON file and one self-contained HTML page, merged across pabot processes.

Run after the suites (``run.sh`` does, even when tests failed)::

    python -m PlatformLibrary.reportgen results --profile resources/profiles/local.py

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
import html
import importlib.util
import json
import math
import sys
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from .loadgen import new_histogram, parse_duration
from .metrics import load_histograms

SCHEMA = "resilience-report/1"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PRICING = PROJECT_ROOT / "resources" / "pricing.json"
JSON_NAME = "resilience-report.json"
HTML_NAME = "resilience-report.html"

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


# ---------------------------------------------------------------------------------------------------------- charts
PALETTE = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#4d7c0f", "#be185d"]


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.3f} s"


def bar_chart(
    chart_id: str,
    title: str,
    groups: list[tuple[str, list[tuple[str, float]]]],
    unit: str,
    markers: dict[str, float] | None = None,
    width: int = 720,
    common_scale: bool = False,
) -> str:
    """Grouped horizontal bars; ``markers`` draws a target line per group (e.g. the SLA). Each group has its own
    scale unless ``common_scale``."""
    rows = sum(len(bars) for _, bars in groups)
    if not rows:
        return ""
    bar_h, gap, left, right = 16, 10, 230, 80
    height = rows * bar_h + len(groups) * gap + 40
    parts = [f'<text x="{left}" y="16" class="t">{_e(title)}</text>']
    y = 28
    for group, bars in groups:
        # Each group has its own scale (its largest bar or target fills the width): groups differ by orders of
        # magnitude (a warm start in ms, an auto-shutdown in s), and every value is printed beside its bar.
        peak = max([v for _, v in bars] + ([markers[group]] if markers and group in markers else []) + [1e-9])
        if common_scale:
            peak = max([v for _, b in groups for _, v in b] + list((markers or {}).values()) + [1e-9])
        scale = (width - left - right) / peak
        parts.append(f'<text x="4" y="{y + bar_h - 4}" class="g">{_e(group)}</text>')
        top = y
        for i, (label, value) in enumerate(bars):
            w = max(1.0, value * scale)
            color = PALETTE[i % len(PALETTE)]
            parts.append(
                f'<rect class="mark" x="{left}" y="{y}" width="{w:.1f}" height="{bar_h - 3}" fill="{color}">'
                f"<title>{_e(group)} {_e(label)}: {value:g} {unit}</title></rect>"
                f'<text x="{left - 6}" y="{y + bar_h - 5}" class="l" text-anchor="end">{_e(label)}</text>'
                f'<text x="{left + w + 4:.1f}" y="{y + bar_h - 5}" class="v">{value:.4g} {unit}</text>'
            )
            y += bar_h
        if markers and group in markers:
            x = left + markers[group] * scale
            parts.append(
                f'<line class="mark target" x1="{x:.1f}" x2="{x:.1f}" y1="{top - 2}" y2="{y + 1}" stroke="#111" '
                f'stroke-dasharray="4 3"><title>target {markers[group]:g} {unit}</title></line>'
            )
        y += gap
    return _figure(chart_id, width, height, parts)


def line_chart(
    chart_id: str,
    title: str,
    series: list[tuple[str, list[tuple[float, float]], bool]],
    x_label: str,
    y_label: str,
    log_x: bool = False,
    width: int = 720,
    height: int = 260,
    log_y: bool = False,
) -> str:
    """Lines over x; ``log_x`` plots percentiles as 1/(1-p) (the HdrHistogram percentile plot)."""
    series = [(n, pts, dashed) for n, pts, dashed in series if pts]
    if not series:
        return ""
    left, right, top, bottom = 60, 150, 26, 34

    def fx(x: float) -> float:
        return math.log10(1 / max(1e-6, 1 - min(x, 99.9999) / 100)) if log_x else x

    def fy(y: float) -> float:
        return math.log10(max(y, 0.1)) + 1 if log_y else y  # a log axis starts at 0.1

    xs = [fx(x) for _, pts, _ in series for x, _ in pts]
    ys = [fy(y) for _, pts, _ in series for _, y in pts]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y1 = max(ys) * 1.05 if max(ys) > 0 else 1
    sx = (width - left - right) / (x1 - x0)
    sy = (height - top - bottom) / y1
    top_label = f"{10 ** (y1 - 1):.3g}" if log_y else f"{y1:.3g}"
    bottom_label = "0.1" if log_y else "0"
    parts = [
        f'<text x="{left}" y="16" class="t">{_e(title)}</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#999"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#999"/>',
        f'<text x="{(left + width - right) / 2}" y="{height - 6}" class="l" text-anchor="middle">{_e(x_label)}</text>',
        f'<text x="12" y="{(top + height - bottom) / 2}" class="l" transform="rotate(-90 12 '
        f'{(top + height - bottom) / 2})" text-anchor="middle">{_e(y_label)}</text>',
        f'<text x="{left - 4}" y="{top + 4}" class="l" text-anchor="end">{top_label}</text>',
        f'<text x="{left - 4}" y="{height - bottom}" class="l" text-anchor="end">{bottom_label}</text>',
    ]
    if log_x:
        for pct in (50, 90, 99, 99.9, 99.99):
            if x0 <= fx(pct) <= x1:
                x = left + (fx(pct) - x0) * sx
                parts.append(
                    f'<text x="{x:.1f}" y="{height - bottom + 12}" class="l" text-anchor="middle">{pct:g}%</text>'
                )
    else:
        parts.append(f'<text x="{left}" y="{height - bottom + 12}" class="l">{x0:g}</text>')
        parts.append(f'<text x="{width - right}" y="{height - bottom + 12}" class="l" text-anchor="end">{x1:g}</text>')
    for i, (name, pts, dashed) in enumerate(series):
        color = PALETTE[(i // 2 if log_x else i) % len(PALETTE)]
        path = " ".join(
            f"{'M' if j == 0 else 'L'}{left + (fx(x) - x0) * sx:.1f},{height - bottom - fy(y) * sy:.1f}"
            for j, (x, y) in enumerate(pts)
        )
        dash = ' stroke-dasharray="5 4"' if dashed else ""
        parts.append(
            f'<path class="mark" d="{path}" fill="none" stroke="{color}" stroke-width="2"{dash}>'
            f"<title>{_e(name)}</title></path>"
        )
        ly = top + 12 * i + 8
        parts.append(
            f'<line x1="{width - right + 8}" x2="{width - right + 26}" y1="{ly}" y2="{ly}" stroke="{color}" '
            f'stroke-width="2"{dash}/><text x="{width - right + 30}" y="{ly + 4}" class="l">{_e(name)}</text>'
        )
    return _figure(chart_id, width, height, parts)


def _figure(chart_id: str, width: int, height: int, parts: list[str]) -> str:
    return (
        f'<figure class="chart" data-chart="{_e(chart_id)}"><svg xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">{"".join(parts)}</svg></figure>'
    )


# ---------------------------------------------------------------------------------------------------------- html
CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#111;max-width:1100px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f5} td:first-child,th:first-child{text-align:left}
.ok{color:#15803d;font-weight:600} .bad{color:#b91c1c;font-weight:600} .muted{color:#666}
figure.chart{margin:10px 0} svg .t{font-weight:600;font-size:13px} svg .l,svg .v,svg .g{font-size:11px}
svg .g{font-weight:600} #chart-status{font-size:12px;color:#666}
"""

SCRIPT = """
(function(){
  var figures = document.querySelectorAll('figure.chart');
  var rendered = 0;
  figures.forEach(function(f){
    var svg = f.querySelector('svg'); var marks = f.querySelectorAll('.mark');
    var box = svg && svg.getBBox ? svg.getBBox() : {width:0,height:0};
    var ok = marks.length > 0 && box.width > 0 && box.height > 0;
    f.setAttribute('data-rendered', ok ? 'yes' : 'no');
    if (ok) rendered++;
  });
  document.body.setAttribute('data-charts-expected', String(figures.length));
  document.body.setAttribute('data-charts-rendered', String(rendered));
  var s = document.getElementById('chart-status');
  if (s) s.textContent = rendered + ' of ' + figures.length + ' charts rendered';
})();
"""


def render_html(report: dict[str, Any]) -> str:
    perf, rel, costs, load = report["performance"], report["reliability"], report["costs"], report["load"]
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>Resilience report</title><style>{CSS}</style></head><body>",
        "<h1>Resilience report</h1>",
        f"<p class='muted'>Generated {_e(report['generatedAt'])}; "
        f"profile(s) {_e(', '.join(report['run']['profiles']) or '-')}; "
        f"run id(s) {_e(', '.join(report['run']['runIds']) or '-')}; merged from {report['run']['processes']} "
        "process(es). <a href='log.html'>Robot Framework log</a> · <a href='report.html'>report</a> · "
        f"<a href='{JSON_NAME}'>JSON</a>. <span id='chart-status'></span></p>",
    ]
    # Performance
    out.append("<h2>Performance</h2>")
    rows = [(k, v) for k, v in perf.items()]
    if rows:
        out.append(
            "<table><tr><th>measure</th><th>samples</th><th>mean</th><th>p50</th><th>p95</th><th>p99</th>"
            "<th>max</th><th>target</th></tr>"
        )
        for _, v in rows:
            target = v.get("target")
            cell = "-"
            if target:
                cls = "ok" if target["met"] else "bad"
                cell = (
                    f"<span class='{cls}'>{_e(target['statistic'])} &lt; {_fmt_s(target['allowed'])}: "
                    f"{'met' if target['met'] else 'missed'}</span>"
                )
            out.append(
                f"<tr><td>{_e(v['label'])}</td><td>{v['count']}</td><td>{_fmt_s(v['mean'])}</td>"
                f"<td>{_fmt_s(v['p50'])}</td><td>{_fmt_s(v['p95'])}</td><td>{_fmt_s(v['p99'])}</td>"
                f"<td>{_fmt_s(v['max'])}</td><td>{cell}</td></tr>"
            )
        out.append("</table>")
        groups = [
            (v["label"].split(" (")[0], [(s, v[s] * 1000) for s in ("mean", "p50", "p95", "p99")]) for _, v in rows
        ]
        markers = {v["label"].split(" (")[0]: v["target"]["allowed"] * 1000 for _, v in rows if v.get("target")}
        out.append(
            bar_chart(
                "performance", "Mean and percentiles (ms); dashed line: the profile's target", groups, "ms", markers
            )
        )
    else:
        out.append("<p class='muted'>No performance metrics were recorded in this run.</p>")
    # Load
    out.append("<h2>Load runs</h2>")
    if load["runs"]:
        out.append(
            "<table><tr><th>load</th><th>model</th><th>target rate</th><th>sent</th><th>ok</th><th>errors</th>"
            "<th>dropped</th><th>late</th><th>p50</th><th>p95</th><th>p99</th><th>p99 uncorrected</th></tr>"
        )
        for r in load["runs"]:
            lat, svc = r.get("latencyMs") or {}, r.get("serviceTimeMs") or {}
            rate = r.get("targetRate")
            out.append(
                f"<tr><td title='{_e(r.get('test') or '')}'>{_e(r['name'])}</td><td>{_e(r['model'])}</td>"
                f"<td>{f'{rate:.3g}/s' if rate else '-'}</td><td>{r['sent']}</td><td>{r['ok']}</td>"
                f"<td>{r['errors']}</td><td>{r['dropped']}</td><td>{r['late']}</td><td>{lat.get('p50')} ms</td>"
                f"<td>{lat.get('p95')} ms</td><td>{lat.get('p99')} ms</td><td>{svc.get('p99')} ms</td></tr>"
            )
        out.append("</table>")
    if load["histograms"]:
        series = []
        for name, h in load["histograms"].items():
            series.append((f"{name}", [(p, ms) for p, ms in h["curve"] if p < 100], False))
            if h.get("serviceCurve"):
                series.append((f"{name} (uncorrected)", [(p, ms) for p, ms in h["serviceCurve"] if p < 100], True))
        out.append(
            line_chart(
                "latency-percentiles",
                "Latency by percentile, merged over every process (dashed: uncorrected service time)",
                series,
                "percentile",
                "ms (log scale)",
                log_x=True,
                log_y=True,
                height=320,
            )
        )
        timelines = [r for r in load["runs"] if r.get("timeline")]
        if timelines:
            longest = sorted(timelines, key=lambda r: -len(r["timeline"]))[:4]
            series = [(f"{r['name']}: sent/s", [(p["t"], p["sent"]) for p in r["timeline"]], False) for r in longest]
            series += [
                (f"{r['name']}: errors/s", [(p["t"], p["errors"] + p.get("dropped", 0)) for p in r["timeline"]], True)
                for r in longest
                if any(p["errors"] or p.get("dropped") for p in r["timeline"])
            ]
            out.append(
                line_chart(
                    "load-timeline",
                    "Requests per second over each run (longest runs)",
                    series,
                    "seconds into the run",
                    "requests per second",
                )
            )
    if not load["runs"]:
        out.append("<p class='muted'>No load ran.</p>")
    # Reliability
    out.append("<h2>Reliability</h2>")
    req = rel["requests"]
    rate = f"{req['successRate'] * 100:.3f} %" if req["successRate"] is not None else "-"
    out.append(
        f"<p>Requests of the load runs: {req['total']} answered, {req['ok']} ok: success rate <b>{rate}</b> "
        "(refusals that a test provokes on purpose, such as 429 beyond a full platform's ceiling, count as not ok; "
        "see the categories below)."
    )
    if rel.get("tests"):
        t = rel["tests"]
        pass_rate = f"{t['passRate'] * 100:.1f} %" if t.get("passRate") is not None else "-"
        out.append(
            f" Tests: {t['passed']} passed, {t['failed']} failed, {t['skipped']} skipped (pass rate {pass_rate})."
        )
    out.append("</p>")
    if rel["recovery"]:
        out.append("<table><tr><th>recovery</th><th>samples</th><th>mean</th><th>p50</th><th>p95</th><th>max</th></tr>")
        for name, v in rel["recovery"].items():
            out.append(
                f"<tr><td>{_e(name)}</td><td>{v['count']}</td><td>{_fmt_s(v['mean'])}</td>"
                f"<td>{_fmt_s(v['p50'])}</td><td>{_fmt_s(v['p95'])}</td><td>{_fmt_s(v['max'])}</td></tr>"
            )
        out.append("</table>")
        out.append(
            bar_chart(
                "recovery",
                "Recovery times (s)",
                [(n, [("mean", v["mean"]), ("p95", v["p95"]), ("max", v["max"])]) for n, v in rel["recovery"].items()],
                "s",
            )
        )
    errors = rel["errorsByCategory"]
    outcome_groups = [("requests", [("ok", float(req["ok"]))] + [(k, float(v)) for k, v in errors.items()])]
    if rel.get("tests"):
        t = rel["tests"]
        outcome_groups.append(
            (
                "tests",
                [("passed", float(t["passed"])), ("failed", float(t["failed"])), ("skipped", float(t["skipped"]))],
            )
        )
    out.append(bar_chart("outcomes", "Outcomes: requests by category, tests by status (count)", outcome_groups, ""))
    if rel.get("tests") and rel["tests"]["failures"]:
        out.append("<details><summary>Failed tests</summary><ul>")
        for f in rel["tests"]["failures"]:
            out.append(f"<li><b>{_e(f['test'])}</b>: {_e(f['message'])}</li>")
        out.append("</ul></details>")
    # Costs
    out.append("<h2>Costs</h2>")
    pr = costs["pricing"]
    per = costs["perSessionUsd"]
    verdict = "ok" if costs["withinBudget"] else "bad"
    measured = f"${per['measured']:.6f}" if per["measured"] is not None else "-"
    out.append(
        f"<p>{costs['sessionsMeasured']} sessions measured: {costs['containerSeconds']:.1f} container-seconds, "
        f"{costs['vcpuHours']:.6f} vCPU-hours and {costs['gbHours']:.6f} GB-hours (task {pr['task_vcpu']} vCPU, "
        f"{pr['task_memory_gb']} GB), {costs['dynamodb']['writeRequestUnits']:g} DynamoDB write and "
        f"{costs['dynamodb']['readRequestUnits']:g} read request units. Cost of this run: "
        f"${costs['costUsd']['total']:.6f}. Per session as measured: {measured}; a typical "
        f"{per['typicalSessionHours']:g} h session: <b>${per['typical']:.4f}</b> against the budget of "
        f"${costs['budgetPerSessionUsd']:.2f}: <span class='{verdict}'>"
        f"{'within budget' if costs['withinBudget'] else 'over budget'}</span>.</p>"
        f"<p class='muted'>Prices as of {_e(pr['as_of'])} ({_e(pr['region'])}): {_e(pr.get('source', ''))}</p>"
    )
    out.append(
        bar_chart(
            "cost-per-session",
            "Estimated cost per session (USD); dashed line: the budget",
            [
                ("typical session", [("Fargate + DynamoDB", per["typical"])]),
                ("measured session", [("Fargate + DynamoDB", per["measured"] or 0.0)]),
            ],
            "USD",
            {"typical session": costs["budgetPerSessionUsd"], "measured session": costs["budgetPerSessionUsd"]},
            common_scale=True,
        )
    )
    out.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(part for part in out if part)


def write_report(results: Path, **kwargs: Any) -> tuple[Path, Path]:
    report = build(results, **kwargs)
    results.mkdir(parents=True, exist_ok=True)
    json_path, html_path = results / JSON_NAME, results / HTML_NAME
    json_path.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    html_path.write_text(render_html(report), encoding="utf-8")
    return json_path, html_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m PlatformLibrary.reportgen",
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
