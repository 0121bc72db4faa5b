"""The session service: what the API does, the reaper, idle shutdown, TTL expiry and metric publishing."""

from __future__ import annotations

import collections
import contextlib
import http.client
import json
import logging
import re
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import psutil
from botocore.config import Config

from testbed import clock
from testbed.config import Settings
from testbed.runtime import Runtime
from testbed.store import LIVE_STATES, SessionStore, StoreOverloaded, StoreUnavailable

log = logging.getLogger("testbed.service")
# Performance defects (testbed/config.py DEFECTS), sized against the local profile's SLAs.
SLOW_CREATE_S = 0.5  # slow-create: the local bound is a creation mean < 100 ms
OUTLIER_EVERY, OUTLIER_CREATE_S = 5, 0.75  # slow-create-outliers: the local per-call bound is 250 ms
SLOW_READ_S = 0.25  # slow-api: the local bound is an API p95 < 50 ms
ECS_LOOKUP_RETRY_S = 1.5  # ecs-in-file-path: a file call waits this long on a refused DescribeTasks
# An id names a folder of the workspace path (<EFS_ROOT>/<clientId>/<userId>): '.' and '..' would name another one.
# \Z, not $: '$' also matches before a final newline, which let "alice\n" through as an id.
ID_PATTERN = re.compile(r"^(?!\.{1,2}\Z)[A-Za-z0-9_.-]{1,64}\Z")
JSON_MEDIA_TYPE = "application/json"
# The namespace of the metrics the platform publishes itself (LiveSessions; SessionsCreated with a defect).
PLATFORM_NAMESPACE = "SessionPlatform"
AGENT_TITLE = re.compile(r"testbed-agent instance=(\S+) session=(\S+) task=(\S+)")
PUBLIC_FIELDS = (
    "sessionId",
    "userId",
    "clientId",
    "status",
    "restartCount",
    "lastFailureReason",
    "stoppedReason",
    "taskId",
    "startType",
    "startDurationMs",
    "createdAt",
    "updatedAt",
    "lastActivityAt",
    "expiresAt",
    "version",
    "workspace",
    "lastRecoveryMs",
)


class ApiError(Exception):
    """An answer other than success: HTTP status, error code, human message, optional Retry-After."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


def store_error(exc: StoreUnavailable, settings: Settings) -> ApiError:
    """The answer to a session-store call that did not succeed: 429 ``overloaded`` when the platform had more
    store calls in hand than the store serves in time (it is busy, not down), else 503 ``store_unavailable``."""
    if isinstance(exc, StoreOverloaded) and not settings.has("overload-as-outage"):  # the defect: busy = down
        return ApiError(429, "overloaded", f"platform overloaded, retry later: {exc}", settings.retry_after)
    return ApiError(503, "store_unavailable", f"session store unavailable: {exc}", settings.retry_after)


def public(record: dict[str, Any]) -> dict[str, Any]:
    return {
        k: record.get(k, "" if k in ("lastFailureReason", "stoppedReason", "taskId", "startType") else None)
        for k in PUBLIC_FIELDS
    }


def agent_processes(instance: str) -> list[tuple[psutil.Process, str, str]]:
    """Containers of this platform instance in the process table: (process, sessionId, taskId)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info.get("cmdline") or [])
        match = AGENT_TITLE.search(cmdline)
        if match and match.group(1) == instance:
            found.append((proc, match.group(2), match.group(3)))
    return found


class SessionService:
    def __init__(
        self,
        settings: Settings,
        store: SessionStore,
        runtime: Runtime,
        state_dir: Path,
        instance: str,
        cloudwatch_url: str,
    ) -> None:
        self.settings = settings
        self.store = store
        self.runtime = runtime
        self.state_dir = state_dir
        self.instance = instance
        self.efs_root = state_dir / "efs"
        self.efs_root.mkdir(parents=True, exist_ok=True)
        self.reaper_log = state_dir / "reaper.jsonl"
        self.actions: collections.deque[dict[str, Any]] = collections.deque(maxlen=1000)
        self.doubtful_creates: set[str] = set()  # creates answered 503 whose record may exist all the same
        self.doubtful_lock = threading.Lock()
        self.reaper_lock = threading.Lock()
        self.stopped = threading.Event()
        self.expiry: dict[str, float] = {}
        # Metrics are best effort: short timeouts and one retry, so an unreachable CloudWatch only delays the
        # metrics thread (and, with the defect metrics-in-request-path, the creates that publish on their way).
        self.cloudwatch = boto3.client(
            "cloudwatch",
            endpoint_url=cloudwatch_url,
            region_name=settings.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(connect_timeout=0.5, read_timeout=1.0, retries={"mode": "standard", "max_attempts": 2}),
        )
        self._store_health: tuple[float, bool] = (0.0, True)
        self._health_check = threading.Lock()  # one store check at a time
        self._creates = 0  # answered creates, for the defect slow-create-outliers
        self._creates_lock = threading.Lock()

    def start(self) -> None:
        for target, name in ((self._reaper_loop, "reaper"), (self._metrics_loop, "metrics")):
            threading.Thread(target=target, name=name, daemon=True).start()

    # ----- API operations ------------------------------------------------------------------------------------
    def health(self) -> tuple[int, dict[str, str]]:
        """The load balancer's health check: ok only while the session store answers.

        A store check is remembered for 0.5 s, but only while the circuit breaker is closed: with the circuit open
        (or half-open) every check goes to the breaker, so a success remembered from before an outage can never
        answer ok while API calls are failing fast. One store check runs at a time, so a burst of health checks is
        not a burst of store calls: while one is in flight, a check with the circuit closed answers from the last
        result, and a check with the circuit open or half-open waits for the one in flight and takes its result.
        A check that timed out while the store answered other calls (overload) counts as the store answering.
        """
        arrived = time.monotonic()
        checked_at, ok = self._store_health
        circuit = self.store.breaker.state() if self.store.breaker else "closed"
        stale = circuit != "closed" or arrived - checked_at > 0.5
        if stale and self._health_check.acquire(blocking=circuit != "closed"):
            try:
                checked_at, ok = self._store_health
                if checked_at < arrived:  # no check finished since this one came in
                    ok = self._store_answers()
                    self._store_health = (time.monotonic(), ok)
            finally:
                self._health_check.release()
        breaker = self.store.breaker.state() if self.store.breaker else "none"
        if ok or self.settings.has("health-lies"):
            return 200, {"status": "ok", "store": "ok", "storeCircuit": breaker}
        return 503, {"status": "degraded", "store": "unavailable", "storeCircuit": breaker}

    def _store_answers(self) -> bool:
        try:
            self.store.ping()
        except StoreOverloaded:
            return True
        except StoreUnavailable:
            return False
        return True

    def capacity(self) -> dict[str, Any]:
        return {**self.runtime.counts(), "activities": list(self.runtime.activities)}

    def create(self, body: Any, content_type: str | None = JSON_MEDIA_TYPE) -> dict[str, Any]:
        """``content_type`` is the request's Content-Type header (None: none was sent)."""
        lenient = self.settings.has("lenient-create-body")  # the defect: numbers become ids, any Content-Type goes
        media_type = (content_type or "").split(";", 1)[0].strip().lower()
        if media_type != JSON_MEDIA_TYPE and not lenient:
            raise ApiError(
                400, "invalid_request", f"Content-Type must be {JSON_MEDIA_TYPE}, got {content_type or 'none'!r}"
            )
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_request", "body must be a JSON object with userId and clientId")
        if lenient:
            body = {k: str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for k, v in body.items()}
        for name in ("userId", "clientId"):
            value = body.get(name)
            if not isinstance(value, str) or not (ID_PATTERN.match(value) or self.settings.has("unchecked-ids")):
                raise ApiError(
                    400,
                    "invalid_request",
                    f"{name} is required: 1-64 characters of letters, digits, '_', '.', '-' (not '.' or '..')",
                )
        unknown = sorted(set(body) - {"userId", "clientId"})
        if unknown:
            raise ApiError(400, "invalid_request", f"unknown field(s): {', '.join(unknown)}")
        if not self.runtime.admit():
            counts = self.runtime.counts()
            raise ApiError(
                429,
                "capacity_exhausted",
                f"capacity exhausted ({counts['desired']} sessions wanted, ceiling {counts['max']}); retry later",
                self.settings.retry_after,
            )
        now = clock.now()
        session_id = f"s-{uuid.uuid4().hex[:16]}"
        workspace = self.efs_root / body["clientId"]
        if not self.settings.has("shared-workspace"):  # the defect: one folder for every user of a client
            workspace = workspace / body["userId"]
        record = {
            "sessionId": session_id,
            "userId": body["userId"],
            "clientId": body["clientId"],
            "status": "PENDING",
            "restartCount": 0,
            "lastFailureReason": "",
            "stoppedReason": "",
            "taskId": "",
            "startType": "",
            "startDurationMs": 0,
            "createdAt": now,
            "updatedAt": now,
            "lastActivityAt": now,
            "expiresAt": int(now + self.settings.session_ttl),
            "version": 1,
            "workspace": str(workspace),
        }
        try:
            self.store.put_new(record)
        except StoreUnavailable as exc:
            self.runtime.release()
            # The write may have landed with its answer lost (a one-way partition): the client is told 503, so the
            # record must not live on; the reaper removes it once the store answers again.
            if not self.settings.has("keep-refused-creates"):
                with self.doubtful_lock:
                    self.doubtful_creates.add(session_id)
            raise store_error(exc, self.settings) from exc
        except Exception:
            self.runtime.release()
            raise
        self.expiry[session_id] = record["expiresAt"]
        self.runtime.submit(session_id, str(workspace))
        if self.settings.has("metrics-in-request-path"):  # the defect: a create waits for (and fails with) CloudWatch
            self.cloudwatch.put_metric_data(
                Namespace=PLATFORM_NAMESPACE,
                MetricData=[{"MetricName": "SessionsCreated", "Value": 1, "Unit": "Count"}],
            )
        self._slow_create()
        return public(record)

    def _slow_create(self) -> None:
        """The defects slow-create (every create is late) and slow-create-outliers (one in OUTLIER_EVERY is)."""
        delay = SLOW_CREATE_S if self.settings.has("slow-create") else 0.0
        if self.settings.has("slow-create-outliers"):
            with self._creates_lock:
                self._creates += 1
                if self._creates % OUTLIER_EVERY == 0:
                    delay += OUTLIER_CREATE_S
        if delay:
            self.stopped.wait(delay)

    def _expired(self, record: dict[str, Any]) -> bool:
        if self.settings.has("serve-expired"):
            return False
        expires = record.get("expiresAt")  # an item without the TTL attribute never expires, as in DynamoDB
        return expires is not None and float(expires) <= clock.now()

    def get(self, session_id: str) -> dict[str, Any]:
        record = self._read(session_id)
        if self._expired(record):
            raise ApiError(410, "session_expired", f"session {session_id} expired at {record['expiresAt']}")
        if self.settings.has("slow-api"):  # the defect: a read that waits on something it should not
            self.stopped.wait(SLOW_READ_S)
        return public(record)

    def _read(self, session_id: str) -> dict[str, Any]:
        try:
            record = self.store.get(session_id)
        except StoreUnavailable as exc:
            raise store_error(exc, self.settings) from exc
        if record is None:
            raise ApiError(404, "not_found", f"no session {session_id}")
        return record

    def list_user(self, user_id: str | None) -> dict[str, Any]:
        if not user_id or not ID_PATTERN.match(user_id):
            raise ApiError(400, "invalid_request", "query parameter userId is required")
        try:
            records = self.store.by_user(user_id)
        except StoreUnavailable as exc:
            raise store_error(exc, self.settings) from exc
        return {"sessions": [public(r) for r in records if not self._expired(r)]}

    def delete(self, session_id: str) -> None:
        record = self._read(session_id)
        try:
            self.store.transition(
                session_id,
                LIVE_STATES | {"STOPPED", "FAILED", "STOPPING"},
                {"status": "STOPPING", "stoppedReason": "deleted"},
            )
            self.runtime.stop(session_id, drain=self.settings.has("billed-after-delete"))
            self.store.delete(session_id)
        except StoreUnavailable as exc:
            raise store_error(exc, self.settings) from exc
        self.expiry.pop(session_id, None)
        if self.settings.has("workspace-deleted-with-session"):  # the defect: the user's files go with the session
            shutil.rmtree(record["workspace"], ignore_errors=True)

    def route(self, session_id: str) -> int:
        """The port of a session's ready container, or the reason there is none."""
        port = self.runtime.container_port(session_id)
        if self.settings.has("ecs-in-file-path"):  # the defect: a DescribeTasks on every call, retried while refused
            self._describe_task_retrying(deadline=time.monotonic() + ECS_LOOKUP_RETRY_S)
        expires = self.expiry.get(session_id)
        if port is not None and expires is not None:
            if expires <= clock.now() and not self.settings.has("serve-expired"):
                raise ApiError(410, "session_expired", f"session {session_id} expired")
            self.runtime.touch(session_id)
            return port
        record = self._read(session_id)
        if self._expired(record):
            raise ApiError(410, "session_expired", f"session {session_id} expired")
        status = record.get("status")
        if status in ("PENDING", "STARTING", "RESTARTING") or (status == "RUNNING" and port is None):
            raise ApiError(
                503,
                "container_unavailable",
                f"session {session_id} is {status}; its container is not ready",
                self.settings.retry_after,
            )
        if status != "RUNNING":
            if self.settings.has("ended-session-retryable"):  # the defect: clients are told to retry for ever
                raise ApiError(503, "container_unavailable", f"session {session_id} is {status}", 1)
            raise ApiError(409, "session_not_running", f"session {session_id} is {status}")
        self.expiry[session_id] = float(record["expiresAt"])
        self.runtime.touch(session_id)
        return port  # type: ignore[return-value]

    def _describe_task_retrying(self, deadline: float) -> None:
        """The defect ecs-in-file-path: ask the control plane about the task, retrying until it answers or the deadline
        passes (then the call goes on with what the API knew anyway)."""
        while not self.runtime.control_plane.available() and time.monotonic() < deadline:
            time.sleep(0.1)

    # ----- reaper: orphans, stuck sessions, expiry, idle shutdown ----------------------------------------------
    def _record(self, action: dict[str, Any]) -> dict[str, Any]:
        action = {"time": clock.now(), **action, "applied": not action.get("skipped", False)}
        action.pop("skipped", None)
        if self.settings.has("reaper-forgets"):  # the defect: the pass acts, the history never hears of it
            return action
        self.actions.append(action)
        with self.reaper_log.open("a") as handle:
            handle.write(json.dumps(action) + "\n")
        return action

    def reap(self) -> list[dict[str, Any]]:
        """One pass. The process table is read before the records, so a container always has its record."""
        with self.reaper_lock:
            return self._reap()

    def _reap(self) -> list[dict[str, Any]]:
        done: list[dict[str, Any]] = []
        disabled = self.settings.has("no-reaper")
        processes = agent_processes(self.instance)
        records = {r["sessionId"]: r for r in self.store.scan()}
        tracked = self.runtime.tracked_pids()
        owned = self.runtime.owned_pids()
        draining = self.runtime.draining_pids()  # the runtime says it is stopping them (billed-after-delete)
        plane_up = self.runtime.control_plane.available()
        now = clock.now()

        def act(kind: str, **details: Any) -> None:
            entry = {
                "action": kind,
                **details,
                "skipped": disabled and kind in ("stop-orphan-container", "fail-stuck-session"),
            }
            done.append(self._record(entry))

        for proc, sid, task in processes:
            if proc.pid in draining:
                continue
            record = records.get(sid)
            if sid == "-":
                if proc.pid in owned:  # a warm-pool agent, starting, waiting or being handed out
                    continue
                reason = "unassigned agent the runtime does not own"
            elif record is None:
                reason = "session no longer exists"
            elif record.get("status") not in LIVE_STATES:
                reason = f"session is {record.get('status')}"
            elif tracked.get(sid) not in (None, proc.pid):
                reason = "second container for one session"
            else:
                continue
            if not plane_up:  # stopping it is a StopTask: it waits for ECS (the runtime retries its own stops)
                continue
            act("stop-orphan-container", sessionId=sid, taskId=task, pid=proc.pid, reason=reason)
            if not disabled:
                if sid != "-" and (record is None or record.get("status") not in LIVE_STATES):
                    self.runtime.stop(sid)  # the runtime must not restart what the reaper removes
                with contextlib.suppress(psutil.Error):
                    proc.kill()
        with self.doubtful_lock:
            doubtful = list(self.doubtful_creates)
        for sid in doubtful:  # creates answered 503 whose write may have landed: the client was told no session
            record = records.get(sid)
            refused = record is not None and record.get("status") == "PENDING" and sid not in self.runtime.wanted
            if refused and self.store.delete_if_status(sid, "PENDING"):
                act("remove-refused-create", sessionId=sid, reason="its create was answered 503")
                records.pop(sid, None)
            with self.doubtful_lock:  # settled (a store error above keeps it for the next pass)
                self.doubtful_creates.discard(sid)
        for sid in list(self.runtime.unsettled):  # creates that failed half-way while the store was away
            self.runtime.unsettled.discard(sid)
            record = records.get(sid)
            if sid not in self.runtime.wanted and record and record.get("status") in LIVE_STATES:
                self.store.transition(
                    sid,
                    LIVE_STATES,
                    {
                        "status": "FAILED",
                        "stoppedReason": "create failed",
                        "lastFailureReason": "session store unavailable while the container started",
                    },
                )
                act("fail-half-created-session", sessionId=sid, status=record.get("status"))
                records[sid] = {**record, "status": "FAILED"}
        for sid, record in records.items():
            status = record.get("status")
            if status not in LIVE_STATES:
                continue
            if self._expired(record):
                self.runtime.stop(sid)
                if not self.settings.has("expired-record-left-running"):  # the defect: the record is never closed
                    self.store.transition(sid, LIVE_STATES, {"status": "STOPPED", "stoppedReason": "expired"})
                act("stop-expired-session", sessionId=sid)
                continue
            # The defects: stuck starts are kept for good, or ended after 1 s instead of start_timeout.
            stuck_after = 1.0 if self.settings.has("stuck-ended-early") else self.settings.start_timeout
            if (
                sid not in self.runtime.wanted
                and not self.settings.has("stuck-sessions-kept")
                and now - float(record.get("updatedAt") or now) > stuck_after
            ):
                act("fail-stuck-session", sessionId=sid, status=status, reason="no container is being started")
                if not disabled:
                    self.store.transition(
                        sid,
                        LIVE_STATES,
                        {
                            "status": "FAILED",
                            "stoppedReason": "stuck",
                            "lastFailureReason": f"stuck in {status}",
                        },
                    )
                continue
            wanted = self.runtime.wanted.get(sid)
            if status == "RUNNING" and wanted is not None and not self.settings.has("no-idle-shutdown"):
                last = max(wanted.last_activity, float(record.get("lastActivityAt") or 0))
                if self.settings.has("idle-from-container-clock"):  # the defect: the container's clock decides
                    now = self._container_clock(sid) or now
                if self.settings.has("idle-from-skewed-clock"):  # the defect: activity on the host's clock, unskewed
                    last -= clock.skew()
                if now - last > self.settings.idle_timeout:
                    self.runtime.stop(sid)
                    self.store.transition(
                        sid,
                        LIVE_STATES,
                        {"status": "STOPPED", "stoppedReason": "idle", "lastActivityAt": last},
                    )
                    act("stop-idle-session", sessionId=sid, idleSeconds=round(now - last, 3))
        return done

    def _container_clock(self, session_id: str) -> float | None:
        """What time the session's container believes it is (its /health), for the defect idle-from-container-clock."""
        port = self.runtime.container_port(session_id)
        if port is None:
            return None
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=0.5)
        try:
            conn.request("GET", "/health")
            return float(json.loads(conn.getresponse().read())["time"])
        except (OSError, ValueError, KeyError, http.client.HTTPException):
            return None
        finally:
            conn.close()

    def _reaper_loop(self) -> None:
        last_flush = time.monotonic()
        while not self.stopped.wait(self.settings.reaper_interval):
            try:
                self.reap()
                if time.monotonic() - last_flush >= self.settings.activity_flush_interval:
                    last_flush = time.monotonic()
                    for sid, wanted in list(self.runtime.wanted.items()):
                        self.store.touch(sid, wanted.last_activity)
            except StoreUnavailable as exc:
                log.warning("reaper pass skipped: %s", exc)
            except Exception:
                log.exception("reaper pass failed")

    # ----- CloudWatch: the ECS service's utilisation and task counts -------------------------------------------
    def utilisation(self) -> dict[str, float]:
        """CPU and memory of all containers as a share of what they reserve, as ECS reports it."""
        pids = list(self.runtime.tracked_pids().values())
        cpu = mem = 0.0
        for pid in pids:
            try:
                proc = psutil.Process(pid)
                cpu += proc.cpu_percent(interval=None)
                mem += proc.memory_info().rss
            except psutil.Error:
                continue
        reserved_cpu = max(len(pids), 1) * self.settings.container_cpu_quota * 100
        reserved_mem = max(len(pids), 1) * self.settings.container_memory_limit
        return {"cpu": round(100 * cpu / reserved_cpu, 2), "memory": round(100 * mem / reserved_mem, 2)}

    def _metrics_loop(self) -> None:
        dims = [
            {"Name": "ClusterName", "Value": self.settings.cluster_name},
            {"Name": "ServiceName", "Value": self.settings.service_name},
        ]
        while not self.stopped.wait(self.settings.metrics_interval):
            try:
                use = self.utilisation()
                counts = self.runtime.counts()
                self.cloudwatch.put_metric_data(
                    Namespace="AWS/ECS",
                    MetricData=[
                        {
                            "MetricName": "CPUUtilization",
                            "Dimensions": dims,
                            "Value": use["cpu"],
                            "Unit": "Percent",
                        },
                        {
                            "MetricName": "MemoryUtilization",
                            "Dimensions": dims,
                            "Value": use["memory"],
                            "Unit": "Percent",
                        },
                    ],
                )
                # The platform's own metric (ECS publishes AWS/ECS and Container Insights on AWS; a platform publishes
                # this one itself, from its API tasks): sessions the platform wants running.
                self.cloudwatch.put_metric_data(
                    Namespace=PLATFORM_NAMESPACE,
                    MetricData=[
                        {
                            "MetricName": "LiveSessions",
                            "Dimensions": [{"Name": "ServiceName", "Value": self.settings.service_name}],
                            "Value": counts["desired"],
                            "Unit": "Count",
                        }
                    ],
                )
                self.cloudwatch.put_metric_data(
                    Namespace="ECS/ContainerInsights",
                    MetricData=[
                        {"MetricName": name, "Dimensions": dims, "Value": counts[key], "Unit": "Count"}
                        for name, key in (
                            ("RunningTaskCount", "running"),
                            ("PendingTaskCount", "pending"),
                            ("DesiredTaskCount", "desired"),
                        )
                    ],
                )
            except Exception as exc:
                log.warning("metrics not published: %s", exc)
