"""`Session Fields Should Follow The Transition`: each broken promise of a session's life is named, the good pass."""

from __future__ import annotations

import pytest
from PlatformLibrary.core.base import LibraryContext
from PlatformLibrary.core.context import RunContext
from PlatformLibrary.core.profile import Profile
from PlatformLibrary.sessions.history import SessionHistoryKeywords

LOCAL_FIELDS = [
    "sessionId", "userId", "clientId", "workspace", "createdAt", "expiresAt", "updatedAt", "lastActivityAt",
    "version", "status", "taskId", "startType", "startDurationMs", "restartCount", "lastFailureReason",
    "lastRecoveryMs", "stoppedReason",
]  # fmt: skip
AWS_FIELDS = ["sessionId", "status", "taskId", "startType", "startDurationMs", "restartCount", "lastFailureReason"]

CREATED = {
    "sessionId": "s-1", "userId": "u", "clientId": "c", "workspace": "/efs/c/u", "status": "PENDING",
    "restartCount": 0, "lastFailureReason": "", "stoppedReason": "", "taskId": "", "startType": "",
    "startDurationMs": 0, "createdAt": 100.0, "updatedAt": 100.0, "lastActivityAt": 100.0, "expiresAt": 3700,
    "version": 1, "lastRecoveryMs": None,
}  # fmt: skip
RUNNING = {**CREATED, "status": "RUNNING", "taskId": "s-1/1", "startType": "cold", "startDurationMs": 412.0,
           "updatedAt": 100.5, "version": 3}  # fmt: skip
ACTIVE = {**RUNNING, "lastActivityAt": 101.0}
RESTARTED = {**ACTIVE, "restartCount": 1, "taskId": "s-1/2", "lastFailureReason": "container exited on SIGKILL",
             "lastRecoveryMs": 655.2, "updatedAt": 103.0, "version": 6}  # fmt: skip


def history(fields: list[str]) -> SessionHistoryKeywords:
    settings = {"STUCK_START_TIMEOUT": "10 s", "STUCK_END_ALLOWANCE": "5 s", "STUCK_STOPPED_REASON": "stuck"}
    ctx = LibraryContext(
        Profile({"SESSION_FIELDS_PROMISED": fields, "TARGET": "embedded", **settings}), RunContext("t")
    )
    return SessionHistoryKeywords(ctx, api=None)  # type: ignore[arg-type]  # the assertion never calls the API


@pytest.mark.parametrize(
    ("before", "after", "transition"),
    [(CREATED, RUNNING, "start"), (RUNNING, ACTIVE, "activity"), (ACTIVE, RESTARTED, "restart")],
)
def test_a_healthy_life_passes(before: dict, after: dict, transition: str) -> None:
    history(LOCAL_FIELDS).session_fields_should_follow_the_transition(before, after, transition)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("before", "after", "transition", "named"),
    [
        (ACTIVE, {**RESTARTED, "createdAt": 102.0, "expiresAt": 3702}, "restart", "createdAt changed"),
        (CREATED, {**RUNNING, "updatedAt": 100.0}, "start", "updatedAt did not move on"),
        (CREATED, {**RUNNING, "version": 1}, "start", "version did not move on"),
        (CREATED, {**RUNNING, "taskId": ""}, "start", "no taskId"),
        (CREATED, {**RUNNING, "startType": "lukewarm"}, "start", "startType is 'lukewarm'"),
        (CREATED, {**RUNNING, "lastFailureReason": "boom"}, "start", "before any crash"),
        (RUNNING, {**ACTIVE, "restartCount": 1}, "activity", "restartCount changed"),
        (RUNNING, RUNNING, "activity", "lastActivityAt did not move on"),
        (ACTIVE, {**RESTARTED, "restartCount": 2}, "restart", "not up by one"),
        (ACTIVE, {**RESTARTED, "taskId": "s-1/1"}, "restart", "not a new task"),
        (ACTIVE, {**RESTARTED, "lastRecoveryMs": None}, "restart", "lastRecoveryMs is None"),
        (ACTIVE, {**RESTARTED, "lastFailureReason": ""}, "restart", "lastFailureReason is empty"),
        (ACTIVE, {**RESTARTED, "lastActivityAt": 99.0}, "restart", "lastActivityAt went back"),
        (ACTIVE, {**RESTARTED, "stoppedReason": "idle"}, "restart", "while the session lives"),
        (ACTIVE, {**RESTARTED, "userId": "someone-else"}, "restart", "userId changed"),
    ],
)
def test_each_broken_promise_is_named(before: dict, after: dict, transition: str, named: str) -> None:
    with pytest.raises(AssertionError, match="Broken promise, a session's fields tell its story") as raised:
        history(LOCAL_FIELDS).session_fields_should_follow_the_transition(before, after, transition)  # type: ignore[arg-type]
    assert named in str(raised.value)
    assert "What changed:" in str(raised.value)


def test_fields_the_profile_does_not_promise_are_not_judged() -> None:
    """On aws only the deployment contract's fields count: a renewed expiresAt or a frozen updatedAt pass there."""
    renewed = {**RESTARTED, "createdAt": 102.0, "expiresAt": 3702, "updatedAt": 100.5, "version": 3}
    history(AWS_FIELDS).session_fields_should_follow_the_transition(ACTIVE, renewed, "restart")
    with pytest.raises(AssertionError, match="not up by one"):
        history(AWS_FIELDS).session_fields_should_follow_the_transition(
            ACTIVE, {**renewed, "restartCount": 3}, "restart"
        )


def test_missing_fields_of_a_minimal_deployment_are_not_invented() -> None:
    """A deployment that answers only some fields: absent ones are not compared (None == None)."""
    before = {"sessionId": "s-1", "status": "RUNNING", "taskId": "t1", "restartCount": 0}
    after = {"sessionId": "s-1", "status": "RUNNING", "taskId": "t2", "restartCount": 1, "lastFailureReason": "x",
             "lastRecoveryMs": 10}  # fmt: skip
    history(LOCAL_FIELDS).session_fields_should_follow_the_transition(before, after, "restart")


STUCK = {**CREATED, "status": "STARTING", "updatedAt": 200.0}
ENDED = {**STUCK, "status": "FAILED", "stoppedReason": "stuck", "lastFailureReason": "stuck in STARTING",
         "updatedAt": 210.4, "version": 2}  # fmt: skip


def test_a_stuck_start_ended_in_its_window_passes() -> None:
    history(LOCAL_FIELDS).session_fields_should_follow_the_transition(STUCK, ENDED, "stuck")


@pytest.mark.parametrize(
    ("after", "named"),
    [
        ({**ENDED, "updatedAt": 201.0}, "before the start timeout 10.000 s"),
        ({**ENDED, "updatedAt": 260.0}, "later than the start timeout"),
        ({**ENDED, "stoppedReason": "oops"}, "expected it to contain 'stuck'"),
        ({**ENDED, "taskId": "s-1/1"}, "has no task"),
        ({**ENDED, "status": "STARTING", "stoppedReason": ""}, "not FAILED"),
    ],
)
def test_a_stuck_start_ended_wrongly_is_named(after: dict, named: str) -> None:
    with pytest.raises(AssertionError, match="Broken promise") as raised:
        history(LOCAL_FIELDS).session_fields_should_follow_the_transition(STUCK, after, "stuck")
    assert named in str(raised.value)
