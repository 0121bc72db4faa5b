"""Statistics both the measuring keywords (``load/``) and the report (``report/``) use, below both of them.

Percentiles via HdrHistogram with the samples each needs, the suite's one histogram shape (microseconds, 1 us to
1 hour, 3 significant digits, so any two can be added), and durations as written in profiles and thresholds.
Pure Python: no Robot, no component.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from hdrh.histogram import HdrHistogram

from .profile import counted

# Histograms in microseconds from 1 us to 1 hour at 3 significant digits: every histogram of the suite has the
# same shape, so any two can be added.
HIST_LOWEST = 1
HIST_HIGHEST = 3_600_000_000
HIST_DIGITS = 3
# A latency bound a test asserted on a run (recorded by ``Load Should Meet Thresholds``, drawn by the report).
LATENCY_BOUND_METRIC = "load_latency_bound"


# Values are scaled to integers for HdrHistogram: one millionth of the unit (microseconds for seconds).
_SCALE = 1_000_000


def compute_percentile(values: Iterable[float], pct: float) -> float:
    """The ``pct`` percentile of ``values`` (0 < pct <= 100) via HdrHistogram, in the values' unit."""
    numbers = [as_number(v) for v in values]
    if not numbers:
        raise ValueError("Cannot take a percentile of no values.")
    if not 0 < pct <= 100:
        raise ValueError(f"Percentile must be in (0, 100], got {pct}.")
    if any(v < 0 for v in numbers):
        raise ValueError("Durations and sizes cannot be negative.")
    highest = max(2, math.ceil(max(numbers) * _SCALE) + 1)
    histogram = HdrHistogram(1, highest, 3)
    for value in numbers:
        histogram.record_value(round(value * _SCALE))
    return histogram.get_value_at_percentile(pct) / _SCALE


def samples_needed(pct: float) -> int:
    """Fewest samples that define the ``pct`` percentile: p99 needs 100, p95 20, p50 2 (``100 / (100 - pct)``)."""
    if pct >= 100:
        return 1
    return math.ceil(100 / (100 - pct) - 1e-9)


def defined_statistic(pct: float, count: int) -> tuple[float, str]:
    """The statistic a bound on ``p<pct>`` may assert over ``count`` samples, and how to name it.

    A percentile is asserted only over enough samples to define it; with fewer, the maximum stands in (it is
    never below the percentile, so the check only gets stricter) and the name says so.
    """
    needed = samples_needed(pct)
    if count >= needed:
        return pct, f"p{pct:g} over {counted(count, 'sample')}"
    return 100.0, f"max over {counted(count, 'sample')} (p{pct:g} needs at least {needed}, so the max is asserted)"


def compute_mean(values: Iterable[float]) -> float:
    numbers = [as_number(v) for v in values]
    if not numbers:
        raise ValueError("Cannot take the mean of no values.")
    return sum(numbers) / len(numbers)


def as_number(value: Any) -> float:
    """A finite number from a number, a numeric string or a timedelta (seconds); a clear error otherwise."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool):
        raise ValueError(f"Expected a number, got {value!r}.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"Expected a number, got {value!r}.") from None
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"Expected a finite number, got {value!r}.")
    return number


def new_histogram() -> HdrHistogram:
    """An empty latency histogram in microseconds (the suite's one shape)."""
    return HdrHistogram(HIST_LOWEST, HIST_HIGHEST, HIST_DIGITS)


def to_micros(seconds: float) -> int:
    return min(HIST_HIGHEST, max(HIST_LOWEST, round(seconds * 1_000_000)))


_TIME = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-z]*)\s*$", re.IGNORECASE)
_TIME_UNITS = {
    "us": 1e-6,
    "ms": 1e-3,
    "millisecond": 1e-3,
    "milliseconds": 1e-3,
    "": 1.0,
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
}


def parse_duration(value: Any) -> float:
    """Seconds from ``500 ms``, ``1.5 s``, ``2 min``, a number (seconds) or a ``timedelta``."""
    if hasattr(value, "total_seconds"):
        return float(value.total_seconds())
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _TIME.match(str(value))
    if not match or match.group(2).lower() not in _TIME_UNITS:
        raise ValueError(f"Expected a time like '500 ms' or '2 s', got {value!r}.")
    return float(match.group(1)) * _TIME_UNITS[match.group(2).lower()]
