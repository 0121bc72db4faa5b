"""Toxic definitions: their JSON model (Toxiproxy-compatible), validation and per-chunk behaviour.

A toxic is shared by every connection of its proxy; what one connection needs to remember about it (whether
the toxicity roll made it active, bytes counted so far, a parser state) lives in a ``ToxicState`` owned by the
connection. Behaviour functions are coroutines ``(toxic, ctx, state, ts, data, emit)`` that pass data on
to the next stage with ``emit`` (possibly split, delayed or never), so toxics chain in the order they were
added, exactly like Toxiproxy's toxic chain.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import (
    BAD_REQUEST_BODY,
    INVALID_STREAM,
    INVALID_TOXIC_TYPE,
    TOXIC_NOT_FOUND,
    ApiError,
    ConnectionDone,
)

UPSTREAM = "upstream"
DOWNSTREAM = "downstream"
STREAMS = (UPSTREAM, DOWNSTREAM)

Emit = Callable[[bytes], Awaitable[None]]

_uids = itertools.count(1)

# Integer attributes of the standard Toxiproxy toxics with their defaults (Toxiproxy's zero values).
INT_ATTRIBUTES: dict[str, dict[str, int]] = {
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 0},
    "slow_close": {"delay": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},
    "limit_data": {"bytes": 0},
    # Not a Toxiproxy toxic: at most ``max`` connections through the hop at once; a new one beyond is reset.
    "limit_connections": {"max": 0},
}

AWS_ACTIONS = ("throttle", "throttling", "error500", "error503", "latency", "drop")
AWS_DEFAULTS: dict[str, Any] = {
    "target": "",
    "action": "throttle",
    "probability": 1.0,
    "count": 0,
    "latency": 0,
    "message": "",
    "hits": 0,
}
TOXIC_TYPES = (*INT_ATTRIBUTES, "aws_fault")


class ConnContext(Protocol):
    """What a toxic may do to the connection it runs on (implemented by ``proxy.Connection``)."""

    def close(self) -> None: ...

    def reset(self) -> None: ...

    def arm_timeout(self, toxic: Toxic) -> None: ...

    async def send_to_client(self, data: bytes) -> None: ...


@dataclass
class ToxicState:
    """Per-connection memory about one toxic; ``active`` is the toxicity roll made once per connection."""

    active: bool
    count: int = 0
    http: Any = None
    next_send: float = 0.0


@dataclass
class Toxic:
    """One toxic as the API shows it; ``uid`` changes on update so connections re-roll their state."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any]
    uid: int = field(default_factory=lambda: next(_uids))
    # How often the toxic acted: chunks it handled on connections where it is active, connections it refused.
    # Not in Toxiproxy's API; it is how a test proves that its fault fired at all.
    hits: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "hits": self.hits,
        }

    def new_state(self) -> ToxicState:
        return ToxicState(active=self.toxicity >= 1.0 or random.random() < self.toxicity)


def _as_int(toxic_type: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ApiError(f"{BAD_REQUEST_BODY}: attribute {key!r} of {toxic_type} must be an integer, got {value!r}")
    if value < 0:
        raise ApiError(f"{BAD_REQUEST_BODY}: attribute {key!r} of {toxic_type} must not be negative")
    return int(value)


def _toxicity(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ApiError(f"{BAD_REQUEST_BODY}: toxicity must be a number between 0 and 1, got {value!r}")
    return float(value)


def _validate_attributes(toxic_type: str, current: dict[str, Any], given: Any) -> dict[str, Any]:
    """Merge ``given`` over ``current`` and validate; unknown keys of standard toxics are ignored like Go does."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ApiError(f"{BAD_REQUEST_BODY}: attributes must be a JSON object")
    merged = dict(current)
    if toxic_type in INT_ATTRIBUTES:
        for key in INT_ATTRIBUTES[toxic_type]:
            if key in given:
                merged[key] = _as_int(toxic_type, key, given[key])
        if toxic_type == "slicer" and merged["average_size"] and merged["size_variation"] > merged["average_size"]:
            raise ApiError(f"{BAD_REQUEST_BODY}: slicer size_variation must not exceed average_size")
        return merged
    unknown = sorted(set(given) - set(AWS_DEFAULTS))
    if unknown:
        raise ApiError(f"{BAD_REQUEST_BODY}: unknown aws_fault attribute(s) {unknown}; known: {sorted(AWS_DEFAULTS)}")
    for key in ("target", "message"):
        if key in given:
            if not isinstance(given[key], str):
                raise ApiError(f"{BAD_REQUEST_BODY}: aws_fault attribute {key!r} must be a string")
            merged[key] = given[key]
    if "action" in given:
        if given["action"] not in AWS_ACTIONS:
            raise ApiError(f"{BAD_REQUEST_BODY}: aws_fault action must be one of {list(AWS_ACTIONS)}")
        merged["action"] = given["action"]
    if "probability" in given:
        value = given["probability"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
            raise ApiError(f"{BAD_REQUEST_BODY}: aws_fault probability must be a number between 0 and 1")
        merged["probability"] = float(value)
    for key in ("count", "latency", "hits"):
        if key in given:
            merged[key] = _as_int("aws_fault", key, given[key])
    return merged


def parse_toxic(body: Any) -> Toxic:
    """Build a toxic from a create request, applying Toxiproxy's defaults (downstream, toxicity 1)."""
    if not isinstance(body, dict):
        raise ApiError(f"{BAD_REQUEST_BODY}: expected a JSON object")
    toxic_type = body.get("type")
    stream = body.get("stream") or DOWNSTREAM
    if stream not in STREAMS:
        raise ApiError(INVALID_STREAM)
    if toxic_type not in TOXIC_TYPES:
        raise ApiError(f"{INVALID_TOXIC_TYPE}: {toxic_type!r} (known: {', '.join(TOXIC_TYPES)})")
    if toxic_type == "aws_fault" and stream != UPSTREAM:
        raise ApiError(f"{BAD_REQUEST_BODY}: aws_fault works on requests, so its stream must be upstream")
    name = body.get("name") or f"{toxic_type}_{stream}"
    if not isinstance(name, str):
        raise ApiError(f"{BAD_REQUEST_BODY}: name must be a string")
    toxicity = _toxicity(body.get("toxicity", 1.0))
    defaults = dict(INT_ATTRIBUTES.get(toxic_type, AWS_DEFAULTS))
    attributes = _validate_attributes(toxic_type, defaults, body.get("attributes"))
    return Toxic(name=name, type=toxic_type, stream=stream, toxicity=toxicity, attributes=attributes)


def apply_update(toxic: Toxic, body: Any) -> None:
    """Update attributes/toxicity in place (Toxiproxy merges over the current values); state is re-rolled."""
    if not isinstance(body, dict):
        raise ApiError(f"{BAD_REQUEST_BODY}: expected a JSON object")
    toxicity = _toxicity(body["toxicity"]) if "toxicity" in body else toxic.toxicity
    attributes = _validate_attributes(toxic.type, toxic.attributes, body.get("attributes"))
    toxic.toxicity = toxicity
    toxic.attributes = attributes
    toxic.uid = next(_uids)


def find(toxics: list[Toxic], name: str) -> Toxic:
    for toxic in toxics:
        if toxic.name == name:
            return toxic
    raise ApiError(TOXIC_NOT_FOUND, 404)


# --- behaviour -------------------------------------------------------------------------------------------


async def _latency(toxic: Toxic, ctx: ConnContext, st: ToxicState, ts: float, data: bytes, emit: Emit) -> None:
    """Delay every chunk by latency ± jitter counted from when it arrived, so chunks stay pipelined."""
    attrs = toxic.attributes
    delay = attrs["latency"] / 1000.0
    jitter = attrs["jitter"] / 1000.0
    if jitter:
        delay += random.uniform(-jitter, jitter)
    wait = ts + delay - asyncio.get_running_loop().time()
    if wait > 0:
        await asyncio.sleep(wait)
    await emit(data)


async def _bandwidth(toxic: Toxic, ctx: ConnContext, st: ToxicState, ts: float, data: bytes, emit: Emit) -> None:
    """Pace at ``rate`` KB/s (1 KB = 1000 bytes as in Toxiproxy), in slices of at most 100 ms worth of data."""
    rate = toxic.attributes["rate"]
    if rate <= 0:
        await emit(data)
        return
    loop = asyncio.get_running_loop()
    step = max(1, rate * 100)
    for start in range(0, len(data), step):
        piece = data[start : start + step]
        st.next_send = max(st.next_send, loop.time()) + len(piece) / (rate * 1000.0)
        wait = st.next_send - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        await emit(piece)


async def _slicer(toxic: Toxic, ctx: ConnContext, st: ToxicState, ts: float, data: bytes, emit: Emit) -> None:
    """Cut data into average_size ± size_variation pieces with ``delay`` microseconds between them."""
    attrs = toxic.attributes
    average, variation, delay = attrs["average_size"], attrs["size_variation"], attrs["delay"]
    if average <= 0:
        await emit(data)
        return
    start = 0
    while start < len(data):
        size = max(1, average + (random.randint(-variation, variation) if variation else 0))
        await emit(data[start : start + size])
        start += size
        if delay and start < len(data):
            await asyncio.sleep(delay / 1_000_000)


async def _timeout(toxic: Toxic, ctx: ConnContext, st: ToxicState, ts: float, data: bytes, emit: Emit) -> None:
    """Drop the data on the ground; the connection-level timer (re-armed by data, as in Toxiproxy) closes it."""
    ctx.arm_timeout(toxic)


async def _reset_peer(toxic: Toxic, ctx: ConnContext, st: ToxicState, ts: float, data: bytes, emit: Emit) -> None:
    """On the first data, wait ``timeout`` ms and then reset the connection (RST via SO_LINGER 0)."""
    timeout = toxic.attributes["timeout"]
    if timeout:
        await asyncio.sleep(timeout / 1000.0)
    ctx.reset()
    raise ConnectionDone


async def _limit_data(toxic: Toxic, ctx: ConnContext, st: ToxicState, ts: float, data: bytes, emit: Emit) -> None:
    """Let ``bytes`` bytes through on this stream, then close the connection."""
    remaining = toxic.attributes["bytes"] - st.count
    if len(data) < remaining:
        st.count += len(data)
        await emit(data)
        return
    if remaining > 0:
        st.count += remaining
        await emit(data[:remaining])
    ctx.close()
    raise ConnectionDone


Behaviour = Callable[[Toxic, ConnContext, ToxicState, float, bytes, Emit], Awaitable[None]]

# The registry of data behaviours by toxic type. A toxic defined in a module of its own (``awsfault``) registers
# itself with `register`, so this module never imports it (Toxiproxy's one-file-per-toxic layout).
BEHAVIOURS: dict[str, Behaviour] = {
    "latency": _latency,
    "bandwidth": _bandwidth,
    "slicer": _slicer,
    "timeout": _timeout,
    "reset_peer": _reset_peer,
    "limit_data": _limit_data,
}


def register(toxic_type: str) -> Callable[[Behaviour], Behaviour]:
    """Decorator: makes the function the data behaviour of ``toxic_type``."""

    def add(function: Behaviour) -> Behaviour:
        BEHAVIOURS[toxic_type] = function
        return function

    return add


async def _passthrough(toxic: Toxic, ctx: ConnContext, st: ToxicState, ts: float, data: bytes, emit: Emit) -> None:
    await emit(data)


def behaviour(toxic_type: str) -> Behaviour:
    """The data behaviour of a type (slow_close only acts on close, so its data path is a pass-through)."""
    return BEHAVIOURS.get(toxic_type, _passthrough)


async def on_eof(toxic: Toxic) -> None:
    """Work done when the stream ends, before the close is passed on (only slow_close delays it)."""
    if toxic.type == "slow_close" and toxic.attributes["delay"]:
        await asyncio.sleep(toxic.attributes["delay"] / 1000.0)
