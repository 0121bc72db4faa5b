"""HTTP/JSON front of the session service on 127.0.0.1 (the contract is docs/openapi.yaml)."""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from testbed.httputil import send_with_body
from testbed.service import ApiError, SessionService, store_error
from testbed.store import StoreUnavailable

log = logging.getLogger("testbed.api")
MAX_BODY = 16 * 1024 * 1024
# Performance defects (testbed/config.py DEFECTS): one shared lane, and what each request pays on it.
COLLAPSE_IN_FLIGHT, COLLAPSE_COST_S = 2, 0.006  # collapse-under-load: ~166 requests/s, between 1x and 3x load
BUSY_SESSIONS, BUSY_WINDOW_S, BUSY_COST_S = 2, 1.0, 0.015  # collapse-under-concurrency: ~66 file calls/s


class Congestion:
    """The defects collapse-under-load and collapse-under-concurrency: past a threshold, requests take one shared
    lane, one at a time, each paying a small cost on it (a pool too small for the load, with one slow fallback).

    Below the threshold nothing changes, so the platform looks fine at normal load; above it the lane serves fewer
    requests per second than arrive, and the queue only grows."""

    def __init__(self, under_load: bool, under_concurrency: bool) -> None:
        self.under_load, self.under_concurrency = under_load, under_concurrency
        self.lock = threading.Lock()
        self.lane = threading.Lock()
        self.in_flight = 0
        self.sessions: dict[str, float] = {}  # session -> when it last made a file call

    def _take_lane(self, cost: float) -> None:
        with self.lane:
            time.sleep(cost)

    @contextmanager
    def request(self) -> Iterator[None]:
        """Around every API request: more than COLLAPSE_IN_FLIGHT in flight, and it waits for the lane."""
        if not self.under_load:
            yield
            return
        with self.lock:
            self.in_flight += 1
            crowded = self.in_flight > COLLAPSE_IN_FLIGHT
        try:
            if crowded:
                self._take_lane(COLLAPSE_COST_S)
            yield
        finally:
            with self.lock:
                self.in_flight -= 1

    def file_call(self, session_id: str) -> None:
        """Before a file call: with more than BUSY_SESSIONS sessions busy lately, it waits for the lane."""
        if not self.under_concurrency:
            return
        now = time.monotonic()
        with self.lock:
            self.sessions[session_id] = now
            for sid, seen in list(self.sessions.items()):
                if now - seen > BUSY_WINDOW_S:
                    del self.sessions[sid]
            crowded = len(self.sessions) > BUSY_SESSIONS
        if crowded:
            self._take_lane(BUSY_COST_S)


class AgentClient:
    """Keep-alive connections to containers, one per thread and port.

    A broken connection (reset, closed keep-alive) is retried once for idempotent calls; a timeout is not: a
    container that does not answer within ``timeout`` is answered 503 at once, not after a second wait (behind a
    black-holed network a retry only doubles the hang).
    """

    def __init__(self, timeout: float = 3.0, retry_timeouts: bool = False) -> None:
        self.local = threading.local()
        self.timeout = timeout
        self.retry_timeouts = retry_timeouts  # the defect container-timeout-retried

    def call(self, port: int, method: str, path: str, body: bytes | None) -> tuple[int, str, bytes]:
        conns: dict[int, http.client.HTTPConnection] = self.local.__dict__.setdefault("conns", {})
        for attempt in (1, 2):
            conn = conns.get(port) or http.client.HTTPConnection("127.0.0.1", port, timeout=self.timeout)
            conns[port] = conn
            try:
                conn.request(method, path, body=body, headers={"Content-Length": str(len(body or b""))})
                response = conn.getresponse()
                return response.status, response.getheader("Content-Type", ""), response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conns.pop(port, None)
                timed_out = isinstance(exc, TimeoutError) and not self.retry_timeouts
                if attempt == 2 or method not in ("GET", "PUT", "DELETE") or timed_out:
                    raise ApiError(503, "container_unavailable", f"container did not answer: {exc}", 1) from exc
        raise AssertionError("unreachable")


def make_handler(service: SessionService) -> type[BaseHTTPRequestHandler]:
    agents = AgentClient(service.settings.container_call_timeout, service.settings.has("container-timeout-retried"))
    settings = service.settings
    congestion = Congestion(settings.has("collapse-under-load"), settings.has("collapse-under-concurrency"))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "testbed-api/1"
        disable_nagle_algorithm = True  # a response is one write; no need to wait for an ACK before it goes

        def log_message(self, format: str, *args: object) -> None:
            return

        def _send(
            self,
            status: int,
            body: Any = None,
            raw: bytes | None = None,
            ctype: str = "",
            headers: dict[str, str] | None = None,
        ) -> None:
            payload = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
            self.send_response(status)
            self.send_header("Content-Type", ctype or "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            send_with_body(self, payload)

        def _body(self) -> bytes:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                raise ApiError(400, "invalid_request", "Content-Length is not a number") from None
            if length > MAX_BODY:
                raise ApiError(413, "payload_too_large", f"body over {MAX_BODY} bytes")
            return self.rfile.read(length) if length > 0 else b""

        def _json(self) -> Any:
            raw = self._body()
            try:
                return json.loads(raw or b"null")
            except ValueError:
                raise ApiError(400, "invalid_request", "body is not valid JSON") from None

        def _dispatch(self, method: str) -> None:
            try:
                try:
                    with congestion.request(), service.store.bulkhead.requests():  # store calls shed under overload
                        self._route(method)
                except StoreUnavailable as exc:  # store trouble no operation answered itself (a reaper run)
                    raise store_error(exc, service.settings) from exc
            except ApiError as exc:
                headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
                self._send(exc.status, {"error": exc.code, "message": exc.message}, headers=headers)
            except Exception as exc:
                log.exception("unexpected error on %s %s", method, self.path)
                self._send(500, {"error": "internal_error", "message": f"{type(exc).__name__}: {exc}"})

        def _route(self, method: str) -> None:
            url = urlsplit(self.path)
            parts = [unquote(p) for p in url.path.strip("/").split("/")] if url.path.strip("/") else []
            if method == "GET" and parts == ["health"]:
                status, body = service.health()
                self._send(status, body)
            elif method == "GET" and parts == ["capacity"]:
                self._send(200, service.capacity())
            elif parts == ["sessions"] and method == "POST":
                self._send(201, service.create(self._json(), self.headers.get("Content-Type")))
            elif parts == ["sessions"] and method == "GET":
                user = parse_qs(url.query).get("userId", [None])[0]
                self._send(200, service.list_user(user))
            elif len(parts) == 2 and parts[0] == "sessions" and method == "GET":
                self._send(200, service.get(parts[1]))
            elif len(parts) == 2 and parts[0] == "sessions" and method == "DELETE":
                service.delete(parts[1])
                self._send(204)
            elif len(parts) >= 3 and parts[0] == "sessions" and parts[2] == "files":
                self._files(method, parts[1], url.path)
            elif parts == ["admin", "reaper", "run"] and method == "POST":
                self._send(200, {"actions": service.reap()})
            elif parts == ["admin", "reaper"] and method == "GET":
                self._send(200, {"actions": list(service.actions)})
            else:
                raise ApiError(404, "not_found", f"no route {method} {url.path}")

        def _files(self, method: str, session_id: str, raw_path: str) -> None:
            prefix = f"/sessions/{quote(session_id)}/files"
            # Only the one '/' after "files": a path that begins with '/' is absolute, and the container refuses it.
            rel = raw_path[len(prefix) + 1 :] if raw_path.startswith(prefix + "/") else ""
            body = self._body() if method == "PUT" else None
            if not rel and method != "GET":
                raise ApiError(400, "invalid_path", "a file path is required")
            port = service.route(session_id)
            congestion.file_call(session_id)
            status, ctype, payload = agents.call(port, method, f"/files/{rel}" if rel else "/files", body)
            self._send(status, raw=payload, ctype=ctype)

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_PUT(self) -> None:
            self._dispatch("PUT")

        def do_DELETE(self) -> None:
            self._dispatch("DELETE")

    return Handler


class Server(ThreadingHTTPServer):
    # The stdlib listens with a backlog of 5: a burst of new connections overflowed it and the kernel dropped the
    # rest, which the clients only retried a second later.
    request_queue_size = 128


def serve(service: SessionService, port: int = 0) -> ThreadingHTTPServer:
    server = Server(("127.0.0.1", port), make_handler(service))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="api", daemon=True).start()
    return server
