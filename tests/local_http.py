"""A local HTTP(S) server on 127.0.0.1 in a thread, for tests that need an API of their own; stopped afterwards."""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Iterator


def serve(handler: type[http.server.BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """Yields the server's base URL while it runs; shuts it down and joins its thread afterwards."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def send_json(handler: http.server.BaseHTTPRequestHandler, status: int, body: bytes) -> None:
    """Answers ``status`` with the JSON ``body`` on a keep-alive connection."""
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
