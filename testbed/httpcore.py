"""A small asyncio HTTP/1.1 core shared by the API server and the workspace agent.

Server side (:func:`start_server`): one ``asyncio.Protocol`` per connection, keep-alive, ``Content-Length``
request bodies up to a size cap, HTTP/1.0 and ``Connection: close`` honoured, pipelined requests answered in
order, one socket write per response (head and body together), TCP_NODELAY, bound to 127.0.0.1 only. A handler
takes a :class:`Request` and returns a :class:`Response`, or an awaitable of one (then it runs as a task; the
connection reads no further request until it is answered). A malformed request gets a 400 JSON error and the
connection is closed; an exception in a handler gets a 500 JSON error, never a traceback.

Client side (:class:`ClientPool`): keep-alive connections per port on 127.0.0.1 for the API's forwarding to
containers, without threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

log = logging.getLogger("testbed.httpcore")

HOST = "127.0.0.1"
MAX_HEAD = 64 * 1024  # request line and headers
MAX_HEADERS = 100
DISCARD_TIMEOUT = 10.0  # how long an over-large body is read and dropped so the client sees the answer
READ_AHEAD = 1024 * 1024  # pipelined bytes buffered while a request is being answered, before reads pause
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
CONTROL = re.compile(r"[\x00-\x20\x7f]")
REASONS = {s.value: s.phrase for s in HTTPStatus}
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_date_cache: tuple[int, str] = (0, "")


def http_date() -> str:
    """The ``Date`` header value, computed at most once a second."""
    global _date_cache
    now = int(time.time())
    if now != _date_cache[0]:
        t = time.gmtime(now)
        text = (
            f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
        )
        _date_cache = (now, text)
    return _date_cache[1]


class Request:
    """One parsed request. ``target`` is the raw request target (path and query, still percent-encoded);
    header names are lower case."""

    __slots__ = ("body", "headers", "keep_alive", "method", "target", "version")

    def __init__(self, method: str, target: str, version: str, headers: dict[str, str]) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.body = b""
        self.keep_alive = True


class Response:
    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers


def json_response(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Response:
    return Response(status, b"" if body is None else json.dumps(body).encode(), "application/json", headers)


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(status, {"error": code, "message": message}, headers)


Handler = Callable[[Request], "Response | Awaitable[Response]"]
TooLarge = Callable[[int, int], Response]


def too_large_413(length: int, limit: int) -> Response:
    return error_response(413, "payload_too_large", f"body over {limit} bytes")


class BadRequest(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Config:
    __slots__ = ("connections", "handler", "max_body", "server_name", "too_large")

    def __init__(self, handler: Handler, max_body: int, too_large: TooLarge, server_name: str) -> None:
        self.handler = handler
        self.max_body = max_body
        self.too_large = too_large
        self.server_name = server_name
        self.connections: set[HTTPProtocol] = set()


def _nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def parse_head(head: str) -> Request:
    """Request line and header fields (the head without its blank line) -> a request without body."""
    lines = head.split("\n")
    request_line = lines[0].rstrip("\r")
    parts = request_line.split(" ")
    if len(parts) != 3:
        raise BadRequest(400, "invalid_request", f"malformed request line {request_line[:100]!r}")
    method, target, version = parts
    if not TOKEN.fullmatch(method) or not target or CONTROL.search(target):
        raise BadRequest(400, "invalid_request", f"malformed request line {request_line[:100]!r}")
    if version != "HTTP/1.1" and version != "HTTP/1.0":
        if re.fullmatch(r"HTTP/\d+(\.\d+)?", version):
            raise BadRequest(505, "http_version_not_supported", f"{version} is not supported; use HTTP/1.1")
        raise BadRequest(400, "invalid_request", f"malformed request line {request_line[:100]!r}")
    if len(lines) - 1 > MAX_HEADERS:
        raise BadRequest(400, "invalid_request", f"more than {MAX_HEADERS} header fields")
    headers: dict[str, str] = {}
    for raw in lines[1:]:
        line = raw.rstrip("\r")
        name, sep, value = line.partition(":")
        if not sep or not TOKEN.fullmatch(name):  # also refuses obsolete line folding and space before ':'
            raise BadRequest(400, "invalid_request", f"malformed header field {line[:100]!r}")
        name = name.lower()
        value = value.strip(" \t")
        if name in headers:
            if name == "content-length" and headers[name] != value:
                raise BadRequest(400, "invalid_request", "conflicting Content-Length header fields")
            if name != "content-length":
                headers[name] = f"{headers[name]}, {value}"
        else:
            headers[name] = value
    request = Request(method, target, version, headers)
    tokens = headers.get("connection", "").lower()
    if version == "HTTP/1.1":
        request.keep_alive = "close" not in tokens
    else:
        request.keep_alive = "keep-alive" in tokens
    return request


class HTTPProtocol(asyncio.Protocol):
    """One client connection: parse, dispatch one request at a time, answer in order."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.request: Request | None = None  # head parsed, body still arriving
        self.needed = 0
        self.busy = False  # a request is being answered
        self.closed = False
        self.read_paused = False
        self.write_paused = False
        self.discard = 0  # bytes of a refused body still to drop before closing
        self.eof = False  # the client sent FIN: answer what is complete, then close

    # ----- asyncio callbacks -----------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        _nodelay(transport)
        self.config.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.config.connections.discard(self)
        self.buffer.clear()

    def data_received(self, data: bytes) -> None:
        if self.discard:
            self.discard = max(0, self.discard - len(data))
            if not self.discard:
                self._close()
            return
        if self.closed:
            return
        self.buffer += data
        if not self.busy:
            self._process()
        elif len(self.buffer) > READ_AHEAD and not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]

    def eof_received(self) -> bool:
        self.eof = True
        if not self.busy:
            self._process()
        return True  # keep our side open until the answers are written; _process closes

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if not self.busy and not self.closed:
            self._process()

    # ----- request loop ----------------------------------------------------------------------------------------
    def _process(self) -> None:
        while not self.closed and not self.busy and not self.write_paused:
            if self.request is None and not self._parse_head():
                break
            request = self.request
            assert request is not None
            if len(self.buffer) < self.needed:
                break
            if self.needed:
                request.body = bytes(self.buffer[: self.needed])
                del self.buffer[: self.needed]
            self.request = None
            self.needed = 0
            self._dispatch(request)
        if self.busy or self.closed or self.write_paused:
            return
        if self.eof:
            self._close()
        elif self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()  # type: ignore[union-attr]

    def _parse_head(self) -> bool:
        buf = self.buffer
        while buf[:2] == b"\r\n":  # a stray CRLF before a request line is allowed
            del buf[:2]
        end = buf.find(b"\r\n\r\n")
        skip = 4
        if end < 0:
            end = buf.find(b"\n\n")
            skip = 2
        if end < 0:
            if len(buf) > MAX_HEAD:
                self._fail(BadRequest(400, "invalid_request", f"request head over {MAX_HEAD} bytes"))
            return False
        if end > MAX_HEAD:
            self._fail(BadRequest(400, "invalid_request", f"request head over {MAX_HEAD} bytes"))
            return False
        try:
            request = parse_head(buf[:end].decode("latin-1"))
            del buf[: end + skip]
            length = self._content_length(request)
        except BadRequest as exc:
            self._fail(exc)
            return False
        if length > self.config.max_body:
            request.keep_alive = False
            self._write(request, self.config.too_large(length, self.config.max_body))
            self.discard = max(0, length - len(buf))
            buf.clear()
            if self.discard:
                self.loop.call_later(DISCARD_TIMEOUT, self._close)
            else:
                self._close()
            return False
        if length and len(buf) < length and "100-continue" in request.headers.get("expect", "").lower():
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # type: ignore[union-attr]
        self.request = request
        self.needed = length
        return True

    @staticmethod
    def _content_length(request: Request) -> int:
        headers = request.headers
        if "transfer-encoding" in headers:
            raise BadRequest(411, "length_required", "chunked request bodies are not supported; send Content-Length")
        text = headers.get("content-length")
        if text is None:
            return 0
        if not text.isdigit() or not text.isascii():
            raise BadRequest(400, "invalid_request", "Content-Length is not a number")
        return int(text)

    def _dispatch(self, request: Request) -> None:
        try:
            result = self.config.handler(request)
        except Exception as exc:
            result = self._internal_error(request, exc)
        if isinstance(result, Response):
            self._answer(request, result)
            return
        try:
            task = self.loop.create_task(result)  # type: ignore[arg-type]
        except TypeError as exc:  # neither a response nor a coroutine: a handler bug, answered as one
            self._answer(request, self._internal_error(request, exc))
            return
        self.busy = True
        task.add_done_callback(lambda t: self._finished(request, t))

    def _finished(self, request: Request, task: asyncio.Task[Response]) -> None:
        self.busy = False
        try:
            response = task.result()
        except BaseException as exc:  # includes cancellation at shutdown
            response = self._internal_error(request, exc)
        self._answer(request, response)
        if not self.closed:
            self._process()

    def _internal_error(self, request: Request, exc: BaseException) -> Response:
        log.error("unexpected error on %s %s", request.method, request.target, exc_info=exc)
        return error_response(500, "internal_error", f"{type(exc).__name__}: {exc}")

    def _answer(self, request: Request, response: Response) -> None:
        if self.closed:
            return
        self._write(request, response)
        if not request.keep_alive:
            self._close()

    def _write(self, request: Request, response: Response) -> None:
        body = response.body
        status = response.status
        head = [
            f"HTTP/1.1 {status} {REASONS.get(status, '')}\r\n"
            f"Server: {self.config.server_name}\r\nDate: {http_date()}\r\n"
            f"Content-Type: {response.content_type}\r\nContent-Length: {len(body)}\r\n"
        ]
        if response.headers:
            for key, value in response.headers.items():
                head.append(f"{key}: {value}\r\n")
        if not request.keep_alive:
            head.append("Connection: close\r\n")
        elif request.version == "HTTP/1.0":
            head.append("Connection: keep-alive\r\n")
        head.append("\r\n")
        data = "".join(head).encode("latin-1")
        if body and request.method != "HEAD":
            data += body
        self.transport.write(data)  # type: ignore[union-attr]

    def _fail(self, exc: BadRequest) -> None:
        request = Request("GET", "/", "HTTP/1.1", {})
        request.keep_alive = False
        self._write(request, error_response(exc.status, exc.code, exc.message))
        self._close()

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            self.discard = 0
            self.buffer.clear()
            self.transport.close()  # type: ignore[union-attr]


async def start_server(
    handler: Handler,
    port: int = 0,
    *,
    max_body: int = 16 * 1024 * 1024,
    too_large: TooLarge = too_large_413,
    server_name: str = "testbed",
) -> tuple[asyncio.Server, Config]:
    """Listen on 127.0.0.1 (only) and serve ``handler``; returns the server and its live configuration."""
    config = Config(handler, max_body, too_large, server_name)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HTTPProtocol(config), HOST, port, backlog=1024)
    return server, config


async def stop_server(server: asyncio.Server, config: Config) -> None:
    """Stop listening and close every connection (answers already written are flushed first)."""
    server.close()
    for conn in list(config.connections):
        conn._close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(server.wait_closed(), 2)


# ----- client: keep-alive connections to 127.0.0.1 ports --------------------------------------------------------
class ClientError(Exception):
    """The peer did not give a complete answer. ``sent_nothing_back`` is true when not a byte came back, which on a
    reused connection means it was stale."""

    def __init__(self, message: str, sent_nothing_back: bool = True) -> None:
        super().__init__(message)
        self.sent_nothing_back = sent_nothing_back


MAX_RESPONSE = 64 * 1024 * 1024


class _ClientConnection(asyncio.Protocol):
    def __init__(self, pool: ClientPool, port: int) -> None:
        self.pool = pool
        self.port = port
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, dict[str, str], bytes]] | None = None
        self.head: tuple[int, dict[str, str]] | None = None
        self.length = -1  # -1: until the connection closes
        self.head_request = False
        self.closed = False
        self.reusable = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        _nodelay(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool._lost(self)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            if self.head is not None and self.length < 0:
                status, headers = self.head
                waiter.set_result((status, headers, bytes(self.buffer)))
            else:
                reason = f": {exc}" if exc else ""
                nothing = not self.buffer and self.head is None
                waiter.set_exception(ClientError(f"connection closed before a complete answer{reason}", nothing))

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost settles the waiter

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            if waiter is None:  # bytes nobody asked for: the connection is out of step
                self.reusable = False
                self.transport.close()  # type: ignore[union-attr]
            return
        try:
            self._parse(waiter)
        except ClientError as exc:
            self.reusable = False
            waiter.set_exception(exc)
            self.transport.close()  # type: ignore[union-attr]

    def _parse(self, waiter: asyncio.Future[tuple[int, dict[str, str], bytes]]) -> None:
        buf = self.buffer
        while self.head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    raise ClientError("answer head too large", False)
                return
            lines = buf[:end].decode("latin-1").split("\r\n")
            del buf[: end + 4]
            parts = lines[0].split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
                raise ClientError(f"malformed status line {lines[0][:100]!r}", False)
            status = int(parts[1])
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if 100 <= status < 200:
                continue  # an interim answer; the real one follows
            if "chunked" in headers.get("transfer-encoding", "").lower():
                raise ClientError("chunked answers are not supported", False)
            if "close" in headers.get("connection", "").lower() or parts[0] == "HTTP/1.0":
                self.reusable = False
            if self.head_request or status in (204, 304):
                self.length = 0
            elif "content-length" in headers:
                text = headers["content-length"]
                if not text.isdigit():
                    raise ClientError("malformed Content-Length in the answer", False)
                self.length = int(text)
            else:
                self.length = -1
                self.reusable = False
            self.head = (status, headers)
        if len(buf) > MAX_RESPONSE:
            raise ClientError("answer too large", False)
        if self.length >= 0 and len(buf) >= self.length:
            body = bytes(buf[: self.length])
            del buf[: self.length]
            if buf:
                self.reusable = False
            status, headers = self.head
            waiter.set_result((status, headers, body))

    async def exchange(self, data: bytes, head_request: bool) -> tuple[int, dict[str, str], bytes]:
        self.waiter = self.pool.loop.create_future()
        self.head = None
        self.length = -1
        self.head_request = head_request
        self.transport.write(data)  # type: ignore[union-attr]
        try:
            return await self.waiter
        finally:
            self.waiter = None


class ClientPool:
    """Keep-alive HTTP/1.1 connections to ports on 127.0.0.1, reused across requests. Runs on one event loop."""

    def __init__(self, max_idle_per_port: int = 16) -> None:
        self.loop = asyncio.get_running_loop()
        self.idle: dict[int, list[_ClientConnection]] = {}
        self.max_idle = max_idle_per_port

    def _lost(self, conn: _ClientConnection) -> None:
        idle = self.idle.get(conn.port)
        if idle and conn in idle:
            idle.remove(conn)
            if not idle:
                del self.idle[conn.port]

    async def _connect(self, port: int) -> _ClientConnection:
        _, conn = await self.loop.create_connection(lambda: _ClientConnection(self, port), HOST, port)
        return conn

    async def request(
        self,
        port: int,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        timeout: float = 5.0,
        retry: bool = True,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request; returns (status, lower-case headers, body). Raises :class:`ClientError`, ``OSError`` or
        ``TimeoutError``. A reused connection that fails before any byte of an answer (stale: the peer closed
        it) is retried once on a new connection, and so is a failed first attempt when ``retry`` is true."""
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        data = (
            f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
        ).encode("latin-1") + body
        async with asyncio.timeout(timeout):
            for attempt in (1, 2):
                conn = self._take(port)
                reused = conn is not None
                try:
                    if conn is None:
                        conn = await self._connect(port)
                    answer = await conn.exchange(data, method == "HEAD")
                except (OSError, ClientError) as exc:
                    if conn is not None and not conn.closed:
                        conn.transport.abort()  # type: ignore[union-attr]
                    stale = reused and (not isinstance(exc, ClientError) or exc.sent_nothing_back)
                    if attempt == 2 or not (stale or retry):
                        raise
                    continue
                except BaseException:  # timeout or cancellation mid-exchange: the connection is out of step
                    if conn is not None and not conn.closed:
                        conn.transport.abort()  # type: ignore[union-attr]
                    raise
                self._give_back(conn)
                return answer
        raise AssertionError("unreachable")

    def _take(self, port: int) -> _ClientConnection | None:
        idle = self.idle.get(port)
        while idle:
            conn = idle.pop()
            if not conn.closed and not conn.transport.is_closing():  # type: ignore[union-attr]
                return conn
        return None

    def _give_back(self, conn: _ClientConnection) -> None:
        if conn.closed or not conn.reusable or conn.transport.is_closing():  # type: ignore[union-attr]
            if not conn.closed:
                conn.transport.close()  # type: ignore[union-attr]
            return
        idle = self.idle.setdefault(conn.port, [])
        if len(idle) < self.max_idle:
            idle.append(conn)
        else:
            conn.transport.close()  # type: ignore[union-attr]

    def close(self) -> None:
        for idle in list(self.idle.values()):
            for conn in list(idle):
                conn.transport.close()  # type: ignore[union-attr]
        self.idle.clear()
