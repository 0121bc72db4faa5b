"""A small, fast HTTP/1.1 target on 127.0.0.1 for the load benchmarks (keep-alive, fixed answer).

Run: ``python benchmarks/bench_target.py --port 0 [--stall-every 5 --stall-for 1] [--cpu 1]`` (add ``--tls-cert C
--tls-key K`` for https); it prints ``PORT <n>`` once it listens. With ``--stall-every N --stall-for S`` it stops
answering for S seconds every N seconds (a GC pause, a stuck disk), the situation in which coordinated omission
hides latency.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

BODY = b'{"status":"ok"}'
ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)


class Handler(asyncio.Protocol):
    stall_every = 0.0
    stall_for = 0.0
    started = time.monotonic()

    def connection_made(self, transport):
        self.transport = transport
        self.buf = b""
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data):
        self.buf += data
        count = 0
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = self.buf[:end].lower()
            length = 0
            at = head.find(b"content-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at)
                length = int(head[at + 15 : stop if stop > 0 else None])
            if len(self.buf) < end + 4 + length:
                break
            self.buf = self.buf[end + 4 + length :]
            count += 1
        if not count:
            return
        delay = self.stall_left()
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self.transport.write, ANSWER * count)
        else:
            self.transport.write(ANSWER * count)

    def stall_left(self) -> float:
        if not self.stall_every:
            return 0.0
        phase = (time.monotonic() - self.started) % self.stall_every
        start = self.stall_every - self.stall_for
        return self.stall_every - phase if phase >= start else 0.0


def self_signed_certificate(folder: Path) -> str:
    """A self-signed certificate for 127.0.0.1 (openssl; key beside it as key.pem); clients trust it as their CA."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return str(cert)


async def serve(port: int, tls: ssl.SSLContext | None = None) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Handler, "127.0.0.1", port, backlog=1024, ssl=tls)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--stall-every", type=float, default=0.0, help="seconds between stalls (0: never)")
    parser.add_argument("--stall-for", type=float, default=0.0, help="length of each stall in seconds")
    parser.add_argument("--cpu", type=int, default=None, help="pin the target to this CPU")
    parser.add_argument("--tls-cert", help="serve https with this PEM certificate (its key in --tls-key)")
    parser.add_argument("--tls-key", help="the certificate's private key (PEM)")
    args = parser.parse_args()
    tls = None
    if args.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    Handler.stall_every, Handler.stall_for = args.stall_every, args.stall_for
    Handler.started = time.monotonic()
    asyncio.run(serve(args.port, tls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
