"""Load generation engine: open (arrival-rate) and closed (concurrent users) models, pure Python, no Robot.

* Open model, like k6's ``constant-arrival-rate`` and ``ramping-arrival-rate`` executors: requests are started
  on a schedule fixed in advance, whether earlier requests have answered or not. When every connection (virtual
  user) is busy at a request's intended time the request is *dropped* (``on_busy="drop"``, k6's
  ``dropped_iterations``) or waits for the next free connection and is sent *late* (``on_busy="queue"``, wrk2's
  behaviour).
* Closed model: N users, each sends, waits for the answer, optionally waits for its next slot (``pace``), repeats.

Latency is measured from each request's *intended* send time (corrected for coordinated omission, as wrk2
does): a stalled target that holds back the sender shows up in the percentiles instead of hiding. The service
time from the actual send is kept beside it (``uncorrected``) so the two can be compared. Percentiles come from
HdrHistogram (microseconds, 3 significant digits); histograms of several runs or processes are merged with
``HdrHistogram.add``, never averaged. Interval by interval (1 s by default) a run also keeps latency percentiles,
answers per second and requests in flight over time (``results.IntervalSeries``, bounded in points), for the
report's charts.

Every run is bounded in count (the schedule is finite; the closed model has an iteration cap) and in time (a hard
deadline of duration + drain timeout); everything it starts it stops.

Requests go over a minimal HTTP/1.1 keep-alive client on asyncio (one connection per virtual user, no threads),
or, for composite actions (create a session, wait until it runs, delete it), through a plain Python callable run
in a bounded thread pool.

Why about 790 lines: the schedules, the asyncio client and the run loop share one run's timing state (intended
send times, busy connections, the drain deadline). What a run measured and how it is judged (``LoadResult``,
histograms, thresholds) is in ``results``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..core.stats import new_histogram, to_micros
from .results import MAX_REQUESTS_PER_RUN, MAX_RUN_SECONDS, IntervalSeries, LoadResult


def tls_context(ca_bundle: str | None = None, verify: bool = True) -> ssl.SSLContext:
    """TLS for https:// targets: the system's CAs (or ``ca_bundle``), hostname checked, unless ``verify`` is off."""
    try:
        context = ssl.create_default_context(cafile=ca_bundle or None)
    except (OSError, ssl.SSLError) as error:
        raise ValueError(f"CA bundle {ca_bundle!r} could not be loaded: {error}") from None
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


# ---------------------------------------------------------------------------------------------------------- schedules
@dataclass(frozen=True)
class Stage:
    """Ramp linearly from the previous stage's rate to ``target`` (requests/s) over ``duration`` seconds."""

    target: float
    duration: float


def constant_schedule(rate: float, duration: float) -> Iterator[float]:
    """Intended send offsets (seconds from the start) of a constant arrival rate: 0, 1/rate, 2/rate, ..."""
    return ramping_schedule(rate, [Stage(rate, duration)])


def ramping_schedule(start_rate: float, stages: list[Stage]) -> Iterator[float]:
    """Intended send offsets of a piecewise-linear arrival rate (k6 ``ramping-arrival-rate``).

    Request n (counted from 0) is due when the integral of the rate reaches n, so the count in any window equals
    the area under the rate curve there, to within one request.
    """
    offset = 0.0
    done = 0.0  # requests due before the current stage (fractional)
    rate0 = start_rate
    for stage in stages:
        if stage.duration < 0 or stage.target < 0:
            raise ValueError(f"Stage rate and duration must not be negative: {stage}.")
        rate1, length = stage.target, stage.duration
        area = (rate0 + rate1) / 2 * length
        slope = (rate1 - rate0) / (2 * length) if length > 0 else 0.0
        n = math.ceil(done - 1e-9)  # first request index due in this stage
        while length > 0 and n - done < area - 1e-9:
            k = n - done  # requests into this stage
            if slope == 0:
                t = k / rate0
            else:
                disc = rate0 * rate0 + 4 * slope * k
                t = 2 * k / (rate0 + math.sqrt(max(disc, 0.0))) if (rate0 + math.sqrt(max(disc, 0.0))) > 0 else 0.0
            yield offset + min(max(t, 0.0), length)
            n += 1
        done += area
        offset += length
        rate0 = rate1


def schedule_count(start_rate: float, stages: list[Stage]) -> int:
    """How many requests a schedule holds (rounded up): the area under its rate curve."""
    total, rate0 = 0.0, start_rate
    for stage in stages:
        total += (rate0 + stage.target) / 2 * stage.duration
        rate0 = stage.target
    return math.ceil(total - 1e-9)


# ---------------------------------------------------------------------------------------------------------- requests
@dataclass
class HttpRequest:
    """One request of a scenario; ``name`` groups requests in the results (default ``METHOD path``)."""

    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    name: str = ""

    def label(self) -> str:
        return self.name or f"{self.method} {self.path}"


@dataclass
class Answer:
    """What came back for one request: ``status`` ``None`` when no HTTP answer came (then ``error`` says why)."""

    status: int | None
    head: bytes = b""
    body: bytes = b""
    error: str = ""
    seconds: float = 0.0  # service time: from the actual send to the answer

    def header(self, name: str) -> str | None:
        wanted = name.lower().encode("latin-1") + b":"
        for line in self.head.split(b"\r\n")[1:]:
            if line.lower().startswith(wanted):
                return line[len(wanted) :].strip().decode("latin-1")
        return None


def categorize(answer: Answer) -> str:
    """Outcome category: ``ok`` (2xx/3xx), ``rejected-429``, ``unavailable-503``, ``http-4xx`` ..., or the error."""
    status = answer.status
    if status is None:
        return answer.error or "no-answer"
    if status < 400:
        return "ok"
    if status == 429:
        return "rejected-429"
    if status == 503:
        return "unavailable-503"
    return f"http-{status}"


Scenario = Callable[[int], HttpRequest]
OnAnswer = Callable[[int, HttpRequest, Answer], str | None]
Action = Callable[[int], str]


class _Client(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection (a virtual user). Responses: Content-Length or chunked bodies."""

    __slots__ = ("_buf", "_done", "_head", "_need", "broken", "closed", "host", "transport")

    def __init__(self, host: str) -> None:
        self.host = host
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._done: Callable[[Answer], None] | None = None
        self._head: bytes | None = None
        self._need = -1  # body bytes expected; -2 chunked; -3 until close
        self.closed = False
        self.broken = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, data: bytes, done: Callable[[Answer], None]) -> None:
        self._done = done
        self._head = None
        self.transport.write(data)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._done is not None:
            self._parse()

    def _parse(self) -> None:
        buf = self._buf
        if self._head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > 65536:
                    self._fail("protocol-error")
                return
            head = bytes(buf[:end])
            del buf[: end + 4]
            self._head = head
            lower = head.lower()
            try:
                status = int(head[9:12]) if head[:5] == b"HTTP/" else 0
            except ValueError:
                status = 0
            if not status:
                self._fail("protocol-error")
                return
            if b"\r\ntransfer-encoding: chunked" in lower:
                self._need = -2
            else:
                at = lower.find(b"\r\ncontent-length:")
                if at >= 0:
                    stop = lower.find(b"\r\n", at + 2)
                    try:
                        self._need = int(lower[at + 17 : stop if stop > 0 else None])
                    except ValueError:
                        self._fail("protocol-error")
                        return
                elif status in (204, 304) or 100 <= status < 200:
                    self._need = 0
                else:
                    self._need = -3
            if b"\r\nconnection: close" in lower:
                self.broken = True
        need = self._need
        if need >= 0:
            if len(buf) < need:
                return
            body = bytes(buf[:need])
            del buf[:need]
        elif need == -2:
            body = self._chunked()
            if body is None:
                return
        else:
            return  # read until close
        self._finish(body)

    def _chunked(self) -> bytes | None:
        buf, pos, parts = self._buf, 0, []
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return None
            size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
            if size == 0:
                end = buf.find(b"\r\n\r\n", eol)
                if end < 0 and buf[eol : eol + 4] != b"\r\n\r\n":
                    return None
                end = eol if buf[eol : eol + 4] == b"\r\n\r\n" else end
                del buf[: end + 4]
                return b"".join(parts)
            if len(buf) < eol + 2 + size + 2:
                return None
            parts.append(bytes(buf[eol + 2 : eol + 2 + size]))
            pos = eol + 2 + size + 2

    def _finish(self, body: bytes) -> None:
        done, self._done = self._done, None
        head, self._head = self._head or b"", None
        status = int(head[9:12]) if head[:5] == b"HTTP/" else None
        if done is not None:
            done(Answer(status, head, body) if status else Answer(None, head, body, "protocol-error"))

    def _fail(self, error: str) -> None:
        self.broken = True
        done, self._done = self._done, None
        if done is not None:
            done(Answer(None, self._head or b"", b"", error))
        if self.transport is not None:
            self.transport.close()

    def timeout(self) -> None:
        self._fail("timeout")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.broken = True
        if self._done is not None:
            if self._need == -3 and self._head is not None:
                body = bytes(self._buf)
                self._buf.clear()
                self._finish(body)
            else:
                self._fail("connection-reset")


# ------------------------------------------------------------------------------------------------------------- engine
class LoadRun:
    """One bounded load run. Build it, then ``run()`` (blocking) or ``start()`` + ``wait()`` (background).

    ``scenario(i)`` gives the i-th HTTP request; or ``action(i)`` performs the i-th iteration itself (in a
    thread) and returns its outcome category (``ok`` or an error category). ``on_answer(i, request, answer)``
    may inspect each HTTP answer and return a category that replaces the default one.
    """

    def __init__(
        self,
        name: str,
        *,
        base_url: str | None = None,
        scenario: Scenario | None = None,
        action: Action | None = None,
        on_answer: OnAnswer | None = None,
        model: str = "constant-arrival-rate",
        rate: float = 0.0,
        stages: list[Stage] | None = None,
        start_rate: float = 0.0,
        duration: float | None = None,
        users: int = 1,
        iterations: int | None = None,
        pace: float = 0.0,
        max_vus: int = 50,
        on_busy: str = "drop",
        request_timeout: float = 10.0,
        late_threshold: float = 0.010,
        progress: Callable[[dict[str, Any]], None] | None = None,
        progress_interval: float = 5.0,
        keep_send_times: bool = False,
        headers: dict[str, str] | None = None,
        ca_bundle: str | None = None,
        verify_tls: bool = True,
        signer: Callable[[str, str, dict[str, str], bytes], dict[str, str]] | None = None,
        series_interval: float = 1.0,
    ) -> None:
        if (scenario is None) == (action is None):
            raise ValueError("Give exactly one of scenario (HTTP requests) or action (a callable).")
        if scenario is not None and not base_url:
            raise ValueError("An HTTP scenario needs base_url.")
        if on_busy not in ("drop", "queue"):
            raise ValueError(f"on_busy must be 'drop' or 'queue', got {on_busy!r}.")
        if model not in ("constant-arrival-rate", "ramping-arrival-rate", "closed"):
            raise ValueError(f"Unknown load model {model!r}.")
        self.name = name
        self.scenario, self.action, self.on_answer = scenario, action, on_answer
        self.model = model
        self.request_timeout = float(request_timeout)
        self.on_busy = on_busy
        self.progress, self.progress_interval = progress, float(progress_interval)
        self.headers = dict(headers or {})  # sent with every request (authentication); never logged
        self.signer = signer  # SigV4: signs each request as it is encoded
        self.tls: ssl.SSLContext | None = None
        if base_url:
            parts = urlsplit(base_url)
            if parts.scheme not in ("http", "https"):
                raise ValueError(f"Only http:// and https:// targets are supported, got {base_url!r}.")
            self.host = parts.hostname or "127.0.0.1"
            self.port = parts.port or (443 if parts.scheme == "https" else 80)
            self.prefix = parts.path.rstrip("/")
            self.scheme = parts.scheme
            default_port = 443 if parts.scheme == "https" else 80
            self.authority = self.host if self.port == default_port else f"{self.host}:{self.port}"
            if parts.scheme == "https":
                self.tls = tls_context(ca_bundle, verify_tls)
        if model == "closed":
            if users < 1:
                raise ValueError(f"A closed model needs at least one user, got {users}.")
            if duration is None or duration <= 0:
                raise ValueError("A closed model needs a duration (every run is bounded in time).")
            cap = MAX_REQUESTS_PER_RUN if iterations is None else int(iterations)
            if cap < 1:
                raise ValueError(f"iterations must be at least 1, got {iterations}.")
            self.iterations = min(cap, MAX_REQUESTS_PER_RUN)
            self.pace = float(pace)
            self.max_vus = users
            self.stages: list[Stage] = []
            self.start_rate = 0.0
            total = float(duration)
            target_rate = users / pace if pace > 0 else None
            self.scheduled = 0
        else:
            if model == "constant-arrival-rate":
                if duration is None or duration <= 0:
                    raise ValueError("A constant arrival rate needs a duration above zero.")
                if rate <= 0:
                    raise ValueError(f"Rate must be above zero, got {rate}.")
                stages = [Stage(rate, float(duration))]
                start_rate = rate
            if not stages:
                raise ValueError("A ramping arrival rate needs at least one stage.")
            self.stages, self.start_rate = stages, start_rate
            total = sum(s.duration for s in stages)
            self.scheduled = schedule_count(start_rate, stages)
            if self.scheduled > MAX_REQUESTS_PER_RUN:
                raise ValueError(
                    f"The schedule holds {self.scheduled} requests, more than the cap of {MAX_REQUESTS_PER_RUN}."
                )
            target_rate = self.scheduled / total if total > 0 else None
            self.max_vus = max(1, int(max_vus))
            self.iterations = self.scheduled
        if total > MAX_RUN_SECONDS:
            raise ValueError(f"A load run may last at most {MAX_RUN_SECONDS:g} s, got {total:g} s.")
        self.result = LoadResult(name, model, target_rate, total, users if model == "closed" else self.max_vus)
        self.result.scheduled = self.scheduled
        self.result.late_threshold = float(late_threshold)
        # Per interval over time (latency, answers/s, in flight), bounded: the run's hard deadline fits its points.
        self._series = self.result.series = IntervalSeries(series_interval, total + self.request_timeout + 1.0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._t0 = 0.0
        self._in_flight = 0
        self._last_send = 0.0
        self._seconds: dict[int, list[int]] = {}  # second -> [sent, ok, errors, dropped]
        self.send_times: list[float] | None = [] if keep_send_times else None  # seconds from the start

    # ----- public API ---------------------------------------------------------------------------------------
    def run(self) -> LoadResult:
        """Runs in a thread of its own and waits, reporting progress from the calling thread."""
        self.start(report_progress=False)
        return self.wait(report_progress=True)

    def start(self, report_progress: bool = True) -> LoadRun:
        self._report_in_thread = report_progress
        self._thread = threading.Thread(target=self._thread_main, name=f"load-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, reason: str = "stopped") -> None:
        if not self.result.stopped_early:
            self.result.stopped_early = reason
        self._stop.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None, report_progress: bool = False) -> LoadResult:
        """Waits for the run to end (at most ``timeout`` s beyond its own hard deadline) and returns the result."""
        if self._thread is None:
            raise RuntimeError("The load run was never started.")
        limit = self.result.duration + self.request_timeout + 30 if timeout is None else timeout
        deadline = time.monotonic() + limit
        next_report = time.monotonic() + self.progress_interval
        try:
            while self._thread.is_alive():
                now = time.monotonic()
                if now >= deadline:
                    self.stop("did not finish in time")
                    self._thread.join(5)
                    break
                self._thread.join(min(0.2, max(0.0, deadline - now)))
                if report_progress and self.progress and time.monotonic() >= next_report:
                    next_report += self.progress_interval
                    self.progress(self.snapshot())
        except BaseException:
            self.stop("interrupted")
            self._thread.join(5)
            raise
        if self._error is not None:
            raise self._error
        return self.result

    def snapshot(self) -> dict[str, Any]:
        """Progress so far (safe to call from another thread; figures may lag by one request)."""
        r = self.result
        elapsed = time.monotonic() - self._t0 if self._t0 else 0.0
        p95 = 0.0
        with contextlib.suppress(Exception):
            if r.corrected.get_total_count():
                p95 = r.corrected.get_value_at_percentile(95) / 1e6
        return {
            "name": self.name,
            "elapsed": elapsed,
            "duration": r.duration,
            "sent": r.sent,
            "ok": r.ok,
            "errors": r.completed - r.ok,
            "dropped": r.dropped,
            "late": r.late,
            "inFlight": self._in_flight,
            "rate": r.sent / elapsed if elapsed > 0 else 0.0,
            "p95": p95,
        }

    # ----- the engine's thread ------------------------------------------------------------------------------
    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main())
        except BaseException as error:  # handed to wait()
            self._error = error
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self) -> None:
        self.loop = loop = asyncio.get_running_loop()
        self._idle: list[_Client] = []
        self._clients: set[_Client] = set()
        self._opening = 0
        self._queue: list[tuple[int, float]] = []
        self._pool = ThreadPoolExecutor(self.max_vus, thread_name_prefix=f"load-{self.name}") if self.action else None
        self._all_done = asyncio.Event()
        self._pending_tasks: set[asyncio.Task] = set()
        self.result.started_at = time.time()
        reporter = None
        if self._report_in_thread and self.progress:
            reporter = loop.create_task(self._report_loop())
        try:
            if self.model == "closed":
                await self._closed()
            else:
                await self._open()
        finally:
            if reporter:
                reporter.cancel()
            for client in list(self._clients):
                if client.transport is not None:
                    client.transport.close()
            if self._pool:
                self._pool.shutdown(wait=False, cancel_futures=True)
            r = self.result
            r.elapsed = loop.time() - self._t0
            r.send_window = max(0.0, self._last_send - self._t0)
            r.timeline = [
                {"t": s, "sent": v[0], "ok": v[1], "errors": v[2], "dropped": v[3]}
                for s, v in sorted(self._seconds.items())
            ]
            if self._t0:
                self._series.finish(loop.time() - self._t0)
            await asyncio.sleep(0)

    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(self.progress_interval)
            with contextlib.suppress(Exception):
                self.progress(self.snapshot())  # type: ignore[misc]

    def _second(self, when: float) -> list[int]:
        second = int(max(0.0, when - self._t0))
        bucket = self._seconds.get(second)
        if bucket is None:
            bucket = self._seconds[second] = [0, 0, 0, 0]
        return bucket

    # ----- open model ---------------------------------------------------------------------------------------
    async def _open(self) -> None:
        loop = self.loop
        schedule = ramping_schedule(self.start_rate, self.stages)
        await self._preopen(min(self.max_vus, 4))
        self._t0 = t0 = loop.time() + 0.005
        hard_deadline = t0 + self.result.duration + self.request_timeout + 1.0
        sleep = asyncio.sleep
        for index, offset in enumerate(schedule):
            if self._stop.is_set():
                break
            due = t0 + offset
            now = loop.time()
            if due > now:
                if due > hard_deadline:
                    break
                await sleep(due - now)
                now = loop.time()
            self._dispatch(index, due, now)
            if index + 1 >= self.iterations:
                break
        # Drain: wait for queued and in-flight requests, bounded by the hard deadline.
        while (self._in_flight or self._queue or self._opening) and not self._stop.is_set():
            remaining = hard_deadline - loop.time()
            if remaining <= 0:
                self.stop("requests still in flight at the deadline")
                break
            self._all_done.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_done.wait(), min(remaining, 0.5))
        if self._queue:
            self.result.dropped += len(self._queue)
            self._queue.clear()
        # Requests of the schedule that were never sent (the run was stopped or hit its deadline) count as dropped.
        r = self.result
        r.dropped += max(0, r.scheduled - r.sent - r.dropped)

    def _dispatch(self, index: int, due: float, now: float) -> None:
        if self._in_flight < self.max_vus:
            self._send(index, due, now)
        elif self.on_busy == "queue":
            self._queue.append((index, due))
        else:
            self.result.dropped += 1
            self._second(due)[3] += 1

    def _next_from_queue(self) -> None:
        while self._queue and self._in_flight < self.max_vus and not self._stop.is_set():
            index, due = self._queue.pop(0)
            self._send(index, due, self.loop.time())

    # ----- closed model -------------------------------------------------------------------------------------
    async def _closed(self) -> None:
        loop = self.loop
        users = self.max_vus
        await self._preopen(users)
        self._t0 = t0 = loop.time() + 0.005
        end = t0 + self.result.duration
        hard_deadline = end + self.request_timeout + 1.0
        counter = iter(range(self.iterations))

        async def user(number: int) -> None:
            turn = 0  # the slot is computed from its index, not summed: ten sums of 0.1 s fall short of 1 s
            while not self._stop.is_set():
                now = loop.time()
                due = t0 + self.pace * (number / users + turn) if self.pace else now
                if due >= end or now >= end:
                    return
                if due > now:
                    await asyncio.sleep(due - now)
                index = next(counter, None)
                if index is None:
                    return
                self.result.scheduled += 1
                waiter = loop.create_future()
                self._send(index, due, loop.time(), waiter)
                await waiter
                turn += 1

        tasks = [loop.create_task(user(n)) for n in range(users)]
        done, pending = await asyncio.wait(tasks, timeout=max(0.0, hard_deadline - loop.time()))
        if pending:
            self.stop("requests still in flight at the deadline")
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=1.0)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    # ----- sending and recording ----------------------------------------------------------------------------
    async def _preopen(self, count: int) -> None:
        if self.scenario is None:
            return
        for _ in range(count):
            with contextlib.suppress(OSError):
                self._idle.append(await self._connect())

    async def _connect(self) -> _Client:
        _, client = await asyncio.wait_for(
            self.loop.create_connection(
                lambda: _Client(self.host),
                self.host,
                self.port,
                ssl=self.tls,
                server_hostname=self.host if self.tls is not None else None,
            ),
            self.request_timeout,
        )
        self._clients.add(client)
        return client

    def _send(self, index: int, due: float, now: float, waiter: asyncio.Future | None = None) -> None:
        r = self.result
        lateness = now - due
        if lateness > r.late_threshold:
            r.late += 1
        if lateness > r.max_lateness:
            r.max_lateness = lateness
        r.sent += 1
        self._last_send = now
        if self.send_times is not None:
            self.send_times.append(now - self._t0)
        self._second(due)[0] += 1
        self._in_flight += 1
        self._series.sent(now - self._t0, self._in_flight)
        if self.action is not None:
            future = self.loop.run_in_executor(self._pool, self._run_action, index)
            future.add_done_callback(lambda f: self._action_done(f, index, due, now, waiter))
            return
        request = self.scenario(index)  # type: ignore[misc]
        client = self._idle.pop() if self._idle else None
        if client is None:
            self._opening += 1
            task = self.loop.create_task(self._connect_and_send(index, request, due, now, waiter))
            self._pending_tasks.add(task)
            task.add_done_callback(self._pending_tasks.discard)
            return
        self._write(client, index, request, due, now, waiter)

    async def _connect_and_send(self, index, request, due, now, waiter) -> None:
        try:
            client = await self._connect()
        except (OSError, TimeoutError) as error:
            self._opening -= 1
            kind = (
                "timeout"
                if isinstance(error, TimeoutError)
                else "tls-error"
                if isinstance(error, ssl.SSLError)
                else "connect-error"
            )
            self._record(index, request, Answer(None, error=kind), due, now, waiter)
            return
        self._opening -= 1
        self._write(client, index, request, due, self.loop.time(), waiter)

    def _encode(self, request: HttpRequest) -> bytes:
        target = f"{self.prefix}{request.path}"
        lines = [f"{request.method} {target} HTTP/1.1", f"Host: {self.authority}"]
        # Only a run with its own headers or a signer pays for a merged copy; the common case sends the request's.
        headers = {**self.headers, **request.headers} if self.headers or self.signer else request.headers
        if self.signer is not None:
            url = f"{self.scheme}://{self.authority}{target}"
            headers.update(self.signer(request.method, url, headers, request.body))
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if request.body or request.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(request.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body

    def _write(self, client: _Client, index, request, due, sent, waiter) -> None:
        timer = self.loop.call_at(sent + self.request_timeout, client.timeout)

        def done(answer: Answer) -> None:
            timer.cancel()
            if client.broken or client.closed:
                self._clients.discard(client)
                if client.transport is not None and not client.closed:
                    client.transport.close()
            else:
                self._idle.append(client)
            self._record(index, request, answer, due, sent, waiter)

        try:
            client.send(self._encode(request), done)
        except (OSError, RuntimeError, AttributeError):
            client.broken = True
            done(Answer(None, error="send-error"))

    def _record(self, index, request, answer: Answer, due: float, sent: float, waiter) -> None:
        end = self.loop.time()
        answer.seconds = end - sent
        category = categorize(answer)
        if self.on_answer is not None:
            try:
                category = self.on_answer(index, request, answer) or category
            except Exception as error:  # a hook must not kill the run; it shows as an outcome
                category = f"hook-error: {type(error).__name__}"
        self._complete(category, due, sent, end, request.label() if request else None)
        r = self.result
        if answer.status is not None:
            r.statuses[answer.status] += 1
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _run_action(self, index: int) -> str:
        try:
            return str(self.action(index) or "ok")  # type: ignore[misc]
        except AssertionError as error:
            return f"failed: {str(error)[:80]}"
        except Exception as error:
            return f"error: {type(error).__name__}"

    def _action_done(self, future, index, due, sent, waiter) -> None:
        category = "cancelled" if future.cancelled() else future.result()
        self._complete(category, due, sent, self.loop.time(), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _complete(self, category: str, due: float, sent: float, end: float, label: str | None) -> None:
        r = self.result
        r.completed += 1
        r.outcomes[category] += 1
        corrected = to_micros(end - due)
        r.corrected.record_value(corrected)
        r.uncorrected.record_value(to_micros(end - sent))
        if label is not None and (r.by_name or self._many_names):
            hist = r.by_name.get(label)
            if hist is None:
                hist = r.by_name[label] = new_histogram()
            hist.record_value(corrected)
        bucket = self._second(due)
        bucket[1 if category == "ok" else 2] += 1
        self._in_flight -= 1
        self._series.answered(end - self._t0, corrected, category == "ok", self._in_flight)
        if self._queue:
            self._next_from_queue()
        if not self._in_flight and not self._queue:
            self._all_done.set()

    _many_names = False

    def track_names(self) -> LoadRun:
        """Keep a latency histogram per request name too (for scenarios that mix requests)."""
        self._many_names = True
        return self
