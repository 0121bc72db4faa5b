"""Deadline-based waiting: poll a condition until it holds or the deadline passes, never sleep and hope."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from . import progress
from .profile import format_seconds

# A wait still going after this long says so on the console (under run.sh), and again after as long.
PROGRESS_EVERY_S = 10.0

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A condition did not hold before its deadline."""

    ROBOT_SUPPRESS_NAME = True


@dataclass
class Waited(Generic[T]):
    value: T
    seconds: float
    attempts: int


def wait_until(
    probe: Callable[[], T | None],
    timeout: float,
    interval: float,
    describe: Callable[[], str],
    fail_fast: Callable[[], str | None] | None = None,
) -> Waited[T]:
    """Call ``probe`` until it returns something other than ``None`` or ``timeout`` seconds pass.

    ``describe`` is called once at the deadline and tells what was last seen, so the failure message
    explains the state instead of just saying "timed out". ``fail_fast`` may return a message to stop
    early when waiting longer cannot help (for example a session that has FAILED).
    """
    if timeout < 0:
        raise ValueError(f"Timeout must not be negative, got {timeout}.")
    start = time.monotonic()
    deadline = start + timeout
    attempts = 0
    reported = start
    while True:
        attempts += 1
        value = probe()
        now = time.monotonic()
        if value is not None:
            return Waited(value, now - start, attempts)
        if now - reported >= PROGRESS_EVERY_S and os.environ.get(progress.ENV):  # a long wait shows it is alive
            reported = now
            waited = f"{format_seconds(now - start)} of {format_seconds(timeout)}"
            progress.console(f"  waiting {waited}, not yet: {describe()}")
        if fail_fast is not None:
            reason = fail_fast()
            if reason:
                raise AssertionError(f"{reason} (gave up after {format_seconds(now - start)})")
        if now >= deadline:
            raise WaitTimeout(
                f"{describe()} (waited {format_seconds(now - start)}, deadline {format_seconds(timeout)}, "
                f"{attempts} checks)"
            )
        time.sleep(max(0.0, min(interval, deadline - now)))
