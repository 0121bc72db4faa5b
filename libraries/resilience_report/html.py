"""The resilience report's HTML page: inline SVG charts, tables, a few lines of inline script; nothing fetched.

``render_html(report)`` turns the dictionary that :mod:`resilience_report.build` builds into one
self-contained page; the charts themselves (axes, lines, bars) are drawn by :mod:`resilience_report.charts`.
"""

from __future__ import annotations

import html
from typing import Any

from PlatformLibrary.core.profile import counted
from PlatformLibrary.core.stats import samples_needed

from .charts import CHART_CSS, MAX_SERIES, PALETTE, Rule, Series, bar_chart, line_chart

JSON_NAME = "resilience-report.json"
HTML_NAME = "resilience-report.html"


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.3f} s"


def _pct_cell(pct: float, value: float | None, count: int, top: float | None, fmt=_fmt_s) -> str:
    """A percentile over ``count`` samples; over too few to define it, the max, said as ``max of N``."""
    if count < samples_needed(pct):
        return f"{fmt(top)} <span class='note'>(max of {count})</span>"
    return fmt(value)


# ---------------------------------------------------------------------------------------------------------- html
CSS = (
    """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#111;max-width:1100px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f5} td:first-child,th:first-child{text-align:left}
.ok{color:#15803d;font-weight:600} .bad{color:#b91c1c;font-weight:600} .muted{color:#666}
.note{font-size:12px;color:#333} .test{display:block;font-size:12px;color:#333}
#verdict{font-size:28px;font-weight:700;padding:6px 14px;display:inline-block;border-radius:4px;margin:10px 0 4px}
#verdict.PASS{background:#dcfce7;color:#14532d} #verdict.FAIL{background:#fee2e2;color:#7f1d1d}
#verdict.INCOMPLETE{background:#fef3c7;color:#78350f}
.banner{border-left:4px solid #d97706;background:#fffbeb;padding:6px 10px;margin:8px 0}
table.scorecard td,table.scorecard th{vertical-align:top;text-align:left} table.scorecard td.bound{color:#111}
.v{font-weight:700;text-transform:uppercase;white-space:nowrap} .v.pass{color:#15803d} .v.fail{color:#b91c1c}
.v.skipped{color:#b45309} .v.not-run{color:#6d28d9}
ul.failed li{margin:4px 0}
h3{font-size:15px;margin:18px 0 2px} .run{margin:16px 0 4px}
footer{margin-top:32px;border-top:1px solid #ddd;padding-top:6px}
#chart-status{font-size:12px;color:#666}
"""
    + CHART_CSS
)

SCRIPT = """
(function(){
  // A chart rendered when every series it announces (data-series) drew something: a line, a point or a bar.
  var figures = document.querySelectorAll('figure.chart');
  var rendered = 0;
  figures.forEach(function(f){
    var expected = parseInt(f.getAttribute('data-series') || '0', 10);
    var drawn = 0;
    f.querySelectorAll('svg .series').forEach(function(g){
      var box = g.getBBox ? g.getBBox() : {width:0,height:0};
      if (box.width > 0 || box.height > 0) drawn++;
    });
    var ok = expected > 0 && drawn === expected;
    f.setAttribute('data-drawn', String(drawn));
    f.setAttribute('data-rendered', ok ? 'yes' : 'no');
    if (ok) rendered++;
  });
  document.body.setAttribute('data-charts-expected', String(figures.length));
  document.body.setAttribute('data-charts-rendered', String(rendered));
  var s = document.getElementById('chart-status');
  if (s) s.textContent = rendered + ' of ' + figures.length + ' charts rendered';
})();
"""


def _test_link(name: str, link: str | None, status: str | None = None) -> str:
    shown = f"{_e(name)}" + (f" ({_e(status)})" if status else "")
    return f"<a class='test' href='{_e(link)}'>{shown}</a>" if link else f"<span class='test'>{shown}</span>"


def render_scorecard(report: dict[str, Any]) -> list[str]:
    """The overall verdict, the stand-in banner and one row per target of the seed; verdicts are the tests'."""
    card = report.get("scorecard")
    if not card:
        return []
    out = [
        f"<div id='verdict' class='{_e(card['verdict'])}' data-verdict='{_e(card['verdict'])}'>"
        f"{_e(card['verdict'])}</div>",
        f"<p id='verdict-summary'>{_e(card['summary'])} Verdicts are the tests' own results (output.xml); a row "
        "links to the tests that assert it.</p>",
    ]
    profile, seed = card.get("profile") or "unknown", card.get("seedProfile")
    if card.get("standIn"):
        out.append(
            f"<p class='banner' id='stand-in'>Profile <b>{_e(profile)}</b>: its bounds stand in for the seed's "
            f"(the <b>{_e(seed)}</b> profile's) on the embedded platform. Tests assert the profile's bounds; the seed "
            "column shows what the platform on AWS is held to.</p>"
        )
    out.append(
        "<table class='scorecard' id='scorecard'><tr><th>target</th><th>measured</th><th>samples</th>"
        f"<th>bound ({_e(profile)})</th><th>seed bound ({_e(seed)})</th><th>verdict</th><th>asserted by</th></tr>"
    )
    for row in card["rows"]:
        measured = row.get("measured") or {}
        verdict = row["verdict"]
        note = f"<span class='note'>{_e(row['note'])}</span>" if row.get("note") else ""
        several = len(row["testResults"]) > 1
        tests = (
            "".join(_test_link(t["name"], t["link"], t["status"] if several else None) for t in row["testResults"])
            or f"<span class='note'>no test matching <code>{_e(row['tests'])}</code> in this run</span>"
        )
        out.append(
            f"<tr data-row='{_e(row['key'])}' data-verdict='{_e(verdict)}'><td>{_e(row['target'])}</td>"
            f"<td>{_e(measured.get('text') or '-')}</td><td>{_e(row['samples'] if row['samples'] is not None else '-')}"
            f"</td><td class='bound'>{_e(row['profileBound'] or '-')}</td>"
            f"<td class='bound'>{_e(row['seedBound'] or '-')}</td>"
            f"<td><span class='v {_e(verdict.replace(' ', '-'))}'>{_e(verdict)}</span> {note}</td><td>{tests}</td></tr>"
        )
    out.append("</table>")
    return out


def render_failures(report: dict[str, Any]) -> list[str]:
    """Every failed test with its message and its link into log.html, expanded."""
    tests = report["reliability"].get("tests")
    out = ["<h2 id='failed-tests'>Failed tests</h2>"]
    if tests is None:
        return [*out, "<p class='muted'>No output.xml: no test results.</p>"]
    if not tests["failures"]:
        return [*out, f"<p>None: {tests['passed']} passed, {tests['skipped']} skipped.</p>"]
    out.append("<ul class='failed'>")
    for f in tests["failures"]:
        name = f.get("longName") or f["test"]
        link = f" <a href='{_e(f['link'])}'>log.html#{_e(f['id'])}</a>" if f.get("link") else ""
        out.append(f"<li><b>{_e(name)}</b>{link}<br>{_e(f['message'])}</li>")
    if tests.get("failuresLeftOut"):
        out.append(f"<li>… and {tests['failuresLeftOut']} more (see log.html)</li>")
    out.append("</ul>")
    return out


def stat_bars(
    v: dict[str, Any], pcts: tuple[int, ...], scale: float, with_max: bool = False
) -> list[tuple[str, float]]:
    """The bars of a stats object: the mean, each percentile its sample count defines and, for those it does not
    (``core.stats.samples_needed``: p95 20, p99 100), one bar of the max, labelled so; ``with_max`` adds the max."""
    n, top = int(v["count"]), float(v["max"])
    undefined = [p for p in pcts if n < samples_needed(p)]
    bars = [("mean", v["mean"] * scale)]
    bars += [(f"p{p}", min(float(v[f"p{p}"]), top) * scale) for p in pcts if p not in undefined]
    if undefined:
        bars.append((f"max of {n} (for {', '.join(f'p{p}' for p in undefined)})", top * scale))
    elif with_max:
        bars.append(("max", top * scale))
    return bars


SMALL = {"width": 350, "height": 230}  # three charts of a load run side by side


def _ms(value: float) -> str:
    return f"{value:.4g} ms" if value < 1000 else f"{value / 1000:.4g} s"


def render_runs_over_time(runs: list[dict[str, Any]]) -> list[str]:
    """Per load run, over its time (``series``, one point per interval): latency percentiles with the bound its
    test asserted, answers per second, and requests in flight (the users busy) with the run's limit."""
    out: list[str] = []
    shown = [r for r in runs if (r.get("series") or {}).get("points")]
    if shown:
        out.append(
            "<h3 id='over-time'>Each load run over time</h3><p class='note'>One point per interval (answers counted "
            "when they came back). An open circle is the interval's max: it had too few answers to define that "
            "percentile (p95 needs 20, p99 100).</p>"
        )
    for i, r in enumerate(shown, 1):
        series, test = r["series"], r.get("testName") or r.get("test") or ""
        points, width = series["points"], float(series.get("intervalS") or 1.0)
        per = "second" if width == 1 else f"{width:g} s"
        link = f" <a href='log.html#{_e(r['testId'])}'>log</a>" if r.get("testId") else ""
        rate = f", {r['targetRate']:.3g}/s" if r.get("targetRate") else ""
        out.append(
            f"<div class='run' id='run-{i}'><b>{_e(r['name'])}</b> <span class='muted'>{_e(test)}{link} · "
            f"{_e(r['model'])}{rate}, {r.get('durationS')} s, {len(points)} points of {width:g} s</span>"
            "<div class='charts'>"
        )
        latency = []
        for pct, color in (("p50", PALETTE[0]), ("p95", PALETTE[1]), ("p99", PALETTE[3])):
            hollow = {j for j, p in enumerate(points) if pct in (p.get("percentilesUndefined") or [])}
            note = "max of an interval with too few answers for the percentile"
            latency.append(Series(pct, [(p["t"], p.get(f"{pct}Ms")) for p in points], color, False, hollow, note))
        bounds = [
            Rule(b["allowedMs"], f"bound: {b['statistic']} < {_ms(b['allowedMs'])}")
            for b in r.get("latencyBounds") or []
        ]
        out.append(
            line_chart(f"run-{i}-latency", "Latency over time", latency, "s into the run", "ms", bounds, **SMALL)
        )
        flow = [
            Series("ok answers", [(p["t"], p["ok"] / width) for p in points], PALETTE[2]),
            Series("sent", [(p["t"], p["sent"] / width) for p in points], PALETTE[7], dashed=True),
        ]
        if any(p["errors"] for p in points):
            flow.append(Series("errors", [(p["t"], p["errors"] / width) for p in points], PALETTE[3]))
        rules = []
        if r.get("model") == "constant-arrival-rate" and r.get("targetRate"):
            rules.append(Rule(float(r["targetRate"]), f"schedule {r['targetRate']:.3g}/s", PALETTE[7]))
        out.append(
            line_chart(
                f"run-{i}-throughput",
                "Throughput: answers and sends",
                flow,
                "s into the run",
                f"per {per}",
                rules,
                **SMALL,
            )
        )
        users = [
            Series("in flight (mean)", [(p["t"], p["inFlightMean"]) for p in points], PALETTE[4]),
            Series("in flight (max)", [(p["t"], p["inFlightMax"]) for p in points], PALETTE[4], dashed=True),
        ]
        # The run's ceiling (closed: its users; open: max VUs) is drawn when the run came near it, else named in
        # the title: a line at 50 would flatten a curve that never passed 3.
        limit = int(r.get("users") or 0)
        what = counted(limit, "user") if r.get("model") == "closed" else f"max VUs {limit}"
        near = limit and max(p["inFlightMax"] for p in points) * 2 >= limit
        out.append(
            line_chart(
                f"run-{i}-users",
                "Users: requests in flight" + (f" ({what})" if limit and not near else ""),
                users,
                "s into the run",
                "requests in flight",
                [Rule(limit, what, "#6b7280")] if near else [],
                y_integer=True,
                **SMALL,
            )
        )
        out.append("</div></div>")
    return out


def render_percentile_charts(histograms: dict[str, Any]) -> list[str]:
    """Latency by percentile per load name, merged over every process: at most four names per chart, each in its
    own colour, corrected (solid) and uncorrected service time (dashed)."""
    names = list(histograms)
    per_chart = MAX_SERIES // 2
    out = ["<div class='charts'>"] if names else []
    for start in range(0, len(names), per_chart):
        series = []
        for i, name in enumerate(names[start : start + per_chart]):
            h, color = histograms[name], PALETTE[i]
            series.append(Series(name, [(p, ms) for p, ms in h["curve"] if p < 100], color))
            if h.get("serviceCurve"):
                service = [(p, ms) for p, ms in h["serviceCurve"] if p < 100]
                series.append(Series(f"{name} (uncorrected)", service, color, dashed=True))
        part = f" ({start // per_chart + 1} of {-(-len(names) // per_chart)})" if len(names) > per_chart else ""
        out.append(
            line_chart(
                "latency-percentiles" + (f"-{start // per_chart + 1}" if start else ""),
                f"Latency by percentile, every process{part}",
                series,
                "percentile (log scale towards 100 %)",
                "ms (log scale)",
                log_x=True,
                log_y=True,
                width=540,
                height=300,
            )
        )
    return [*out, "</div>"] if names else []


UTILISATION_LABELS = {
    "cpuPercent": "containers' CPU (of their reservation)",
    "memoryPercent": "containers' memory (of their reservation)",
    "hostCpuPercent": "platform's CPU share of the machine",
    "hostMemoryPercent": "platform's memory share of the machine",
}


def render_utilisation(report: dict[str, Any]) -> list[str]:
    """CPU and memory: max and mean over every sample, and each sampling window over time with the bounds (CPU's
    applies to the window's mean, memory's to its peak, as `Resource Utilisation Should Be Below` asserts)."""
    stats, sampled = report.get("utilisation") or {}, report.get("utilisationSeries") or {}
    if not stats and not sampled.get("windows"):
        return []
    bounds = sampled.get("bounds") or {}
    out = [
        "<h2 id='utilisation'>Resource utilisation</h2>",
        "<table><tr><th>figure</th><th>max</th><th>mean</th><th>samples</th><th>bound</th></tr>",
    ]
    for key, v in stats.items():
        cpu = key in ("cpuPercent", "hostCpuPercent")  # the CPU bound is on the mean, the memory bound on the peak
        bound, basis = (bounds.get("cpuPercent"), "mean") if cpu else (bounds.get("memoryPercent"), "peak")
        out.append(
            f"<tr><td>{_e(UTILISATION_LABELS.get(key, key))}</td><td>{v['max']:.1f} %</td><td>{v['mean']:.1f} %</td>"
            f"<td>{v.get('samples', '-')}</td><td>{f'{basis} &lt; {bound:g} %' if bound is not None else '-'}</td></tr>"
        )
    out.append("</table><div class='charts'>")
    cpu_color, memory_color = PALETTE[0], PALETTE[1]
    for i, w in enumerate(sampled.get("windows") or [], 1):
        points = w.get("points") or []
        lines = []
        for key, name, color, dashed in (
            ("cpuPercent", "containers' CPU", cpu_color, False),
            ("hostCpuPercent", "platform CPU share", cpu_color, True),
            ("memoryPercent", "containers' memory", memory_color, False),
            ("hostMemoryPercent", "platform memory share", memory_color, True),
        ):
            if any(key in p for p in points):
                lines.append(Series(name, [(p["t"], p.get(key)) for p in points], color, dashed))
        rules = []
        if "cpuPercent" in bounds:
            rules.append(Rule(bounds["cpuPercent"], f"CPU bound {bounds['cpuPercent']:g} % (mean)", cpu_color))
        if "memoryPercent" in bounds:
            rules.append(
                Rule(bounds["memoryPercent"], f"memory bound {bounds['memoryPercent']:g} % (peak)", memory_color)
            )
        test = w.get("testName") or w.get("test") or "sampling window"
        every = f" every {float(w['intervalS']):g} s" if w.get("intervalS") else ""
        source = "CloudWatch datapoints" if w.get("source") == "cloudwatch" else f"psutil{every}"
        out.append(
            line_chart(
                f"utilisation-{i}",
                f"CPU and memory over time: {test}",
                lines,
                f"s into the window ({source})",
                "% used",
                rules,
                width=540,
                height=280,
                y_max=100,
            )
        )
    out.append("</div>")
    return out


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
        f"<a href='{JSON_NAME}'>JSON</a>.</p>",
        *render_scorecard(report),
        *render_failures(report),
    ]
    # Performance
    out.append("<h2>Performance</h2>")
    rows = [(k, v) for k, v in perf.items()]
    if rows:
        out.append(
            "<table><tr><th>measure</th><th>samples</th><th>mean</th><th>p50</th><th>p95</th><th>p99</th>"
            "<th>max</th><th>bound</th></tr>"
        )
        for _, v in rows:
            # The bound only: verdicts come from the tests, in the scorecard.
            target = v.get("target")
            cell = "-"
            if target:
                wanted = target.get("bound") or target["statistic"]
                cell = f"{_e(wanted)} &lt; {_fmt_s(target['allowed'])}"
                if wanted != target["statistic"]:
                    cell += f" <span class='note'>(the max of {v['count']} stands in)</span>"
            n = v["count"]
            out.append(
                f"<tr><td>{_e(v['label'])}</td><td>{n}</td><td>{_fmt_s(v['mean'])}</td>"
                f"<td>{_pct_cell(50, v['p50'], n, v['max'])}</td><td>{_pct_cell(95, v['p95'], n, v['max'])}</td>"
                f"<td>{_pct_cell(99, v['p99'], n, v['max'])}</td><td>{_fmt_s(v['max'])}</td><td>{cell}</td></tr>"
            )
        out.append("</table>")
        groups = [(v["label"].split(" (")[0], stat_bars(v, (50, 95, 99), 1000)) for _, v in rows]
        markers = {v["label"].split(" (")[0]: v["target"]["allowed"] * 1000 for _, v in rows if v.get("target")}
        labels = {
            v["label"].split(" (")[0]: f"bound: {v['target'].get('bound') or v['target']['statistic']} < "
            f"{_fmt_s(v['target']['allowed'])}"
            for _, v in rows
            if v.get("target")
        }
        out.append(
            bar_chart(
                "performance",
                "Mean and percentiles per measure (ms), each on its own axis; red dashed line: the profile's bound",
                groups,
                "ms",
                markers,
                marker_labels=labels,
            )
        )
    else:
        out.append("<p class='muted'>No performance metrics were recorded in this run.</p>")
    # Load
    out.append("<h2>Load runs</h2>")
    if load["runs"]:
        out.append(
            "<table id='load-runs'><tr><th>load (test that ran it)</th><th>model</th><th>target rate</th><th>sent</th>"
            "<th>ok</th><th>errors</th><th>dropped</th><th>late</th><th>p50</th><th>p95</th><th>p99</th>"
            "<th>p99 uncorrected</th><th>target (bound)</th><th>verdict</th></tr>"
        )
        for r in load["runs"]:
            lat, svc = r.get("latencyMs") or {}, r.get("serviceTimeMs") or {}
            rate, n = r.get("targetRate"), int(r.get("completed") or 0)
            test = r.get("testName") or r.get("test")
            link = f"log.html#{r['testId']}" if r.get("testId") else None
            verdict = r.get("verdict")
            shown = f"<span class='v {_e(verdict.replace(' ', '-'))}'>{_e(verdict)}</span>" if verdict else "-"

            def ms(value: float | None) -> str:
                return "-" if value is None else f"{value:g} ms"

            out.append(
                f"<tr><td>{_e(r['name'])}{_test_link(test, link) if test else ''}</td><td>{_e(r['model'])}</td>"
                f"<td>{f'{rate:.3g}/s' if rate else '-'}</td><td>{r['sent']}</td><td>{r['ok']}</td>"
                f"<td>{r['errors']}</td><td>{r['dropped']}</td><td>{r['late']}</td>"
                f"<td>{_pct_cell(50, lat.get('p50'), n, lat.get('max'), ms)}</td>"
                f"<td>{_pct_cell(95, lat.get('p95'), n, lat.get('max'), ms)}</td>"
                f"<td>{_pct_cell(99, lat.get('p99'), n, lat.get('max'), ms)}</td>"
                f"<td>{_pct_cell(99, svc.get('p99'), n, svc.get('max'), ms)}</td>"
                f"<td>{_e(r.get('target') or '-')}</td><td>{shown}</td></tr>"
            )
        out.append("</table>")
    out += render_runs_over_time(load["runs"])
    out += render_percentile_charts(load["histograms"])
    if not load["runs"]:
        out.append("<p class='muted'>No load ran.</p>")
    out += render_utilisation(report)
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
            n = v["count"]
            out.append(
                f"<tr><td>{_e(name)}</td><td>{n}</td><td>{_fmt_s(v['mean'])}</td>"
                f"<td>{_pct_cell(50, v['p50'], n, v['max'])}</td><td>{_pct_cell(95, v['p95'], n, v['max'])}</td>"
                f"<td>{_fmt_s(v['max'])}</td></tr>"
            )
        out.append("</table>")
        bounds = {n: v["target"]["allowed"] for n, v in rel["recovery"].items() if v.get("target")}
        out.append(
            bar_chart(
                "recovery",
                "Recovery times (s), one scale; red dashed line: the profile's bound",
                [(n, stat_bars(v, (95,), 1, with_max=True)) for n, v in rel["recovery"].items()],
                "s",
                bounds,
                common_scale=True,
                marker_labels={n: f"bound: max < {_fmt_s(b)}" for n, b in bounds.items()},
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
    out.append(
        bar_chart(
            "outcomes",
            "Outcomes: requests by category, tests by status (each on its own axis)",
            outcome_groups,
            "",
            axis_title="count",
        )
    )
    if rel.get("tests") and rel["tests"]["failures"]:
        failed = rel["tests"]["failed"]
        out.append(f"<p><a href='#failed-tests'>{failed} failed tests</a>: listed under the scorecard.</p>")
    # Costs
    out.append("<h2>Costs</h2>")
    pr, measured, est = costs["pricing"], costs["measured"], costs["estimate"]
    budget = costs["budgetPerSessionUsd"]
    verdict = {"within budget": "ok", "over budget": "bad"}.get(costs["verdict"], "muted")
    if measured["count"]:
        unbounded = f", {measured['unbounded']} whose billing never ended" if measured["unbounded"] else ""
        head = (
            f"Cost per session, measured: max <b>${measured['maxUsd']:.4f}</b> over {measured['count']} session(s)"
            f"{unbounded} (metric session_cost: a typical {pr['typicalSessionHours']:g} h session priced from a "
            "session's measured billed time)"
        )
    else:
        head = "Cost per session: not measured (no test recorded the metric session_cost)"
    out.append(
        f"<p>{head}; budget ${budget:.2f}: <span class='{verdict}'>{_e(costs['verdict'])}</span>.</p>"
        f"<p class='muted'>Task {pr['taskVcpu']:g} vCPU, {pr['taskMemoryGb']:g} GB; prices valid from "
        f"{_e(pr['validFrom'])} ({_e(pr['region'])}, {_e(pr['file'])}): {_e(pr.get('source', ''))}</p>"
    )
    if measured["samples"]:
        out.append("<table><tr><th>test</th><th>cost (USD)</th><th>billed</th><th>after delete</th><th></th></tr>")
        for sample in measured["samples"]:
            billed = f"{sample['billedSeconds'] / 3600:.4f} h" if sample["billedSeconds"] is not None else "-"
            tail = _fmt_s(sample["afterDeleteSeconds"]) if sample["afterDeleteSeconds"] is not None else "-"
            state = "ok" if sample["withinBudget"] else "bad"
            word = "within" if sample["withinBudget"] else ("billing never ended" if not sample["bounded"] else "over")
            out.append(
                f"<tr><td>{_e(sample['test'] or '-')}</td><td>{sample['valueUsd']:.4f}</td><td>{billed}</td>"
                f"<td>{tail}</td><td class='{state}'>{word}</td></tr>"
            )
        out.append("</table>")
    out.append(
        f"<p class='muted'><b>Estimate</b> ({_e(est['label'])}): a typical session ${est['typicalSessionUsd']:.4f}. "
        f"This run's own sessions: {est['sessionsMeasured']} measured, {est['containerSeconds']:.1f} "
        f"container-seconds, {est['dynamodb']['writeRequestUnits']:g} DynamoDB write and "
        f"{est['dynamodb']['readRequestUnits']:g} read request units, ${est['costUsd']['total']:.6f} in all.</p>"
    )
    groups = [("estimate: typical session", [("Fargate + DynamoDB (constants)", est["typicalSessionUsd"])])]
    if measured["count"]:
        groups.insert(0, ("measured: typical session", [("Fargate, measured billed time (max)", measured["maxUsd"])]))
    out.append(
        bar_chart(
            "cost-per-session",
            "Cost per session (USD); dashed line: the budget",
            groups,
            "USD",
            {name: budget for name, _ in groups},
            common_scale=True,
        )
    )
    out.append("<footer><p id='chart-status' class='muted'></p></footer>")
    out.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(part for part in out if part)
