"""Toxiproxy-compatible admin HTTP API (JSON over HTTP/1.1, keep-alive), served on the proxy's event loop.

A hand-rolled server keeps the proxy stdlib-only and lets API calls mutate proxy state on the same loop as
the data path, with no thread hand-off. Routes, status codes and error bodies follow Toxiproxy v2.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from .errors import BAD_REQUEST_BODY, TOXIC_NOT_FOUND, ApiError
from .proxy import Registry

log = logging.getLogger("faultproxy.api")

VERSION = "2.12.0"
SERVER = "testbed-faultproxy"
MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024

Response = tuple[int, Any]
Handler = Callable[..., Awaitable[Response]]

_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    500: "Internal Server Error",
}


def _body_json(body: bytes) -> Any:
    """Decode a request body; empty is an error for routes that need one, with Toxiproxy's message prefix."""
    if not body.strip():
        raise ApiError(f"{BAD_REQUEST_BODY}: empty body, expected JSON")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(f"{BAD_REQUEST_BODY}: invalid JSON: {exc}") from None


class AdminApi:
    """Routes admin requests to the registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        seg = r"([^/]+)"
        self.routes: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
            (re.compile(r"/version"), {"GET": self.version}),
            (re.compile(r"/reset"), {"POST": self.reset}),
            (re.compile(r"/populate"), {"POST": self.populate}),
            (re.compile(r"/proxies"), {"GET": self.proxy_index, "POST": self.proxy_create}),
            (
                re.compile(rf"/proxies/{seg}"),
                {
                    "GET": self.proxy_show,
                    "POST": self.proxy_update,
                    "PATCH": self.proxy_update,
                    "DELETE": self.proxy_delete,
                },
            ),
            (re.compile(rf"/proxies/{seg}/toxics"), {"GET": self.toxic_index, "POST": self.toxic_create}),
            (
                re.compile(rf"/proxies/{seg}/toxics/{seg}"),
                {
                    "GET": self.toxic_show,
                    "POST": self.toxic_update,
                    "PATCH": self.toxic_update,
                    "DELETE": self.toxic_delete,
                },
            ),
        ]

    async def dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        if headers.get("user-agent", "").startswith("Mozilla/"):
            # Same guard as Toxiproxy: a browser page must not be able to drive faults on this host.
            return 403, {"error": "User agent not allowed", "status": 403}
        path = urlsplit(target).path.rstrip("/") or "/"
        for pattern, handlers in self.routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            handler = handlers.get(method)
            if handler is None:
                allowed = ", ".join(sorted(handlers))
                return 405, {"error": f"method {method} not allowed on {path} (allowed: {allowed})", "status": 405}
            try:
                return await handler(*(unquote(g) for g in match.groups()), body=body)
            except ApiError as exc:
                return exc.status, exc.as_json()
        return 404, {"error": f"no such route: {method} {path}", "status": 404}

    # -- handlers --

    async def version(self, body: bytes) -> Response:
        return 200, {"version": VERSION, "server": SERVER}

    async def reset(self, body: bytes) -> Response:
        await self.registry.reset()
        return 204, None

    async def populate(self, body: bytes) -> Response:
        try:
            proxies = await self.registry.populate(_body_json(body))
        except ApiError as exc:
            return exc.status, {**exc.as_json(), "proxies": []}
        return 201, {"proxies": [p.as_json() for p in proxies]}

    async def proxy_index(self, body: bytes) -> Response:
        return 200, self.registry.snapshot()

    async def proxy_create(self, body: bytes) -> Response:
        proxy = await self.registry.create(_body_json(body))
        return 201, proxy.as_json()

    async def proxy_show(self, name: str, body: bytes) -> Response:
        return 200, self.registry.get(name).as_json()

    async def proxy_update(self, name: str, body: bytes) -> Response:
        proxy = await self.registry.update(name, _body_json(body))
        return 200, proxy.as_json()

    async def proxy_delete(self, name: str, body: bytes) -> Response:
        await self.registry.delete(name)
        return 204, None

    async def toxic_index(self, name: str, body: bytes) -> Response:
        return 200, [t.as_json() for t in self.registry.get(name).all_toxics()]

    async def toxic_create(self, name: str, body: bytes) -> Response:
        toxic = await self.registry.add_toxic(name, _body_json(body))
        return 200, toxic.as_json()

    async def toxic_show(self, name: str, toxic_name: str, body: bytes) -> Response:
        proxy = self.registry.get(name)
        for toxic in proxy.all_toxics():
            if toxic.name == toxic_name:
                return 200, toxic.as_json()
        raise ApiError(TOXIC_NOT_FOUND, 404)

    async def toxic_update(self, name: str, toxic_name: str, body: bytes) -> Response:
        toxic = await self.registry.update_toxic(name, toxic_name, _body_json(body))
        return 200, toxic.as_json()

    async def toxic_delete(self, name: str, toxic_name: str, body: bytes) -> Response:
        await self.registry.remove_toxic(name, toxic_name)
        return 204, None

    # -- HTTP plumbing --

    async def serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                except asyncio.LimitOverrunError:
                    await self._send(writer, 400, {"error": "request head too large", "status": 400}, True)
                    return
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                parts = request_line.split(" ")
                if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                    await self._send(writer, 400, {"error": "malformed HTTP request line", "status": 400}, True)
                    return
                method, target, version = parts
                headers: dict[str, str] = {}
                for line in header_lines:
                    if line:
                        key, _, value = line.partition(":")
                        headers[key.strip().lower()] = value.strip()
                try:
                    body = await self._read_body(reader, headers)
                except ApiError as exc:
                    await self._send(writer, exc.status, exc.as_json(), True)
                    return
                connection = headers.get("connection", "").lower()
                close = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
                try:
                    status, payload = await self.dispatch(method.upper(), target, headers, body)
                except Exception as exc:  # an API bug must answer 500, not kill the admin connection silently
                    log.exception("admin API failure on %s %s", method, target)
                    status, payload = 500, {"error": f"internal error: {exc!r}", "status": 500}
                await self._send(writer, status, payload, close)
                if close:
                    return
        except (OSError, EOFError, asyncio.LimitOverrunError):
            return  # client went away mid-request
        except asyncio.CancelledError:
            return  # shutdown; a top-level connection task, so ending quietly is the whole job
        finally:
            writer.close()

    async def _read_body(self, reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks = []
            total = 0
            while True:
                size_line = await reader.readuntil(b"\r\n")
                try:
                    size = int(size_line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise ApiError("malformed chunked body") from None
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise ApiError("request body too large", 413)
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise ApiError("bad Content-Length") from None
        if length < 0 or length > MAX_BODY:
            raise ApiError("request body too large", 413)
        return await reader.readexactly(length) if length else b""

    async def _send(self, writer: asyncio.StreamWriter, status: int, payload: Any, close: bool) -> None:
        body = b"" if status == 204 or payload is None else json.dumps(payload).encode()
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", f"Server: {SERVER}"]
        if body:
            head.append("Content-Type: application/json")
        if status != 204:
            head.append(f"Content-Length: {len(body)}")
        if close:
            head.append("Connection: close")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
