"""A busy session store is overload, not an outage.

Under three times the normal read load on a busy machine the API answered 41-48 % of requests 503
``store_unavailable``: every API thread called moto (which serves one request at a time) at once, the queue grew
past botocore's read timeout, the timeouts counted as DynamoDB failures and opened the circuit breaker.

These tests put a stub in place of the DynamoDB client that behaves like moto on a busy machine: one request at a
time, a fixed service time each, and a read timeout for a request still queued when the timeout runs out. No
racing of real load: what happens is set by the stub's queue, not by the speed of the machine.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError, ReadTimeoutError

from testbed import api
from testbed.config import Settings
from testbed.service import SessionService
from testbed.store import SessionStore, StoreOverloaded, StoreUnavailable

ITEM = {
    "sessionId": {"S": "s-1"},
    "userId": {"S": "u1"},
    "clientId": {"S": "c1"},
    "status": {"S": "RUNNING"},
    "version": {"N": "1"},
    "expiresAt": {"N": str(int(time.time()) + 3600)},
}


class SerialStore:
    """moto on a busy machine: one request at a time, ``service`` seconds each; a request that cannot start before
    ``timeout`` has passed since it was sent fails as botocore's read timeout does. ``down`` makes every request
    hang until the timeout (a black hole); ``status`` answers every request with that HTTP error."""

    def __init__(self, service: float, timeout: float) -> None:
        self.service, self.timeout = service, timeout
        self.lock = threading.Lock()
        self.down = False
        self.status = 0
        self.ping_service: float | None = None
        self.calls: dict[str, int] = {}
        self.in_flight = self.max_in_flight = 0
        self.count = threading.Lock()

    def _serve(self, name: str, result: dict[str, Any], service: float | None = None) -> dict[str, Any]:
        with self.count:
            self.calls[name] = self.calls.get(name, 0) + 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.down or not self.lock.acquire(timeout=self.timeout):
                if self.down:
                    time.sleep(self.timeout)
                raise ReadTimeoutError(endpoint_url="http://dynamodb.stub")
            try:
                time.sleep(self.service if service is None else service)
            finally:
                self.lock.release()
            if self.status:
                error = {"Code": "ServiceUnavailable", "Message": "stub"}
                meta = {"HTTPStatusCode": self.status}
                raise ClientError({"Error": error, "ResponseMetadata": meta}, name)
            return result
        finally:
            with self.count:
                self.in_flight -= 1

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._serve("get_item", {"Item": ITEM})

    def describe_table(self, **kwargs: Any) -> dict[str, Any]:
        return self._serve("describe_table", {"Table": {}}, self.ping_service)


def stub_store(service: float, timeout: float = 1.0, **settings: Any) -> tuple[SessionStore, SerialStore]:
    store = SessionStore("http://127.0.0.1:9", Settings(**settings))
    stub = SerialStore(service, timeout)
    store.client = stub  # type: ignore[assignment]
    return store, stub


def read_all(store: SessionStore, readers: int, as_requests: bool = True) -> list[str]:
    """``readers`` session reads at once, as API requests do; what each one came to."""
    start = threading.Barrier(readers)

    def read(_: int) -> str:
        start.wait()
        try:
            with store.bulkhead.requests() if as_requests else contextlib.nullcontext():
                store.get("s-1")
        except StoreOverloaded:
            return "overloaded"
        except StoreUnavailable:
            return "unavailable"
        return "ok"

    with ThreadPoolExecutor(readers) as pool:
        return list(pool.map(read, range(readers)))


def test_a_busy_store_under_a_read_burst_is_overload_not_an_outage() -> None:
    # 40 reads at once, 50 ms each, one at a time: 2 s of queue in front of a 1 s read timeout.
    store, stub = stub_store(service=0.05)
    outcomes = read_all(store, readers=40)
    assert "unavailable" not in outcomes, outcomes
    assert store.breaker is not None and store.breaker.opened == 0 and store.breaker.state() == "closed"
    assert outcomes.count("ok") >= 4, outcomes  # the slots' worth that fits in the wait
    assert "overloaded" in outcomes, outcomes  # the rest are refused at once, not left to time out
    assert stub.max_in_flight <= store.settings.store_max_concurrency
    assert store.get("s-1") is not None  # and the store serves as before


def test_a_timeout_while_the_store_answers_other_calls_does_not_count_as_a_failure() -> None:
    # No bulkhead and a queue longer than the read timeout: the calls at the back time out while the ones at the
    # front are answered. That is a busy store; only a store that answers nothing is a failing one.
    store, _ = stub_store(service=0.05, timeout=0.5, store_max_concurrency=0)
    outcomes = read_all(store, readers=30)
    assert "unavailable" not in outcomes, outcomes
    assert outcomes.count("overloaded") >= 10, outcomes
    assert store.breaker is not None and store.breaker.opened == 0


def test_background_calls_wait_for_a_slot_instead_of_being_refused() -> None:
    store, _ = stub_store(service=0.02, store_max_concurrency=2, store_queue_timeout=0.01)
    assert read_all(store, readers=10, as_requests=False) == ["ok"] * 10


def test_a_store_that_answers_nothing_still_opens_the_circuit() -> None:
    store, stub = stub_store(service=0.01, timeout=0.2)
    stub.down = True
    for _ in range(store.settings.breaker_threshold):
        with pytest.raises(StoreUnavailable) as caught:
            store.get("s-1")
        assert not isinstance(caught.value, StoreOverloaded)
    began = time.monotonic()
    with pytest.raises(StoreUnavailable, match="circuit open"):
        store.get("s-1")
    assert time.monotonic() - began < 0.1, "fails fast"


def test_a_store_that_answers_errors_still_opens_the_circuit() -> None:
    store, stub = stub_store(service=0.001)
    stub.status = 503
    for _ in range(store.settings.breaker_threshold):
        with pytest.raises(StoreUnavailable):
            store.get("s-1")
    assert store.breaker is not None and store.breaker.state() == "open"


@pytest.fixture
def busy_api(tmp_path: Path) -> Iterator[tuple[str, SerialStore]]:
    """The API in front of a busy store: reads take 50 ms, one at a time."""
    settings = Settings()
    store, stub = stub_store(service=0.05)
    service = SessionService(settings, store, None, tmp_path, "test", "http://127.0.0.1:9")  # type: ignore[arg-type]
    server = api.serve(service)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", stub
    finally:
        server.shutdown()
        server.server_close()


def test_reads_under_overload_are_answered_429_overloaded_with_retry_after(busy_api: tuple[str, SerialStore]) -> None:
    url, _ = busy_api
    start = threading.Barrier(40)

    def get(_: int) -> requests.Response:
        start.wait()
        return requests.get(f"{url}/sessions/s-1", timeout=30)

    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(get, range(40)))
    codes = sorted(a.status_code for a in answers)
    assert 503 not in codes, [a.json() for a in answers if a.status_code == 503][:3]
    assert 200 in codes and 429 in codes, codes
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.json()["error"] == "overloaded" and refused.json()["message"]
    assert int(refused.headers["Retry-After"]) >= 1
    health = requests.get(f"{url}/health", timeout=30)
    assert health.status_code == 200 and health.json()["storeCircuit"] == "closed", health.text


def test_a_burst_of_health_checks_is_one_store_check_at_a_time(busy_api: tuple[str, SerialStore]) -> None:
    url, stub = busy_api
    stub.ping_service = 0.3
    start = threading.Barrier(30)

    def health(_: int) -> int:
        start.wait()
        return requests.get(f"{url}/health", timeout=30).status_code

    with ThreadPoolExecutor(30) as pool:
        codes = list(pool.map(health, range(30)))
    assert codes == [200] * 30
    assert stub.max_in_flight == 1, f"{stub.max_in_flight} store checks at once"
