"""Benchmark the fault proxy's pass-through cost: latency added per HTTP round trip, and throughput kept.

Run: ``.venv/bin/python benchmarks/faultproxy_bench.py [--requests 5000] [--concurrency 4] [--seconds 3]``

Starts (and stops, by PID) an upstream HTTP/1.1 keep-alive server and the proxy on loopback, then runs the
same client code directly and through the proxy: sequential round trips for percentiles, a few concurrent
connections for requests/s, and one bulk download for MB/s. Targets: added p50 <= 0.3 ms, >= 50% throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from hdrh.histogram import HdrHistogram

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testbed.faultproxy.client import ToxiproxyClient  # noqa: E402

REQUEST = b"GET /item HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\n\r\n"
BULK_REQUEST = b"GET /bulk HTTP/1.1\r\nHost: bench\r\n\r\n"
BODY = b'{"ok": true, "item": "' + b"x" * 200 + b'"}'
BULK_BYTES = 128 * 1024 * 1024


# --- upstream server (runs in its own process) --------------------------------------------------------------


async def _serve_upstream(ready_file: Path) -> None:
    response = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(BODY),
        BODY,
    )
    block = b"z" * (1024 * 1024)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if head.startswith(b"GET /bulk"):
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BULK_BYTES)
                    for _ in range(BULK_BYTES // len(block)):
                        writer.write(block)
                        await writer.drain()
                else:
                    writer.write(response)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=256)
    port = server.sockets[0].getsockname()[1]
    tmp = ready_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"port": port, "pid": os.getpid()}))
    os.replace(tmp, ready_file)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


# --- client ----------------------------------------------------------------------------------------------


class HttpConn:
    """Minimal keep-alive HTTP client: one request in flight, response framed by Content-Length."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.scratch = bytearray(1024 * 1024)

    def roundtrip(self, request: bytes = REQUEST) -> int:
        self.sock.sendall(request)
        buf = b""
        while (end := buf.find(b"\r\n\r\n")) < 0:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the response head")
            buf += chunk
        length = int(buf[:end].lower().split(b"content-length:")[1].split(b"\r\n")[0])
        remaining = length - (len(buf) - end - 4)
        while remaining > 0:
            got = self.sock.recv_into(self.scratch, min(remaining, len(self.scratch)))
            if not got:
                raise ConnectionError("closed mid-response")
            remaining -= got
        return length

    def close(self) -> None:
        self.sock.close()


def latency_run(direct_port: int, proxy_port: int, count: int, warmup: int) -> tuple[HdrHistogram, HdrHistogram]:
    """Alternate direct and proxied round trips so both see the same machine conditions (2-core boxes are noisy)."""
    hists = (HdrHistogram(1, 60_000_000, 3), HdrHistogram(1, 60_000_000, 3))  # microseconds
    conns = (HttpConn(direct_port), HttpConn(proxy_port))
    try:
        for _ in range(warmup):
            for conn in conns:
                conn.roundtrip()
        for _ in range(count):
            for conn, hist in zip(conns, hists, strict=True):
                start = time.perf_counter_ns()
                conn.roundtrip()
                hist.record_value(max(1, (time.perf_counter_ns() - start) // 1000))
    finally:
        for conn in conns:
            conn.close()
    return hists


def throughput_run(port: int, concurrency: int, max_requests: int, seconds: float) -> float:
    """Requests per second over ``concurrency`` connections, bounded by count and time."""
    done = [0] * concurrency
    deadline = time.perf_counter() + seconds
    per_worker = max_requests // concurrency

    def worker(i: int) -> None:
        conn = HttpConn(port)
        try:
            n = 0
            while n < per_worker and (n % 64 or time.perf_counter() < deadline):
                conn.roundtrip()
                n += 1
            done[i] = n
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.perf_counter() - start)


def bulk_run(port: int) -> float:
    conn = HttpConn(port)
    try:
        start = time.perf_counter()
        size = conn.roundtrip(BULK_REQUEST)
        return size / (time.perf_counter() - start) / 1e6
    finally:
        conn.close()


# --- process management ----------------------------------------------------------------------------------


def wait_ready(path: Path, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited early with {proc.returncode}")
        if path.exists():
            return json.loads(path.read_text())
        time.sleep(0.01)
    raise RuntimeError(f"{proc.args} not ready within {timeout}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)


def describe(hist: HdrHistogram) -> str:
    return f"p50 {hist.get_value_at_percentile(50):>6} us  p99 {hist.get_value_at_percentile(99):>6} us"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="sequential round trips per target")
    parser.add_argument("--concurrency", type=int, default=4, help="connections for the throughput run")
    parser.add_argument("--seconds", type=float, default=1.0, help="time bound of each throughput run")
    parser.add_argument("--rounds", type=int, default=3, help="throughput runs per target (median reported)")
    parser.add_argument("--no-bulk", action="store_true", help="skip the bulk downloads")
    parser.add_argument("--serve-upstream", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        asyncio.run(_serve_upstream(args.serve_upstream))
        return 0

    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="faultproxy-bench-") as tmp:
        try:
            up_ready = Path(tmp) / "upstream.json"
            procs.append(subprocess.Popen([sys.executable, __file__, "--serve-upstream", str(up_ready)]))
            upstream_port = wait_ready(up_ready, procs[-1])["port"]
            px_ready = Path(tmp) / "proxy.json"
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "testbed.faultproxy",
                        "--port",
                        "0",
                        "--ready-file",
                        str(px_ready),
                        "--log-level",
                        "WARNING",
                    ],
                    cwd=ROOT,
                )
            )
            admin_port = wait_ready(px_ready, procs[-1])["admin_port"]
            client = ToxiproxyClient(f"http://127.0.0.1:{admin_port}")
            proxy = client.create_proxy("bench", "127.0.0.1:0", f"127.0.0.1:{upstream_port}")
            proxy_port = int(proxy["listen"].rsplit(":", 1)[1])

            n, warmup = args.requests, min(500, args.requests)
            print(f"sequential round trips: {n} per target, interleaved (after {warmup} warm-up)")
            direct, proxied = latency_run(upstream_port, proxy_port, n, warmup)
            print(f"  direct   {describe(direct)}")
            print(f"  proxied  {describe(proxied)}")
            for pct in (50, 99):
                added = proxied.get_value_at_percentile(pct) - direct.get_value_at_percentile(pct)
                print(f"  added p{pct}: {added / 1000:.3f} ms")

            max_requests = max(n * 4, 1000)
            rounds = args.rounds
            print(
                f"throughput: {args.concurrency} connections, <= {max_requests} requests or {args.seconds}s "
                f"per run, {rounds} alternating rounds, medians"
            )
            runs: dict[int, list[float]] = {upstream_port: [], proxy_port: []}
            for _ in range(rounds):  # alternate targets so a noisy neighbour hits both alike
                for port in runs:
                    runs[port].append(throughput_run(port, args.concurrency, max_requests, args.seconds))
            direct_rps, proxied_rps = (statistics.median(runs[p]) for p in (upstream_port, proxy_port))
            print(f"  direct   {direct_rps:9.0f} req/s")
            print(f"  proxied  {proxied_rps:9.0f} req/s")
            print(f"  throughput ratio (requests): {proxied_rps / direct_rps:.2f}")

            if not args.no_bulk:
                bulk: dict[int, list[float]] = {upstream_port: [], proxy_port: []}
                for _ in range(rounds):
                    for port in bulk:
                        bulk[port].append(bulk_run(port))
                direct_mbs, proxied_mbs = (statistics.median(bulk[p]) for p in (upstream_port, proxy_port))
                print(
                    f"bulk download {BULK_BYTES >> 20} MB x {rounds}: direct {direct_mbs:.0f} MB/s, "
                    f"proxied {proxied_mbs:.0f} MB/s (medians)"
                )
                print(f"  throughput ratio (bytes): {proxied_mbs / direct_mbs:.2f}")
            client.close()
        finally:
            for proc in reversed(procs):
                stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
