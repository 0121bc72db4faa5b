"""Keywords of the session API's sessions: create, read, wait, delete, health and capacity; and what every API
component shares (``ApiComponent``).

Beside it: workspace files (``workspace.py``), the reaper (``reaper.py``), concurrent creates
(``concurrency.py``). The HTTP client itself is ``core.http_client``; load over the API is ``load``.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import quote

import requests
from robot.api.deco import keyword

from ..core.base import LibraryComponent, LibraryContext
from ..core.http_client import ApiResponse, PlatformApiClient
from ..core.profile import format_seconds
from ..core.waiting import wait_until

SessionRef = str | dict
# How a field assertion compares: the whole value as text, or a part of it case-insensitively (a reason's wording).
Match = Literal["equal", "contain"]
TERMINAL_STATUSES = ("STOPPED", "FAILED")
GONE_STATUSES = (404, 410)
CLEAN_REJECTIONS = (429, 503)


class ApiError(AssertionError):
    """The platform answered something other than what the keyword expected."""

    ROBOT_SUPPRESS_NAME = True


class ApiComponent(LibraryComponent):
    """What every component of the session API shares: the one client, a call that names a missing answer, the
    check of the answer's status, the run's ids. A base class, not a mixin: its subclasses are the components."""

    @property
    def api(self) -> PlatformApiClient:
        return self.ctx.api

    def _call(self, method: str, path: str, **kwargs) -> ApiResponse:
        try:
            response = self.api.request(method, path, **kwargs)
        except requests.RequestException as error:
            raise ApiError(f"{method} {path} got no answer from {self.api.base_url}: {error}") from error
        self.debug(f"{response.describe()} in {format_seconds(response.seconds)}")
        return response

    @staticmethod
    def _expect(response: ApiResponse, *statuses: int) -> ApiResponse:
        if response.status not in statuses:
            expected = " or ".join(str(s) for s in statuses)
            raise ApiError(f"Expected {expected} but {response.describe()}")
        return response

    def _default_ids(self, user_id: str | None, client_id: str | None) -> tuple[str, str]:
        return (user_id or self.context.unique_name("qa-user"), client_id or f"qa-client-{self.context.run_id}")

    def _deadline(self, timeout: timedelta | None, profile_name: str) -> float:
        return timeout.total_seconds() if timeout is not None else self.profile.seconds(profile_name)


class PlatformApiKeywords(ApiComponent):
    """Sessions, health and capacity of the platform API."""

    def __init__(self, ctx: LibraryContext):
        super().__init__(ctx)
        self._deleted: dict[str, list[str]] = {}  # scope -> sessions its cleanup deleted
        # session id -> when (epoch s) this client sent its create, first saw it RUNNING, sent its delete
        self._lifecycle: dict[str, dict[str, float]] = {}

    def _track(self, session_id: str) -> None:
        self.ctx.tracker.add(self.context.scope, session_id)

    def _fetch(self, session: SessionRef) -> ApiResponse:
        return self._call("GET", self.api.session_path(self.session_id_of(session)))

    # ------------------------------------------------------------------ sessions
    @keyword(tags=["sessions"])
    def create_session(self, user_id: str | None = None, client_id: str | None = None) -> dict:
        """Creates a session through ``POST /sessions`` and returns the session object.

        Without ``user_id``/``client_id`` the keyword makes ids unique to this run, pabot worker and test.
        The session is remembered so `Delete Sessions Created By This Test` can remove it.
        Fails, showing status and error body, unless the platform answers 201.

        Example:
        | ${session} = | Create Session |
        | ${session} = | Create Session | user_id=alice | client_id=acme |
        | Log | ${session}[sessionId] |
        """
        user_id, client_id = self._default_ids(user_id, client_id)
        sent = time.time()
        response = self._expect(
            self._call("POST", "/sessions", json_body={"userId": user_id, "clientId": client_id}), 201
        )
        session = response.body
        if not isinstance(session, dict) or "sessionId" not in session:
            raise ApiError(f"POST /sessions answered 201 without a session object: {response.text[:300]!r}")
        self._track(session["sessionId"])
        self.note_lifecycle(session["sessionId"], created=sent)
        self.info(
            f"Created session {session['sessionId']} for user {user_id} ({session.get('status')}) "
            f"in {format_seconds(response.seconds)}."
        )
        return session

    @keyword(tags=["sessions"])
    def try_to_create_session(
        self,
        user_id: str | None = None,
        client_id: str | None = None,
        body: dict | None = None,
        timeout: timedelta | None = None,
    ) -> dict:
        """Sends ``POST /sessions`` and returns the answer without judging it.

        Returns a dictionary with ``status``, ``body``, ``error``, ``retryAfter``, ``headers`` and ``seconds``.
        Give ``body`` to send exactly that JSON (for invalid-input tests). A created session is still
        remembered for cleanup. No answer within ``timeout`` (default ``${HTTP_TIMEOUT}``) fails the keyword: a
        bound on how long a refusal may take under a fault.

        Example:
        | ${answer} = | Try To Create Session | user_id=bad id! |
        | Should Be Equal As Integers | ${answer}[status] | 400 |
        """
        if body is None:
            user_id, client_id = self._default_ids(user_id, client_id)
            body = {"userId": user_id, "clientId": client_id}
        wait = timeout.total_seconds() if timeout is not None else None
        response = self._call("POST", "/sessions", json_body=body, timeout=wait)
        if response.status == 201 and isinstance(response.body, dict) and "sessionId" in response.body:
            self._track(response.body["sessionId"])
        self.info(f"{response.describe()} in {format_seconds(response.seconds)}")
        return response.as_dict()

    @keyword(tags=["sessions"])
    def try_to_create_session_with_raw_body(
        self, body: str | bytes, content_type: str | None = "application/json"
    ) -> dict:
        """Sends ``POST /sessions`` with exactly ``body`` (text is sent as UTF-8) and returns the answer unjudged.

        For bodies the contract excludes: not JSON, a JSON array, wrong types, a huge body. ``content_type`` is the
        Content-Type header sent (``None``: none at all). Returns ``status``, ``body``, ``error``, ``retryAfter``,
        ``headers`` and ``seconds``; a session created all the same is remembered for cleanup. The body itself is
        not logged (it may be megabytes), only its size.

        Example:
        | ${answer} = | Try To Create Session With Raw Body | [{"userId": "u1", "clientId": "c1"}] |
        | ${answer} = | Try To Create Session With Raw Body | {"userId": "u1", "clientId": "c1"} | text/plain |
        | Should Be Equal As Integers | ${answer}[status] | 400 |
        """
        data = body if isinstance(body, bytes) else body.encode("utf-8")
        headers = {"Content-Type": content_type} if content_type is not None else None
        response = self._call("POST", "/sessions", data=data, extra_headers=headers)
        if response.status == 201 and isinstance(response.body, dict) and "sessionId" in response.body:
            self._track(response.body["sessionId"])
        self.info(f"{len(data)} byte body, Content-Type {content_type!r}: {response.describe()}")
        return response.as_dict()

    @keyword(tags=["sessions", "assertion"])
    def user_should_have_no_sessions(self, user_id: str) -> None:
        """Fails unless ``GET /sessions?userId=`` lists no session (and so no record) of ``user_id``.

        The id is sent percent-encoded, as written. An id the platform refuses to look up (400) cannot own a
        session either, so that answer passes too; any other answer fails.

        Example:
        | User Should Have No Sessions | ${user_id} |
        """
        response = self._call("GET", f"/sessions?userId={quote(user_id, safe='')}")
        if response.status == 400:
            self.info(f"User id {user_id!r} cannot be looked up: {response.describe()}")
            return
        self._expect(response, 200)
        sessions = response.body.get("sessions", []) if isinstance(response.body, dict) else None
        if sessions != []:
            raise AssertionError(
                f"Broken promise: a refused create leaves no session. User {user_id!r} has session(s): {sessions}"
            )

    @keyword(tags=["sessions"])
    def get_session(self, session: SessionRef) -> dict:
        """Returns the session object from ``GET /sessions/{id}``; fails on any answer but 200.

        ``session`` is a session id or a session object returned by `Create Session`.
        """
        return self._expect(self._fetch(session), 200).body

    @keyword(tags=["sessions"])
    def try_to_get_session(self, session: SessionRef, timeout: timedelta | None = None) -> dict:
        """Sends ``GET /sessions/{id}`` and returns the answer without judging it.

        Returns ``status``, ``body``, ``error``, ``retryAfter``, ``headers`` and ``seconds``, e.g. to check that
        the API fails fast and cleanly during an outage. No answer within ``timeout`` (default ``${HTTP_TIMEOUT}``)
        fails the keyword.

        Example:
        | ${answer} = | Try To Get Session | ${session} |
        | Should Be Equal As Integers | ${answer}[status] | 503 |
        """
        wait = timeout.total_seconds() if timeout is not None else None
        response = self._call("GET", self.api.session_path(self.session_id_of(session)), timeout=wait)
        self.info(f"{response.describe()} in {format_seconds(response.seconds)}")
        return response.as_dict()

    @keyword(tags=["sessions", "assertion"])
    def session_should_have(self, session: SessionRef, match: Match = "equal", **fields: str) -> dict:
        """Fails unless the API's session object has every given ``field=value``; returns the object.

        ``match=equal`` (the default): values are compared as text, so ``restartCount=1`` matches the number 1.
        ``match=contain``: each field's value contains the given text, case-insensitively (a reason's wording).
        The failure message names each field with the expected and the actual value. `Session Record Should
        Have` asks the same of the DynamoDB record.

        Example:
        | Session Should Have | ${session} | status=RUNNING | restartCount=1 |
        | Session Should Have | ${session} | lastFailureReason=SIGKILL | match=contain |
        """
        actual = self.get_session(session)
        assert_fields("Session", self.session_id_of(session), actual, fields, match)
        return actual

    @keyword(tags=["sessions", "assertion"])
    def session_should_not_exist(self, session: SessionRef) -> None:
        """Fails unless the API answers 404 or 410 for the session (it is gone or expired)."""
        response = self._fetch(session)
        if response.status not in GONE_STATUSES:
            raise AssertionError(f"Session should not exist but {response.describe()}")

    @keyword(tags=["sessions"])
    def list_sessions_of_user(self, user_id: str) -> list[dict]:
        """Returns the sessions of ``user_id`` from ``GET /sessions?userId=``."""
        response = self._expect(self._call("GET", f"/sessions?userId={user_id}"), 200)
        return list(response.body.get("sessions", []))

    @keyword(tags=["sessions"])
    def delete_session(self, session: SessionRef, missing_ok: bool = False) -> None:
        """Deletes the session (``DELETE /sessions/{id}``, expects 204).

        With ``missing_ok=True`` a 404 or 410 is accepted too.
        """
        session_id = self.session_id_of(session)
        allowed = (204, *GONE_STATUSES) if missing_ok else (204,)
        sent = time.time()
        self._expect(self._call("DELETE", self.api.session_path(session_id)), *allowed)
        self.note_lifecycle(session_id, deleted=sent)
        # `Deleted Sessions Should Leave Nothing Behind` checks every session the test deleted, this one too.
        deleted = self._deleted.setdefault(self.context.scope, [])
        if session_id not in deleted:
            deleted.append(session_id)
        self.info(f"Deleted session {session_id}.")

    @keyword(tags=["sessions", "wait"])
    def wait_until_session_is_running(self, session: SessionRef, timeout: timedelta | None = None) -> float:
        """Waits until the session is ``RUNNING`` and returns how many seconds that took.

        The deadline is ``timeout`` or the profile's ``${SESSION_START_TIMEOUT}``. Stops early when the
        session becomes ``FAILED`` or ``STOPPED``: waiting longer cannot help then.

        Example:
        | ${seconds} = | Wait Until Session Is Running | ${session} |
        | ${seconds} = | Wait Until Session Is Running | ${session} | timeout=2 min |
        """
        waited = self._wait_for_status(session, ("RUNNING",), timeout)
        self.note_lifecycle(self.session_id_of(session), running=time.time())
        self.info(f"Session {self.session_id_of(session)} RUNNING after {format_seconds(waited.seconds)}.")
        return waited.seconds

    def note_lifecycle(self, session_id: str, **moments: float) -> None:
        """Remembers when (epoch seconds) this client sent a session's create (``created``), first saw it
        ``RUNNING`` (``running``) and sent its delete (``deleted``); a moment already noted is kept (the first)."""
        noted = self._lifecycle.setdefault(session_id, {})
        for name, value in moments.items():
            noted.setdefault(name, float(value))

    def lifecycle_of(self, session_id: str) -> dict[str, float]:
        """The moments `note_lifecycle` remembered for the session (``created``, ``running``, ``deleted``)."""
        return dict(self._lifecycle.get(session_id, {}))

    @keyword(tags=["sessions", "wait"])
    def wait_until_session_has_status(
        self, session: SessionRef, *statuses: str, timeout: timedelta | None = None
    ) -> dict:
        """Waits until the session has one of ``statuses``, whatever it passes on the way, and returns it.

        For outcomes a fault should end in (``FAILED`` after the restart budget); the deadline is ``timeout`` or
        ``${SESSION_SETTLE_TIMEOUT}``, and the failure shows the last answer (status, restartCount).

        Example:
        | ${session} = | Wait Until Session Has Status | ${SESSION} | FAILED |
        """
        if not statuses:
            raise ValueError("Name at least one status to wait for, e.g. FAILED.")
        deadline = timeout if timeout is not None else timedelta(seconds=self.profile.seconds("SESSION_SETTLE_TIMEOUT"))
        waited = self._wait_for_status(session, tuple(statuses), deadline, stop_on_terminal=False)
        return waited.value

    @keyword(tags=["sessions", "wait"])
    def wait_until_session_is_gone(self, session: SessionRef, timeout: timedelta | None = None) -> float:
        """Waits until the API answers 404/410 or the session is ``STOPPED``; returns the seconds it took.

        The deadline is ``timeout`` or ``${SESSION_STOP_TIMEOUT}``.
        """
        session_id = self.session_id_of(session)
        last: dict[str, Any] = {}

        def probe():
            response = self._fetch(session_id)
            last["answer"] = response.describe()
            if response.status in GONE_STATUSES:
                return True
            if response.status == 200 and response.body.get("status") == "STOPPED":
                return True
            return None

        seconds = self._deadline(timeout, "SESSION_STOP_TIMEOUT")
        waited = wait_until(
            probe,
            seconds,
            self.profile.seconds("POLL_INTERVAL"),
            lambda: f"Session {session_id} still exists: {last.get('answer')}",
        )
        return waited.seconds

    @keyword(tags=["sessions", "wait"])
    def wait_until_session_settles(self, session: SessionRef, timeout: timedelta | None = None) -> str:
        """Waits until the session is no longer on its way somewhere and returns where it ended.

        Settled means ``RUNNING``, ``STOPPED`` or ``FAILED``, or gone (404/410, returned as ``GONE``);
        ``PENDING``, ``STARTING``, ``RESTARTING`` and ``STOPPING`` are on the way. The deadline is
        ``timeout`` or ``${SESSION_SETTLE_TIMEOUT}``; a session stuck on the way fails the keyword.

        Example:
        | ${status} = | Wait Until Session Settles | ${session} |
        """
        session_id = self.session_id_of(session)
        last: dict[str, Any] = {}

        def probe():
            try:
                response = self._fetch(session_id)
            except ApiError as error:
                last["answer"] = str(error)
                return None
            last["answer"] = response.describe()
            if response.status in GONE_STATUSES:
                return "GONE"
            if response.status == 200:
                status = response.body.get("status")
                last["answer"] = f"status {status}"
                if status in ("RUNNING", *TERMINAL_STATUSES):
                    return status
            return None

        waited = wait_until(
            probe,
            self._deadline(timeout, "SESSION_SETTLE_TIMEOUT"),
            self.profile.seconds("POLL_INTERVAL"),
            lambda: f"Session {session_id} did not settle; last seen: {last.get('answer')}",
        )
        self.info(f"Session {session_id} settled as {waited.value} after {format_seconds(waited.seconds)}.")
        return waited.value

    def _wait_for_status(
        self, session: SessionRef, statuses: tuple[str, ...], timeout: timedelta | None, stop_on_terminal: bool = True
    ):
        session_id = self.session_id_of(session)
        seen: dict[str, Any] = {}

        def probe():
            try:
                response = self._fetch(session_id)
            except ApiError as error:  # a dropped connection during recovery is worth another look
                seen["answer"] = str(error)
                return None
            seen["answer"] = response.describe()
            if response.status != 200:
                seen["session"] = None
                return None
            seen["session"] = response.body
            return response.body if response.body.get("status") in statuses else None

        def fail_fast():
            current = seen.get("session")
            if stop_on_terminal and current and current.get("status") in TERMINAL_STATUSES:
                return (
                    f"Session {session_id} became {current['status']} while waiting for "
                    f"{' or '.join(statuses)}; lastFailureReason: {current.get('lastFailureReason')!r}"
                )
            if seen.get("answer", "").endswith(("-> 404 not_found", "-> 410 session_expired")):
                return f"Session {session_id} vanished while waiting for {' or '.join(statuses)}: {seen['answer']}"
            return None

        def describe():
            current = seen.get("session")
            if current:
                return (
                    f"Session {session_id} did not reach {' or '.join(statuses)}; last status "
                    f"{current.get('status')} (restartCount {current.get('restartCount')})"
                )
            return f"Session {session_id} did not reach {' or '.join(statuses)}; last answer: {seen.get('answer')}"

        seconds = self._deadline(timeout, "SESSION_START_TIMEOUT")
        return wait_until(probe, seconds, self.profile.seconds("POLL_INTERVAL"), describe, fail_fast)

    # ------------------------------------------------------------------ platform and admin
    def get_platform_health(self) -> dict:
        """Returns ``GET /health`` as ``{"httpStatus": ..., **body}`` without judging it."""
        response = self._call("GET", "/health")
        body = response.body if isinstance(response.body, dict) else {"raw": response.text}
        return {"httpStatus": response.status, **body}

    @keyword(tags=["admin", "assertion"])
    def platform_should_be_healthy(self) -> None:
        """Fails unless ``GET /health`` answers 200 with ``status`` ``ok``."""
        response = self._call("GET", "/health")
        if response.status != 200 or not isinstance(response.body, dict) or response.body.get("status") != "ok":
            raise AssertionError(f"Platform is not healthy: {response.describe()}")

    @keyword(tags=["admin", "wait"])
    def wait_until_platform_is_healthy(self, timeout: timedelta | None = None) -> float:
        """Waits until ``GET /health`` answers 200 ``ok`` (after a fault is reverted); returns the seconds.

        The deadline is ``timeout`` or ``${FAULT_REACTION_TIMEOUT}``.
        """
        last: dict[str, str] = {}

        def probe():
            try:
                response = self._call("GET", "/health")
            except ApiError as error:
                last["answer"] = str(error)
                return None
            last["answer"] = response.describe()
            ok = response.status == 200 and isinstance(response.body, dict) and response.body.get("status") == "ok"
            return True if ok else None

        waited = wait_until(
            probe,
            self._deadline(timeout, "FAULT_REACTION_TIMEOUT"),
            self.profile.seconds("POLL_INTERVAL"),
            lambda: f"Platform did not become healthy; last answer: {last.get('answer')}",
        )
        self.info(f"Platform healthy after {format_seconds(waited.seconds)}.")
        return waited.seconds

    @keyword(tags=["admin"])
    def get_capacity(self) -> dict:
        """Returns ``GET /capacity``: running, pending, desired, capacity, max and warmPool."""
        return self._expect(self._call("GET", "/capacity"), 200).body

    # ------------------------------------------------------------------ cleanup
    @keyword(tags=["cleanup"])
    def get_sessions_created_by_this_test(self) -> list[str]:
        """Returns the ids of the sessions created so far in the current test (or suite setup)."""
        return self.ctx.tracker.ids(self.context.scope)

    @keyword(tags=["cleanup"])
    def delete_sessions_created_by_this_test(self) -> list[str]:
        """Deletes every session the current test created; use it in ``Test Teardown``.

        Sessions that are already gone (404/410) are fine. Any other answer is collected and reported at the
        end, after every session had its delete attempt. Returns the deleted ids.
        Called in a suite setup or teardown it deletes what the suite-level keywords created.
        """
        return self._delete_scope(self.context.scope)

    def deleted_in(self, scope: str) -> list[str]:
        """The sessions ``scope`` deleted, in its body or its cleanup (for the check that they left nothing behind)."""
        return list(dict.fromkeys(self._deleted.get(scope, [])))

    def _delete_scope(self, scope: str) -> list[str]:
        problems, deleted = [], []
        for session_id in self.ctx.tracker.ids(scope):
            try:
                response = self.api.request("DELETE", self.api.session_path(session_id))
            except requests.RequestException as error:
                problems.append(f"{session_id}: no answer ({error})")
                continue
            if response.status in (204, *GONE_STATUSES):
                deleted.append(session_id)
                self.ctx.tracker.discard(session_id)
            else:
                problems.append(f"{session_id}: {response.describe()}")
        self.info(f"Cleanup deleted {len(deleted)} session(s): {', '.join(deleted) or 'none'}.")
        self._deleted.setdefault(scope, []).extend(deleted)
        if problems:
            raise AssertionError("Could not delete every session:\n" + "\n".join(problems))
        return deleted


def assert_fields(what: str, ident: str, actual: dict, expected: dict[str, Any], match: Match = "equal") -> None:
    """Compare ``expected`` field values (as text, or as contained text with ``match="contain"``) with ``actual``;
    one message line per mismatch."""
    if not expected:
        raise ValueError("Give at least one field=value pair, e.g. status=RUNNING.")
    mismatches = []
    for name, want in expected.items():
        if name not in actual:
            mismatches.append(f"field '{name}': expected {want!r}, but the field is missing")
        elif match == "contain" and str(want).lower() not in str(actual[name]).lower():
            mismatches.append(f"field '{name}': expected it to contain {want!r}, actual {actual[name]!r}")
        elif match == "equal" and not _same(actual[name], want):
            mismatches.append(f"field '{name}': expected {want!r}, actual {actual[name]!r}")
    if mismatches:
        raise AssertionError(f"{what} {ident} does not match:\n" + "\n".join(f"- {m}" for m in mismatches))


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, str) and not isinstance(actual, str):
        if isinstance(actual, bool):
            return str(actual).lower() == expected.lower()
        if isinstance(actual, int | float):
            try:
                return float(expected) == float(actual)
            except ValueError:
                return False
        if actual is None:
            return expected in ("", "None", "null")
        return str(actual) == expected
    return actual == expected


__all__ = ["ApiComponent", "ApiError", "PlatformApiKeywords", "assert_fields"]
