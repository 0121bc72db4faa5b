"""PlatformLibrary API, fault-proxy and coordination keywords against a tiny local HTTP server."""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "libraries"))

from PlatformLibrary import PlatformLibrary
from PlatformLibrary.core.endpoints import Endpoints
from PlatformLibrary.core.profile import Profile
from PlatformLibrary.sessions.access import PlatformAccessLock
from PlatformLibrary.sessions.api import ApiError


class FakePlatform(ThreadingHTTPServer):
    """Answers from ``routes``: ``{(METHOD, path): callable(body) -> (status, headers, body)}``; logs requests."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes: dict = {}
        self.requests: list[tuple[str, str, bytes]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        return

    def _handle(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.requests.append((self.command, self.path, body))
        route = self.server.routes.get((self.command, self.path))
        if route is None:
            status, headers, payload = 404, {}, {"error": "not_found", "message": self.path}
        else:
            status, headers, payload = route(body)
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header(
            "Content-Type", "application/octet-stream" if isinstance(payload, bytes) else "application/json"
        )
        self.send_header("Content-Length", str(len(raw)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = do_PUT = do_DELETE = _handle


@pytest.fixture
def platform():
    server = FakePlatform()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def library(platform, tmp_path):
    endpoints = {"PLATFORM_API_URL": platform.url, "FAULT_PROXY_URL": platform.url, "PLATFORM_INSTANCE": "unit"}
    (tmp_path / "endpoints.json").write_text(json.dumps(endpoints))
    lib = PlatformLibrary(run_id="unit")
    lib.profile = Profile(
        variables={
            "TARGET": "embedded",
            "PLATFORM_STATE_DIR": str(tmp_path),
            "POLL_INTERVAL": "5 ms",
            "SESSION_START_TIMEOUT": "2 s",
            "HTTP_TIMEOUT": "2 s",
        }
    )
    lib.endpoints = Endpoints(lib.profile)
    return lib


def session(session_id: str, status: str = "PENDING", **extra) -> dict:
    return {"sessionId": session_id, "status": status, "restartCount": 0, "lastFailureReason": "", **extra}


def test_create_session_tracks_and_cleanup_deletes(platform, library):
    platform.routes[("POST", "/sessions")] = lambda body: (201, {}, session("s-1", userId=json.loads(body)["userId"]))
    platform.routes[("DELETE", "/sessions/s-1")] = lambda body: (204, {}, b"")
    created = library.keywords["create_session"]()
    assert created["sessionId"] == "s-1"
    user_id = json.loads(platform.requests[0][2])["userId"]
    assert user_id.startswith("qa-user-unit-") and len(user_id) <= 64
    assert library.keywords["get_sessions_created_by_this_test"]() == ["s-1"]
    assert library.keywords["delete_sessions_created_by_this_test"]() == ["s-1"]
    assert ("DELETE", "/sessions/s-1", b"") in platform.requests
    assert library.keywords["get_sessions_created_by_this_test"]() == []


def test_create_session_failure_shows_status_error_and_retry_after(platform, library):
    platform.routes[("POST", "/sessions")] = lambda body: (
        503,
        {"Retry-After": "2"},
        {"error": "store_unavailable", "message": "session store unavailable"},
    )
    with pytest.raises(ApiError) as failure:
        library.keywords["create_session"](user_id="alice", client_id="acme")
    assert str(failure.value) == (
        "Expected 201 but POST /sessions -> 503 store_unavailable: session store unavailable (Retry-After: 2)"
    )


def test_no_answer_is_a_clear_error(library, tmp_path):
    (tmp_path / "endpoints.json").write_text(json.dumps({"PLATFORM_API_URL": "http://127.0.0.1:9"}))
    with pytest.raises(ApiError, match=r"GET /sessions/s-1 got no answer from http://127\.0\.0\.1:9"):
        library.keywords["get_session"]("s-1")


def test_wait_until_running_returns_seconds(platform, library):
    statuses = iter(["PENDING", "STARTING", "STARTING", "RUNNING"])
    platform.routes[("GET", "/sessions/s-1")] = lambda body: (200, {}, session("s-1", next(statuses)))
    seconds = library.keywords["wait_until_session_is_running"]({"sessionId": "s-1"})
    assert 0 <= seconds < 2


def test_wait_until_running_stops_at_failed(platform, library):
    platform.routes[("GET", "/sessions/s-1")] = lambda body: (
        200,
        {},
        session("s-1", "FAILED", lastFailureReason="container exited on SIGKILL"),
    )
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"became FAILED .*container exited on SIGKILL"):
        library.keywords["wait_until_session_is_running"]("s-1")
    assert time.monotonic() - started < 1


def test_wait_until_running_deadline_names_last_status(platform, library):
    platform.routes[("GET", "/sessions/s-1")] = lambda body: (200, {}, session("s-1", "STARTING"))
    with pytest.raises(AssertionError, match=r"did not reach RUNNING; last status STARTING .*deadline 100\.0 ms"):
        library.keywords["wait_until_session_is_running"]("s-1", timeout=timedelta(milliseconds=100))


def test_session_should_have_lists_every_mismatch(platform, library):
    platform.routes[("GET", "/sessions/s-1")] = lambda body: (200, {}, session("s-1", "RUNNING", restartCount=2))
    library.keywords["session_should_have"]("s-1", status="RUNNING", restartCount="2")
    with pytest.raises(AssertionError) as failure:
        library.keywords["session_should_have"]("s-1", status="RESTARTING", restartCount="1")
    assert "field 'status': expected 'RESTARTING', actual 'RUNNING'" in str(failure.value)
    assert "field 'restartCount': expected '1', actual 2" in str(failure.value)


def test_workspace_files(platform, library):
    platform.routes[("PUT", "/sessions/s-1/files/project/package%20copy.json")] = lambda body: (
        201,
        {},
        {"path": "project/package copy.json", "size": len(body)},
    )
    platform.routes[("GET", "/sessions/s-1/files/project/package%20copy.json")] = lambda body: (200, {}, b"{}")
    platform.routes[("PUT", "/sessions/s-1/files/x")] = lambda body: (
        409,
        {},
        {"error": "session_not_running", "message": "session s-1 is STOPPED"},
    )
    assert library.keywords["write_workspace_file"]("s-1", "project/package copy.json", "{}")["size"] == 2
    library.keywords["workspace_file_should_have_content"]("s-1", "project/package copy.json", "{}")
    with pytest.raises(AssertionError, match="changed"):
        library.keywords["workspace_file_should_have_content"]("s-1", "project/package copy.json", "[]")
    with pytest.raises(ApiError, match="409 session_not_running: session s-1 is STOPPED"):
        library.keywords["write_workspace_file"]("s-1", "x", "data")
    with pytest.raises(ValueError, match="non-empty relative path"):
        library.keywords["write_workspace_file"]("s-1", " ", "data")


def _burst_route(platform, plan):
    """Answer creates in the order given by ``plan`` (a list of 'ok', '429', '500', 'bare429', 'hang')."""
    answers = iter(plan)
    counter = iter(range(1000))

    def create(body):
        with platform.lock:
            kind, number = next(answers), next(counter)
        if kind == "ok":
            return 201, {}, session(f"s-{number}")
        if kind == "429":
            return 429, {"Retry-After": "1"}, {"error": "capacity_exhausted", "message": "retry later"}
        if kind == "bare429":
            return 429, {}, {"error": "capacity_exhausted", "message": "retry later"}
        if kind == "hang":
            time.sleep(1.0)
            return 201, {}, session(f"s-{number}")
        return 500, {}, {"error": "internal_error", "message": "boom"}

    platform.routes[("POST", "/sessions")] = create


def test_concurrent_creates_with_clean_rejections(platform, library):
    _burst_route(platform, ["ok"] * 12 + ["429"] * 8)
    result = library.keywords["create_sessions_concurrently"](20)
    assert result.requested == 20 and result.success_count == 12 and result["failure_count"] == 8
    assert all(f["status"] == 429 and f["retryAfter"] == "1" for f in result.failures)
    assert sorted(library.keywords["get_sessions_created_by_this_test"]()) == sorted(result.session_ids)
    library.keywords["concurrent_failures_should_be_clean_rejections"](result)


def test_concurrent_creates_report_500s_missing_retry_after_and_hangs(platform, library):
    _burst_route(platform, ["ok", "500", "bare429", "hang"])
    result = library.keywords["create_sessions_concurrently"](4, timeout=timedelta(milliseconds=300))
    statuses = sorted(str(f["status"]) for f in result.failures)
    assert statuses == ["429", "500", "None"]
    hang = next(f for f in result.failures if f["status"] is None)
    assert "ReadTimeout" in hang["exception"]
    with pytest.raises(AssertionError) as failure:
        library.keywords["concurrent_failures_should_be_clean_rejections"](result)
    message = str(failure.value)
    assert message.startswith("3 of 3 failed creates were not clean rejections")
    assert "status 500 is not one of [429, 503]" in message
    assert "capacity_exhausted without a Retry-After header" in message
    assert "no answer: ReadTimeout" in message


def test_create_sessions_concurrently_rejects_bad_count(library):
    with pytest.raises(ValueError, match="at least 1"):
        library.keywords["create_sessions_concurrently"](0)


def test_cleanup_tries_every_session_and_reports_failures(platform, library):
    library.tracker.add(library.context.scope, "s-gone")
    library.tracker.add(library.context.scope, "s-broken")
    library.tracker.add(library.context.scope, "s-ok")
    platform.routes[("DELETE", "/sessions/s-gone")] = lambda body: (404, {}, {"error": "not_found", "message": "x"})
    platform.routes[("DELETE", "/sessions/s-broken")] = lambda body: (
        503,
        {"Retry-After": "1"},
        {"error": "store_unavailable", "message": "down"},
    )
    platform.routes[("DELETE", "/sessions/s-ok")] = lambda body: (204, {}, b"")
    with pytest.raises(AssertionError, match=r"s-broken: DELETE /sessions/s-broken -> 503 store_unavailable"):
        library.keywords["delete_sessions_created_by_this_test"]()
    deleted = [path for method, path, _ in platform.requests if method == "DELETE"]
    assert deleted == ["/sessions/s-gone", "/sessions/s-broken", "/sessions/s-ok"]
    assert library.keywords["get_sessions_created_by_this_test"]() == ["s-broken"]


def test_fault_proxy_hops_are_always_reverted(platform, library):
    ok = lambda body: (200, {}, {"name": "dynamodb", "enabled": json.loads(body or b"{}").get("enabled", True)})  # noqa: E731
    platform.routes[("POST", "/proxies/dynamodb")] = ok
    platform.routes[("POST", "/reset")] = lambda body: (204, {}, b"")
    library.keywords["disable_fault_proxy_hop"]("dynamodb")
    assert json.loads(platform.requests[-1][2]) == {"enabled": False}
    library.keywords["revert_all_faults"]()
    posted = [(path, body) for method, path, body in platform.requests if method == "POST"]
    assert posted[-2:] == [("/proxies/dynamodb", b'{"enabled": true}'), ("/reset", b"")]


def test_fault_revert_reports_what_failed(platform, library):
    platform.routes[("POST", "/proxies/dynamodb")] = lambda body: (
        500 if json.loads(body)["enabled"] else 200,
        {},
        {"error": "x"},
    )
    platform.routes[("POST", "/reset")] = lambda body: (204, {}, b"")
    library.keywords["disable_fault_proxy_hop"]("dynamodb")
    with pytest.raises(AssertionError, match="Could not revert every fault"):
        library.keywords["revert_all_faults"]()
    assert platform.requests[-1][1] == "/reset"  # the reset is still attempted


def test_run_reaper_and_health(platform, library):
    platform.routes[("POST", "/admin/reaper/run")] = lambda body: (200, {}, {"actions": [{"action": "x"}]})
    platform.routes[("GET", "/health")] = lambda body: (503, {}, {"status": "degraded", "store": "unavailable"})
    assert library.keywords["run_reaper"]() == [{"action": "x"}]
    with pytest.raises(AssertionError, match="Platform is not healthy: GET /health -> 503"):
        library.keywords["platform_should_be_healthy"]()
    assert library.keywords["get_capacity"].__self__.get_platform_health()["httpStatus"] == 503


@pytest.fixture
def deployment(platform, tmp_path):
    """The library on the AWS target, talking to the fake platform as to a deployment's own session service."""
    lib = PlatformLibrary(run_id="unit")
    lib.profile = Profile(
        variables={
            "TARGET": "aws",
            "PROFILE": "aws",
            "PLATFORM_API_URL": platform.url,
            "PLATFORM_STATE_DIR": str(tmp_path),
            "HTTP_TIMEOUT": "2 s",
            "ORPHAN_GRACE_TIMEOUT": "5 min",
        }
    )
    lib.endpoints = Endpoints(lib.profile)
    return lib


@pytest.fixture
def logged(monkeypatch) -> list[str]:
    from PlatformLibrary.core import base

    lines: list[str] = []
    monkeypatch.setattr(base.logger, "info", lambda message, html=False: lines.append(message))
    return lines


def test_a_deployment_without_a_reaper_record_is_judged_by_the_effect(platform, deployment, logged):
    """docs/deployment-contract.md: GET /admin/reaper and POST /admin/reaper/run are optional. A 404 (no such route)
    passes with a line saying what judges the reaper instead."""
    assert deployment.keywords["reaper_should_have_recorded"]({"sessionId": "s-1"}) == []
    assert ("GET", "/admin/reaper", b"") in platform.requests
    assert any(
        "the deployment keeps none (GET /admin/reaper answered 404" in line
        and "judged by its effect instead" in line
        and "the orphaned container stopped" in line
        for line in logged
    ), logged
    assert deployment.keywords["get_reaper_actions"]() is None  # nothing known: not "nothing done"
    assert deployment.keywords["run_reaper"]() == []
    assert any("runs no reaper pass on demand" in line and "up to 300.000 s" in line for line in logged), logged


def test_a_reaper_record_without_the_action_fails_naming_the_promise(platform, deployment):
    history = {"actions": [{"action": "stop-idle-session", "sessionId": "s-9", "applied": True}]}
    platform.routes[("GET", "/admin/reaper")] = lambda body: (200, {}, history)
    with pytest.raises(AssertionError) as failure:
        deployment.keywords["reaper_should_have_recorded"]("s-1")
    assert str(failure.value) == (
        "Broken promise: the reaper records what it did. GET /admin/reaper has no stop-orphan-container for session "
        "s-1 (it lists 1 action(s): ['stop-idle-session'])."
    )
    history["actions"].append({"action": "stop-orphan-container", "sessionId": "s-1", "applied": True})
    assert deployment.keywords["reaper_should_have_recorded"]("s-1") == [history["actions"][-1]]


def test_the_embedded_platform_must_have_the_reaper_calls(platform, library):
    """Its contract (docs/platform-contract.md) has both admin calls: a 404 there is a broken platform."""
    with pytest.raises(ApiError, match=r"Expected 200 but GET /admin/reaper -> 404 not_found"):
        library.keywords["reaper_should_have_recorded"]("s-1")
    with pytest.raises(ApiError, match=r"Expected 200 but POST /admin/reaper/run -> 404 not_found"):
        library.keywords["run_reaper"]()


def test_platform_access_lock_shared_and_exclusive(tmp_path):
    first, second, writer = (PlatformAccessLock("state", tmp_path) for _ in range(3))
    first.acquire("shared", timeout=1)
    second.acquire("shared", timeout=1)
    with pytest.raises(TimeoutError):
        writer.acquire("exclusive", timeout=0.1, interval=0.01)
    first.release()
    second.release()
    writer.acquire("exclusive", timeout=1)
    with pytest.raises(TimeoutError):
        first.acquire("shared", timeout=0.1, interval=0.01)
    assert writer.release() and not writer.release()
    with pytest.raises(ValueError, match="'shared' or 'exclusive'"):
        first.acquire("sometimes", timeout=1)


def test_file_paths_keep_dot_segments_for_the_platform_to_judge():
    from PlatformLibrary.core.http_client import PlatformApiClient

    assert PlatformApiClient.file_path("s-1", "../../x y.txt") == "/sessions/s-1/files/%2E%2E/%2E%2E/x%20y.txt"
    assert PlatformApiClient.file_path("s-1", "notes/./a.md") == "/sessions/s-1/files/notes/%2E/a.md"
    assert PlatformApiClient.file_path("s-1", "a..b/c") == "/sessions/s-1/files/a..b/c"


def test_taking_a_shared_aws_deployment_alone_needs_chaos_allowed(tmp_path):
    """Load, exhaustion and scaling tests disrupt other users of a deployment: a skip unless the profile allows it."""
    from PlatformLibrary.aws.safety import ChaosNotAllowed

    library = PlatformLibrary(run_id="unit")
    library.profile = Profile(variables={"TARGET": "aws", "PROFILE": "aws", "PLATFORM_STATE_DIR": str(tmp_path)})
    library.endpoints = Endpoints(library.profile)
    with pytest.raises(ChaosNotAllowed, match="take the shared deployment to this test alone"):
        library.keywords["acquire_platform_access"]("exclusive")
    assert library.keywords["acquire_platform_access"]("shared") >= 0  # ordinary tests share it
    library.keywords["release_platform_access"]()
