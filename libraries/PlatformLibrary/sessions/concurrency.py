"""Many creates at once: ``Create Sessions Concurrently`` and the check that every failure was a clean rejection."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import requests
from robot.api.deco import keyword

from ..core.profile import format_seconds
from .api import CLEAN_REJECTIONS, ApiComponent


class ConcurrentCreateResult:
    """Outcome of ``Create Sessions Concurrently``.

    Use it as an object or a dictionary: ``${result.successes}`` or ``${result}[successes]``.
    ``successes`` holds the created sessions, ``failures`` one dictionary per failed request with
    ``status`` (``None`` when no answer came), ``error``, ``message``, ``retryAfter``, ``body``,
    ``exception`` and ``seconds``.
    """

    def __init__(self, requested: int, successes: list[dict], failures: list[dict], seconds: float):
        self.requested = requested
        self.successes = successes
        self.failures = failures
        self.seconds = seconds

    @property
    def success_count(self) -> int:
        return len(self.successes)

    @property
    def failure_count(self) -> int:
        return len(self.failures)

    @property
    def session_ids(self) -> list[str]:
        return [s["sessionId"] for s in self.successes]

    def __getitem__(self, key: str) -> Any:
        if key not in (
            "requested",
            "successes",
            "failures",
            "seconds",
            "success_count",
            "failure_count",
            "session_ids",
        ):
            raise KeyError(key)
        return getattr(self, key)

    def __repr__(self) -> str:
        return (
            f"ConcurrentCreateResult(requested={self.requested}, successes={self.success_count}, "
            f"failures={self.failure_count}, seconds={self.seconds:.3f})"
        )


class ConcurrencyKeywords(ApiComponent):
    """Concurrent session creates."""

    @keyword(tags=["sessions", "load"])
    def create_sessions_concurrently(
        self, count: int, max_workers: int | None = None, timeout: timedelta | None = None
    ) -> ConcurrentCreateResult:
        """Sends ``count`` ``POST /sessions`` requests at the same time and returns what came back.

        Each request has its own user id. A request without an answer within ``timeout`` (default
        ``${CONCURRENT_REQUEST_TIMEOUT}``) counts as a failure with ``status`` ``None`` and the exception
        text, so a hang is reported, never hidden. Other errors propagate. Created sessions are remembered
        for cleanup. See `Concurrent Failures Should Be Clean Rejections` for the usual check.

        Example:
        | ${result} = | Create Sessions Concurrently | 20 |
        | Should Not Be Empty | ${result.successes} |
        """
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}.")
        workers = max_workers or count
        if workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {workers}.")
        request_timeout = self._deadline(timeout, "CONCURRENT_REQUEST_TIMEOUT")
        bodies = [self._default_ids(None, None) for _ in range(count)]
        scope = self.context.scope

        def create(ids: tuple[str, str]) -> tuple[dict | None, dict | None]:
            body = {"userId": ids[0], "clientId": ids[1]}
            try:
                response = self.api.request("POST", "/sessions", json_body=body, timeout=request_timeout)
            except requests.RequestException as error:
                return None, {
                    "status": None,
                    "error": None,
                    "message": None,
                    "retryAfter": None,
                    "body": None,
                    "exception": f"{type(error).__name__}: {error}",
                    "seconds": None,
                    "userId": ids[0],
                }
            if response.status == 201 and isinstance(response.body, dict) and "sessionId" in response.body:
                self.ctx.tracker.add(scope, response.body["sessionId"])
                return response.body, None
            failure = response.as_dict()
            failure.update(
                {
                    "message": response.body.get("message") if isinstance(response.body, dict) else None,
                    "exception": None,
                    "userId": ids[0],
                }
            )
            failure.pop("headers", None)
            return None, failure

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="create-session") as pool:
            outcomes = list(pool.map(create, bodies))
        seconds = time.perf_counter() - started
        successes = [s for s, _ in outcomes if s is not None]
        failures = [f for _, f in outcomes if f is not None]
        result = ConcurrentCreateResult(count, successes, failures, seconds)
        lines = [
            f"{count} concurrent creates in {format_seconds(seconds)}: {len(successes)} created, "
            f"{len(failures)} failed."
        ]
        lines += [f"  failed: {_describe_failure(f)}" for f in failures]
        self.info("\n".join(lines))
        return result

    @keyword(tags=["sessions", "load", "assertion"])
    def concurrent_failures_should_be_clean_rejections(
        self, result: ConcurrentCreateResult, allowed_statuses: list[int] | None = None
    ) -> None:
        """Fails unless every failure in ``result`` is a clean, retryable rejection.

        Clean means: status 429 or 503 (or ``allowed_statuses``), a JSON body with ``error`` and ``message``,
        and a ``Retry-After`` header. A 500, a non-JSON body or a request without an answer fails the keyword,
        and the message lists every offending request.
        """
        allowed = tuple(allowed_statuses) if allowed_statuses else CLEAN_REJECTIONS
        problems = []
        for failure in result.failures:
            body = failure.get("body")
            if failure.get("status") is None:
                problems.append(f"no answer: {failure.get('exception')}")
            elif failure["status"] not in allowed:
                problems.append(f"status {failure['status']} is not one of {list(allowed)}: {body!r}")
            elif not (isinstance(body, dict) and body.get("error") and "message" in body):
                problems.append(f"status {failure['status']} without a JSON error body: {body!r}")
            elif not failure.get("retryAfter"):
                problems.append(f"status {failure['status']} {body.get('error')} without a Retry-After header")
        if problems:
            raise AssertionError(
                f"{len(problems)} of {result.failure_count} failed creates were not clean rejections:\n"
                + "\n".join(f"- {p}" for p in problems)
            )
        self.info(f"All {result.failure_count} failures were clean rejections with Retry-After.")


def _describe_failure(failure: dict) -> str:
    if failure.get("status") is None:
        return f"no answer: {failure.get('exception')}"
    retry = f" Retry-After {failure.get('retryAfter')}" if failure.get("retryAfter") else ""
    return f"{failure['status']} {failure.get('error') or ''} {failure.get('message') or ''}{retry}".strip()
