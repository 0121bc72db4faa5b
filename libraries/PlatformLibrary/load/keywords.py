"""Load generation keywords: open and closed models with coordinated-omission-corrected latency.

The engine is :mod:`PlatformLibrary.load.engine`; this component turns it into keywords that speak the platform's
API, track what they create for cleanup, record metrics and histograms for the resilience report, print live
progress on the console and check thresholds with messages that say measured versus allowed.

Why about 740 lines: one keyword per load model plus the scenarios they run, and each scenario closes over the
API client, the cleanup tracker and the run's state; split apart, the pieces would reach into each other.
Results and thresholds are in ``results``, resource utilisation in ``utilisation``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any, Literal

from robot.api.deco import keyword

from ..core import progress
from ..core.base import LibraryComponent, LibraryContext
from ..core.contract import ApiContract
from ..core.http_client import api_auth_headers, api_tls_verify
from ..core.profile import to_seconds
from ..core.stats import LATENCY_BOUND_METRIC
from ..core.waiting import wait_until
from ..report.metrics import MetricsKeywords, save_histogram
from ..sessions.api import PlatformApiKeywords
from .engine import Answer, HttpRequest, LoadRun, Stage, categorize
from .results import (
    LoadResult,
    check_threshold,
    format_rate,
    is_timing_threshold,
    latency_bound,
    parse_rate,
)

# Choice arguments: libdoc lists the allowed values and Robot converts them.
OnBusy = Literal["drop", "queue"]
StartType = Literal["cold", "warm"]

SCENARIOS = {
    "health": "GET /health",
    "capacity": "GET /capacity",
    "get-session": "GET /sessions/{id} of the given session(s)",
    "api-mix": "GET /health and GET /sessions/{id} in turn (the API response time mix)",
    "file-ops": "PUT of a 1 KiB file (fsynced) and GET of a file in turn, in the given session(s)' workspace",
    "create-session": "POST /sessions with a new user each time; created sessions are deleted in the teardown",
    "session-lifecycle": "create a session, wait until RUNNING, write and read a file, delete it (one iteration)",
}
FILE_SLOTS = 20
_STAGE = re.compile(r"^\s*(?P<rate>.+?)\s+(?:in|for|over)\s+(?P<duration>.+?)\s*$", re.IGNORECASE)


class LoadHandle:
    """A load run started with ``background=True``; pass it to `Wait Until Load Ends`."""

    def __init__(self, run: LoadRun, finish):
        self.run = run
        self._finish = finish
        self.result: LoadResult | None = None

    def __repr__(self) -> str:
        return f"LoadHandle({self.run.name!r}, running={self.run.running})"


class LoadKeywords(LibraryComponent):
    """Load generation: open and closed models with coordinated-omission-corrected latency.

    Scenarios (the ``scenario`` argument):
    | =Scenario= | =Each iteration= |
    | ``health`` | ``GET /health`` |
    | ``capacity`` | ``GET /capacity`` |
    | ``get-session`` | ``GET /sessions/{id}`` of ``session`` (one session or a list) |
    | ``api-mix`` | ``GET /health`` and ``GET /sessions/{id}`` in turn |
    | ``file-ops`` | ``PUT`` of a 1 KiB file (fsynced by the platform) and ``GET`` of a file in turn |
    | ``create-session`` | ``POST /sessions`` for a new user; created sessions are cleaned up by the teardown |
    | ``session-lifecycle`` | create a session, wait until it runs, write and read a file, delete it |
    """

    def __init__(
        self,
        ctx: LibraryContext,
        api: PlatformApiKeywords,
        metrics: MetricsKeywords,
    ):
        super().__init__(ctx)
        self.api = api
        self._metrics = metrics

    # ------------------------------------------------------------------ helpers
    def _metrics_dir(self):
        return self._metrics.metrics_file.parent

    def _profile_seconds(self, value, name: str, default: Any = None) -> float:
        if value is not None and value != "":
            return to_seconds(value, what=name)
        return self.profile.seconds(name, default)

    def _sessions(self, session: Any) -> list[str]:
        if session is None or session == "":
            return []
        items = session if isinstance(session, list | tuple) else [session]
        return [self.session_id_of(s) for s in items]

    def _progress(self, snap: dict[str, Any]) -> None:
        progress.console(
            f"  [load {snap['name']}] {snap['elapsed']:5.1f}/{snap['duration']:g} s  sent {snap['sent']} "
            f"({snap['rate']:.1f}/s)  ok {snap['ok']}  errors {snap['errors']}  dropped {snap['dropped']}  "
            f"late {snap['late']}  in flight {snap['inFlight']}  p95 {snap['p95'] * 1000:.1f} ms"
        )

    def _build(
        self,
        scenario: str,
        session: Any,
        name: str | None,
        max_vus: int | None,
        on_busy: str,
        request_timeout,
        **model: Any,
    ) -> tuple[LoadRun, dict[str, Any]]:
        scenario = scenario.strip().lower()
        if scenario not in SCENARIOS:
            raise ValueError(f"Unknown load scenario '{scenario}'. Known: {', '.join(SCENARIOS)}.")
        sessions = self._sessions(session)
        if scenario in ("get-session", "api-mix", "file-ops") and not sessions:
            raise ValueError(f"Scenario '{scenario}' needs session=<a session or a list of sessions>.")
        state: dict[str, Any] = {
            "scenario": scenario,
            "sessions": sessions,
            "created": [],  # (sessionId, seconds) of created sessions
            "starts": [],  # (startType, seconds) seen by session-lifecycle
            "lifetimes": [],  # container seconds of sessions created and deleted by the run
            "apiCalls": Counter(),
            "rejections": [],
            "lock": threading.Lock(),
        }
        label = name or scenario
        options = {
            "max_vus": int(max_vus) if max_vus else self.profile.integer("LOAD_MAX_VUS", 50),
            "on_busy": on_busy,
            "request_timeout": (
                self._profile_seconds(request_timeout, "HTTP_TIMEOUT")
                if scenario != "session-lifecycle" or request_timeout
                else self.profile.seconds("SESSION_START_TIMEOUT") + 4 * self.profile.seconds("HTTP_TIMEOUT")
            ),
            "late_threshold": self.profile.seconds("LOAD_LATE_THRESHOLD", "10 ms"),
            "progress": self._progress,
            "progress_interval": self.profile.seconds("LOAD_PROGRESS_INTERVAL", "5 s"),
            **model,
        }
        if scenario == "session-lifecycle":
            run = LoadRun(label, action=self._lifecycle_action(state), **options)
        else:
            base_url = str(self.endpoint("PLATFORM_API_URL"))
            request_for, on_answer = self._http_scenario(state)
            request_for, on_answer = _in_contract(self.ctx.api.contract, request_for, on_answer)
            verify = api_tls_verify(self.profile)
            run = LoadRun(
                label,
                base_url=base_url,
                scenario=request_for,
                on_answer=on_answer,
                headers=api_auth_headers(self.profile),
                signer=self.ctx.api_signer(),
                ca_bundle=verify if isinstance(verify, str) else None,
                verify_tls=verify is not False,
                **options,
            )
            if scenario in ("api-mix", "file-ops"):
                run.track_names()
        return run, state

    def _http_scenario(self, state: dict[str, Any]):
        scenario, sessions = state["scenario"], state["sessions"]
        api = self.ctx.api
        calls: Counter = state["apiCalls"]
        json_headers = {"Content-Type": "application/json"}
        if scenario == "health":
            fixed = HttpRequest("GET", "/health", name="GET /health")
            return (lambda i: fixed), _count(calls, "health")
        if scenario == "capacity":
            fixed = HttpRequest("GET", "/capacity", name="GET /capacity")
            return (lambda i: fixed), _count(calls, "capacity")
        if scenario == "get-session":
            gets = [HttpRequest("GET", api.session_path(s), name="GET /sessions/{id}") for s in sessions]
            return (lambda i: gets[i % len(gets)]), _count(calls, "get")
        if scenario == "api-mix":
            health = HttpRequest("GET", "/health", name="GET /health")
            gets = [HttpRequest("GET", api.session_path(s), name="GET /sessions/{id}") for s in sessions]

            def mix(i: int) -> HttpRequest:
                return gets[(i // 2) % len(gets)] if i % 2 else health

            return mix, _count(calls, "api")
        if scenario == "file-ops":
            self._prepare_files(sessions, state)
            payload = b"x" * 1024
            puts = [
                [HttpRequest("PUT", api.file_path(s, f"load/f{n}.txt"), payload, name="PUT file") for n in range(20)]
                for s in sessions
            ]
            gets = [
                [HttpRequest("GET", api.file_path(s, f"load/f{n}.txt"), name="GET file") for n in range(20)]
                for s in sessions
            ]

            def file_op(i: int) -> HttpRequest:
                k = i // 2
                which = puts if i % 2 == 0 else gets
                return which[k % len(sessions)][(k // len(sessions)) % FILE_SLOTS]

            return file_op, _count(calls, "file")
        # create-session
        scope = self.context.scope
        tracker = self.ctx.tracker
        users = [self.context.unique_name("load") for _ in range(1)]
        prefix = users[0]
        client = f"qa-client-{self.context.run_id}"

        def create(i: int) -> HttpRequest:
            body = json.dumps({"userId": f"{prefix}-{i}"[:64], "clientId": client}).encode()
            return HttpRequest("POST", "/sessions", body, json_headers, name="POST /sessions")

        def on_answer(i: int, request: HttpRequest, answer: Answer) -> str | None:
            calls["create"] += 1
            category = categorize(answer)
            if answer.status == 201:
                try:
                    session_id = json.loads(answer.body)["sessionId"]
                except (ValueError, KeyError, TypeError):
                    return "created-without-session-object"
                tracker.add(scope, session_id)
                with state["lock"]:
                    state["created"].append((session_id, answer.seconds, time.time()))
            elif answer.status in (429, 503):
                retry_after = answer.header("Retry-After")
                error = None
                with contextlib.suppress(ValueError, AttributeError):
                    error = json.loads(answer.body).get("error")
                with state["lock"]:
                    state["rejections"].append({"status": answer.status, "error": error, "retryAfter": retry_after})
                if not retry_after or not error:
                    return f"{category}-unclean"
            return category

        return create, on_answer

    def _prepare_files(self, sessions: list[str], state: dict[str, Any]) -> None:
        """Writes the files the GETs of ``file-ops`` read, so every GET finds one."""
        api = self.ctx.api
        for session_id in sessions:
            for n in range(FILE_SLOTS):
                response = api.request("PUT", api.file_path(session_id, f"load/f{n}.txt"), data=b"x" * 1024)
                if response.status != 201:
                    raise AssertionError(
                        f"Could not prepare the workspace of {session_id} for file-ops: {response.describe()}"
                    )

    def _lifecycle_action(self, state: dict[str, Any]):
        api = self.ctx.api
        tracker = self.ctx.tracker
        scope = self.context.scope
        prefix = self.context.unique_name("life")
        client = f"qa-client-{self.context.run_id}"
        start_timeout = self.profile.seconds("SESSION_START_TIMEOUT")
        poll = self.profile.seconds("POLL_INTERVAL")
        calls: Counter = state["apiCalls"]
        lock = state["lock"]

        def iteration(i: int) -> str:
            created_at = time.time()
            response = api.request("POST", "/sessions", json_body={"userId": f"{prefix}-{i}"[:64], "clientId": client})
            with lock:
                calls["create"] += 1
            if response.status != 201:
                return categorize(Answer(response.status))
            session_id = response.body["sessionId"]
            tracker.add(scope, session_id)
            with lock:
                state["created"].append((session_id, response.seconds, created_at))
            try:
                deadline = time.monotonic() + start_timeout
                while True:
                    answer = api.request("GET", api.session_path(session_id))
                    with lock:
                        calls["get"] += 1
                    status = answer.body.get("status") if isinstance(answer.body, dict) else None
                    if status == "RUNNING":
                        with lock:
                            state["starts"].append(
                                (answer.body.get("startType"), float(answer.body.get("startDurationMs") or 0) / 1000)
                            )
                        break
                    if status in ("FAILED", "STOPPED") or answer.status in (404, 410):
                        return f"session-{(status or str(answer.status)).lower()}"
                    if time.monotonic() >= deadline:
                        return "start-timeout"
                    time.sleep(poll)
                path = api.file_path(session_id, "lifecycle/notes.txt")
                content = f"iteration {i}".encode()
                put = api.request("PUT", path, data=content)
                got = api.request("GET", path)
                with lock:
                    calls["file"] += 2
                if put.status != 201 or got.status != 200 or got.content != content:
                    return f"file-{put.status}-{got.status}"
            finally:
                deleted = api.request("DELETE", api.session_path(session_id))
                with lock:
                    calls["delete"] += 1
                if deleted.status in (204, 404, 410):
                    tracker.discard(session_id)
                    with lock:
                        state["lifetimes"].append(time.time() - created_at)
            return "ok" if deleted.status == 204 else f"delete-{deleted.status}"

        return iteration

    def _execute(self, run: LoadRun, state: dict[str, Any], background: bool) -> LoadResult | LoadHandle:
        what = f"{run.model} {format_rate(run.result.target_rate) if run.result.target_rate else ''}".strip()
        progress.console(
            f"\n  [load {run.name}] {state['scenario']}: {what}, {run.result.duration:g} s, "
            f"{run.scheduled or run.iterations} requests at most"
        )
        if background:
            handle = LoadHandle(run.start(), lambda result: self._finish(run, state, result))
            return handle
        return self._finish(run, state, run.run())

    def _finish(self, run: LoadRun, state: dict[str, Any], result: LoadResult) -> LoadResult:
        result.extra["scenario"] = state["scenario"]
        result.extra["apiCalls"] = dict(state["apiCalls"])
        if state["rejections"]:
            kinds = Counter(f"{r['status']} {r['error']}" for r in state["rejections"])
            result.extra["rejections"] = dict(kinds)
            result.extra["rejectionsWithoutRetryAfter"] = sum(1 for r in state["rejections"] if not r["retryAfter"])
        result.extra["created"] = [sid for sid, _, _ in state["created"]]
        metrics = self._metrics
        for _, seconds, _ in state["created"]:
            metrics.record_metric("session_creation", seconds, unit="s", load=run.name)
        for start_type, seconds in state["starts"]:
            if start_type in ("cold", "warm"):
                metrics.record_metric(f"container_{start_type}_start", seconds, unit="s", load=run.name)
        for seconds in state["lifetimes"]:
            metrics.record_metric("session_container_seconds", seconds, unit="s", load=run.name)
        self._persist(result)
        progress.console(f"  [load {run.name}] done: {result.describe()}")
        self.info(result.describe())
        self.debug(json.dumps(result.summary(), default=str)[:20000])
        return result

    def _persist(self, result: LoadResult) -> None:
        directory = self._metrics_dir()
        directory.mkdir(parents=True, exist_ok=True)
        record = {
            "ts": time.time(),
            "kind": "load_run",
            "profile": self.profile.text("PROFILE", "unknown"),
            "run": self.context.run_id,
            "suite": self.context.current_suite,
            "test": self.context.current_test,
            "pid": os.getpid(),
            **result.summary(),
        }
        with (directory / f"loadruns-{os.getpid()}.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=str) + "\n")
        if result.corrected.get_total_count():
            save_histogram(directory, f"load.{result.name}", result.corrected)
            save_histogram(directory, f"load.{result.name}.service", result.uncorrected)

    # ------------------------------------------------------------------ run keywords
    @keyword(tags=["load"])
    def run_constant_arrival_rate_load(
        self,
        scenario: str,
        rate: str,
        duration: timedelta,
        session: Any = None,
        name: str | None = None,
        max_vus: int | None = None,
        on_busy: OnBusy = "drop",
        request_timeout: timedelta | None = None,
        background: bool = False,
    ) -> LoadResult | LoadHandle:
        """Open model: starts ``scenario`` iterations at a constant ``rate`` for ``duration`` (k6's
        ``constant-arrival-rate``) and returns the result.

        Requests start on their schedule whether earlier ones answered or not. Latency is measured from each
        request's intended start (corrected for coordinated omission). At most ``max_vus`` requests are in
        flight (default ``${LOAD_MAX_VUS}``); a request due while all are busy is *dropped* (``on_busy=drop``)
        or waits and is sent *late* (``on_busy=queue``, as wrk2 does). ``rate`` is like ``100/s`` or
        ``10/min``. With ``background=True`` it returns a handle at once; see `Wait Until Load Ends`.

        The result: ``${result.sent}``, ``${result.ok}``, ``${result.errors}``, ``${result.dropped}``,
        ``${result.late}``, ``${result}[p95]`` (seconds), ``${result.outcomes}`` (count per category). Its
        histograms go to ``<METRICS_DIR>/hist-load.<name>-<pid>.hdr`` and its summary to ``loadruns-<pid>.jsonl``
        for the resilience report. See the class documentation for the scenarios.

        Example:
        | ${result} = | Run Constant Arrival Rate Load | file-ops | 100/s | 10 s | session=${SESSION} |
        | Load Should Meet Thresholds | ${result} | p95 below 50 ms | error rate below 0.1 % | dropped below 1 % |
        """
        per_second = parse_rate(rate)
        run, state = self._build(
            scenario,
            session,
            name,
            max_vus,
            on_busy,
            request_timeout,
            model="constant-arrival-rate",
            rate=per_second,
            duration=duration.total_seconds(),
        )
        return self._execute(run, state, background)

    @keyword(tags=["load"])
    def run_ramping_arrival_rate_load(
        self,
        scenario: str,
        *stages: str,
        start_rate: str = "0/s",
        session: Any = None,
        name: str | None = None,
        max_vus: int | None = None,
        on_busy: OnBusy = "drop",
        request_timeout: timedelta | None = None,
        background: bool = False,
    ) -> LoadResult | LoadHandle:
        """Open model with a changing rate (k6's ``ramping-arrival-rate``): each stage ramps linearly from the
        previous rate to its own over its duration. Stages read ``<rate> in <time>``.

        Otherwise as `Run Constant Arrival Rate Load`.

        Example:
        | ${result} = | Run Ramping Arrival Rate Load | health | 50/s in 5 s | 150/s in 5 s | 150/s in 10 s |
        """
        if not stages:
            raise ValueError("Give at least one stage, e.g. '50/s in 10 s'.")
        parsed = []
        for text in stages:
            match = _STAGE.match(str(text))
            if not match:
                raise ValueError(f"A stage reads '<rate> in <time>', e.g. '50/s in 10 s'; got {text!r}.")
            parsed.append(Stage(parse_rate(match.group("rate")), to_seconds(match.group("duration"), "stage time")))
        run, state = self._build(
            scenario,
            session,
            name,
            max_vus,
            on_busy,
            request_timeout,
            model="ramping-arrival-rate",
            stages=parsed,
            start_rate=parse_rate(start_rate),
        )
        return self._execute(run, state, background)

    @keyword(tags=["load"])
    def run_closed_model_load(
        self,
        scenario: str,
        users: int,
        duration: timedelta,
        iterations: int | None = None,
        pace: timedelta | None = None,
        session: Any = None,
        name: str | None = None,
        request_timeout: timedelta | None = None,
        background: bool = False,
    ) -> LoadResult | LoadHandle:
        """Closed model: ``users`` concurrent users each run ``scenario`` iterations one after another until
        ``duration`` has passed or ``iterations`` (in total) are done.

        Without ``pace`` a user starts its next iteration when the previous one answered (as Locust does);
        the latency then equals the service time. With ``pace`` each user has a slot every ``pace`` and latency
        counts from the slot (wrk2's correction), so a slow answer that delays the next slot is not hidden.

        Example:
        | ${result} = | Run Closed Model Load | session-lifecycle | users=3 | duration=10 s |
        """
        run, state = self._build(
            scenario,
            session,
            name,
            None,
            "drop",
            request_timeout,
            model="closed",
            users=int(users),
            duration=duration.total_seconds(),
            iterations=iterations,
            pace=pace.total_seconds() if pace else 0.0,
        )
        return self._execute(run, state, background)

    @keyword(tags=["load"])
    def wait_until_load_ends(self, handle: LoadHandle, timeout: timedelta | None = None) -> LoadResult:
        """Waits until a load started with ``background=True`` has finished and returns its result."""
        if handle.result is None:
            result = handle.run.wait(timeout.total_seconds() if timeout else None, report_progress=False)
            handle.result = handle._finish(result)
        return handle.result

    @keyword(tags=["load", "wait"])
    def wait_until_load_has_sent(self, handle: LoadHandle, count: int, timeout: timedelta | None = None) -> float:
        """Waits until a background load has sent ``count`` requests; returns the seconds waited."""
        deadline = timeout.total_seconds() if timeout else handle.run.result.duration + 5
        waited = wait_until(
            lambda: True if handle.run.result.sent >= int(count) or not handle.run.running else None,
            deadline,
            0.01,
            lambda: f"Load '{handle.run.name}' sent {handle.run.result.sent} of {count} requests.",
        )
        return waited.seconds

    @keyword(tags=["load"])
    def load_outcome_count(self, result: LoadResult, category: str) -> int:
        """Returns how many requests of ``result`` ended in ``category`` (``ok``, ``rejected-429`` ...); 0 if none."""
        return int(result.outcomes.get(category, 0))

    @keyword(tags=["load"])
    def scale_rate(self, rate: str, factor: float) -> str:
        """Returns ``rate`` times ``factor`` as a rate, e.g. ``50/s`` x 3 -> ``150/s``."""
        return f"{parse_rate(rate) * float(factor):g}/s"

    @keyword(tags=["load", "performance"])
    def measure_session_starts(self, count: int, start_type: StartType, attempts: int | None = None) -> dict:
        """Starts sessions one after another until ``count`` of them started ``cold`` or ``warm``; returns their
        start times in seconds, as the platform recorded them (``platform``: ``startDurationMs``) and as the client
        saw them (``client``: from the create request to the first answer that says ``RUNNING``).

        Both are asserted: the platform's figure says how long the container took, the client's what a user
        waits (a platform that records too little, or answers ``RUNNING`` late, shows in the second).

        A warm start waits until the warm pool has an agent; a cold start first hands the pool's agents to
        helper sessions so that the measured one finds the pool empty. Every session is deleted right after
        it runs. At most ``attempts`` (default ``3 * count``) measured sessions are tried. Each sample is
        recorded as metric ``container_<type>_start``, the client-observed time to RUNNING as ``session_start``.

        Example:
        | ${cold} = | Measure Session Starts | 5 | cold |
        | Percentile Should Be Below | ${cold}[platform] | 99 | ${SLA_COLD_START_P99} | name=Cold start p99 |
        | Percentile Should Be Below | ${cold}[client] | 99 | ${SLA_COLD_START_P99} | name=Cold start as seen |
        """
        kind = start_type.strip().lower()
        if kind not in ("cold", "warm"):
            raise ValueError(f"start_type must be 'cold' or 'warm', got {start_type!r}.")
        api = self.api
        limit = int(attempts) if attempts else 3 * int(count)
        samples: list[float] = []
        observed_samples: list[float] = []
        seen: Counter = Counter()
        pool_timeout = self.profile.seconds("SESSION_START_TIMEOUT")
        for _ in range(limit):
            if len(samples) >= int(count):
                break
            helpers = []
            if kind == "warm":
                wait_until(
                    lambda: True if int(api.get_capacity().get("warmPool", 0)) >= 1 else None,
                    pool_timeout,
                    self.profile.seconds("POLL_INTERVAL"),
                    lambda: "The warm pool did not refill.",
                )
            else:
                for _ in range(int(api.get_capacity().get("warmPool", 0))):
                    helpers.append(api.create_session())
            began = time.perf_counter()
            created_at = time.time()
            session = api.create_session()
            try:
                api.wait_until_session_is_running(session)
                observed = time.perf_counter() - began
                body = api.get_session(session)
            finally:
                for helper in [session, *helpers]:
                    api.delete_session(helper, missing_ok=True)
                self._metrics.record_metric("session_container_seconds", time.time() - created_at, unit="s")
            seen[body.get("startType")] += 1
            if body.get("startType") == kind:
                seconds = float(body.get("startDurationMs") or 0) / 1000
                samples.append(seconds)
                observed_samples.append(observed)
                self._metrics.record_metric(f"container_{kind}_start", seconds, unit="s")
                self._metrics.record_metric("session_start", observed, unit="s", start_type=kind)
        if len(samples) < int(count):
            raise AssertionError(
                f"Only {len(samples)} of {count} sessions started {kind} in {limit} attempts (start types seen: "
                f"{dict(seen)})."
            )
        self.info(
            f"{kind} starts (s), platform / client: "
            + ", ".join(f"{s:.3f}/{o:.3f}" for s, o in zip(samples, observed_samples, strict=True))
        )
        return {"platform": samples, "client": observed_samples}

    # ------------------------------------------------------------------ thresholds
    @keyword(tags=["load", "assertion", "sla"])
    def load_should_meet_thresholds(self, result: LoadResult, *thresholds: str) -> None:
        """Fails unless every threshold holds; the message lists each failing one with measured vs allowed.

        Thresholds: ``p95 below 500 ms`` (any percentile), ``mean below 100 ms``, ``max below 2 s``,
        ``error rate below 1 %``, ``errors below 1``, ``dropped below 1 %``, ``late below 5``,
        ``rate above 99/s`` (sent per second over the duration), ``throughput at least 95/s``; and, to tell load
        shedding from breakage, ``refused below 1 %`` (clean 429s: capacity, judged like timing) and ``other errors
        below 1 %`` (every other error: correctness).

        In a measuring test (`Start Measurement`) on a machine too busy to measure, only the timing thresholds
        (latency, late sends, rates, throughput, clean refusals) may be skipped; the correctness thresholds (error
        rate, errors, other errors, drops) fail the test on any machine, and the message then also says how the
        timing came out.

        Example:
        | Load Should Meet Thresholds | ${result} | p95 below ${SLA_API_P95} | error rate below 0.1 % |
        """
        if not thresholds:
            raise ValueError("Give at least one threshold, e.g. 'p95 below 500 ms'.")
        wrong, late, held_correct, held_timing = [], [], [], []
        for expression in thresholds:
            passed, message = check_threshold(result, expression)
            timing = is_timing_threshold(expression)
            if passed:
                (held_timing if timing else held_correct).append(message)
            else:
                (late if timing else wrong).append(message)
            self._note_latency_bound(result, expression)
        timing_outcome = " ".join(late or held_timing)
        if timing_outcome and held_correct:
            timing_outcome += " (Judged on any machine, and held: " + " ".join(held_correct) + ")"
        self._metrics.check_conditions(timing_outcome, passed=not late, correctness=wrong)
        for message in held_correct + held_timing:
            self.info(f"OK: {message}")
        if late:
            raise AssertionError("\n".join(late) if len(late) > 1 else late[0])

    def _note_latency_bound(self, result: LoadResult, expression: str) -> None:
        """Records a latency bound asserted on ``result`` (metric ``load_latency_bound``, tagged with the run's name
        and start) so the report draws it over that run's latency over time: the bound the test held it to."""
        bound = latency_bound(expression)
        if bound is not None:
            self._metrics.record_metric(
                LATENCY_BOUND_METRIC,
                bound[1],
                unit="s",
                load=result.name,
                statistic=bound[0],
                started_at=f"{result.started_at:.6f}",
            )

    @keyword(tags=["load", "assertion"])
    def load_should_have_outcomes(self, result: LoadResult, *allowed: str) -> None:
        """Fails when any request of ``result`` ended in a category not in ``allowed`` (``ok`` is always allowed).

        Categories: ``ok``, ``rejected-429``, ``unavailable-503``, ``http-<status>``, ``timeout``,
        ``connect-error``, ``connection-reset``, and ``<category>-unclean`` for a 429/503 without JSON error or
        ``Retry-After``.

        Example:
        | Load Should Have Outcomes | ${result} | rejected-429 |
        """
        unexpected = {k: v for k, v in result.outcomes.items() if k != "ok" and k not in allowed}
        if unexpected:
            raise AssertionError(
                f"Load '{result.name}' had outcomes other than ok and {', '.join(allowed) or 'nothing else'}: "
                + ", ".join(f"{k} x{v}" for k, v in sorted(unexpected.items()))
            )


def _count(calls: Counter, kind: str):
    def on_answer(i: int, request: HttpRequest, answer: Answer) -> None:
        calls[kind] += 1
        return None

    return on_answer


def _in_contract(contract: ApiContract, request_for, on_answer):
    """The scenario in the deployment's names (core/contract.py): paths and JSON bodies out, JSON answers back."""
    if contract.is_default:
        return request_for, on_answer

    def translated(i: int) -> HttpRequest:
        request = request_for(i)
        body = request.body
        if body and request.headers.get("Content-Type") == "application/json":
            body = json.dumps(contract.to_deployment(json.loads(body))).encode()
        return HttpRequest(request.method, contract.path(request.path), body, request.headers, request.label())

    def answered(i: int, request: HttpRequest, answer: Answer) -> str | None:
        if on_answer is None:
            return None
        if answer.body:
            with contextlib.suppress(ValueError):
                answer = dataclasses.replace(
                    answer, body=json.dumps(contract.from_deployment(json.loads(answer.body))).encode()
                )
        return on_answer(i, request, answer)

    return translated, answered
