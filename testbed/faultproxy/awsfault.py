"""The ``aws_fault`` toxic: answer selected AWS JSON-protocol requests with forged errors.

Toxiproxy works below HTTP, so it cannot make DynamoDB throttle one operation. This toxic follows the HTTP/1.1
requests on the client->server stream (keep-alive, Content-Length bodies), matches them on ``X-Amz-Target``
and either forwards them untouched, delays them, drops the connection, or answers in place of the server with
the exact error shape DynamoDB uses so that botocore classifies and retries it like the real thing.
It streams bodies through instead of buffering them, so only request heads are held in memory.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import uuid
import zlib
from dataclasses import dataclass, field
from email.utils import formatdate

from .errors import ConnectionDone
from .toxics import ConnContext, Emit, Toxic, ToxicState, register

MAX_HEAD = 64 * 1024
_REQUEST_START = re.compile(rb"^[A-Z]{1,16}(?: |$)")

# action -> (status, __type, default message); shapes as DynamoDB sends them.
ERRORS: dict[str, tuple[int, str, str]] = {
    "throttle": (
        400,
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API.",
    ),
    "throttling": (
        400,
        "com.amazon.coral.availability#ThrottlingException",
        "Rate of requests exceeds the allowed throughput.",
    ),
    "error500": (500, "com.amazonaws.dynamodb.v20120810#InternalServerError", "Internal server error"),
    "error503": (503, "com.amazonaws.dynamodb.v20120810#ServiceUnavailable", "Service unavailable"),
}
_REASONS = {400: "Bad Request", 500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass
class Request:
    """What the toxic needs to know about one request head."""

    target: str | None
    content_length: int
    chunked: bool
    close: bool
    expect_continue: bool


@dataclass
class HttpState:
    """Parser position on one connection's request stream."""

    mode: str = "head"  # head | body | passthrough
    buf: bytearray = field(default_factory=bytearray)
    remaining: int = 0
    forward_body: bool = True
    response: bytes | None = None
    close_after: bool = False
    retired: bool = False  # toxic removed: finish the current request, decide nothing new

    def mid_request(self) -> bool:
        return self.mode == "body" or (self.mode == "head" and bool(self.buf))


def parse_head(head: bytes) -> Request | None:
    """Parse a request head; ``None`` when it is not HTTP/1.x (the stream is then passed through untouched)."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        return None
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            return None
        headers[name.strip().lower()] = value.strip()
    try:
        length = int(headers.get(b"content-length", b"0"))
    except ValueError:
        return None
    connection = headers.get(b"connection", b"").lower()
    http10 = parts[2] == b"HTTP/1.0"
    target = headers.get(b"x-amz-target")
    return Request(
        target=target.decode("latin-1") if target is not None else None,
        content_length=max(0, length),
        chunked=b"chunked" in headers.get(b"transfer-encoding", b"").lower(),
        close=b"close" in connection or (http10 and b"keep-alive" not in connection),
        expect_continue=b"100-continue" in headers.get(b"expect", b"").lower(),
    )


def matches(pattern: str, target: str | None) -> bool:
    """Empty pattern matches every request; ``Prefix*`` matches by prefix; otherwise exact."""
    if not pattern:
        return True
    if target is None:
        return False
    if pattern.endswith("*"):
        return target.startswith(pattern[:-1])
    return target == pattern


def decide(toxic: Toxic, request: Request) -> bool:
    """Whether this request gets the fault; counts the hit (``count`` caps hits, 0 = unlimited)."""
    attrs = toxic.attributes
    if not matches(attrs["target"], request.target):
        return False
    if attrs["count"] and attrs["hits"] >= attrs["count"]:
        return False
    if attrs["probability"] < 1.0 and random.random() >= attrs["probability"]:
        return False
    attrs["hits"] += 1
    return True


def error_response(action: str, message: str = "", close: bool = False) -> bytes:
    """An HTTP/1.1 error answer shaped like DynamoDB's (JSON 1.0 body, request id, CRC32 header)."""
    status, error_type, default_message = ERRORS[action]
    body = json.dumps({"__type": error_type, "message": message or default_message}).encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
        f"Server: Server\r\n"
        f"Date: {formatdate(usegmt=True)}\r\n"
        f"Content-Type: application/x-amz-json-1.0\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Connection: {'close' if close else 'keep-alive'}\r\n"
        f"x-amzn-RequestId: {uuid.uuid4().hex.upper()}\r\n"
        f"x-amz-crc32: {zlib.crc32(body)}\r\n"
        f"X-Faultproxy-Injected: {action}\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + body


async def _answer(ctx: ConnContext, hs: HttpState, out: bytearray, emit: Emit) -> None:
    """Send the forged answer once the faulted request's body has been consumed."""
    if out:
        await emit(bytes(out))
        out.clear()
    response, hs.response = hs.response, None
    if response is not None:
        await ctx.send_to_client(response)
    if hs.close_after:
        ctx.close()
        raise ConnectionDone


@register("aws_fault")
async def _aws_fault(toxic: Toxic, ctx: ConnContext, st: ToxicState, ts: float, data: bytes, emit: Emit) -> None:
    await process_aws_fault(toxic, ctx, st, data, emit)


async def process_aws_fault(toxic: Toxic, ctx: ConnContext, st: ToxicState, data: bytes, emit: Emit) -> None:
    """Feed one chunk of the request stream through the parser and act on each complete request head."""
    if st.http is None:
        st.http = HttpState()
    hs: HttpState = st.http
    if hs.mode == "passthrough":
        await emit(data)
        return
    hs.buf += data
    out = bytearray()  # bytes to forward, batched per chunk to keep writes large
    while hs.buf:
        if hs.mode == "passthrough":
            out += hs.buf
            hs.buf.clear()
            break
        if hs.mode == "body":
            n = min(hs.remaining, len(hs.buf))
            if hs.forward_body:
                out += hs.buf[:n]
            del hs.buf[:n]
            hs.remaining -= n
            if hs.remaining == 0:
                hs.mode = "head"
                await _answer(ctx, hs, out, emit)
            continue
        end = hs.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(hs.buf) > MAX_HEAD or not _REQUEST_START.match(bytes(hs.buf[:17])):
                hs.mode = "passthrough"
                continue
            break
        head = bytes(hs.buf[: end + 4])
        del hs.buf[: end + 4]
        request = parse_head(head)
        if request is None:
            out += head
            hs.mode = "passthrough"
            continue
        action = toxic.attributes["action"]
        faulted = not hs.retired and decide(toxic, request)
        if faulted and action == "drop":
            if out:
                await emit(bytes(out))
            ctx.close()
            raise ConnectionDone
        if faulted and action == "latency":
            if out:
                await emit(bytes(out))
                out.clear()
            await asyncio.sleep(toxic.attributes["latency"] / 1000.0)
        if not faulted or action == "latency":
            out += head
            if request.chunked:
                hs.mode = "passthrough"  # cannot follow chunked bodies; leave the rest of the stream alone
            elif request.content_length:
                hs.mode, hs.remaining, hs.forward_body = "body", request.content_length, True
            continue
        # An error answer in place of the server. The body is swallowed so the next request parses cleanly;
        # when its length cannot be known (chunked, or a client waiting for 100-continue) answer and close.
        unknown_body = request.chunked or (request.expect_continue and request.content_length > 0)
        hs.close_after = request.close or unknown_body
        hs.response = error_response(action, toxic.attributes.get("message", ""), close=hs.close_after)
        if request.content_length and not unknown_body:
            hs.mode, hs.remaining, hs.forward_body = "body", request.content_length, False
        else:
            await _answer(ctx, hs, out, emit)
    if out:
        await emit(bytes(out))
