"""The resilience report's HTML page: inline SVG charts, tables, a few lines of inline script; nothing fetched.

``render_html(report)`` turns the dictionary that :mod:`PlatformLibrary.report.build` builds into one
self-contained page.
"""

from __future__ import annotations

import html
import math
from typing import Any

JSON_NAME = "resilience-report.json"
HTML_NAME = "resilience-report.html"


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
