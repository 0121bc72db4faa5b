"""Helpers shared by the platform's two HTTP servers (the API and the workspace agent)."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler

# How long a thread may hold the GIL while another waits (the interpreter's default is 5 ms). The servers answer
# from many threads next to CPU-bound background work (metrics, scaling); a shorter slice keeps a request from
# waiting a whole default slice behind it, which showed as the file-op p95.
SWITCH_INTERVAL_S = 0.0005


def send_with_body(handler: BaseHTTPRequestHandler, payload: bytes) -> None:
    """End the headers and send them with the body in one write: one segment through the proxy hops, not two.

    ``end_headers`` would flush the headers on their own and the body would follow as a second write; this appends
    the blank line and the body to the stdlib's own header buffer (``_headers_buffer``, stable since Python 3.3)
    and flushes once.
    """
    buffer: list[bytes] | None = getattr(handler, "_headers_buffer", None)
    if buffer is None:  # an HTTP/0.9 request has no headers to send
        if payload:
            handler.wfile.write(payload)
        return
    buffer.append(b"\r\n")
    if payload and handler.command != "HEAD":
        buffer.append(payload)
    handler.flush_headers()
