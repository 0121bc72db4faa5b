"""What a load run measured, and the language to judge it: rates, HdrHistograms, ``LoadResult``, thresholds.

Pure Python, no Robot, shared by the engine (:mod:`PlatformLibrary.load.engine`), the load keywords and the
report builder. Every histogram of the suite has one shape (microseconds, 1 us to 1 hour, 3 significant digits),
so any two can be added; thresholds read like k6's (``p(95)<500ms``, ``rate<0.01``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from ..core.profile import counted
from ..core.stats import (
    HIST_HIGHEST,
    HIST_LOWEST,
    defined_statistic,
    new_histogram,
    parse_duration,
    samples_needed,
)

MAX_REQUESTS_PER_RUN = 2_000_000
MAX_RUN_SECONDS = 3 * 3600.0
# The per-interval series of a run: at most this many points (a longer run gets wider intervals).
MAX_SERIES_POINTS = 600
SERIES_PERCENTILES = (50, 95, 99)
_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(?:/\s*([a-z]+))?\s*$", re.IGNORECASE)
_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0}


def parse_rate(value: Any) -> float:
    """Requests per second from ``100/s``, ``10/min``, ``3600/h``, or a plain number (per second)."""
    if isinstance(value, bool):
        raise ValueError(f"Rate must be like '100/s' or '10/min', got {value!r}.")
    if isinstance(value, int | float):
        rate = float(value)
    else:
        match = _RATE.match(str(value))
        if not match:
            raise ValueError(f"Rate must be like '100/s', '10/min' or '3600/h', got {value!r}.")
        unit = (match.group(2) or "s").lower().rstrip("s") or "s"
        unit = {"": "s", "mi": "min", "minute": "min", "hour": "h", "second": "s", "sec": "s"}.get(unit, unit)
        if unit not in _UNITS:
            raise ValueError(f"Unknown rate unit in {value!r}; use /s, /min or /h.")
        rate = float(match.group(1)) / _UNITS[unit]
    if not math.isfinite(rate) or rate < 0:
        raise ValueError(f"Rate must be a finite number >= 0, got {value!r}.")
    return rate


def format_rate(per_second: float) -> str:
    if per_second and per_second < 1:
        return f"{per_second * 60:g}/min"
    return f"{per_second:g}/s"


# ------------------------------------------------------------------------------------------------------------- series
class IntervalSeries:
    """What a run did interval by interval (1 s by default), for the charts over time Locust, k6 and Gatling draw:
    latency percentiles, answers per second and requests in flight (the users busy at that moment).

    Answers are counted in the interval they *came back* in (as k6 and Locust do), so an interval closes once time
    has moved past it: only one small histogram is ever open, and the series holds at most ``max_points`` points
    (the interval doubles until the run's ``horizon`` fits). A percentile of an interval is given only over enough
    answers to define it (``samples_needed``: p95 20, p99 100); over fewer its value is the interval's max and
    ``percentilesUndefined`` says so. Called from the engine's event loop only.
    """

    def __init__(self, interval: float = 1.0, horizon: float = 0.0, max_points: int = MAX_SERIES_POINTS) -> None:
        if interval <= 0 or max_points < 1:
            raise ValueError(
                f"A series needs an interval above 0 and at least one point, got {interval}, {max_points}."
            )
        width = float(interval)
        while horizon / width > max_points:
            width *= 2
        self.width, self.max_points = width, max_points
        self.points: list[dict[str, Any]] = []
        # Per interval: 2 significant digits are plenty for a chart and keep closing an interval well under 1 ms.
        self._hist = HdrHistogram(HIST_LOWEST, HIST_HIGHEST, 2)
        self._index = 0
        self._edge = width if max_points > 1 else math.inf  # where the open interval ends
        self._level = 0  # requests in flight now
        self._since = 0.0  # when the level last changed (or the interval began)
        self._reset()

    def _reset(self) -> None:
        self._hist.reset()
        self._top = self._sent = self._ok = self._errors = 0
        self._peak, self._area = self._level, 0.0

    def _advance(self, t: float) -> float:
        """Closes every interval before the one ``t`` falls in (the last interval takes what comes later)."""
        t = max(0.0, t)
        index = min(int(t // self.width), self.max_points - 1)
        while self._index < index:
            self._close((self._index + 1) * self.width)
            self._index += 1
            self._reset()
        self._edge = math.inf if self._index == self.max_points - 1 else (self._index + 1) * self.width
        self._area += self._level * (t - self._since)
        self._since = t
        return t

    # The two calls below run once per request on the engine's loop: the common case (still in the open interval)
    # is a comparison and a few additions.
    def sent(self, t: float, in_flight: int) -> None:
        if 0.0 <= t < self._edge:
            self._area += self._level * (t - self._since)
            self._since = t
        else:
            self._advance(t)
        self._sent += 1
        self._level = in_flight
        if in_flight > self._peak:
            self._peak = in_flight

    def answered(self, t: float, micros: int, ok: bool, in_flight: int) -> None:
        if 0.0 <= t < self._edge:
            self._area += self._level * (t - self._since)
            self._since = t
        else:
            self._advance(t)
        self._hist.record_value(micros)
        if micros > self._top:
            self._top = micros
        if ok:
            self._ok += 1
        else:
            self._errors += 1
        self._level = in_flight

    def finish(self, t: float) -> None:
        """Closes the last interval at ``t`` (the run's end); no event may follow."""
        t = self._advance(t)
        if self._index and not (self._sent or self._ok or self._errors):
            return  # the run ended just after an interval began: nothing happened in it
        self._close(max(t, self._index * self.width + 1e-9))

    def _close(self, end: float) -> None:
        start = self._index * self.width
        self._area += self._level * (end - self._since)
        self._since = end
        answers = self._ok + self._errors
        point: dict[str, Any] = {
            "t": round(start, 3),
            "sent": self._sent,
            "answers": answers,
            "ok": self._ok,
            "errors": self._errors,
            "throughput": round(answers / self.width, 3),
            "inFlightMean": round(self._area / (end - start), 3),
            "inFlightMax": self._peak,
        }
        undefined = []
        if answers:
            top = self._top / 1000
            values = self._hist.get_percentile_to_value_dict(list(SERIES_PERCENTILES))
            for pct in SERIES_PERCENTILES:
                if answers < samples_needed(pct):
                    undefined.append(f"p{pct}")
                    point[f"p{pct}Ms"] = round(top, 3)  # the max stands in, as the SLA assertions do
                else:  # a bucket's upper edge may pass the max: clamped
                    point[f"p{pct}Ms"] = round(min(values[pct] / 1000, top), 3)
            point["maxMs"] = round(top, 3)
        else:
            point.update({f"p{pct}Ms": None for pct in SERIES_PERCENTILES} | {"maxMs": None})
        point["percentilesUndefined"] = undefined
        self.points.append(point)

    def as_dict(self) -> dict[str, Any]:
        return {"intervalS": self.width, "maxPoints": self.max_points, "points": self.points}


# ------------------------------------------------------------------------------------------------------------ results
REFUSAL = re.compile(r"^[a-z]+-429$")  # rejected-429 (a request), delete-429 (a lifecycle step)


@dataclass
class LoadResult:
    """Everything one load run measured. Histograms are in microseconds; times in seconds."""

    name: str
    model: str
    target_rate: float | None
    duration: float
    users: int
    scheduled: int = 0
    sent: int = 0
    completed: int = 0
    dropped: int = 0
    late: int = 0
    max_lateness: float = 0.0
    late_threshold: float = 0.0
    outcomes: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    corrected: HdrHistogram = field(default_factory=new_histogram)
    uncorrected: HdrHistogram = field(default_factory=new_histogram)
    by_name: dict[str, HdrHistogram] = field(default_factory=dict)
    timeline: list[dict[str, float]] = field(default_factory=list)
    series: IntervalSeries | None = None  # per interval: latency percentiles, answers/s, in flight
    started_at: float = 0.0  # wall clock
    elapsed: float = 0.0
    send_window: float = 0.0  # first intended send to last actual send
    stopped_early: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        """``${result}[p95]`` style access from Robot Framework: attributes and summary keys."""
        if key.startswith("p") and key[1:].replace(".", "", 1).isdigit():
            return self.percentile(float(key[1:]))
        if hasattr(self, key) and not key.startswith("_"):
            return getattr(self, key)
        summary = self.summary()
        if key in summary:
            return summary[key]
        raise KeyError(key)

    @property
    def ok(self) -> int:
        return self.outcomes.get("ok", 0)

    @property
    def errors(self) -> int:
        return self.completed - self.ok

    @property
    def error_rate(self) -> float:
        return self.errors / self.completed if self.completed else 0.0

    @property
    def refused(self) -> int:
        """Answers that refused the request cleanly for load: 429 with a JSON error and ``Retry-After``
        (``rejected-429``; a lifecycle's ``delete-429``). Whether a platform may refuse at a rate is a question of
        its capacity on this machine, unlike any other error."""
        return sum(n for category, n in self.outcomes.items() if REFUSAL.match(category))

    @property
    def other_errors(self) -> int:
        """Errors that are not clean refusals: 5xx, timeouts, resets, unclean 429s, wrong data."""
        return self.errors - self.refused

    @property
    def achieved_rate(self) -> float:
        """Requests sent per second over the run's duration."""
        return self.sent / self.duration if self.duration > 0 else 0.0

    @property
    def throughput(self) -> float:
        """Requests answered per second over the measured time."""
        return self.completed / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, pct: float, corrected: bool = True) -> float:
        """Latency percentile in seconds (0.0 when nothing completed)."""
        hist = self.corrected if corrected else self.uncorrected
        if hist.get_total_count() == 0:
            return 0.0
        return hist.get_value_at_percentile(pct) / 1_000_000

    def mean(self, corrected: bool = True) -> float:
        hist = self.corrected if corrected else self.uncorrected
        return hist.get_mean_value() / 1_000_000 if hist.get_total_count() else 0.0

    def max(self, corrected: bool = True) -> float:
        hist = self.corrected if corrected else self.uncorrected
        return hist.get_max_value() / 1_000_000 if hist.get_total_count() else 0.0

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (times in milliseconds) for logs and the resilience report."""

        def ms(value: float) -> float:
            return round(value * 1000, 3)

        def lat(corrected: bool) -> dict[str, float]:
            return {
                "mean": ms(self.mean(corrected)),
                "p50": ms(self.percentile(50, corrected)),
                "p90": ms(self.percentile(90, corrected)),
                "p95": ms(self.percentile(95, corrected)),
                "p99": ms(self.percentile(99, corrected)),
                "p999": ms(self.percentile(99.9, corrected)),
                "max": ms(self.max(corrected)),
            }

        return {
            "name": self.name,
            "model": self.model,
            "targetRate": self.target_rate,
            "durationS": round(self.duration, 3),
            "users": self.users,
            "scheduled": self.scheduled,
            "sent": self.sent,
            "completed": self.completed,
            "ok": self.ok,
            "errors": self.errors,
            "errorRate": round(self.error_rate, 6),
            "dropped": self.dropped,
            "late": self.late,
            "lateThresholdMs": ms(self.late_threshold),
            "maxLatenessMs": ms(self.max_lateness),
            "achievedRate": round(self.achieved_rate, 3),
            "throughput": round(self.throughput, 3),
            "elapsedS": round(self.elapsed, 3),
            "startedAt": self.started_at,
            "outcomes": dict(self.outcomes),
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "latencyMs": lat(True),
            "serviceTimeMs": lat(False),
            "byName": {
                name: {
                    "count": h.get_total_count(),
                    "p50": ms(h.get_value_at_percentile(50) / 1e6),
                    "p95": ms(h.get_value_at_percentile(95) / 1e6),
                    "p99": ms(h.get_value_at_percentile(99) / 1e6),
                }
                for name, h in self.by_name.items()
            },
            "timeline": self.timeline,
            "series": self.series.as_dict() if self.series is not None else None,
            "stoppedEarly": self.stopped_early,
            **({"extra": self.extra} if self.extra else {}),
        }

    def __repr__(self) -> str:
        """Short, for the log: what was measured, not every histogram object (``${LOAD} = <LoadResult ...>``)."""
        return f"<LoadResult {self.describe()}>"

    def describe(self) -> str:
        rate = f" at {format_rate(self.target_rate)}" if self.target_rate else ""
        text = (
            f"Load '{self.name}' ({self.model}{rate}, {counted(self.users, 'user')}, {self.duration:g} s): "
            f"{self.sent} sent, {self.ok} ok, {counted(self.errors, 'error')}, {self.dropped} dropped, "
            f"{self.late} late; "
            f"latency p50 {self.percentile(50) * 1000:.1f} ms, p95 {self.percentile(95) * 1000:.1f} ms, "
            f"p99 {self.percentile(99) * 1000:.1f} ms (service time p99 {self.percentile(99, False) * 1000:.1f} ms)"
        )
        if self.outcomes and set(self.outcomes) != {"ok"}:
            text += "; outcomes " + ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        if self.stopped_early:
            text += f"; stopped early: {self.stopped_early}"
        return text


def merge_histograms(histograms: list[HdrHistogram]) -> HdrHistogram:
    """One histogram holding every value of ``histograms`` (added, never averaged)."""
    merged = new_histogram()
    for hist in histograms:
        merged.add(hist)
    return merged


# --------------------------------------------------------------------------------------------------------- thresholds
_THRESHOLD = re.compile(
    r"^\s*(?P<metric>p\d+(?:\.\d+)?|mean|max|error rate|errors|other errors|refused|dropped|late|rate|throughput)\s+"
    r"(?P<op>below|under|above|at most|at least)\s+(?P<limit>.+?)\s*$",
    re.IGNORECASE,
)


def _fmt_time(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.3f} s"


def latency_bound(expression: str) -> tuple[str, float] | None:
    """``("p95", 0.05)`` for a latency threshold such as ``p95 below 50 ms`` (a percentile, mean or max held below
    a time): the bound the report draws over a run's latency; ``None`` for any other threshold."""
    match = _THRESHOLD.match(str(expression))
    if not match or match.group("op").lower() not in ("below", "under", "at most"):
        return None
    metric = match.group("metric").lower()
    if not (metric in ("mean", "max") or (metric.startswith("p") and metric != "p")):
        return None
    return metric, parse_duration(match.group("limit").strip())


# What a threshold judges. Correctness (errors, drops) holds on any machine; timing (latency, late sends, rates,
# throughput) is what a machine too busy to measure distorts, so only it may be skipped there (core/machine.py).
# ``refused`` (clean 429s) is capacity, judged like timing: how much load a platform carries before it sheds some
# depends on the cores it has (a run capped at 1.2 cores sees 429s at 3x the normal mix that 2 cores do not).
CORRECTNESS_METRICS = frozenset({"error rate", "errors", "other errors", "dropped"})


def is_timing_threshold(expression: str) -> bool:
    """Whether ``expression`` bounds timing (``p95 below 50 ms``, ``late below 5``, ``rate above 9/s``) rather than
    correctness (``error rate below 1 %``, ``errors below 1``, ``dropped below 1``): only timing may be excused by
    a busy machine."""
    match = _THRESHOLD.match(str(expression))
    if not match:
        raise ValueError(f"Unknown threshold {expression!r}.")
    return match.group("metric").lower() not in CORRECTNESS_METRICS


def check_threshold(result: LoadResult, expression: str) -> tuple[bool, str]:
    """Evaluates one threshold such as ``p95 below 500 ms``, ``error rate below 1 %``, ``dropped below 1``,
    ``rate above 99/s``; returns ``(passed, message)`` with the measured and the allowed value."""
    match = _THRESHOLD.match(str(expression))
    if not match:
        raise ValueError(
            f"Unknown threshold {expression!r}. Use e.g. 'p95 below 500 ms', 'mean below 100 ms', "
            "'error rate below 1 %', 'dropped below 1 %', 'late below 5', 'rate above 99/s'."
        )
    metric, op, limit = match.group("metric").lower(), match.group("op").lower(), match.group("limit").strip()
    upper = op in ("below", "under", "at most")
    strict = op in ("below", "under", "above")
    if metric.startswith("p") and metric != "p":
        pct = float(metric[1:])
        count = result.corrected.get_total_count()
        asserted, statistic = defined_statistic(pct, count)
        measured, allowed = result.percentile(asserted), parse_duration(limit)
        label = f"p{pct:g} latency" if asserted == pct else f"latency ({statistic})"
        shown = (_fmt_time(measured), _fmt_time(allowed))
    elif metric in ("mean", "max"):
        measured = result.mean() if metric == "mean" else result.max()
        allowed = parse_duration(limit)
        label, shown = f"{metric} latency", (_fmt_time(measured), _fmt_time(allowed))
    elif metric in ("rate", "throughput"):
        measured = result.achieved_rate if metric == "rate" else result.throughput
        allowed = parse_rate(limit)
        label, shown = ("send rate" if metric == "rate" else "throughput"), (f"{measured:.2f}/s", f"{allowed:g}/s")
    else:
        percent = limit.endswith("%")
        number = float(limit.rstrip("%").strip())
        counts = {
            "error rate": result.errors,
            "errors": result.errors,
            "other errors": result.other_errors,
            "refused": result.refused,
            "dropped": result.dropped,
            "late": result.late,
        }
        totals = {
            "error rate": result.completed,
            "errors": result.completed,
            "other errors": result.completed,
            "refused": result.completed,
            "dropped": result.scheduled,
            "late": result.sent,
        }
        count, total = counts[metric], totals[metric]
        if percent or metric == "error rate":
            allowed = number / 100 if percent else number
            measured = count / total if total else 0.0
            label = metric if metric == "error rate" else f"{metric} share"
            if metric == "other errors":
                label = "share of errors other than clean 429 refusals"
            elif metric == "refused":
                label = "share refused with a clean 429"
            shown = (f"{measured * 100:.2f} % ({count} of {total})", f"{allowed * 100:g} %")
        else:
            measured, allowed = float(count), number
            label, shown = f"{metric} count", (f"{count} of {total}", f"{allowed:g}")
    if upper:
        passed = measured < allowed if strict else measured <= allowed
        relation = "below" if strict else "at most"
    else:
        passed = measured > allowed if strict else measured >= allowed
        relation = "above" if strict else "at least"
    samples = f" ({result.completed} answers)" if result.completed else ""
    message = f"{label} of load '{result.name}' was {shown[0]}, allowed is {relation} {shown[1]}{samples}."
    return passed, message
