"""Run context: unique ids per run, worker and test, and the scope a created resource belongs to.

Ids must never collide between pabot workers or between runs, so each one carries the run id,
the pabot pool id (or the pid outside pabot) and a per-test counter.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
import time

from robot.libraries.BuiltIn import BuiltIn, RobotNotRunningError

from . import progress

_ID_ALLOWED = re.compile(r"[^A-Za-z0-9_.-]")


def _variable(name: str) -> str | None:
    try:
        value = BuiltIn().get_variable_value(f"${{{name}}}")
    except RobotNotRunningError:
        return None
    return None if value is None else str(value)


class RunContext:
    """Knows which run, worker, suite and test is executing; a library listener keeps it current."""

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, run_id: str | None = None):
        run_id = run_id or os.environ.get("PLATFORM_SUITE_RUN_ID") or secrets.token_hex(3)
        self.run_id = _ID_ALLOWED.sub("", run_id)[:12] or secrets.token_hex(3)
        self._lock = threading.Lock()
        self._test_index = 0
        self._sequence = 0
        self.current_test: str | None = None

    @property
    def current_suite(self) -> str | None:
        """Full name of the running suite (``${SUITE NAME}``), ``None`` outside Robot Framework."""
        return _variable("SUITE NAME")

    # Listener interface (called by Robot Framework because the library registers this object).
    def start_test(self, data, result):
        with self._lock:
            self._test_index += 1
            self._sequence = 0
        self.current_test = result.full_name
        self._test_started = time.monotonic()
        if os.environ.get(progress.ENV):  # under run.sh: which test each worker is on, as it starts
            progress.console(f"start {result.full_name}", self.worker)

    def end_test(self, data, result):
        self.current_test = None
        if os.environ.get(progress.ENV):
            took = progress.duration(time.monotonic() - getattr(self, "_test_started", time.monotonic()))
            message = f": {result.message.splitlines()[0][:160]}" if result.status != "PASS" and result.message else ""
            progress.console(f"{result.status:<4}  {result.full_name} ({took}){message}", self.worker)

    @property
    def worker(self) -> str:
        """``w<pool id>`` under pabot, ``p<pid>`` otherwise."""
        pool = _variable("PABOTEXECUTIONPOOLID")
        if pool not in (None, ""):
            return f"w{pool}"
        return f"p{os.getpid()}"

    @property
    def scope(self) -> str:
        """The test (or, outside a test, the suite) that owns what is created now."""
        if self.current_test:
            return f"test:{self.current_test}"
        if self.current_suite:
            return f"suite:{self.current_suite}"
        return "library"

    def unique_name(self, prefix: str) -> str:
        """A name no other run, worker or test uses; 1-64 characters of ``[A-Za-z0-9_.-]``."""
        with self._lock:
            self._sequence += 1
            sequence = self._sequence
        name = f"{prefix}-{self.run_id}-{self.worker}-t{self._test_index}-{sequence}"
        return _ID_ALLOWED.sub("-", name)[:64]
