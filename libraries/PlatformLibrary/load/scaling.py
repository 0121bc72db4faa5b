"""Waits on what the platform does by itself under load and after it: capacity scaling out and in, idle shutdown.

Beside the load keywords (``keywords.py``), not inside them: these watch ``GET /capacity`` and sessions, they make
no load.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from robot.api.deco import keyword

from ..core.base import LibraryComponent, LibraryContext
from ..core.profile import format_seconds
from ..core.waiting import wait_until
from ..sessions.api import PlatformApiKeywords


class ScalingKeywords(LibraryComponent):
    """Capacity scaling and idle shutdown, waited for with deadlines from the profile."""

    def __init__(self, ctx: LibraryContext, api: PlatformApiKeywords):
        super().__init__(ctx)
        self.api = api

    def _deadline(self, timeout: timedelta | None, name: str) -> float:
        return timeout.total_seconds() if timeout is not None else self.profile.seconds(name)

    @keyword(tags=["load", "scaling", "wait"])
    def wait_until_capacity_grows(
        self, above: int, timeout: timedelta | None = None, since: float | None = None
    ) -> float:
        """Waits until ``GET /capacity`` reports ``capacity`` above ``above``; returns the seconds it took,
        counted from ``since`` (epoch seconds, e.g. when the load step began) or from now.

        The deadline is ``timeout`` or ``${SCALE_OUT_TIMEOUT}``. Fails naming the capacity, the desired count
        and the last scaling activities the platform reported.
        """
        begin = float(since) if since is not None else time.time()
        last: dict[str, Any] = {}

        def probe():
            last["capacity"] = self.api.get_capacity()
            return True if int(last["capacity"]["capacity"]) > int(above) else None

        wait_until(
            probe,
            self._deadline(timeout, "SCALE_OUT_TIMEOUT"),
            self.profile.seconds("POLL_INTERVAL"),
            lambda: _describe_capacity(f"Capacity did not grow above {above}", last.get("capacity") or {}),
        )
        seconds = time.time() - begin
        self.info(f"Capacity grew to {last['capacity']['capacity']} after {format_seconds(seconds)}.")
        return seconds

    @keyword(tags=["load", "scaling", "wait"])
    def wait_until_capacity_is_at_most(self, capacity: int, timeout: timedelta | None = None) -> float:
        """Waits until ``GET /capacity`` reports ``capacity`` at most ``capacity`` (a scale-in after an earlier load
        has run its course); returns the seconds it took. A scale-out test starts from the platform's minimum, or
        its step would find the room already there.

        The deadline is ``timeout`` or ``${SCALE_IN_TIMEOUT}``. Fails naming the capacity, the desired count and
        the last scaling activities.

        Example:
        | Wait Until Capacity Is At Most | ${SCALING_MIN_CAPACITY} |
        """
        last: dict[str, Any] = {}

        def probe():
            last["capacity"] = self.api.get_capacity()
            return True if int(last["capacity"]["capacity"]) <= int(capacity) else None

        waited = wait_until(
            probe,
            self._deadline(timeout, "SCALE_IN_TIMEOUT"),
            self.profile.seconds("POLL_INTERVAL"),
            lambda: _describe_capacity(
                f"Capacity did not come down to the minimum: wanted at most {capacity}", last.get("capacity") or {}
            ),
        )
        self.info(f"Capacity is {last['capacity']['capacity']} (at most {capacity}) after {waited.seconds:.3f} s.")
        return waited.seconds

    @keyword(tags=["sessions", "wait"])
    def wait_until_session_is_shut_down_as_idle(
        self, session: Any, idle_since: float, timeout: timedelta | None = None
    ) -> float:
        """Waits until the platform has stopped the idle ``session`` and returns the seconds from ``idle_since``
        (epoch seconds of the session's last activity) until it was seen stopped: the auto-shutdown time.

        Passes when the session is ``STOPPED`` with ``stoppedReason`` ``idle`` (or gone); fails at the deadline
        (``timeout`` or ``${IDLE_SHUTDOWN_WAIT}``) with the last status, or at once when it stopped for another
        reason.
        """
        session_id = self.session_id_of(session)
        last: dict[str, Any] = {}

        def probe():
            answer = self.api.try_to_get_session(session_id)
            last["answer"] = answer
            if answer["status"] in (404, 410):
                return "gone"
            body = answer["body"] if isinstance(answer["body"], dict) else {}
            if body.get("status") == "STOPPED":
                return body.get("stoppedReason") or "stopped"
            return None

        waited = wait_until(
            probe,
            self._deadline(timeout, "IDLE_SHUTDOWN_WAIT"),
            self.profile.seconds("POLL_INTERVAL"),
            lambda: (
                f"Session {session_id} was not shut down although idle for "
                f"{format_seconds(time.time() - float(idle_since))}; last answer: "
                f"{_short(last.get('answer'))}"
            ),
        )
        if waited.value not in ("idle", "gone"):
            raise AssertionError(f"Session {session_id} stopped for '{waited.value}', expected 'idle'.")
        seconds = time.time() - float(idle_since)
        self.info(f"Session {session_id} shut down {format_seconds(seconds)} after its last activity.")
        return seconds


def _describe_capacity(headline: str, capacity: dict) -> str:
    return (
        f"{headline}: capacity {capacity.get('capacity')}, desired "
        f"{capacity.get('desired')}, running {capacity.get('running')}, last scaling activities "
        f"{capacity.get('activities', [])[-3:] or 'none'}"
    )


def _short(answer: Any) -> str:
    if not isinstance(answer, dict):
        return str(answer)
    body = answer.get("body")
    if isinstance(body, dict):
        return f"{answer.get('status')} status={body.get('status')} stoppedReason={body.get('stoppedReason')!r}"
    return f"{answer.get('status')} {str(body)[:200]}"
