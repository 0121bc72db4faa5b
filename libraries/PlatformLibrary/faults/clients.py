"""Client-side observers for chaos tests: a client that keeps retrying in the background, and one timed request.

They talk to the platform the way a real client does (through the load-balancer hop, with a timeout per attempt and
a backoff between attempts) and remember every attempt, so a test can say what clients saw during a fault and how
long after the fault was healed the first request got through.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests


@dataclass
class Attempt:
    started: float  # time.monotonic()
    seconds: float
    status: int | None  # None: no answer (timeout, refused, reset)
    outcome: str  # "answer" or the exception class, e.g. "ReadTimeout"
    detail: str = ""


def timed_request(method: str, url: str, timeout: float, json_body: Any = None) -> Attempt:
    """One request; never raises for network trouble, the attempt says what happened."""
    started = time.monotonic()
    try:
        response = requests.request(method, url, json=json_body, timeout=timeout)
    except requests.Timeout as error:
        return Attempt(started, time.monotonic() - started, None, type(error).__name__, str(error)[:200])
    except requests.RequestException as error:
        return Attempt(started, time.monotonic() - started, None, type(error).__name__, str(error)[:200])
    detail = response.text[:200]
    return Attempt(started, time.monotonic() - started, response.status_code, "answer", detail)


@dataclass
class RetryingClient:
    """Sends the same request again and again until it gets an answer below 500, like an SDK with retries."""

    name: str
    method: str
    url: str
    attempt_timeout: float
    backoff: float
    max_backoff: float
    deadline: float  # seconds the client keeps trying at most
    attempts: list[Attempt] = field(default_factory=list)
    success: Attempt | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"retrying-client-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        end = time.monotonic() + self.deadline
        delay = self.backoff
        while not self._stop.is_set() and time.monotonic() < end:
            attempt = timed_request(self.method, self.url, self.attempt_timeout)
            with self._lock:
                self.attempts.append(attempt)
                if attempt.status is not None and attempt.status < 500:
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
        state = f"got {success.status} on attempt {attempts.index(success) + 1}" if success else "no answer yet"
        return f"{self.method} {self.url}: {len(attempts)} attempts ({seen}); {state}"
