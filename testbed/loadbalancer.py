"""The embedded platform's application load balancer: HTTP/1.1 in front of the API targets, with health checks.

Why our own and not HAProxy or nginx: the embedded platform must start with nothing but ``pip install`` (no
system package, no root), and it must behave like an AWS ALB where the two differ from HAProxy: a target is
health-checked on ``GET /health`` and leaves rotation after ``unhealthy_threshold`` failed checks; a new target
takes traffic only once it passed ``healthy_threshold`` checks; when no target is healthy the balancer fails open
and routes to all of them; a target that resets or refuses the connection is answered **502**, one that does not
answer within ``target_timeout`` **504**, no registered target **503**; a request is never retried on another
target. It grew from the fault proxy's asyncio plumbing and is about as small.

Targets are registered by the platform (as ECS registers a service's tasks with a target group) on the admin
port: ``PUT /targets {"targets": [{"id", "port", "draining"}]}``; ``GET /targets`` tells each one's health as
``DescribeTargetHealth`` does (``initial``, ``healthy``, ``unhealthy``, ``draining``) with the reason and the counts
of requests it answered, 502s and 504s. A target registered with ``"draining": true`` is being deregistered (ECS
deregisters a service's task before it stops it): ``draining`` with ``Target.DeregistrationInProgress``, no new
request, health checks or not (ELB API reference, "DeregisterTargets": "The load balancer stops sending requests to
targets that are deregistering").

``PUT /targets/<id>/blackhole {"on": true}`` black-holes the target's port as the AWS face's FIS
``aws:ecs:task-network-blackhole-port`` (ingress) does to an API task: whatever the balancer sends the target, health
checks and requests, gets no answer until ``{"on": false}`` (the held data then goes through, as packets do once a
dropping rule is gone, unless the check or the request timed out first).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("testbed.loadbalancer")
MAX_HEAD = 64 * 1024
HOP_HEADERS = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}


class BadRequest(Exception):
    pass


@dataclass
class Target:
    id: str
    port: int
    pid: int | None = None
    state: str = "initial"  # initial -> healthy <-> unhealthy, as ELBv2's DescribeTargetHealth names them
    reason: str = "Elb.RegistrationInProgress"
    since: float = field(default_factory=time.time)
    passes: int = 0
    fails: int = 0
    requests: int = 0
    bad_gateway: int = 0
    gateway_timeout: int = 0
    draining: bool = False  # being deregistered: no new request (ECS stops its task)
    blackholed: bool = False  # its port drops what the balancer sends (FIS blackhole-port on an API task)
    held: int = 0  # health checks and requests the black hole held: the fault acted
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "port": self.port,
            "pid": self.pid,
            "state": self.state,
            "reason": self.reason,
            "since": self.since,
            "requests": self.requests,
            "badGateway": self.bad_gateway,
            "gatewayTimeout": self.gateway_timeout,
            "blackholed": self.blackholed,
            "held": self.held,
        }

    async def through_blackhole(self) -> None:
        """Holds the caller while the target's port is black-holed (a timeout around the caller ends the wait)."""
        if self.blackholed:
            self.held += 1
        while self.blackholed:
            await asyncio.sleep(0.02)


@dataclass
class HealthCheck:
    interval: float = 0.5
    timeout: float = 0.4
    healthy_threshold: int = 2
    unhealthy_threshold: int = 2
    enabled: bool = True  # off: the defect lb-no-health-check, every registered target stays in rotation


async def read_head(reader: asyncio.StreamReader) -> tuple[str, list[tuple[str, str]]] | None:
    """The start line and headers of one message; None when the peer closed between messages."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise BadRequest("connection closed inside a message head") from None
    except asyncio.LimitOverrunError:
        raise BadRequest(f"message head over {MAX_HEAD} bytes") from None
    lines = raw.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if line:
            name, sep, value = line.partition(":")
            if not sep:
                raise BadRequest(f"malformed header line {line[:80]!r}")
            headers.append((name.strip(), value.strip()))
    return lines[0], headers


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name), None)


async def read_body(reader: asyncio.StreamReader, headers: list[tuple[str, str]], until_close: bool) -> bytes:
    if header(headers, "transfer-encoding"):
        raise BadRequest("chunked bodies are not supported; send Content-Length")
    length = header(headers, "content-length")
    if length is None:
        return await reader.read() if until_close else b""
    try:
        size = int(length)
    except ValueError:
        raise BadRequest("Content-Length is not a number") from None
    return await reader.readexactly(size) if size > 0 else b""


def message(start: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    kept = [(k, v) for k, v in headers if k.lower() not in HOP_HEADERS and k.lower() != "content-length"]
    kept.append(("Content-Length", str(len(body))))
    head = start + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in kept) + "\r\n"
    return head.encode("latin-1") + body


def error_response(status: int, code: str, text: str) -> bytes:
    reasons = {400: "Bad Request", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
    body = json.dumps({"error": code, "message": text}).encode()
    return message(f"HTTP/1.1 {status} {reasons[status]}", [("Content-Type", "application/json")], body)


class LoadBalancer:
    def __init__(self, check: HealthCheck, target_timeout: float) -> None:
        self.check = check
        self.target_timeout = target_timeout
        self.targets: dict[str, Target] = {}
        self._turn = itertools.count()

    # ----- registration (the admin port) ------------------------------------------------------------------
    def register(self, wanted: list[dict[str, Any]]) -> None:
        """Make the registered targets exactly ``wanted``; a target already known keeps its health."""
        ids = set()
        for item in wanted:
            ident, port = str(item["id"]), int(item["port"])
            ids.add(ident)
            known = self.targets.get(ident)
            if known is None or known.port != port:
                known = self.targets[ident] = Target(ident, port, item.get("pid"))
                log.info("target %s registered on port %s", ident, port)
            if item.get("draining") and not known.draining:
                known.draining = True
                self._set(known, "draining", "Target.DeregistrationInProgress")
        for ident in list(self.targets):
            if ident not in ids:
                gone = self.targets.pop(ident)
                for _, writer in gone.idle:
                    writer.close()
                log.info("target %s deregistered", ident)

    def pick(self) -> Target | None:
        """Round robin over the healthy targets; over all of them when none is healthy (ALB fails open)."""
        registered = [t for t in self.targets.values() if not t.draining]
        if not registered:
            return None
        healthy = [t for t in registered if t.state == "healthy"] if self.check.enabled else registered
        pool = healthy or registered
        return pool[next(self._turn) % len(pool)]

    # ----- health checks ----------------------------------------------------------------------------------
    async def health_loop(self) -> None:
        while True:
            started = time.monotonic()
            await asyncio.gather(*(self._check(t) for t in list(self.targets.values())))
            await asyncio.sleep(max(0.0, self.check.interval - (time.monotonic() - started)))

    async def _check(self, target: Target) -> None:
        if target.draining:
            return  # deregistering: its health no longer matters
        try:
            ok, reason = await asyncio.wait_for(self._probe(target), self.check.timeout)
        except TimeoutError:
            ok, reason = False, "Target.Timeout"
        except OSError:
            ok, reason = False, "Target.FailedHealthChecks"
        if ok:
            target.passes, target.fails = target.passes + 1, 0
            if target.state != "healthy" and target.passes >= self.check.healthy_threshold:
                self._set(target, "healthy", "")
        else:
            target.fails, target.passes = target.fails + 1, 0
            threshold = 1 if target.state == "initial" else self.check.unhealthy_threshold
            if target.state != "unhealthy" and target.fails >= threshold:
                self._set(target, "unhealthy", reason)

    def _set(self, target: Target, state: str, reason: str) -> None:
        log.info("target %s %s -> %s %s", target.id, target.state, state, reason)
        target.state, target.reason, target.since = state, reason, time.time()

    @staticmethod
    async def _probe(target: Target) -> tuple[bool, str]:
        await target.through_blackhole()
        reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
        try:
            writer.write(b"GET /health HTTP/1.1\r\nHost: health\r\nConnection: close\r\n\r\n")
            await writer.drain()
            head = await read_head(reader)
            if head is None:
                return False, "Target.FailedHealthChecks"
            status = int(head[0].split(" ", 2)[1])
            return status == 200, "" if status == 200 else "Target.ResponseCodeMismatch"
        finally:
            writer.close()

    # ----- traffic ----------------------------------------------------------------------------------------
    async def serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await read_head(reader)
                    if head is None:
                        return
                    start, headers = head
                    body = await read_body(reader, headers, until_close=False)
                except BadRequest as exc:
                    writer.write(error_response(400, "bad_request", str(exc)))
                    await writer.drain()
                    return
                headers.append(("X-Forwarded-For", "127.0.0.1"))
                writer.write(await self.forward(start, headers, body))
                await writer.drain()
                if (header(headers, "connection") or "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def forward(self, start: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
        target = self.pick()
        if target is None:
            return error_response(503, "no_targets", "the load balancer has no registered target")
        target.requests += 1
        try:
            return await asyncio.wait_for(self._exchange(target, message(start, headers, body)), self.target_timeout)
        except TimeoutError:
            target.gateway_timeout += 1
            return error_response(
                504, "gateway_timeout", f"target {target.id} did not answer within {self.target_timeout:g} s"
            )
        except (OSError, asyncio.IncompleteReadError, BadRequest, ValueError, IndexError) as exc:
            target.bad_gateway += 1
            return error_response(502, "bad_gateway", f"target {target.id} failed: {type(exc).__name__}: {exc}")

    async def _exchange(self, target: Target, request: bytes) -> bytes:
        # A pooled connection the target closed while idle fails at once; only then is a fresh one tried (the
        # request never reached the target, so this is not a retry of a request).
        await target.through_blackhole()
        while target.idle:
            reader, writer = target.idle.pop()
            if reader.at_eof() or writer.is_closing():
                writer.close()
                continue
            try:
                return await self._send(target, reader, writer, request)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                writer.close()
                if not getattr(exc, "partial", b""):
                    continue
                raise
            except BaseException:  # a timeout (cancelled) or a garbled answer: the connection is not reused
                writer.close()
                raise
        reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
        try:
            return await self._send(target, reader, writer, request)
        except BaseException:
            writer.close()
            raise

    @staticmethod
    async def _send(
        target: Target, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
    ) -> bytes:
        writer.write(request)
        await writer.drain()
        head = await read_head(reader)
        if head is None:
            raise ConnectionResetError("target closed the connection without an answer")
        start, headers = head
        status = int(start.split(" ", 2)[1])
        close = (header(headers, "connection") or "").lower() == "close"
        body = b"" if status in (204, 304) else await read_body(reader, headers, until_close=close)
        if close:
            writer.close()
        else:
            target.idle.append((reader, writer))
        return message(start, headers, body)

    # ----- admin ------------------------------------------------------------------------------------------
    async def serve_admin(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await read_head(reader)
            if head is None:
                return
            start, headers = head
            body = await read_body(reader, headers, until_close=False)
            method, path = start.split(" ")[:2]
            status, answer = 200, {}
            if method == "GET" and path == "/targets":
                answer = {
                    "pid": os.getpid(),
                    "targets": [t.view() for t in self.targets.values()],
                    "healthCheck": vars(self.check),
                }
            elif method == "PUT" and path == "/targets":
                self.register(json.loads(body)["targets"])
                answer = {"targets": [t.view() for t in self.targets.values()]}
            elif method == "PUT" and path.startswith("/targets/") and path.endswith("/blackhole"):
                ident = path[len("/targets/") : -len("/blackhole")]
                target = self.targets.get(ident)
                if target is None:
                    status, answer = 404, {"error": "not_found", "message": f"no target {ident}"}
                else:
                    target.blackholed = bool(json.loads(body)["on"])
                    log.info("target %s black hole %s", ident, "on" if target.blackholed else "off")
                    answer = target.view()
            else:
                status, answer = 404, {"error": "not_found", "message": f"no route {method} {path}"}
        except (BadRequest, ValueError, KeyError, TypeError) as exc:
            status, answer = 400, {"error": "bad_request", "message": str(exc)}
        payload = json.dumps(answer).encode()
        writer.write(
            message(
                f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}",
                [("Content-Type", "application/json")],
                payload,
            )
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()


async def run(args: argparse.Namespace) -> None:
    check = HealthCheck(
        args.health_interval, args.health_timeout, args.healthy_threshold, args.unhealthy_threshold, not args.no_health
    )
    balancer = LoadBalancer(check, args.target_timeout)
    if args.targets:
        balancer.register(json.loads(args.targets))
    front = await asyncio.start_server(
        balancer.serve_client, "127.0.0.1", args.port, limit=MAX_HEAD, reuse_address=True, backlog=256
    )
    admin = await asyncio.start_server(
        balancer.serve_admin, "127.0.0.1", args.admin_port, limit=MAX_HEAD, reuse_address=True
    )
    health = asyncio.create_task(balancer.health_loop())
    ready = {"port": front.sockets[0].getsockname()[1], "admin_port": admin.sockets[0].getsockname()[1]}
    await serve_until_stopped(args.ready_file, ready, front, admin)
    health.cancel()


async def serve_until_stopped(ready_file: Path, ready: dict[str, int], *servers: asyncio.Server) -> None:
    """Writes ``ready`` (and the pid) to ``ready_file`` atomically, then serves until SIGTERM or SIGINT."""
    tmp = ready_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({**ready, "pid": os.getpid()}))
    os.replace(tmp, ready_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.loadbalancer")
    parser.add_argument("--port", type=int, default=0, help="the listener clients use (0: any free port)")
    parser.add_argument("--admin-port", type=int, default=0)
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument("--targets", default="", help='JSON list of {"id", "port"} registered at start')
    parser.add_argument("--health-interval", type=float, default=0.5)
    parser.add_argument("--health-timeout", type=float, default=0.4)
    parser.add_argument("--healthy-threshold", type=int, default=2)
    parser.add_argument("--unhealthy-threshold", type=int, default=2)
    parser.add_argument("--target-timeout", type=float, default=10.0)
    parser.add_argument("--no-health", action="store_true", help="the defect lb-no-health-check")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
