"""HTTP/JSON front of the session service on 127.0.0.1 (the contract is docs/openapi.yaml).

It runs on an asyncio event loop in a thread of its own (:mod:`testbed.httpcore`). ``SessionService`` methods block
(boto3 to DynamoDB), so they run in a bounded thread pool; file operations are forwarded to the session's container
with keep-alive connections on the event loop itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, unquote, urlsplit

from testbed import httpcore
from testbed.httpcore import ClientError, ClientPool, Request, Response, error_response, json_response
from testbed.service import ApiError, SessionService

log = logging.getLogger("testbed.api")
MAX_BODY = 16 * 1024 * 1024
AGENT_TIMEOUT = 5.0  # a container that does not answer within this is container_unavailable
WORKERS = 64  # threads for blocking service calls (store calls can block for seconds during an outage)
METHODS = frozenset(("GET", "POST", "PUT", "DELETE"))
T = TypeVar("T")


def too_large(length: int, limit: int) -> Response:
    return error_response(413, "payload_too_large", f"body over {limit} bytes")


class Api:
    """Routes requests to the service (in the executor) and file operations to containers (on the loop)."""

    def __init__(self, service: SessionService, executor: concurrent.futures.Executor) -> None:
        self.service = service
        self.executor = executor
        self.loop = asyncio.get_running_loop()
        self.agents = ClientPool()

    def blocking(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        return self.loop.run_in_executor(self.executor, fn, *args)

    async def handle(self, request: Request) -> Response:
        try:
            return await self.route(request)
        except ApiError as exc:
            headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
            return error_response(exc.status, exc.code, exc.message, headers)
        except Exception as exc:
            log.exception("unexpected error on %s %s", request.method, request.target)
            return error_response(500, "internal_error", f"{type(exc).__name__}: {exc}")

    async def route(self, request: Request) -> Response:
        method = request.method
        if method not in METHODS:
            return error_response(501, "not_implemented", f"Unsupported method ({method!r})")
        service = self.service
        url = urlsplit(request.target)
        parts = [unquote(p) for p in url.path.strip("/").split("/")] if url.path.strip("/") else []
        if method == "GET" and parts == ["health"]:
            status, body = await self.blocking(service.health)
            return json_response(status, body)
        if method == "GET" and parts == ["capacity"]:
            return json_response(200, await self.blocking(service.capacity))
        if parts == ["sessions"] and method == "POST":
            body = self.json(request)
            return json_response(201, await self.blocking(service.create, body))
        if parts == ["sessions"] and method == "GET":
            user = parse_qs(url.query).get("userId", [None])[0]
            return json_response(200, await self.blocking(service.list_user, user))
        if len(parts) == 2 and parts[0] == "sessions" and method == "GET":
            return json_response(200, await self.blocking(service.get, parts[1]))
        if len(parts) == 2 and parts[0] == "sessions" and method == "DELETE":
            await self.blocking(service.delete, parts[1])
            return json_response(204)
        if len(parts) >= 3 and parts[0] == "sessions" and parts[2] == "files":
            return await self.files(method, parts[1], url.path, request.body)
        if parts == ["admin", "reaper", "run"] and method == "POST":
            return json_response(200, {"actions": await self.blocking(service.reap)})
        if parts == ["admin", "reaper"] and method == "GET":
            return json_response(200, {"actions": list(service.actions)})
        raise ApiError(404, "not_found", f"no route {method} {url.path}")

    @staticmethod
    def json(request: Request) -> Any:
        try:
            return json.loads(request.body or b"null")
        except ValueError:
            raise ApiError(400, "invalid_request", "body is not valid JSON") from None

    async def files(self, method: str, session_id: str, raw_path: str, body: bytes) -> Response:
        prefix = f"/sessions/{quote(session_id)}/files"
        rel = raw_path[len(prefix) :].lstrip("/") if raw_path.startswith(prefix) else ""
        if not rel and method != "GET":
            raise ApiError(400, "invalid_path", "a file path is required")
        port = await self.container(session_id)
        status, ctype, payload = await self.forward(
            port, method, f"/files/{rel}" if rel else "/files", body if method == "PUT" else b""
        )
        return Response(status, payload, ctype or "application/json")

    async def container(self, session_id: str) -> int:
        """The session's container port. Answered on the loop when the service knows it from memory (the
        common case); otherwise the service reads the store, which happens in the executor."""
        service = self.service
        if session_id in service.expiry and service.runtime.container_port(session_id) is not None:
            return service.route(session_id)
        return await self.blocking(service.route, session_id)

    async def forward(self, port: int, method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
        try:
            status, headers, payload = await self.agents.request(
                port, method, path, body, timeout=AGENT_TIMEOUT, retry=method in ("GET", "PUT", "DELETE")
            )
        except TimeoutError:
            raise ApiError(503, "container_unavailable", "container did not answer: timed out", 1) from None
        except (OSError, ClientError) as exc:
            raise ApiError(503, "container_unavailable", f"container did not answer: {exc}", 1) from exc
        return status, headers.get("content-type", ""), payload


class ApiServer:
    """The running API: an event loop in a daemon thread. ``server_address`` is ``(host, port)``."""

    def __init__(self, service: SessionService, port: int = 0) -> None:
        self.service = service
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="api-worker")
        self.loop = asyncio.new_event_loop()
        self.loop.set_default_executor(self.executor)
        self.server: asyncio.Server | None = None
        self.config: httpcore.Config | None = None
        self.server_address: tuple[str, int] = ("127.0.0.1", 0)
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self.thread = threading.Thread(target=self._run, args=(port, started), name="api", daemon=True)
        self.thread.start()
        started.result(timeout=10)

    def _run(self, port: int, started: concurrent.futures.Future[None]) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._start(port))
        except BaseException as exc:
            started.set_exception(exc)
            return
        started.set_result(None)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    async def _start(self, port: int) -> None:
        api = Api(self.service, self.executor)
        self.server, self.config = await httpcore.start_server(
            api.handle, port, max_body=MAX_BODY, too_large=too_large, server_name="testbed-api/1"
        )
        self.server_address = self.server.sockets[0].getsockname()[:2]

    def shutdown(self) -> None:
        """Stop serving and wait for the loop to end."""
        if not self.loop.is_running():
            return

        async def stop() -> None:
            if self.server is not None and self.config is not None:
                await httpcore.stop_server(self.server, self.config)
            self.loop.stop()

        asyncio.run_coroutine_threadsafe(stop(), self.loop)
        self.thread.join(timeout=5)
        self.executor.shutdown(wait=False, cancel_futures=True)

    def server_close(self) -> None:
        return


def serve(service: SessionService, port: int = 0) -> ApiServer:
    return ApiServer(service, port)
