"""A session's fields over its life: what each transition must change, and what it must leave alone.

Other checks compare views of a session at one moment (``consistency.py``: API, DynamoDB, process table). These
compare one view at two moments, before and after a transition, as ``docs/platform-contract.md`` ("A session's fields
tell its story") promises: a platform whose restart renews the session's TTL, or whose transitions leave
``updatedAt`` behind, answers every single read plausibly and is caught only here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from robot.api import logger
from robot.api.deco import keyword

from ..core.base import LibraryComponent, LibraryContext
from ..core.profile import format_seconds
from ..core.waiting import wait_until
from .api import PlatformApiKeywords, SessionRef

Transition = Literal["start", "activity", "restart", "stuck"]
LIVE_STATUSES = ("PENDING", "STARTING", "RUNNING", "RESTARTING")

# Fields that never change over a session's life, a restart included (expiresAt is createdAt + the TTL).
FIXED_FIELDS = ("sessionId", "userId", "clientId", "workspace", "createdAt", "expiresAt")
# Stamps that never go back; updatedAt moves forward with every transition, lastActivityAt with activity.
FORWARD_STAMPS = ("updatedAt", "lastActivityAt")
PROMISE = "a session's fields tell its story (docs/platform-contract.md)"


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == 0


class SessionHistoryKeywords(LibraryComponent):
    """Keywords that judge a session's fields across a transition."""

    def __init__(self, ctx: LibraryContext, api: PlatformApiKeywords):
        super().__init__(ctx)
        self.api = api

    def _promised(self) -> set[str]:
        return set(self.profile.items("SESSION_FIELDS_PROMISED"))

    @keyword(tags=["sessions", "assertion"])
    def session_fields_should_follow_the_transition(self, before: dict, after: dict, transition: Transition) -> None:
        """Fails, naming each broken promise, unless the session object ``after`` follows from ``before`` by
        ``transition``.

        ``before`` and ``after`` are answers of `Get Session` (``before`` may be the answer of `Create Session`).
        Only the fields named in ``${SESSION_FIELDS_PROMISED}`` are judged (the aws profile names those
        ``docs/deployment-contract.md`` promises). Every transition keeps the fixed fields (``sessionId``, ``userId``,
        ``clientId``, ``workspace``, ``createdAt``, ``expiresAt``), never moves ``updatedAt``, ``lastActivityAt`` or
        ``version`` back, and leaves ``stoppedReason`` empty while the session lives. Then, by ``transition``:

        - ``start``: RUNNING with a ``taskId``, ``startType`` cold or warm, ``startDurationMs`` above 0; no crash
          yet (``restartCount`` unchanged, ``lastFailureReason`` empty, no ``lastRecoveryMs``); ``version`` and
          ``updatedAt`` moved on.
        - ``activity``: ``lastActivityAt`` moved on; status, task, ``restartCount``, ``startType`` and
          ``lastFailureReason`` as they were.
        - ``restart``: RUNNING in a new task, ``restartCount`` up by exactly one, ``lastFailureReason`` set,
          ``lastRecoveryMs`` above 0; ``version`` and ``updatedAt`` moved on.
        - ``stuck``: a start nobody carried out ended: FAILED with no task, ``stoppedReason`` set (containing
          ``${STUCK_STOPPED_REASON}`` where the profile names it) and ``lastFailureReason`` set, ``restartCount``
          unchanged; ``updatedAt`` moved on by at least ``${STUCK_START_TIMEOUT}`` (not cut short) and at most
          that plus ``${STUCK_END_ALLOWANCE}`` (not left hanging), both on the platform's own stamps.

        Example:
        | ${created} =    Create Session
        | ${running} =    Wait Until Session Is Running    ${created}
        | Session Fields Should Follow The Transition    ${created}    ${running}    start
        """
        promised = self._promised()
        problems: list[str] = []

        def judged(name: str) -> bool:
            return name in promised and (name in before or name in after)

        for name in FIXED_FIELDS:
            if judged(name) and before.get(name) != after.get(name):
                problems.append(
                    f"{name} changed from {before.get(name)!r} to {after.get(name)!r} (it is fixed for life)"
                )
        for name in (*FORWARD_STAMPS, "version"):
            if judged(name) and float(after.get(name) or 0) < float(before.get(name) or 0):
                problems.append(f"{name} went back from {before.get(name)!r} to {after.get(name)!r}")
        for name in FORWARD_STAMPS:
            if (
                judged(name)
                and judged("createdAt")
                and float(after.get(name) or 0) < float(after.get("createdAt") or 0)
            ):
                problems.append(f"{name} {after.get(name)!r} is before createdAt {after.get('createdAt')!r}")
        if judged("stoppedReason") and after.get("status") in LIVE_STATUSES and not _empty(after.get("stoppedReason")):
            problems.append(f"stoppedReason is {after.get('stoppedReason')!r} while the session lives")
        problems += getattr(self, f"_{transition}_problems")(before, after, judged)
        where = f"session {after.get('sessionId') or before.get('sessionId')}"
        if problems:
            raise AssertionError(
                f"Broken promise, {PROMISE}: after the {transition} of {where}, "
                + "; ".join(problems)
                + f". What changed: {self._changes(before, after)}."
            )
        logger.info(f"The {transition} of {where} kept its promises. What changed: {self._changes(before, after)}")

    def _changes(self, before: dict, after: dict) -> str:
        names = [n for n in dict.fromkeys([*before, *after]) if n in self._promised()]
        changed = [f"{n} {before.get(n)!r} -> {after.get(n)!r}" for n in names if before.get(n) != after.get(n)]
        return ", ".join(changed) or "nothing"

    @staticmethod
    def _moved_on(before: dict, after: dict, judged) -> list[str]:
        problems = []
        for name in ("version", "updatedAt"):
            if judged(name) and not float(after.get(name) or 0) > float(before.get(name) or 0):
                problems.append(f"{name} did not move on ({before.get(name)!r} -> {after.get(name)!r})")
        return problems

    def _start_problems(self, before: dict, after: dict, judged) -> list[str]:
        problems = []
        if judged("status") and after.get("status") != "RUNNING":
            problems.append(f"status is {after.get('status')!r}, not RUNNING")
        if judged("taskId") and _empty(after.get("taskId")):
            problems.append("a running session has no taskId")
        if judged("startType") and after.get("startType") not in ("cold", "warm"):
            problems.append(f"startType is {after.get('startType')!r}, not cold or warm")
        if judged("startDurationMs") and not float(after.get("startDurationMs") or 0) > 0:
            problems.append(f"startDurationMs is {after.get('startDurationMs')!r}, not above 0")
        if judged("restartCount") and after.get("restartCount") != before.get("restartCount"):
            problems.append(
                f"restartCount moved from {before.get('restartCount')!r} to {after.get('restartCount')!r} "
                "without a crash"
            )
        if judged("lastFailureReason") and not _empty(after.get("lastFailureReason")):
            problems.append(f"lastFailureReason is {after.get('lastFailureReason')!r} before any crash")
        if judged("lastRecoveryMs") and not _empty(after.get("lastRecoveryMs")):
            problems.append(f"lastRecoveryMs is {after.get('lastRecoveryMs')!r} before any recovery")
        return problems + self._moved_on(before, after, judged)

    @staticmethod
    def _activity_problems(before: dict, after: dict, judged) -> list[str]:
        problems = []
        for name in ("status", "taskId", "restartCount", "startType", "lastFailureReason"):
            if judged(name) and before.get(name) != after.get(name):
                problems.append(f"{name} changed from {before.get(name)!r} to {after.get(name)!r} on mere activity")
        if judged("lastActivityAt") and not float(after.get("lastActivityAt") or 0) > float(
            before.get("lastActivityAt") or 0
        ):
            problems.append(f"lastActivityAt did not move on ({before.get('lastActivityAt')!r})")
        return problems

    def _restart_problems(self, before: dict, after: dict, judged) -> list[str]:
        problems = []
        if judged("status") and after.get("status") != "RUNNING":
            problems.append(f"status is {after.get('status')!r}, not RUNNING")
        if judged("restartCount") and after.get("restartCount") != int(before.get("restartCount") or 0) + 1:
            problems.append(
                f"restartCount went from {before.get('restartCount')!r} to {after.get('restartCount')!r}, not up by one"
            )
        if judged("taskId") and (_empty(after.get("taskId")) or after.get("taskId") == before.get("taskId")):
            problems.append(f"taskId is {after.get('taskId')!r}: the replacement container is not a new task")
        if judged("lastFailureReason") and _empty(after.get("lastFailureReason")):
            problems.append("lastFailureReason is empty after a crash")
        if judged("lastRecoveryMs") and not float(after.get("lastRecoveryMs") or 0) > 0:
            problems.append(f"lastRecoveryMs is {after.get('lastRecoveryMs')!r} after a recovery")
        return problems + self._moved_on(before, after, judged)

    def _stuck_problems(self, before: dict, after: dict, judged) -> list[str]:
        problems = []
        if judged("status") and after.get("status") != "FAILED":
            problems.append(f"status is {after.get('status')!r}, not FAILED")
        if judged("taskId") and not _empty(after.get("taskId")):
            problems.append(f"taskId is {after.get('taskId')!r}: a start nobody carried out has no task")
        wording = self.profile.text("STUCK_STOPPED_REASON", "")
        stopped = str(after.get("stoppedReason") or "")
        if judged("stoppedReason") and (not stopped or wording.lower() not in stopped.lower()):
            problems.append(
                f"stoppedReason is {stopped!r}" + (f", expected it to contain {wording!r}" if wording else "")
            )
        if judged("lastFailureReason") and _empty(after.get("lastFailureReason")):
            problems.append("lastFailureReason is empty: it must say where the session stuck")
        if judged("restartCount") and after.get("restartCount") != before.get("restartCount"):
            problems.append(f"restartCount moved from {before.get('restartCount')!r} to {after.get('restartCount')!r}")
        if judged("updatedAt"):
            took = float(after.get("updatedAt") or 0) - float(before.get("updatedAt") or 0)
            least = self.profile.seconds("STUCK_START_TIMEOUT")
            most = least + self.profile.seconds("STUCK_END_ALLOWANCE")
            logger.info(
                f"Ended {format_seconds(took)} after its last change (allowed {format_seconds(least)} to "
                f"{format_seconds(most)}, the platform's own stamps)"
            )
            if took < least:
                problems.append(
                    f"it was ended {format_seconds(took)} after its last change, before the start timeout "
                    f"{format_seconds(least)}: a start still under way elsewhere would be cut short"
                )
            elif took > most:
                problems.append(
                    f"it was ended {format_seconds(took)} after its last change, later than the start timeout "
                    f"{format_seconds(least)} + {format_seconds(most - least)}"
                )
        return problems + self._moved_on(before, after, judged)

    @keyword(tags=["sessions", "wait"])
    def wait_until_session_records_activity(
        self, session: SessionRef, since: dict, timeout: timedelta | None = None
    ) -> dict:
        """Waits until the session's ``lastActivityAt`` is later than in ``since`` (a `Get Session` answer from
        before the activity) and returns the session then.

        Activity is recorded asynchronously (the platform flushes it every ``activity_flush_interval``), hence a
        wait, bounded by ``timeout`` (default ``${SESSION_ACTIVITY_TIMEOUT}``). Where ``lastActivityAt`` is not a
        promised field (``${SESSION_FIELDS_PROMISED}``) there is nothing to wait for: the session is returned as it
        is.

        Example:
        | ${before} =    Get Session    ${SESSION}
        | Write Workspace File    ${SESSION}    notes.txt    hello
        | ${after} =    Wait Until Session Records Activity    ${SESSION}    ${before}
        """
        if "lastActivityAt" not in self._promised():
            return self.api.get_session(session)
        limit = timeout.total_seconds() if timeout is not None else self.profile.seconds("SESSION_ACTIVITY_TIMEOUT")
        previous = float(since.get("lastActivityAt") or 0)
        seen: dict = {}

        def probe() -> dict | None:
            seen.update(self.api.get_session(session))
            return dict(seen) if float(seen.get("lastActivityAt") or 0) > previous else None

        def describe() -> str:
            return (
                f"Broken promise, {PROMISE}: the session's lastActivityAt stayed {seen.get('lastActivityAt')!r} for "
                f"{format_seconds(limit)} after activity (the idle shutdown would stop a session in use)"
            )

        waited = wait_until(probe, limit, self.profile.seconds("POLL_INTERVAL"), describe)
        logger.info(f"lastActivityAt moved on {format_seconds(waited.seconds)} after the activity")
        return waited.value
