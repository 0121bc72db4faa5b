"""The platform's wall clock, skewable from outside the code through a file.

Every time-based decision (TTL, idle timeout, timestamps) reads :func:`now`. A fault injector writes a number of
seconds into the clock-skew file; the platform and its containers see their clock moved by that much, the way a
host with a drifting clock would. Timers and timeouts use ``time.monotonic`` and are not affected, as on a real host
where NTP skew leaves the monotonic clock alone.
"""

from __future__ import annotations

import os
import time

_SKEW_FILE = os.environ.get("TESTBED_CLOCK_FILE", "")
_cache: tuple[float, float] = (-1.0, 0.0)  # (mtime, skew)


def set_skew_file(path: str) -> None:
    global _SKEW_FILE, _cache
    _SKEW_FILE = path
    _cache = (-1.0, 0.0)


def skew() -> float:
    """Current skew in seconds (0 when the file is absent or unreadable)."""
    global _cache
    if not _SKEW_FILE:
        return 0.0
    try:
        mtime = os.stat(_SKEW_FILE).st_mtime_ns
    except OSError:
        return 0.0
    if mtime != _cache[0]:
        try:
            with open(_SKEW_FILE) as handle:
                value = float(handle.read().strip() or 0)
        except (OSError, ValueError):
            value = 0.0
        _cache = (mtime, value)
    return _cache[1]


def now() -> float:
    """Wall-clock seconds since the epoch as this host believes it."""
    return time.time() + skew()
