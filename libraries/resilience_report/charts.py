"""Inline SVG charts for the resilience report: line charts over time or percentile, horizontal bar charts.

Made to be read by someone who was not there: every axis has 4-6 "nice" ticks (1, 2, 2.5, 5 x 10^n) with grid
lines and a title with its unit; values that are compared share one scale (measured and its bound in one bar
group, every group when ``common_scale``); a chart holds at most ``MAX_SERIES`` lines in ten distinct colours; the
legend is HTML under the chart, so it wraps instead of being cut. Nothing is fetched: the page stays offline.

Every drawn series is a ``<g class="mark series">`` and every figure says how many it should hold
(``data-series``), so the page's script (and ``tests/test_report_render.py``) can check that each one drew.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# Ten distinct colours (Tableau 10): a chart with more series than this is split by its caller.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
MAX_SERIES = 8
BOUND_COLOR = "#b91c1c"
# Bars of the same statistic or outcome keep their colour in every chart.
STAT_COLORS = {
    "mean": PALETTE[0],
    "p50": PALETTE[1],
    "p95": PALETTE[2],
    "p99": PALETTE[4],
    "max": PALETTE[5],
    "ok": PALETTE[2],
    "passed": PALETTE[2],
    "failed": PALETTE[3],
    "skipped": PALETTE[8],
}
_NICE_STEPS = (1.0, 2.0, 2.5, 5.0)


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


# ---------------------------------------------------------------------------------------------------------- ticks
def nice_ticks(low: float, high: float, integer: bool = False) -> list[float]:
    """4 to 6 evenly spaced ticks covering ``low`` .. ``high``, on a step of 1, 2, 2.5 or 5 x 10^n (``integer``:
    whole steps only, for counts). The first tick is at or below ``low``, the last at or above ``high``."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"Ticks need finite bounds, got {low}, {high}.")
    low, high = min(low, high), max(low, high)
    if high == low:  # one value: a range around it that starts at zero when it can
        high = low + (abs(low) or 1.0)
        low = min(low, 0.0) if low >= 0 else low - abs(low)
    exponent = math.floor(math.log10((high - low) / 5)) - 1
    for _ in range(40):  # steps grow tenfold per round: a step as wide as the range always fits
        for base in _NICE_STEPS:
            step = base * 10.0**exponent
            if integer and (step < 1 or step != int(step)):
                continue
            first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
            if last - first + 1 <= 6:
                ticks = [_clean(k * step) for k in range(first, last + 1)]
                while len(ticks) < 4:  # a range that fits in fewer steps: widen upwards
                    ticks.append(_clean(ticks[-1] + step))
                return ticks
        exponent += 1
    raise AssertionError(f"no nice ticks for {low} .. {high}")  # unreachable


def _clean(value: float) -> float:
    """A tick without float noise (0.30000000000000004 -> 0.3)."""
    return float(f"{value:.12g}")


def log_ticks(low: float, high: float) -> list[float]:
    """Ticks of a log axis: the decades covering ``low`` .. ``high`` (both above zero), with 2 and 5 in between
    when it spans fewer than three decades."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    if last == first:
        last += 1
    decades = [10.0**k for k in range(first, last + 1)]
    if last - first >= 3:
        return [_clean(v) for v in decades]
    ticks = [_clean(d * m) for d in decades[:-1] for m in (1, 2, 5)] + [_clean(decades[-1])]
    return ticks


def fmt_tick(value: float) -> str:
    """A tick label: ``0.25``, ``5``, ``1500``, ``2.5k`` from 10 000 up."""
    if abs(value) >= 10_000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


# ---------------------------------------------------------------------------------------------------------- lines
@dataclass
class Series:
    """One line: ``points`` as (x, y), a ``None`` y breaks the line (nothing to show there); ``hollow`` indexes of
    points drawn as open circles (e.g. a max that stands in for a percentile too few samples define), explained by
    ``hollow_note`` in the legend."""

    name: str
    points: list[tuple[float, float | None]]
    color: str | None = None
    dashed: bool = False
    hollow: set[int] = field(default_factory=set)
    hollow_note: str = ""


@dataclass
class Rule:
    """A horizontal reference line across the plot, e.g. an SLA bound, labelled on the plot and in the legend."""

    value: float
    label: str
    color: str = BOUND_COLOR


def legend(items: Sequence[tuple[str, str, str]]) -> str:
    """HTML legend under a chart (wraps): (label, colour, style) with style ``solid``, ``dashed``, ``dotted`` or
    ``hollow`` (an open circle)."""
    parts = []
    for label, color, style in items:
        if style == "hollow":
            swatch = f"<span class='sw dot' style='border-color:{_e(color)}'></span>"
        else:
            swatch = f"<span class='sw' style='border-top:2px {_e(style)} {_e(color)}'></span>"
        parts.append(f"<span class='item'>{swatch}{_e(label)}</span>")
    return f"<div class='legend'>{''.join(parts)}</div>" if parts else ""


def line_chart(
    chart_id: str,
    title: str,
    series: list[Series],
    x_title: str,
    y_title: str,
    rules: Sequence[Rule] = (),
    log_x: bool = False,
    log_y: bool = False,
    width: int = 720,
    height: int = 280,
    y_integer: bool = False,
    y_min: float | None = 0.0,
    y_max: float | None = None,
) -> str:
    """Lines over x with nice ticks, grid lines, axis titles and a wrapping legend; ``rules`` draw bounds.

    ``log_x`` plots percentiles as 1/(1-p) (the HdrHistogram percentile plot); ``log_y`` a log value axis. At most
    ``MAX_SERIES`` series (split a larger set over several charts). The value axis starts at ``y_min`` (``None``:
    at the data) and reaches at least ``y_max`` (e.g. 100 for percentages).
    """
    series = [s for s in series if any(y is not None for _, y in s.points)]
    if not series:
        return ""
    if len(series) > MAX_SERIES:
        raise ValueError(f"Chart {chart_id!r} has {len(series)} series; split it (at most {MAX_SERIES}).")
    left, right, top, bottom = 58, 30, 10, 44
    plot_w, plot_h = width - left - right, height - top - bottom

    def fx(x: float) -> float:
        return math.log10(1 / max(1e-6, 1 - min(x, 99.9999) / 100)) if log_x else x

    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points if y is not None] + [r.value for r in rules]
    ys += [y_max] if y_max is not None else []
    if log_y:
        positive = [y for y in ys if y > 0] or [1.0]
        y_ticks = log_ticks(min(positive), max(positive))
        floor_y = y_ticks[0]

        def fy(y: float) -> float:
            return math.log10(max(y, floor_y))

    else:
        low = min(ys) if y_min is None else min(min(ys), y_min)
        y_ticks = nice_ticks(low, max(ys), integer=y_integer)

        def fy(y: float) -> float:
            return y

    if log_x:
        x_ticks = [p for p in (50, 90, 99, 99.9, 99.99, 99.999) if min(xs) <= p <= max(xs)] or [min(xs)]
        x0, x1 = fx(min(xs)), fx(max(xs))
    else:
        x_ticks = nice_ticks(min(xs), max(xs))
        x0, x1 = x_ticks[0], x_ticks[-1]
    x1 = x1 if x1 > x0 else x0 + 1
    y0, y1 = fy(y_ticks[0]), fy(y_ticks[-1])

    def px(x: float) -> float:
        return left + (fx(x) - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return top + plot_h - (fy(y) - y0) / (y1 - y0) * plot_h

    parts = []
    for tick in y_ticks:  # grid and labels of the value axis
        y = py(tick)
        parts.append(
            f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text x="{left - 5}" y="{y + 4:.1f}" class="l" text-anchor="end">{fmt_tick(tick)}</text>'
        )
    for tick in x_ticks:
        x = px(tick)
        label = f"{tick:g}%" if log_x else fmt_tick(tick)
        parts.append(
            f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}"/>'
            f'<text x="{x:.1f}" y="{top + plot_h + 14}" class="l" text-anchor="middle">{label}</text>'
        )
    parts.append(
        f'<line class="axis" x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}"/>'
        f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}"/>'
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" class="l at" text-anchor="middle">{_e(x_title)}</text>'
        f'<text x="12" y="{top + plot_h / 2:.1f}" class="l at" transform="rotate(-90 12 {top + plot_h / 2:.1f})" '
        f'text-anchor="middle">{_e(y_title)}</text>'
    )
    items: list[tuple[str, str, str]] = []
    hollow_notes: dict[str, str] = {}
    for i, s in enumerate(series):
        color = s.color or PALETTE[i % len(PALETTE)]
        coords = [(px(x), py(y)) if y is not None else None for x, y in s.points]
        steps, pen_up = [], True
        for point in coords:
            if point is None:
                pen_up = True
                continue
            steps.append(f"{'M' if pen_up else 'L'}{point[0]:.1f},{point[1]:.1f}")
            pen_up = False
        path = " ".join(steps)
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        dots = []
        for j, point in enumerate(coords):
            if point is None:
                continue
            alone = (j == 0 or coords[j - 1] is None) and (j + 1 == len(coords) or coords[j + 1] is None)
            if j in s.hollow:
                dots.append(
                    f'<circle cx="{point[0]:.1f}" cy="{point[1]:.1f}" r="3" fill="#fff" stroke="{color}" '
                    'stroke-width="1.5"/>'
                )
            elif alone:  # a point without neighbours draws no line: a dot
                dots.append(f'<circle cx="{point[0]:.1f}" cy="{point[1]:.1f}" r="3" fill="{color}"/>')
        parts.append(
            f'<g class="mark series" data-name="{_e(s.name)}"><title>{_e(s.name)}</title>'
            f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2"{dash}/>{"".join(dots)}</g>'
        )
        items.append((s.name, color, "dashed" if s.dashed else "solid"))
        if s.hollow and s.hollow_note:
            hollow_notes.setdefault(s.hollow_note, color)
    for rule in rules:
        y = py(rule.value)
        label_y = y - 4 if y - top >= 14 else y + 12  # a bound at the top of the plot is labelled under its line
        parts.append(
            f'<line class="rule" x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="{rule.color}" '
            f'stroke-width="1.5" stroke-dasharray="2 3"><title>{_e(rule.label)}</title></line>'
            f'<text x="{left + plot_w - 4}" y="{label_y:.1f}" class="l" text-anchor="end" fill="{rule.color}">'
            f"{_e(rule.label)}</text>"
        )
        items.append((rule.label, rule.color, "dotted"))
    items += [(note, "#333", "hollow") for note in hollow_notes]
    return _figure(chart_id, title, width, height, parts, len(series), legend(items))


# ---------------------------------------------------------------------------------------------------------- bars
def bar_chart(
    chart_id: str,
    title: str,
    groups: list[tuple[str, list[tuple[str, float]]]],
    unit: str,
    markers: dict[str, float] | None = None,
    width: int = 720,
    common_scale: bool = False,
    marker_labels: dict[str, str] | None = None,
    axis_title: str | None = None,
) -> str:
    """Grouped horizontal bars with value axes (nice ticks, grid lines, unit).

    ``markers`` draws a bound per group (dashed line, labelled ``marker_labels[group]`` or ``bound <value>``), on
    the same scale as the group's bars, so a met bound sits visibly beyond them. With ``common_scale`` every group
    shares one axis (values that are compared across groups); otherwise each group has an axis of its own (groups
    that measure different things, e.g. a warm start in ms and an auto-shutdown in s), drawn under it. A bar's
    colour follows the first word of its label (``p95``, ``max`` ...), the same in every group.
    """
    rows = sum(len(bars) for _, bars in groups)
    if not rows:
        return ""
    markers = markers or {}
    # The label column is as wide as the longest bar label (about 6.3 px a character at 11 px), so none is cut.
    longest = max(len(label) for _, bars in groups for label, _ in bars)
    bar_h, left, right, head, gap = 18, int(min(320, max(110, 14 + 6.3 * longest))), 78, 4, 10
    plot_w = width - left - right
    keys: list[str] = []
    for _, bars in groups:
        for label, _ in bars:
            if label.split(" ")[0] not in keys:
                keys.append(label.split(" ")[0])
    spare = [c for c in PALETTE if c not in {STAT_COLORS.get(k) for k in keys}]
    colors = {k: STAT_COLORS.get(k) or spare[i % len(spare)] for i, k in enumerate(keys)}

    def ticks_for(values: list[float]) -> list[float]:
        top = max([*values, 0.0])
        return nice_ticks(0.0, top * 1.08 if top > 0 else 1.0)  # headroom: a bound never sits on the edge

    shared = ticks_for([v for _, bars in groups for _, v in bars] + list(markers.values())) if common_scale else None
    parts: list[str] = []
    y = head
    series = 0
    for group, bars in groups:
        ticks = shared or ticks_for([v for _, v in bars] + ([markers[group]] if group in markers else []))
        scale = plot_w / ticks[-1]
        parts.append(f'<text x="4" y="{y + 12}" class="g">{_e(group)}</text>')
        y += 18
        top = y
        if shared is None:
            parts += _grid(ticks, left, scale, top - 2, top + len(bars) * bar_h)
        for label, value in bars:
            w = max(1.0, value * scale)
            color = colors[label.split(" ")[0]]
            parts.append(
                f'<rect class="mark series" x="{left}" y="{y + 2}" width="{w:.1f}" height="{bar_h - 5}" '
                f'fill="{color}"><title>{_e(group)} {_e(label)}: {value:g} {_e(unit)}</title></rect>'
                f'<text x="{left - 6}" y="{y + bar_h - 5}" class="l" text-anchor="end">{_e(label)}</text>'
                f'<text x="{left + w + 4:.1f}" y="{y + bar_h - 5}" class="val">{value:.4g} {_e(unit)}</text>'
            )
            series += 1
            y += bar_h
        if group in markers:
            x = left + markers[group] * scale
            text = (marker_labels or {}).get(group) or f"bound {markers[group]:g} {unit}".strip()
            parts.append(
                f'<line class="rule" x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{y + 2}" stroke="{BOUND_COLOR}" '
                f'stroke-width="1.5" stroke-dasharray="4 3"><title>{_e(text)}</title></line>'
                f'<text x="{x + 3:.1f}" y="{top - 5}" class="l" fill="{BOUND_COLOR}">{_e(text)}</text>'
            )
        if shared is None:
            y = _value_axis(parts, ticks, left, scale, y + 2, unit, axis_title)
        y += gap
    if shared is not None:  # one axis under every group, its grid through all of them (drawn under the bars)
        scale = plot_w / shared[-1]
        parts[0:0] = _grid(shared, left, scale, head + 16, y - gap + 2)
        y = _value_axis(parts, shared, left, scale, y - gap + 2, unit, axis_title) + gap
    return _figure(chart_id, title, width, int(y), parts, series, "")


def _grid(ticks: list[float], left: float, scale: float, y1: float, y2: float) -> list[str]:
    return [
        f'<line class="grid" x1="{left + t * scale:.1f}" x2="{left + t * scale:.1f}" y1="{y1}" y2="{y2}"/>'
        for t in ticks
    ]


def _value_axis(
    parts: list[str], ticks: list[float], left: float, scale: float, y: float, unit: str, title: str | None
) -> float:
    """A value axis under bars at ``y``: line, tick labels, the unit; returns the y below it."""
    parts.append(f'<line class="axis" x1="{left}" x2="{left + ticks[-1] * scale:.1f}" y1="{y}" y2="{y}"/>')
    for tick in ticks:
        x = left + tick * scale
        parts.append(
            f'<line class="axis" x1="{x:.1f}" x2="{x:.1f}" y1="{y}" y2="{y + 3}"/>'
            f'<text x="{x:.1f}" y="{y + 14}" class="l" text-anchor="middle">{fmt_tick(tick)}</text>'
        )
    label = title or unit
    if label:
        middle = left + ticks[-1] * scale / 2
        parts.append(f'<text x="{middle:.1f}" y="{y + 28}" class="l at" text-anchor="middle">{_e(label)}</text>')
    return y + (34 if label else 20)


def _figure(chart_id: str, title: str, width: int, height: int, parts: list[str], series: int, below: str) -> str:
    """The chart in its figure: the title as a caption above (HTML: it wraps), the legend below."""
    return (
        f'<figure class="chart" data-chart="{_e(chart_id)}" data-series="{series}" style="width:{width}px">'
        f"<figcaption>{_e(title)}</figcaption>"
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{_e(chart_id)}">{"".join(parts)}</svg>{below}</figure>'
    )


# The page's CSS for the charts (html.py puts it in the page's style).
CHART_CSS = """
figure.chart{margin:10px 14px 14px 0;display:inline-block;vertical-align:top}
.charts{display:flex;flex-wrap:wrap;align-items:flex-start}
figure.chart figcaption{font-weight:600;font-size:13px;margin:0 0 4px}
svg .l,svg .val,svg .g{font-size:11px} svg .g,svg .val{font-weight:600}
svg .at{fill:#333;font-style:italic} svg .grid{stroke:#e5e7eb;stroke-width:1} svg .axis{stroke:#6b7280;stroke-width:1}
.legend{display:flex;flex-wrap:wrap;gap:2px 14px;font-size:12px;margin:2px 0 0 58px}
.legend .item{display:inline-flex;align-items:center;gap:5px;white-space:nowrap}
.legend .sw{display:inline-block;width:22px;height:0} .legend .sw.dot{width:7px;height:7px;border:1.5px solid;
border-radius:50%}
"""
