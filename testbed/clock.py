"""The platform's wall clock, skewable from outside the code through files.

Every time-based decision (TTL, idle timeout, timestamps) reads :func:`now`. A fault injector writes a number of
seconds into a clock-skew file; the process sees its clock moved by that much, the way a host with a drifting clock
would. The platform reads ``clock-skew`` (``CLOCK_SKEW_FILE``), its containers that file plus their own,
``clock-skew-containers`` (``CONTAINER_CLOCK_SKEW_FILE``), so a container's clock can run apart from the platform's.
Timers and timeouts use ``time.monotonic`` and are not affected, as on a real host where NTP skew leaves the
monotonic clock alone.
"""

from __future__ import annotations

import os
import time

_SKEW_FILES: list[str] = [f for f in os.environ.get("TESTBED_CLOCK_FILE", "").split(os.pathsep) if f]
_cache: dict[str, tuple[int, float]] = {}  # file -> (mtime, skew)


def set_skew_file(*paths: str) -> None:
    """The files this process's clock follows (their skews add up)."""
    global _SKEW_FILES
    _SKEW_FILES = [p for p in paths if p]
    _cache.clear()


def _file_skew(path: str) -> float:
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError:
        return 0.0
    cached = _cache.get(path)
    if cached is None or cached[0] != mtime:
        try:
            with open(path) as handle:
                value = float(handle.read().strip() or 0)
        except (OSError, ValueError):
            value = 0.0
        cached = (mtime, value)
        _cache[path] = cached
    return cached[1]


def skew() -> float:
    """Current skew in seconds (0 when no file is present or readable)."""
    return sum(_file_skew(path) for path in _SKEW_FILES)


def now() -> float:
    """Wall-clock seconds since the epoch as this host believes it."""
    return time.time() + skew()
