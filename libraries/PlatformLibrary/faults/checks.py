"""Chaos keywords that judge what the platform did under a fault: clean errors, settled sessions, intact data."""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import requests
from robot.api.deco import keyword

from ..core.base import LibraryComponent, LibraryContext
from ..core.profile import counted, format_seconds
from ..core.waiting import wait_until
from ..sessions.api import TERMINAL_STATUSES, PlatformApiKeywords, SessionRef
from ..sessions.concurrency import ConcurrentCreateResult
from ..targets.containers import ContainerKeywords
from ..targets.embedded.keywords import EmbeddedPlatformKeywords
from .clock import ChaosTimeKeywords
from .injector import FaultInjector


class ChaosCheckKeywords(LibraryComponent):
    """Judging outcomes under faults: what clients, sessions and workspaces show while a fault is on or after."""

    def __init__(
        self,
        ctx: LibraryContext,
        injector: FaultInjector,
        api: PlatformApiKeywords,
        containers: ContainerKeywords,
        embedded: EmbeddedPlatformKeywords,
        clock: ChaosTimeKeywords,
    ):
        super().__init__(ctx)
        self.injector = injector
        self.api = api
        self.containers = containers
        self.embedded = embedded
        self.clock = clock

    # ------------------------------------------------------------------ session outcomes under faults
    @keyword(tags=["chaos", "assertion"])
    def session_should_keep_running_in_container(
        self, session: SessionRef, pid: int, window: timedelta | None = None
    ) -> None:
        """Fails unless, for the whole ``window`` (default ``${CHAOS_OBSERVATION_WINDOW}``), the session stays
        ``RUNNING`` with restartCount unchanged and its one container is still ``pid``: the platform must not
        restart a healthy container because of a fault around it. The window is polled, not slept through.
        """
        session_id = self.session_id_of(session)
        seconds = window.total_seconds() if window is not None else self.profile.seconds("CHAOS_OBSERVATION_WINDOW")
        first = self.api.get_session(session_id)
        end = time.monotonic() + seconds
        checks = 0
        while True:
            current = self.api.get_session(session_id)
            pids = [c.pid for c in self.containers.backend.containers_of(session_id)]
            checks += 1
            if current["status"] != "RUNNING" or current["restartCount"] != first["restartCount"] or pids != [int(pid)]:
                raise AssertionError(
                    f"Session {session_id} did not keep running in container pid {pid}: status {current['status']}, "
                    f"restartCount {first['restartCount']} -> {current['restartCount']}, containers {pids}, "
                    f"lastFailureReason {current.get('lastFailureReason')!r}."
                )
            if time.monotonic() >= end:
                break
            time.sleep(self.profile.seconds("POLL_INTERVAL"))
        self.info(f"Session {session_id} kept running in pid {pid} for {format_seconds(seconds)} ({checks} checks).")

    @keyword(tags=["chaos", "control-plane", "assertion"])
    def session_should_wait_for_the_control_plane(
        self, session: SessionRef, status: str, window: timedelta | None = None
    ) -> None:
        """Fails unless, for the whole ``window`` (default ``${CHAOS_OBSERVATION_WINDOW}``), the session waits in
        ``status`` (``PENDING`` for a new session, ``RESTARTING`` after a crash) with restartCount unchanged and no
        container. Why: a start the container control plane refused is retried until it answers or the start
        timeout passes; it is neither dropped nor counted as a crash. The session is first given
        ``${FAULT_REACTION_TIMEOUT}`` to get to ``status`` (a crash takes a moment to be noticed); the window is
        polled, not slept through.

        Example:
        | Session Should Wait For The Control Plane | ${session} | PENDING | 5 s |
        """
        session_id = self.session_id_of(session)
        seconds = window.total_seconds() if window is not None else self.profile.seconds("CHAOS_OBSERVATION_WINDOW")
        seen: dict[str, dict] = {}

        def reached():
            seen["session"] = self.api.get_session(session_id)
            return seen["session"] if seen["session"]["status"] == status else None

        first = wait_until(
            reached,
            self.profile.seconds("FAULT_REACTION_TIMEOUT"),
            self.profile.seconds("POLL_INTERVAL"),
            lambda: f"Session {session_id} never became {status}: it is {seen['session']['status']}",
            lambda: (
                f"Session {session_id} became {seen['session']['status']} instead of waiting {status}: "
                f"lastFailureReason {seen['session'].get('lastFailureReason')!r}"
                if seen["session"]["status"] in TERMINAL_STATUSES
                else None
            ),
        ).value
        began = time.monotonic()
        end = began + seconds
        checks = 0
        while True:
            current = self.api.get_session(session_id)
            pids = [c.pid for c in self.containers.backend.containers_of(session_id)]
            checks += 1
            if current["status"] != status or current["restartCount"] != first["restartCount"] or pids:
                raise AssertionError(
                    f"Broken promise: a session whose start the container control plane refused waits ({status}, "
                    "no container, restartCount unchanged) until the control plane answers or the start timeout "
                    f"passes. Session {session_id} was {current['status']} after "
                    f"{format_seconds(time.monotonic() - began)} of the {format_seconds(seconds)} window: "
                    f"restartCount {first['restartCount']} -> {current['restartCount']}, containers {pids or 'none'}, "
                    f"lastFailureReason {current.get('lastFailureReason')!r}, "
                    f"stoppedReason {current.get('stoppedReason')!r}."
                )
            if time.monotonic() >= end:
                break
            time.sleep(self.profile.seconds("POLL_INTERVAL"))
        self.info(f"Session {session_id} waited {status} for {format_seconds(seconds)} ({checks} checks).")

    @keyword(tags=["embedded-only", "chaos", "control-plane", "wait"])
    def wait_until_warm_pool_is_refilled(self, timeout: timedelta | None = None) -> float:
        """Waits until the warm pool holds its ``warm_pool_size`` agents and no other unassigned agent runs;
        returns the seconds it took.

        ``warmPool`` of ``GET /capacity`` counts the agents ready for a session; the unassigned agents in the
        process table (``session=-``) must be exactly as many: one more is an agent the platform lost track of.
        The deadline is ``timeout`` or ``${RECOVERY_TIMEOUT}``.

        Example:
        | ${seconds} = | Wait Until Warm Pool Is Refilled |
        """
        size = int(self.embedded.get_embedded_platform_setting("warm_pool_size"))
        seen: dict[str, int] = {}

        def probe():
            seen["pool"] = int(self.api.get_capacity()["warmPool"])
            seen["agents"] = sum(1 for c in self.containers.backend.list_containers() if c.session_id is None)
            return True if seen["pool"] == size and seen["agents"] == size else None

        deadline = timeout.total_seconds() if timeout is not None else self.profile.seconds("RECOVERY_TIMEOUT")
        waited = wait_until(
            probe,
            deadline,
            self.profile.seconds("POLL_INTERVAL"),
            lambda: (
                f"The warm pool was not refilled: it holds {seen.get('pool')} of {size} agents, and "
                f"{seen.get('agents')} unassigned agent(s) run"
            ),
        )
        self.info(f"The warm pool holds its {size} agents (after {format_seconds(waited.seconds)}).")
        return waited.seconds

    @keyword(tags=["chaos", "workspace", "wait"])
    def wait_until_workspace_is_reachable(self, session: SessionRef, timeout: timedelta | None = None) -> float:
        """Waits until the session's files can be listed again (200); returns the seconds since the last revert.

        The deadline is ``timeout`` or ``${RECOVERY_TIMEOUT}``.
        """
        session_id = self.session_id_of(session)
        since = self.injector.since_revert()
        last: dict[str, str] = {}

        def probe():
            try:
                response = self.ctx.api.request("GET", f"{self.ctx.api.session_path(session_id)}/files")
            except requests.RequestException as error:
                last["answer"] = str(error)
                return None
            last["answer"] = response.describe()
            return True if response.status == 200 else None

        deadline = timeout.total_seconds() if timeout is not None else self.profile.seconds("RECOVERY_TIMEOUT")
        wait_until(
            probe,
            deadline,
            self.profile.seconds("POLL_INTERVAL"),
            lambda: f"The workspace of session {session_id} did not come back; last answer: {last.get('answer')}",
        )
        seconds = time.monotonic() - since
        self.info(f"The workspace of session {session_id} is reachable {format_seconds(seconds)} after the revert.")
        return seconds

    @keyword(tags=["chaos", "assertion"])
    def refused_creates_should_have_left_nothing(self, result: ConcurrentCreateResult) -> None:
        """Fails when a create of ``result`` that was refused left a session behind for its user."""
        problems = []
        for failure in result.failures:
            user = failure.get("userId")
            if not user:
                continue
            left = self.api.list_sessions_of_user(user)
            if left:
                problems.append(f"user {user}: {[(s['sessionId'], s['status']) for s in left]}")
        if problems:
            raise AssertionError("Refused creates left sessions behind:\n" + "\n".join(f"- {p}" for p in problems))
        self.info(f"None of the {result.failure_count} refused creates left a session behind.")

    @keyword(tags=["chaos", "assertion"])
    def lookups_should_answer_cleanly_in_time(self, sessions: list, bound: timedelta | None = None) -> dict[str, int]:
        """Looks up every session of ``sessions`` at once; fails unless each answers within ``bound`` (default
        ``${CHAOS_STORE_ANSWER_MAX}``) with 200, or a clean refusal: 429 or 503 with a JSON error and ``Retry-After``.

        Under a fault on the session store a lookup may be refused, never answered 500 and never left hanging past
        the bound. Returns the count of answers per status (``{"200": 7, "503": 1}``); every offending lookup is named.
        """
        ids = [self.session_id_of(session) for session in sessions]
        if not ids:
            raise ValueError("No session to look up.")
        limit = bound.total_seconds() if bound is not None else self.profile.seconds("CHAOS_STORE_ANSWER_MAX")
        api = self.ctx.api

        def look_up(session_id: str) -> tuple[str, str | None]:
            try:
                response = api.request("GET", api.session_path(session_id), timeout=limit)
            except requests.RequestException as error:
                return "none", f"{session_id}: no answer within {format_seconds(limit)} ({type(error).__name__})"
            body = response.body
            if response.seconds > limit:
                return str(response.status), f"{response.describe()} after {format_seconds(response.seconds)}"
            if response.status == 200:
                return "200", None
            if response.status not in (429, 503):
                return str(response.status), f"{response.describe()} (expected 200, or a clean 429 or 503)"
            if not (isinstance(body, dict) and body.get("error") and "message" in body):
                return str(response.status), f"{response.describe()} without a JSON error body"
            if not response.retry_after:
                return str(response.status), f"{response.describe()} without Retry-After"
            return str(response.status), None

        with ThreadPoolExecutor(max_workers=len(ids), thread_name_prefix="look-up") as pool:
            outcomes = list(pool.map(look_up, ids))
        counts: dict[str, int] = {}
        for status, _ in outcomes:
            counts[status] = counts.get(status, 0) + 1
        problems = [problem for _, problem in outcomes if problem]
        if problems:
            raise AssertionError(
                f"{len(problems)} of {len(ids)} lookups were not answered cleanly within {format_seconds(limit)}:\n"
                + "\n".join(f"- {p}" for p in problems)
            )
        self.info(f"{len(ids)} lookups at once, each answered cleanly within {format_seconds(limit)}: {counts}.")
        return counts

    @keyword(tags=["chaos", "time", "assertion"])
    def session_timestamps_should_follow_the_platform_clock(self, session: SessionRef) -> None:
        """Fails unless the session's ``createdAt`` is within ``${CHAOS_TIME_MARGIN}`` of the platform's (skewed)
        clock and ``expiresAt`` is ``createdAt`` plus the platform's TTL: the platform and its records agree on
        what time it is."""
        session_id = self.session_id_of(session)
        current = self.api.get_session(session_id)
        now = self.clock.get_platform_clock()
        margin = self.profile.seconds("CHAOS_TIME_MARGIN")
        known_ttl = self.embedded.known_platform_setting("session_ttl")
        ttl = float(known_ttl) if known_ttl is not None else None
        problems = []
        if abs(float(current["createdAt"]) - now) > margin + self.profile.seconds("SESSION_START_TIMEOUT"):
            problems.append(f"createdAt {current['createdAt']} is {current['createdAt'] - now:+.1f} s off the clock")
        if ttl is not None and abs(float(current["expiresAt"]) - float(current["createdAt"]) - ttl) > 1:
            problems.append(f"expiresAt {current['expiresAt']} is not createdAt + TTL {ttl:g} s")
        if problems:
            raise AssertionError(f"Session {session_id} does not follow the platform clock: " + "; ".join(problems))

    @keyword(tags=["chaos", "assertion"])
    def session_should_answer_with(self, session: SessionRef, status: int, error: str | None = None) -> dict:
        """Fails unless ``GET /sessions/{id}`` answers ``status`` (and error code ``error``); returns the answer.

        Example:
        | Session Should Answer With | ${session} | 410 | session_expired |
        """
        answer = self.api.try_to_get_session(session)
        if answer["status"] != int(status) or (error and answer.get("error") != error):
            want = f"{status} {error or ''}".strip()
            raise AssertionError(
                f"GET /sessions/{self.session_id_of(session)} should answer {want} but answered "
                f"{answer['status']} {answer['body']}"
            )
        return answer

    def _file_call_should_fail_cleanly(
        self, method: str, session: SessionRef, path: str, data: bytes | None, error: str, retry_after: bool
    ) -> dict:
        session_id = self.session_id_of(session)
        try:
            response = self.ctx.api.request(method, self.ctx.api.file_path(session_id, path), data=data)
        except requests.Timeout:
            raise AssertionError(
                f"Broken promise: a file operation the platform cannot serve is refused at once with a clean 503. "
                f"{method} of {path} got no answer within the client timeout ({format_seconds(self.http_timeout)}): "
                "the API hung on the unreachable container."
            ) from None
        body = response.body if isinstance(response.body, dict) else {}
        problem = None
        if response.status != 503 or not body.get("error") or "message" not in body:
            problem = "should fail with a clean 503 and a JSON error"
        elif error and body.get("error") != error:
            problem = f"should fail with error {error}"
        elif retry_after and not response.retry_after:
            problem = "should say when to retry (Retry-After)"
        if problem:
            raise AssertionError(f"{method} of {path} during the fault {problem}, but {response.describe()}")
        self.info(f"{method} {path} refused cleanly: {response.describe()}")
        return response.as_dict()

    @keyword(tags=["chaos", "workspace", "assertion"])
    def workspace_write_should_fail_cleanly(
        self, session: SessionRef, path: str, content: str = "x", error: str = "", retry_after: bool = False
    ) -> dict:
        """Fails unless writing ``path`` is refused with a clean error: 503 with a JSON ``error`` and ``message``
        (the code ``error`` when given, and a ``Retry-After`` header when ``retry_after`` is true).

        A 201 while the workspace is unavailable means the data went somewhere it will not be found again.

        Example:
        | Workspace Write Should Fail Cleanly | ${session} | notes.txt | error=workspace_unavailable |
        """
        return self._file_call_should_fail_cleanly("PUT", session, path, content.encode(), error, retry_after)

    @keyword(tags=["chaos", "workspace", "assertion"])
    def workspace_read_should_fail_cleanly(
        self, session: SessionRef, path: str, error: str = "", retry_after: bool = False
    ) -> dict:
        """Like `Workspace Write Should Fail Cleanly`, for reading ``path``."""
        return self._file_call_should_fail_cleanly("GET", session, path, None, error, retry_after)

    @keyword(tags=["chaos", "workspace", "assertion"])
    def workspace_file_should_not_exist(self, session: SessionRef, path: str) -> None:
        """Fails unless ``GET`` of ``path`` answers 404: a write that was refused must not appear later."""
        response = self.ctx.api.request("GET", self.ctx.api.file_path(self.session_id_of(session), path))
        if response.status != 404:
            raise AssertionError(f"Workspace file {path} should not exist but {response.describe()}")

    @keyword(tags=["chaos", "assertion"])
    def a_busy_store_should_have_been_answered_as_overload(self, result: Any) -> dict:
        """Fails unless the load ``result`` (a `Run ... Load` against a slowed store) got only 200 and 429 answers,
        some of each: a busy store is overload (429 ``overloaded`` with ``Retry-After``), never an outage (503
        ``store_unavailable``) or an error. No 429 at all means the load never reached the store's limit, so the
        test proved nothing. Returns the answers by status.
        """
        statuses = {str(k): v for k, v in dict(result.statuses).items()}
        others = {k: v for k, v in statuses.items() if k not in ("200", "429")}
        if others:
            raise AssertionError(
                f"Broken promise: a busy store is overload (429), not an outage; answers by status: {statuses}"
            )
        if not statuses.get("429"):
            raise AssertionError(f"The store never got busy enough to refuse a call (no 429): {statuses}")
        if not statuses.get("200"):
            raise AssertionError(f"A busy store served nothing at all (no 200): {statuses}")
        self.info(f"Answers under a busy store: {statuses}.")
        return statuses

    @keyword(tags=["chaos", "assertion"])
    def api_answer_should_be_clean_rejection(self, answer: dict, *statuses: int) -> None:
        """Fails unless ``answer`` (from a Try To ... keyword) is a clean rejection: one of ``statuses`` (default
        503), a JSON body with ``error`` and ``message``, and a ``Retry-After`` header."""
        allowed = tuple(int(s) for s in statuses) or (503,)
        body = answer.get("body")
        if answer.get("status") not in allowed:
            raise AssertionError(
                f"Expected a clean {' or '.join(map(str, allowed))} but got {answer.get('status')}: {body}"
            )
        if not (isinstance(body, dict) and body.get("error") and "message" in body):
            raise AssertionError(f"Status {answer.get('status')} without a JSON error body: {body!r}")
        if not answer.get("retryAfter"):
            raise AssertionError(f"Status {answer.get('status')} {body.get('error')} without a Retry-After header.")

    # ------------------------------------------------------------------ stopwatches under a fault
    @keyword(tags=["chaos", "assertion"])
    def durations_under_fault_should_stay_within(
        self,
        faulted: list[float],
        reference: list[float],
        added: timedelta = timedelta(0),
        allowance: timedelta = timedelta(seconds=1),
        percentile: float = 95,
        name: str = "Round trip",
    ) -> float:
        """Bounds the durations (seconds) timed under a fault from both sides; returns the asserted statistic.

        Why a same-run reference: the chaos suites run beside other suites on a busy machine, so an absolute bound
        would be either loose or flaky. ``reference`` is the same operation timed just before the fault, in the same
        test. The upper bound: the ``percentile`` of ``faulted`` stays below the same percentile of ``reference`` plus
        ``added`` (what the fault itself adds, e.g. an injected delay) plus ``allowance`` (a profile variable). The
        lower bound, when ``added`` is given: even the fastest faulted duration took at least ``added``, so the fault
        acted on every timed request. Over fewer samples than the percentile needs (p95: 20) the maximum is used.

        Example:
        | Durations Under Fault Should Stay Within | ${slow} | ${fast} | added=300 ms | allowance=500 ms |
        """
        message, measured, text = stopwatch_verdict(
            [float(v) for v in faulted],
            [float(v) for v in reference],
            added.total_seconds(),
            allowance.total_seconds(),
            float(percentile),
            name,
        )
        if message:
            raise AssertionError(message)
        self.info(text)
        return measured


def _statistic(values: list[float], pct: float) -> tuple[float, str]:
    """Nearest-rank ``pct`` percentile of ``values`` and its name; the maximum over too few samples."""
    needed = math.ceil(100 / (100 - pct)) if pct < 100 else 1
    ordered = sorted(values)
    if len(ordered) < needed:
        return ordered[-1], f"max over {counted(len(ordered), 'sample')} (p{pct:g} needs {needed})"
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)], f"p{pct:g} over {counted(len(ordered), 'sample')}"


def stopwatch_verdict(
    faulted: list[float], reference: list[float], added: float, allowance: float, pct: float, name: str
) -> tuple[str | None, float, str]:
    """The verdict of `Durations Under Fault Should Stay Within`: (failure message or None, statistic, summary)."""
    if not faulted or not reference:
        raise ValueError(f"{name}: no durations to judge (faulted {len(faulted)}, reference {len(reference)}).")
    measured, label = _statistic(faulted, pct)
    base, base_label = _statistic(reference, pct)
    limit = base + added + allowance
    parts = f"the same-run reference {base_label} {format_seconds(base)}"
    if added:
        parts += f" + the fault's added {format_seconds(added)}"
    parts += f" + the allowance {format_seconds(allowance)}"
    summary = f"{name} under the fault: {label} was {format_seconds(measured)}, below {format_seconds(limit)} ({parts})"
    if measured >= limit:
        return (
            f"{name} under the fault: {label} was {format_seconds(measured)}, allowed is below "
            f"{format_seconds(limit)} ({parts}); all: {', '.join(format_seconds(v) for v in faulted)}.",
            measured,
            summary,
        )
    fastest = min(faulted)
    if added and fastest < added:
        return (
            f"{name} under the fault: the fastest of {len(faulted)} took {format_seconds(fastest)}, less than the "
            f"{format_seconds(added)} the fault adds: the fault did not act on every request.",
            measured,
            summary,
        )
    if added:
        summary += f"; the fastest took {format_seconds(fastest)}, at least the fault's {format_seconds(added)}"
    return None, measured, summary + "."
