"""The session service of the minimal deployment: its sessions (records in DynamoDB, one ECS task each) and its API.

Written from ``docs/deployment-contract.md`` (and the API of ``docs/platform-contract.md`` it names), not from
``testbed/``. Everything runs in one process: the moto server (DynamoDB, ECS), the HTTP API, and two loops, the
watcher (a session's task that stopped is a crash: restart it) and the reaper (orphaned tasks, idle and expired
sessions).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
SESSION_ID = re.compile(r"s-[0-9a-f]{20}")
LIVE = ("PENDING", "STARTING", "RUNNING", "RESTARTING")
ENDED = ("STOPPED", "FAILED")
# The session fields the API answers: the contract's required ones, no optional one.
API_FIELDS = (
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
    "lastRecoveryMs",
)
MAX_BODY = 16 * 1024 * 1024
THROTTLED = ("ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded")
_TO_DYNAMO, _FROM_DYNAMO = TypeSerializer(), TypeDeserializer()


@dataclass
class Settings:
    """Names and timers of the deployment (``python -m minimal_deployment up --start-delay ...`` sets the timers)."""

    state: Path
    region: str = "us-east-1"
    cluster: str = "minimal-sessions"
    service: str = "minimal-session-service"
    family: str = "session"
    table: str = "minimal-sessions"
    start_delay: float = 0.5  # from RunTask until the session's app answers ready (a Fargate start is slower)
    idle_timeout: float = 900.0
    ttl: float = 3600.0
    restart_max: int = 5  # restarts within restart_window; the next crash ends the session FAILED
    restart_window: float = 60.0
    watch_interval: float = 0.1
    reaper_interval: float = 1.0


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


def _decimal(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, list):
        return [_decimal(v) for v in value]
    return value


def _dynamo(item: dict) -> dict:
    return {k: _TO_DYNAMO.serialize(_decimal(v)) for k, v in item.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _item(raw: dict) -> dict:
    return {k: _plain(_FROM_DYNAMO.deserialize(v)) for k, v in raw.items()}


def _now_ms(since: float) -> float:
    return max(0.1, round((time.time() - since) * 1000, 1))


class Sessions:
    """The platform: sessions as DynamoDB records, each with one ECS task; the workspace folders."""

    def __init__(self, settings: Settings, aws_url: str):
        self.settings = settings
        self.efs = settings.state / "efs"
        self.scratch = settings.state / "scratch"  # written files land here first, then move into place
        config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=10)
        kwargs = {
            "endpoint_url": aws_url,
            "region_name": settings.region,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "config": config,
        }
        self.dynamodb = boto3.client("dynamodb", **kwargs)
        self.ecs = boto3.client("ecs", **kwargs)
        self.ec2 = boto3.client("ec2", **kwargs)
        self._network: dict = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._live: dict[str, str] = {}  # session id -> its task ARN, for the watcher
        self._stopping = threading.Event()

    # ------------------------------------------------------------------ setup
    def create_resources(self) -> None:
        """The table, the cluster, the task definition and the service; the folders."""
        s = self.settings
        self.efs.mkdir(parents=True, exist_ok=True)
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.dynamodb.create_table(
            TableName=s.table,
            KeySchema=[{"AttributeName": "sessionId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "sessionId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.dynamodb.update_time_to_live(
            TableName=s.table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"}
        )
        subnet = self.ec2.describe_subnets()["Subnets"][0]["SubnetId"]
        group = self.ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
        self._network = {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}}
        self.ecs.create_cluster(clusterName=s.cluster)
        self.ecs.register_task_definition(
            family=s.family,
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="1024",
            memory="2048",
            containerDefinitions=[
                {"name": "session", "image": "session-app:minimal", "essential": True, "cpu": 1024, "memory": 2048}
            ],
        )
        self.ecs.create_service(
            cluster=s.cluster,
            serviceName=s.service,
            taskDefinition=s.family,
            desiredCount=0,  # no warm pool: every session's task is started with RunTask
            launchType="FARGATE",
            networkConfiguration=self._network,
        )

    # ------------------------------------------------------------------ records
    def _lock(self, session_id: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(session_id, threading.Lock())

    def _get(self, session_id: str) -> dict | None:
        raw = self.dynamodb.get_item(
            TableName=self.settings.table, Key={"sessionId": {"S": session_id}}, ConsistentRead=True
        ).get("Item")
        return _item(raw) if raw else None

    def _put(self, item: dict, new: bool = False) -> bool:
        """Writes the whole record; an existing one only while it still exists (never brings a deleted one back)."""
        condition = "attribute_not_exists(sessionId)" if new else "attribute_exists(sessionId)"
        try:
            self.dynamodb.put_item(TableName=self.settings.table, Item=_dynamo(item), ConditionExpression=condition)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _scan(self) -> list[dict]:
        items, start = [], None
        while True:
            page = self.dynamodb.scan(TableName=self.settings.table, **({"ExclusiveStartKey": start} if start else {}))
            items += [_item(raw) for raw in page.get("Items", [])]
            start = page.get("LastEvaluatedKey")
            if not start:
                return items

    @staticmethod
    def view(item: dict) -> dict:
        return {k: item[k] for k in API_FIELDS if k in item}

    def _expired(self, item: dict) -> bool:
        return time.time() >= float(item.get("expiresAt") or 0)

    def _session(self, session_id: str) -> dict:
        item = self._get(session_id) if SESSION_ID.fullmatch(session_id) else None
        if item is None:
            raise ApiError(404, "not_found", f"No session {session_id}.")
        if self._expired(item):
            raise ApiError(410, "session_expired", f"Session {session_id} is past its TTL.")
        return item

    # ------------------------------------------------------------------ tasks
    def _run_task(self, session_id: str) -> str:
        s = self.settings
        task = self.ecs.run_task(
            cluster=s.cluster,
            taskDefinition=s.family,
            launchType="FARGATE",
            startedBy=session_id,
            tags=[{"key": "sessionId", "value": session_id}],
            networkConfiguration=self._network,
        )["tasks"][0]
        return task["taskArn"]

    def _stop_task(self, arn: str, reason: str) -> None:
        if arn:
            self.ecs.stop_task(cluster=self.settings.cluster, task=arn, reason=reason)

    def _start(self, item: dict, detected: float | None = None) -> None:
        """Starts the session's task (its first or a replacement); it answers ready after the start delay."""
        arn = self._run_task(item["sessionId"])
        item.update(taskId=arn, status="RESTARTING" if detected else "STARTING", startedAt=time.time())
        self._live[item["sessionId"]] = arn
        timer = threading.Timer(self.settings.start_delay, self._ready, (item["sessionId"], arn, detected))
        timer.daemon = True
        timer.start()

    def _ready(self, session_id: str, arn: str, detected: float | None) -> None:
        with self._lock(session_id):
            item = self._get(session_id)
            if not item or item.get("taskId") != arn or item["status"] not in ("STARTING", "RESTARTING"):
                return  # deleted, crashed again, or ended meanwhile
            if detected is None:
                item.update(startType="cold", startDurationMs=_now_ms(float(item["startedAt"])))
            else:
                item["lastRecoveryMs"] = _now_ms(detected)
            item["status"] = "RUNNING"
            self._put(item)

    # ------------------------------------------------------------------ API
    def create(self, body: bytes, content_type: str | None) -> dict:
        if (content_type or "").split(";")[0].strip().lower() != "application/json":
            raise ApiError(400, "invalid_request", "Content-Type must be application/json.")
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "invalid_request", "The body is not JSON.") from None
        if not isinstance(request, dict):
            raise ApiError(400, "invalid_request", "The body must be a JSON object {userId, clientId}.")
        unknown = sorted(set(request) - {"userId", "clientId"})
        if unknown:
            raise ApiError(400, "invalid_request", f"Unknown field(s): {', '.join(unknown)}.")
        for name in ("userId", "clientId"):
            value = request.get(name)
            if not isinstance(value, str) or not ID.fullmatch(value) or value in (".", ".."):
                raise ApiError(400, "invalid_request", f"{name} must be 1-64 characters of [A-Za-z0-9_.-].")
        session_id = "s-" + uuid.uuid4().hex[:20]
        now = time.time()
        item = {
            "sessionId": session_id,
            "userId": request["userId"],
            "clientId": request["clientId"],
            "status": "PENDING",
            "restartCount": 0,
            "lastFailureReason": "",
            "stoppedReason": "",
            "createdAt": now,
            "expiresAt": int(now + self.settings.ttl),
            "lastActivityAt": now,
            "restartTimes": [],
        }
        with self._lock(session_id):
            self._put(item, new=True)
            try:
                self._start(item)
            except (ClientError, BotoCoreError) as error:
                item.update(status="FAILED", stoppedReason="start failed", lastFailureReason=f"RunTask: {error}")
            self._put(item)
        return self.view(item)

    def get(self, session_id: str) -> dict:
        return self.view(self._session(session_id))

    def list(self, query: str) -> dict:
        users = parse_qs(query, keep_blank_values=True).get("userId", [])
        if len(users) != 1 or not ID.fullmatch(users[0]):
            raise ApiError(400, "invalid_request", "userId (1-64 characters of [A-Za-z0-9_.-]) is required.")
        mine = [i for i in self._scan() if i.get("userId") == users[0] and not self._expired(i)]
        return {"sessions": [self.view(i) for i in mine]}

    def delete(self, session_id: str) -> None:
        if not SESSION_ID.fullmatch(session_id):
            raise ApiError(404, "not_found", f"No session {session_id}.")
        with self._lock(session_id):
            item = self._get(session_id)
            if item is None:
                raise ApiError(404, "not_found", f"No session {session_id}.")
            self.dynamodb.delete_item(TableName=self.settings.table, Key={"sessionId": {"S": session_id}})
            self._live.pop(session_id, None)
            self._stop_task(str(item.get("taskId") or ""), "session deleted")

    def _workspace(self, item: dict) -> Path:
        return self.efs / item["clientId"] / item["userId"]

    def _workspace_file(self, item: dict, raw: str) -> Path:
        """The file ``raw`` (as sent, percent-encoded) names in the session's workspace; 400 when it leaves it."""
        root = self._workspace(item)
        path = unquote(raw)
        parts = path.split("/")
        if path.startswith("/") or "\\" in path or "\x00" in path or any(p in ("", ".", "..") for p in parts):
            raise ApiError(400, "invalid_path", f"The path {raw!r} leaves the workspace or is not a file path.")
        target = root.joinpath(*parts)
        if not target.resolve().is_relative_to(root.resolve()):
            raise ApiError(400, "invalid_path", f"The path {raw!r} leaves the workspace.")
        return target

    def _for_files(self, session_id: str) -> dict:
        item = self._session(session_id)
        if item["status"] in ENDED:
            raise ApiError(409, "session_not_running", f"Session {session_id} is {item['status']}.")
        if item["status"] != "RUNNING":
            raise ApiError(503, "container_unavailable", f"Session {session_id} is {item['status']}.", 1)
        return item

    def _touch(self, session_id: str) -> None:
        try:
            self.dynamodb.update_item(
                TableName=self.settings.table,
                Key={"sessionId": {"S": session_id}},
                UpdateExpression="SET lastActivityAt = :now",
                ConditionExpression="attribute_exists(sessionId)",
                ExpressionAttributeValues={":now": {"N": str(time.time())}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def write_file(self, session_id: str, raw: str, data: bytes) -> dict:
        item = self._for_files(session_id)
        target = self._workspace_file(item, raw)
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = self.scratch / uuid.uuid4().hex
        with open(scratch, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(scratch, target)
        self._touch(session_id)
        return {"path": unquote(raw), "size": len(data)}

    def read_file(self, session_id: str, raw: str) -> bytes:
        item = self._for_files(session_id)
        target = self._workspace_file(item, raw)
        if not target.is_file():
            raise ApiError(404, "file_not_found", f"No file {unquote(raw)!r} in the workspace.")
        self._touch(session_id)
        return target.read_bytes()

    def list_files(self, session_id: str) -> dict:
        root = self._workspace(self._for_files(session_id))
        files = [p for p in root.rglob("*") if p.is_file()] if root.is_dir() else []
        return {"files": [{"path": p.relative_to(root).as_posix(), "size": p.stat().st_size} for p in sorted(files)]}

    def health(self) -> tuple[int, dict]:
        try:
            self.dynamodb.get_item(TableName=self.settings.table, Key={"sessionId": {"S": "health-check"}})
        except (ClientError, BotoCoreError):
            return 503, {"status": "degraded", "store": "unavailable"}
        return 200, {"status": "ok"}

    # ------------------------------------------------------------------ the watcher: crashes and restarts
    def _crashed(self, session_id: str, arn: str, why: str) -> None:
        with self._lock(session_id):
            item = self._get(session_id)
            if not item or item.get("taskId") != arn or item["status"] not in LIVE:
                if self._live.get(session_id) == arn:
                    self._live.pop(session_id, None)
                return
            detected = time.time()
            recent = [t for t in item.get("restartTimes", []) if detected - float(t) < self.settings.restart_window]
            item["lastFailureReason"] = why
            if len(recent) >= self.settings.restart_max:
                item.update(status="FAILED", stoppedReason="restart policy exhausted", taskId="")
                self._live.pop(session_id, None)
            else:
                item.update(restartCount=int(item["restartCount"]) + 1, restartTimes=[*recent, detected])
                self._start(item, detected)
            self._put(item)

    def watch_once(self) -> None:
        live = dict(self._live)
        arns = list(live.values())
        tasks: dict[str, dict] = {}
        for start in range(0, len(arns), 100):
            answer = self.ecs.describe_tasks(cluster=self.settings.cluster, tasks=arns[start : start + 100])
            tasks.update((t["taskArn"], t) for t in answer.get("tasks", []))
        for session_id, arn in live.items():
            task = tasks.get(arn)
            if task is None or "STOPPED" in (task.get("lastStatus"), task.get("desiredStatus")):
                reason = (task or {}).get("stoppedReason") or "the task is gone"
                self._crashed(session_id, arn, f"ECS task {arn.rsplit('/', 1)[-1]} stopped: {reason}")

    # ------------------------------------------------------------------ the reaper: orphans, idle, expired
    def reap_once(self) -> None:
        now = time.time()
        for item in self._scan():
            if item.get("status") not in LIVE:
                continue
            if self._expired(item):
                self._end(item["sessionId"], "expired")
            elif item["status"] == "RUNNING" and now - float(item["lastActivityAt"]) > self.settings.idle_timeout:
                self._end(item["sessionId"], "idle")
        arns = []
        pages = self.ecs.get_paginator("list_tasks").paginate(
            cluster=self.settings.cluster, family=self.settings.family, desiredStatus="RUNNING"
        )
        for page in pages:
            arns += page.get("taskArns", [])
        for start in range(0, len(arns), 100):
            tasks = self.ecs.describe_tasks(cluster=self.settings.cluster, tasks=arns[start : start + 100])["tasks"]
            for task in tasks:
                session_id = task.get("startedBy", "")
                with self._lock(session_id):
                    item = self._get(session_id) if session_id else None
                    if not item or item.get("taskId") != task["taskArn"] or item["status"] not in LIVE:
                        self._stop_task(task["taskArn"], "orphan: no live session")

    def _end(self, session_id: str, why: str) -> None:
        with self._lock(session_id):
            item = self._get(session_id)
            if not item or item["status"] not in LIVE:
                return
            self._live.pop(session_id, None)
            self._stop_task(str(item.get("taskId") or ""), f"session {why}")
            item.update(status="STOPPED", stoppedReason=why)
            self._put(item)

    def loop(self, every: float, step) -> None:
        while not self._stopping.wait(every):
            try:
                step()
            except Exception as error:  # a loop must outlive a failed call; the next pass tries again
                print(f"{step.__name__} failed: {error!r}", flush=True)

    def start_loops(self) -> None:
        for every, step in (
            (self.settings.watch_interval, self.watch_once),
            (self.settings.reaper_interval, self.reap_once),
        ):
            threading.Thread(target=self.loop, args=(every, step), daemon=True, name=step.__name__).start()

    def stop_loops(self) -> None:
        self._stopping.set()


ROUTES = [
    (re.compile(r"/health"), "health"),
    (re.compile(r"/sessions"), "sessions"),
    (re.compile(r"/sessions/([^/]+)"), "session"),
    (re.compile(r"/sessions/([^/]+)/files"), "files"),
    (re.compile(r"/sessions/([^/]+)/files/(.+)"), "file"),
]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "minimal-sessions"
    sessions: Sessions  # set on the subclass serve() makes

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            if length > MAX_BODY:
                self.close_connection = True
                raise ApiError(413, "payload_too_large", f"The body is over {MAX_BODY} bytes.")
            body = self.rfile.read(length) if length else b""
            status, answer = self._route(method, body)
        except ApiError as error:
            status, answer = error.status, error
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in THROTTLED:
                status, answer = 429, ApiError(429, "overloaded", "The session store is busy.", 1)
            else:
                status, answer = 503, ApiError(503, "store_unavailable", f"The session store failed: {code}", 1)
        except BotoCoreError as error:
            status, answer = 503, ApiError(503, "store_unavailable", f"The session store is unreachable: {error}", 1)
        self._send(status, answer)

    def _route(self, method: str, body: bytes) -> tuple[int, Any]:
        url = urlsplit(self.path)
        for pattern, name in ROUTES:
            match = pattern.fullmatch(url.path)
            if match:
                args = [unquote(a) if i == 0 else a for i, a in enumerate(match.groups())]
                return self._call(name, method, args, url.query, body)
        raise ApiError(404, "not_found", f"No route {url.path}.")

    def _call(self, name: str, method: str, args: list[str], query: str, body: bytes) -> tuple[int, Any]:
        s = self.sessions
        calls = {
            ("health", "GET"): lambda: s.health(),
            ("sessions", "POST"): lambda: (201, s.create(body, self.headers.get("Content-Type"))),
            ("sessions", "GET"): lambda: (200, s.list(query)),
            ("session", "GET"): lambda: (200, s.get(*args)),
            ("session", "DELETE"): lambda: (204, s.delete(*args)),
            ("files", "GET"): lambda: (200, s.list_files(*args)),
            ("file", "GET"): lambda: (200, s.read_file(*args)),
            ("file", "PUT"): lambda: (201, s.write_file(*args, body)),
        }
        call = calls.get((name, method))
        if call is None:
            raise ApiError(405, "method_not_allowed", f"{method} is not allowed here.")
        return call()

    def _send(self, status: int, answer: Any) -> None:
        headers = {}
        if isinstance(answer, ApiError):
            if answer.retry_after is not None:
                headers["Retry-After"] = str(answer.retry_after)
            answer = {"error": answer.code, "message": answer.message}
        if status == 204:
            data, kind = b"", None
        elif isinstance(answer, bytes):
            data, kind = answer, "application/octet-stream"
        else:
            data, kind = json.dumps(answer).encode(), "application/json"
        self.send_response(status)
        if kind:
            self.send_header("Content-Type", kind)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def api_server(sessions: Sessions) -> ThreadingHTTPServer:
    """The API on 127.0.0.1, a free port."""
    handler = type("SessionsHandler", (Handler,), {"sessions": sessions})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    return server
