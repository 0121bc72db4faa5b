"""Client-side observers for chaos tests: a client that keeps retrying in the background, and one timed request.

They talk to the platform the way a real client does: through the library's one session-API client
(``LibraryContext.api``: the load-balancer hop, the profile's authentication header or SigV4, its TLS settings and
the deployment's contract mapping), with a timeout per attempt and a backoff between attempts. They remember every
attempt, so a test can say what clients saw during a fault and how long after the fault was healed the first
request got the answer it expects. "Got through" means that expected answer (2xx unless the step names the statuses
it expects), never merely "some answer below 500": a 401, 403 or 404 is a client that did not get through.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import requests

from ..core.http_client import PlatformApiClient
from ..core.profile import counted


@dataclass
class Attempt:
    started: float  # time.monotonic()
    seconds: float
    status: int | None  # None: no answer (timeout, refused, reset)
    outcome: str  # "answer" or the exception class, e.g. "ReadTimeout"
    detail: str = ""  # a body excerpt, or the error

    def describe(self) -> str:
        """``401 '{"error": "unauthorized"}'`` for an answer, the exception class and text for none."""
        if self.status is None:
            return f"{self.outcome} ({self.detail[:120]})" if self.detail else self.outcome
        return f"{self.status} {self.detail[:120]!r}" if self.detail else str(self.status)


def timed_request(api: PlatformApiClient, method: str, path: str, timeout: float, json_body: Any = None) -> Attempt:
    """One request through the session-API client; never raises for network trouble, the attempt says what
    happened (status and a body excerpt, or the exception)."""
    started = time.monotonic()
    try:
        response = api.request(method, path, json_body=json_body, timeout=timeout)
    except requests.RequestException as error:
        return Attempt(started, time.monotonic() - started, None, type(error).__name__, str(error)[:200])
    return Attempt(started, time.monotonic() - started, response.status, "answer", response.text[:200])


_STATUS_CLASS = re.compile(r"^([1-5])xx$", re.IGNORECASE)


@dataclass(frozen=True)
class ExpectedStatus:
    """The answers a probe counts as getting through: status classes (``2xx``) and exact statuses (``404``)."""

    classes: frozenset[int] = frozenset({2})
    exact: frozenset[int] = frozenset()

    @classmethod
    def parse(cls, text: str | int | Collection[int | str] = "2xx") -> ExpectedStatus:
        """From ``2xx``, ``200``, ``200 404`` or ``200, 404`` (or a list of these); fails on anything else."""
        items = (
            [text]
            if isinstance(text, int)
            else re.split(r"[\s,]+", text.strip())
            if isinstance(text, str)
            else [str(item) for item in text]
        )
        classes, exact = set(), set()
        for item in (str(i).strip() for i in items if str(i).strip()):
            match = _STATUS_CLASS.match(item)
            if match:
                classes.add(int(match.group(1)))
            elif item.isdigit() and 100 <= int(item) <= 599:
                exact.add(int(item))
            else:
                raise ValueError(f"Expected HTTP statuses like '2xx', '200' or '200 404', got {text!r}.")
        if not classes and not exact:
            raise ValueError(f"Name at least one expected status (e.g. '2xx'), got {text!r}.")
        return cls(frozenset(classes), frozenset(exact))

    def matches(self, status: int | None) -> bool:
        return status is not None and (status in self.exact or status // 100 in self.classes)

    def __str__(self) -> str:
        return " or ".join([f"{c}xx" for c in sorted(self.classes)] + [str(s) for s in sorted(self.exact)])


@dataclass
class RetryingClient:
    """Sends the same request again and again until it gets the answer it expects, like an SDK with retries."""

    name: str
    api: PlatformApiClient
    method: str
    path: str
    attempt_timeout: float
    backoff: float
    max_backoff: float
    deadline: float  # seconds the client keeps trying at most
    expected: ExpectedStatus = field(default_factory=ExpectedStatus)
    attempts: list[Attempt] = field(default_factory=list)
    success: Attempt | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"retrying-client-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._retry()
        finally:
            self.api.close()  # this thread's keep-alive connection

    def _retry(self) -> None:
        end = time.monotonic() + self.deadline
        delay = self.backoff
        while not self._stop.is_set() and time.monotonic() < end:
            attempt = timed_request(self.api, self.method, self.path, self.attempt_timeout)
            with self._lock:
                self.attempts.append(attempt)
                if self.expected.matches(attempt.status):
                    self.success = attempt
                    return
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, self.max_backoff)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.attempt_timeout + 1)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def snapshot(self) -> tuple[list[Attempt], Attempt | None]:
        with self._lock:
            return list(self.attempts), self.success

    def summary(self) -> str:
        attempts, success = self.snapshot()
        kinds: dict[str, int] = {}
        for attempt in attempts:
            key = str(attempt.status) if attempt.status is not None else attempt.outcome
            kinds[key] = kinds.get(key, 0) + 1
        seen = ", ".join(f"{count}x {kind}" for kind, count in kinds.items()) or "no attempt yet"
        if success:
            state = f"got {success.status} on attempt {attempts.index(success) + 1}"
        elif attempts:
            state = f"no {self.expected} answer yet, last: {attempts[-1].describe()}"
        else:
            state = "no answer yet"
        tried = counted(len(attempts), "attempt")
        return f"{self.method} {self.path} (expects {self.expected}): {tried} ({seen}); {state}"
