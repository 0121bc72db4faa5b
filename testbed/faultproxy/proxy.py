"""Proxies, their connections and the registry the admin API drives.

Data path: each socket is an asyncio ``Protocol`` (``Side``) and each direction a ``Pipe``. While a stream
has no toxic, bytes received on one socket are written to the other straight from ``data_received`` (the fast
path: no queue, no task wake-up, so the proxy costs one read and one write per chunk; flow control pauses the
reading socket while the writing one is backed up). With a toxic present, chunks are stamped with their arrival
time and handed to a processor task that runs them through the toxic chain; this keeps latency pipelined
(chunk N+1 is not delayed by chunk N's wait) and lets toxics added or removed later act on data of existing
connections, as in Toxiproxy. Streams' reader/writer objects are not used on the data path because their
per-chunk task wake-ups cost about half the throughput on small request/response traffic.
Everything runs on one event loop, so no locks guard the data path; admin mutations serialise on one lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import awsfault  # noqa: F401  (registers the aws_fault toxic)
from . import toxics as tx
from .errors import (
    BAD_REQUEST_BODY,
    MISSING_FIELD,
    PROXY_EXISTS,
    PROXY_NOT_FOUND,
    TOXIC_EXISTS,
    ApiError,
    ConnectionDone,
)

log = logging.getLogger("faultproxy")

STREAM_LIMIT = 256 * 1024  # admin API reader limit
WRITE_HIGH = 1024 * 1024  # socket write buffer high-water mark: above it the source is paused
WRITE_LOW = 256 * 1024
QUEUE_HIGH = 4 * 1024 * 1024  # bytes waiting in a toxic chain before the source is paused
QUEUE_LOW = 1024 * 1024
CONNECT_TIMEOUT = 10.0


# --- addresses -------------------------------------------------------------------------------------------


def split_hostport(value: Any, what: str) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` too); a clear 400 for anything else."""
    if not isinstance(value, str) or ":" not in value:
        raise ApiError(f"{BAD_REQUEST_BODY}: {what} must be 'host:port', got {value!r}")
    host, _, port_text = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        port = int(port_text)
    except ValueError:
        raise ApiError(f"{BAD_REQUEST_BODY}: {what} has a bad port: {value!r}") from None
    if not 0 <= port <= 65535 or not host:
        raise ApiError(f"{BAD_REQUEST_BODY}: {what} must be 'host:port' with port 0-65535, got {value!r}")
    return host, port


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_host(host: str, what: str) -> str:
    """Only loopback binds are allowed: this proxy injects faults and must never be reachable off-host."""
    if not is_loopback(host):
        raise ApiError(f"{BAD_REQUEST_BODY}: {what} must be a loopback address (127.0.0.0/8 or ::1), got {host!r}")
    return "127.0.0.1" if host == "localhost" else host


def join_hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Side(asyncio.Protocol):
    """One socket of a proxied connection. Received bytes go straight to the pipe that reads this side."""

    def __init__(self, conn: Connection, role: str) -> None:
        self.conn = conn
        self.role = role
        self.transport: asyncio.Transport | None = None
        self.source_of: Pipe | None = None  # the pipe reading from this socket
        self.sink_of: Pipe | None = None  # the pipe writing to this socket
        self.write_paused = False
        self.writable: asyncio.Event | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        _nodelay(transport)
        transport.set_write_buffer_limits(high=WRITE_HIGH, low=WRITE_LOW)
        self.conn.side_made(self)

    def data_received(self, data: bytes) -> None:
        pipe = self.source_of
        if pipe is not None:
            pipe.feed(data)

    def eof_received(self) -> bool:
        if self.source_of is not None:
            self.source_of.feed_eof()
        return True  # keep our write side open: half-close is passed on, not turned into a full close

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.writable is not None:
            self.writable.set()
        self.conn.side_lost(self, exc)

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.sink_of is not None:
            self.sink_of.hold("sink")

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.writable is not None:
            self.writable.set()
        if self.sink_of is not None:
            self.sink_of.release("sink")

    async def drain(self) -> None:
        """Wait until the socket's write buffer is below its low-water mark (for the toxic path)."""
        while self.write_paused and not self.lost:
            if self.writable is None:
                self.writable = asyncio.Event()
            self.writable.clear()
            await self.writable.wait()
        if self.lost:
            raise ConnectionDone


class Pipe:
    """One direction of a connection: bytes read on ``src`` are written to ``dst``, through the toxic chain."""

    def __init__(self, conn: Connection, stream: str, src: Side, dst: Side) -> None:
        self.conn = conn
        self.stream = stream
        self.src = src
        self.dst = dst
        src.source_of = self
        dst.sink_of = self
        self.chains = conn.proxy.chains
        self.pending: list[bytes | None] = []  # before the upstream socket exists
        self.queue: asyncio.Queue[tuple[float, bytes | None]] | None = None
        self.queued = 0
        self.processor: asyncio.Task[None] | None = None
        self.holds: set[str] = set()
        self.eof_done = False
        self.orphans: list[tuple[tx.Toxic, tx.ToxicState]] = []

    # -- flow control: stop reading src while dst is backed up or the toxic queue is long --

    def hold(self, reason: str) -> None:
        if not self.holds and self.src.transport is not None and not self.src.lost:
            with contextlib.suppress(RuntimeError):
                self.src.transport.pause_reading()
        self.holds.add(reason)

    def release(self, reason: str) -> None:
        self.holds.discard(reason)
        if not self.holds and self.src.transport is not None and not self.src.lost:
            with contextlib.suppress(RuntimeError):
                self.src.transport.resume_reading()

    # -- input --

    def feed(self, data: bytes) -> None:
        if self.conn.closed:
            return
        transport = self.dst.transport
        if transport is None:
            self.pending.append(data)
            self.hold("connecting")
        elif self.queue is None and not self.chains[self.stream]:
            transport.write(data)  # fast path: no toxic on this stream
        else:
            self._enqueue(data)

    def feed_eof(self) -> None:
        if self.conn.closed:
            return
        if self.dst.transport is None:
            self.pending.append(None)
        elif self.queue is None:
            self._write_eof()
        else:
            self._enqueue(None)

    def flush_pending(self) -> None:
        """Upstream is connected: pass on what the client sent meanwhile."""
        pending, self.pending = self.pending, []
        for item in pending:
            if item is None:
                self.feed_eof()
            else:
                self.feed(item)
        self.release("connecting")

    def _enqueue(self, data: bytes | None) -> None:
        if self.queue is None:
            self.queue = asyncio.Queue()
            self.processor = asyncio.get_running_loop().create_task(self._process(self.queue))
        self.queue.put_nowait((asyncio.get_running_loop().time(), data))
        if data:
            self.queued += len(data)
            if self.queued > QUEUE_HIGH:
                self.hold("queue")

    def _write_eof(self) -> None:
        transport = self.dst.transport
        if transport is not None and not transport.is_closing() and transport.can_write_eof():
            with contextlib.suppress(OSError, RuntimeError):
                transport.write_eof()
        self.eof_done = True
        self.conn.pipe_finished()

    async def _write(self, data: bytes) -> None:
        transport = self.dst.transport
        if transport is None or transport.is_closing() or self.dst.lost:
            raise ConnectionDone
        transport.write(data)
        if self.dst.write_paused:
            await self.dst.drain()

    # -- toxic path --

    def _chain(self) -> list[tuple[tx.Toxic, tx.ToxicState]]:
        chain = []
        if self.orphans:
            self.orphans = [(t, s) for t, s in self.orphans if s.http is not None and s.http.mid_request()]
            chain.extend(self.orphans)
        for toxic in self.chains[self.stream]:
            state = self.conn.state(toxic)
            if state.active and toxic.type not in CONNECTION_ONLY_TOXICS:
                chain.append((toxic, state))
                toxic.hits += 1
        return chain

    async def _process(self, queue: asyncio.Queue[tuple[float, bytes | None]]) -> None:
        """Run queued chunks through the toxic chain; hand back to the fast path when idle and toxic-free."""
        try:
            while True:
                ts, data = await queue.get()
                if data is None:
                    for toxic, _ in self._chain():
                        await tx.on_eof(toxic)
                    self._write_eof()
                    return
                self.queued -= len(data)
                if self.queued <= QUEUE_LOW and "queue" in self.holds:
                    self.release("queue")
                await self._run_chain(self._chain(), 0, ts, data)
                if queue.empty() and not self.chains[self.stream] and not self.orphans:
                    self.queue = None
                    self.processor = None
                    return
        except ConnectionDone:
            self.conn.abort_unless_closed()
        except (OSError, RuntimeError) as exc:
            log.debug("%s %s processor ended: %r", self.conn.proxy.name, self.stream, exc)
            self.conn.abort()
        except Exception:  # a toxic bug must cost one connection, not leave it hanging
            log.exception("%s %s: toxic chain failed", self.conn.proxy.name, self.stream)
            self.conn.abort()

    async def _run_chain(self, chain: list[tuple[tx.Toxic, tx.ToxicState]], index: int, ts: float, data: bytes) -> None:
        if index == len(chain):
            await self._write(data)
            return
        toxic, state = chain[index]

        async def emit(piece: bytes) -> None:
            await self._run_chain(chain, index + 1, ts, piece)

        await tx.behaviour(toxic.type)(toxic, self.conn, state, ts, data, emit)


# Toxics that act on connections only (when one is made), never on the data: they are no link of the chain.
CONNECTION_ONLY_TOXICS = ("limit_connections",)


class Connection:
    """A client socket and its upstream socket; implements what toxics may do to the connection."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.client = Side(self, "client")
        self.upstream = Side(self, "upstream")
        self.up_pipe = Pipe(self, tx.UPSTREAM, self.client, self.upstream)
        self.down_pipe = Pipe(self, tx.DOWNSTREAM, self.upstream, self.client)
        self.pipes = (self.up_pipe, self.down_pipe)
        self.states: dict[int, tx.ToxicState] = {}
        self.state_uids: dict[int, int] = {}
        self.timers: dict[int, asyncio.TimerHandle] = {}
        self.connector: asyncio.Task[None] | None = None
        self.closed = False
        self.opened = time.monotonic()  # a connection limit keeps the oldest connections

    def side_made(self, side: Side) -> None:
        if side is self.client:
            self.up_pipe.hold("connecting")  # nothing to forward to until the upstream socket exists
            self.proxy.connections.add(self)
            self.connector = asyncio.get_running_loop().create_task(self._connect_upstream())

    async def _connect_upstream(self) -> None:
        proxy = self.proxy
        host, port = split_hostport(proxy.upstream, "upstream")
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.create_connection(lambda: self.upstream, host, port), CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            log.info("%s: upstream %s unreachable: %s", proxy.name, proxy.upstream, exc)
            self.close()
            return
        finally:
            self.connector = None
        if self.closed:
            self.abort()
            return
        for toxic in proxy.all_toxics():
            self.toxic_added(toxic)
        if not self.closed:
            self.up_pipe.flush_pending()

    def pipe_finished(self) -> None:
        """Both directions ended cleanly (EOF passed on each way): close both sockets after flushing."""
        if all(p.eof_done for p in self.pipes):
            self.close()

    def side_lost(self, side: Side, exc: Exception | None) -> None:
        if exc is not None:
            log.debug("%s: %s socket lost: %r", self.proxy.name, side.role, exc)
            self.abort()
        else:
            self.close()
        if self.client.lost and (self.upstream.lost or self.upstream.transport is None):
            self._finish()

    # -- toxic bookkeeping --

    def state(self, toxic: tx.Toxic) -> tx.ToxicState:
        """Per-connection state of a toxic, re-rolled when the toxic was updated (as Toxiproxy re-creates stubs)."""
        key = id(toxic)
        state = self.states.get(key)
        if state is None or self.state_uids.get(key) != toxic.uid:
            fresh = toxic.new_state()
            if state is not None:
                fresh.http = state.http  # keep the request parser aligned across an update
            state = self.states[key] = fresh
            self.state_uids[key] = toxic.uid
        return state

    def toxic_added(self, toxic: tx.Toxic) -> None:
        if self.upstream.transport is None:
            return  # still connecting: applied once connected
        state = self.state(toxic)
        if not state.active:
            return
        if toxic.type == "limit_connections":
            # A connection may stay only while fewer than ``max`` older ones are open: the oldest ``max`` keep
            # working, any other (already open when the limit came, or new) is reset, as at a connection cap.
            older = sum(1 for c in self.proxy.connections if not c.closed and c.opened < self.opened)
            if older >= toxic.attributes["max"] and not self.closed and not state.count:
                state.count = 1  # refused once: a connection counts as one hit however often it is looked at
                toxic.hits += 1
                self.reset()
        elif toxic.type == "timeout":
            self.arm_timeout(toxic)
        elif toxic.type == "limit_data" and toxic.attributes["bytes"] <= 0:
            self.close()

    def toxic_removed(self, toxic: tx.Toxic) -> None:
        key = id(toxic)
        state = self.states.pop(key, None)
        self.state_uids.pop(key, None)
        timer = self.timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        if state is None or not state.active:
            return
        if toxic.type == "timeout":
            self.close()  # Toxiproxy's timeout cleanup closes the connections it held
        elif state.http is not None and state.http.mid_request():
            state.http.retired = True
            for pipe in self.pipes:
                if pipe.stream == toxic.stream:
                    pipe.orphans.append((toxic, state))

    def toxic_updated(self, toxic: tx.Toxic) -> None:
        timer = self.timers.pop(id(toxic), None)
        if timer is not None:
            timer.cancel()
        self.toxic_added(toxic)

    # -- ConnContext --

    def arm_timeout(self, toxic: tx.Toxic) -> None:
        key = id(toxic)
        timer = self.timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        timeout = toxic.attributes["timeout"]
        if timeout > 0 and not self.closed:
            self.timers[key] = asyncio.get_running_loop().call_later(timeout / 1000.0, self.close)

    async def send_to_client(self, data: bytes) -> None:
        transport = self.client.transport
        if transport is None or transport.is_closing():
            raise ConnectionDone
        transport.write(data)
        await self.client.drain()

    # -- closing --

    def _transports(self) -> list[asyncio.Transport]:
        return [s.transport for s in (self.client, self.upstream) if s.transport is not None]

    def _finish(self) -> None:
        self.closed = True
        for timer in self.timers.values():
            timer.cancel()
        self.timers.clear()
        self.proxy.connections.discard(self)
        current = asyncio.current_task()
        tasks = [p.processor for p in self.pipes] + [self.connector]
        for task in tasks:
            if task is not None and task is not current and not task.done():
                task.cancel()

    def close(self) -> None:
        """Graceful close: flush what was written, then FIN both sides."""
        if self.closed:
            return
        self._finish()
        for transport in self._transports():
            transport.close()

    def abort(self) -> None:
        """Immediate close of both sides, dropping buffered data."""
        if not self.closed:
            self._finish()
        for transport in self._transports():
            transport.abort()

    def abort_unless_closed(self) -> None:
        if not self.closed:
            self.abort()

    def reset(self) -> None:
        """Close with RST (SO_LINGER 0) so the peer sees 'connection reset by peer'."""
        for transport in self._transports():
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.abort()


class Proxy:
    """A named listener forwarding to an upstream, with its toxic chains."""

    def __init__(self, name: str, listen: str, upstream: str, enabled: bool) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = enabled
        self.server: asyncio.Server | None = None
        self.connections: set[Connection] = set()
        self.chains: dict[str, tuple[tx.Toxic, ...]] = {tx.UPSTREAM: (), tx.DOWNSTREAM: ()}

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [t.as_json() for t in self.all_toxics()],
        }

    def all_toxics(self) -> list[tx.Toxic]:
        return [*self.chains[tx.UPSTREAM], *self.chains[tx.DOWNSTREAM]]

    async def start(self) -> None:
        if self.server is not None:
            return
        host, port = split_hostport(self.listen, "listen")
        host = loopback_host(host, "listen")
        try:
            loop = asyncio.get_running_loop()
            self.server = await loop.create_server(
                lambda: Connection(self).client, host, port, backlog=1024, reuse_address=True
            )
        except OSError as exc:
            raise ApiError(f"proxy {self.name}: cannot listen on {self.listen}: {exc.strerror or exc}", 500) from None
        bound = self.server.sockets[0].getsockname()
        self.listen = join_hostport(host, bound[1])
        self.enabled = True
        log.info("proxy %s listening on %s -> %s", self.name, self.listen, self.upstream)

    def stop(self) -> None:
        """Close the listener and drop every connection (what Toxiproxy does on disable)."""
        if self.server is not None:
            self.server.close()
            self.server = None
        for conn in list(self.connections):
            conn.abort()
        self.enabled = False

    # -- toxics --

    def add_toxic(self, toxic: tx.Toxic) -> None:
        if any(t.name == toxic.name for t in self.all_toxics()):
            raise ApiError(TOXIC_EXISTS, 409)
        self.chains[toxic.stream] = (*self.chains[toxic.stream], toxic)
        for conn in list(self.connections):
            conn.toxic_added(toxic)

    def remove_toxic(self, name: str) -> None:
        toxic = tx.find(self.all_toxics(), name)
        self.chains[toxic.stream] = tuple(t for t in self.chains[toxic.stream] if t is not toxic)
        for conn in list(self.connections):
            conn.toxic_removed(toxic)

    def update_toxic(self, name: str, body: Any) -> tx.Toxic:
        toxic = tx.find(self.all_toxics(), name)
        tx.apply_update(toxic, body)
        for conn in list(self.connections):
            conn.toxic_updated(toxic)
        return toxic

    def reset_toxics(self) -> None:
        for toxic in self.all_toxics():
            self.remove_toxic(toxic.name)


def _proxy_fields(body: Any, where: str = "") -> tuple[str, str, str, bool]:
    if not isinstance(body, dict):
        raise ApiError(f"{BAD_REQUEST_BODY}: expected a JSON object{where}")
    name, upstream = body.get("name"), body.get("upstream")
    listen = body.get("listen") or "127.0.0.1:0"
    enabled = body.get("enabled", True)
    if not isinstance(name, str) or not name:
        raise ApiError(f"{MISSING_FIELD}: name{where}")
    if not isinstance(upstream, str) or not upstream:
        raise ApiError(f"{MISSING_FIELD}: upstream{where}")
    if not isinstance(enabled, bool):
        raise ApiError(f"{BAD_REQUEST_BODY}: enabled must be true or false{where}")
    split_hostport(upstream, "upstream")
    loopback_host(split_hostport(listen, "listen")[0], "listen")
    return name, listen, upstream, enabled


def _same_listen(wanted: str, current: str) -> bool:
    """Port 0 asks for any port, so re-populating the same config keeps the running proxy (idempotent)."""
    if wanted == current:
        return True
    w_host, w_port = split_hostport(wanted, "listen")
    c_host, _ = split_hostport(current, "listen")
    return w_port == 0 and loopback_host(w_host, "listen") == c_host


class Registry:
    """All proxies; every mutation goes through here so the state file always matches what is active."""

    def __init__(self, state_file: Path | None = None) -> None:
        self.proxies: dict[str, Proxy] = {}
        self.lock = asyncio.Lock()
        self.state_file = state_file
        self.admin_port: int | None = None
        self.on_change: Callable[[], None] | None = None

    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ApiError(PROXY_NOT_FOUND, 404)
        return proxy

    def snapshot(self) -> dict[str, Any]:
        return {name: p.as_json() for name, p in self.proxies.items()}

    async def create(self, body: Any) -> Proxy:
        name, listen, upstream, enabled = _proxy_fields(body)
        async with self.lock:
            if name in self.proxies:
                raise ApiError(PROXY_EXISTS, 409)
            proxy = Proxy(name, listen, upstream, enabled)
            if enabled:
                await proxy.start()
            self.proxies[name] = proxy
            self.changed()
            return proxy

    async def update(self, name: str, body: Any) -> Proxy:
        if not isinstance(body, dict):
            raise ApiError(f"{BAD_REQUEST_BODY}: expected a JSON object")
        async with self.lock:
            proxy = self.get(name)
            listen = body.get("listen") or proxy.listen
            upstream = body.get("upstream") or proxy.upstream
            enabled = body.get("enabled", proxy.enabled)
            if not isinstance(enabled, bool):
                raise ApiError(f"{BAD_REQUEST_BODY}: enabled must be true or false")
            split_hostport(upstream, "upstream")
            loopback_host(split_hostport(listen, "listen")[0], "listen")
            if listen != proxy.listen or upstream != proxy.upstream:
                proxy.stop()
                proxy.listen, proxy.upstream = listen, upstream
            try:
                if enabled:
                    await proxy.start()
                else:
                    proxy.stop()
            finally:
                self.changed()
            return proxy

    async def delete(self, name: str) -> None:
        async with self.lock:
            proxy = self.get(name)
            proxy.stop()
            proxy.reset_toxics()
            del self.proxies[name]
            self.changed()

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic (Toxiproxy's POST /reset)."""
        failures = []
        async with self.lock:
            try:
                for proxy in self.proxies.values():
                    proxy.reset_toxics()
                    try:
                        await proxy.start()
                    except ApiError as exc:  # keep resetting the others; report every failure at the end
                        failures.append(exc.message)
            finally:
                self.changed()
        if failures:
            raise ApiError("; ".join(failures), 500)

    async def populate(self, body: Any) -> list[Proxy]:
        """Create or replace a list of proxies; validated as a whole before anything changes."""
        if isinstance(body, dict) and isinstance(body.get("proxies"), list):
            body = body["proxies"]
        if not isinstance(body, list):
            raise ApiError(f"{BAD_REQUEST_BODY}: expected a JSON list of proxies")
        wanted = [_proxy_fields(item, f" (proxy {i + 1})") for i, item in enumerate(body)]
        names = [w[0] for w in wanted]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ApiError(f"{BAD_REQUEST_BODY}: duplicate proxy name(s) {duplicates}")
        result = []
        async with self.lock:
            try:
                for name, listen, upstream, enabled in wanted:
                    existing = self.proxies.get(name)
                    if existing is not None and existing.upstream == upstream and _same_listen(listen, existing.listen):
                        proxy = existing
                    else:
                        if existing is not None:
                            existing.stop()
                            existing.reset_toxics()
                            del self.proxies[name]
                        proxy = Proxy(name, listen, upstream, enabled)
                        self.proxies[name] = proxy
                    if enabled:
                        await proxy.start()
                    else:
                        proxy.stop()
                    result.append(proxy)
            finally:
                self.changed()
        return result

    async def add_toxic(self, name: str, body: Any) -> tx.Toxic:
        toxic = tx.parse_toxic(body)
        async with self.lock:
            self.get(name).add_toxic(toxic)
            self.changed()
        log.info(
            "proxy %s: toxic %s added (%s %s, toxicity %s, %s)",
            name,
            toxic.name,
            toxic.type,
            toxic.stream,
            toxic.toxicity,
            toxic.attributes,
        )
        return toxic

    async def update_toxic(self, name: str, toxic_name: str, body: Any) -> tx.Toxic:
        async with self.lock:
            toxic = self.get(name).update_toxic(toxic_name, body)
            self.changed()
            return toxic

    async def remove_toxic(self, name: str, toxic_name: str) -> None:
        async with self.lock:
            self.get(name).remove_toxic(toxic_name)
            self.changed()
        log.info("proxy %s: toxic %s removed", name, toxic_name)

    async def shutdown(self) -> None:
        async with self.lock:
            for proxy in self.proxies.values():
                proxy.stop()
            self.write_state(running=False)

    def changed(self) -> None:
        self.write_state(running=True)
        if self.on_change is not None:
            self.on_change()

    def write_state(self, running: bool) -> None:
        """Record proxies and active toxics (atomic rename) so a later run can tell what was left active."""
        if self.state_file is None:
            return
        record = {
            "pid": os.getpid(),
            "admin_port": self.admin_port,
            "running": running,
            "updated_at": time.time(),
            "proxies": self.snapshot(),
        }
        try:
            write_json_atomic(self.state_file, record)
        except OSError as exc:
            log.error("cannot write state file %s: %s", self.state_file, exc)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON next to the target and rename it over, so readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
