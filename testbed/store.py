"""Session records in DynamoDB, through boto3 with botocore's standard retry mode, as on AWS.

Every state transition is a conditional write on the record's ``version``: two actors racing never lose an update;
the loser re-reads and decides again.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from testbed import clock
from testbed.config import Settings

_SER = TypeSerializer()
_DESER = TypeDeserializer()
LIVE_STATES = frozenset({"PENDING", "STARTING", "RUNNING", "RESTARTING"})


class StoreUnavailable(RuntimeError):
    """DynamoDB could not be reached or kept failing after botocore's retries."""


class StoreOverloaded(StoreUnavailable):
    """Not a DynamoDB failure: the platform has more session-store calls in hand than the store serves in time.

    Raised when a request finds every store slot busy for longer than ``store_queue_timeout``, or when a call
    timed out while the store kept answering other calls (it is busy, not down). The API answers it with 429
    ``overloaded`` and ``Retry-After``; it never counts towards the circuit breaker. A subclass of
    :class:`StoreUnavailable` so that background work (runtime, reaper) treats it as "not now" like any other
    store trouble.
    """


class Conflict(RuntimeError):
    """A conditional write lost a race (or the record is gone)."""


def _to_item(record: dict[str, Any]) -> dict[str, Any]:
    return {k: _SER.serialize(_plain_to_ddb(v)) for k, v in record.items()}


def _plain_to_ddb(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, raw in item.items():
        value = _DESER.deserialize(raw)
        if isinstance(value, Decimal):
            value = int(value) if value == int(value) else float(value)
        out[key] = value
    return out


class CircuitBreaker:
    """Fail fast while DynamoDB is down: after ``threshold`` failed calls in a row the circuit opens for
    ``cooldown`` seconds and calls fail at once; the first call after that is the trial that closes it again.

    Only failures count (see :meth:`SessionStore._call`): a store that is slow because it is busy does not open it.
    """

    def __init__(self, threshold: int, cooldown: float) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.failures = 0
        self.open_until = 0.0
        self.opened = 0  # how many times it opened, for the record
        self.lock = threading.Lock()

    def state(self) -> str:
        if self.failures < self.threshold:
            return "closed"
        return "open" if time.monotonic() < self.open_until else "half-open"

    def before(self) -> None:
        with self.lock:
            if self.failures >= self.threshold and time.monotonic() < self.open_until:
                left = self.open_until - time.monotonic()
                raise StoreUnavailable(
                    f"circuit open after {self.failures} failed DynamoDB calls; failing fast for {left:.1f} s more"
                )

    def succeeded(self) -> None:
        with self.lock:
            self.failures = 0

    def failed(self) -> None:
        with self.lock:
            self.failures += 1
            if self.failures >= self.threshold:
                if time.monotonic() >= self.open_until:
                    self.opened += 1
                self.open_until = time.monotonic() + self.cooldown


class Bulkhead:
    """At most ``limit`` DynamoDB calls in flight at once (0: no limit).

    moto serves one request at a time and DynamoDB's answers take as long as the queue in front of them: letting
    every API thread call at once only lengthens that queue until calls wait out the read timeout. Calls beyond
    the limit wait for a slot; a call made for an API request waits at most ``queue_timeout`` and is then refused
    as overload (:class:`StoreOverloaded`); the platform's own background calls wait their turn.
    """

    def __init__(self, limit: int, queue_timeout: float) -> None:
        self.limit = limit
        self.queue_timeout = queue_timeout
        self.slots = threading.BoundedSemaphore(limit) if limit > 0 else None
        self.local = threading.local()

    @contextlib.contextmanager
    def requests(self) -> Iterator[None]:
        """Calls made by this thread inside the block serve an API request: they are shed when they wait too long."""
        before = getattr(self.local, "request", False)
        self.local.request = True
        try:
            yield
        finally:
            self.local.request = before

    def acquire(self) -> None:
        if self.slots is None:
            return
        if not getattr(self.local, "request", False):
            self.slots.acquire()
            return
        if not self.slots.acquire(timeout=self.queue_timeout):
            raise StoreOverloaded(f"all {self.limit} session-store slots stayed busy for {self.queue_timeout:g} s")

    def release(self) -> None:
        if self.slots is not None:
            self.slots.release()


class SessionStore:
    """The sessions table: keyed by sessionId, index on userId, TTL attribute ``expiresAt``."""

    def __init__(self, endpoint_url: str | None, settings: Settings) -> None:
        self.settings = settings
        self.table = settings.table_name
        attempts = 1 if settings.has("no-throttle-retry") else settings.store_max_attempts
        self.blind_writes = settings.has("lost-update")
        self.frozen_updated_at = settings.has("updated-at-frozen")  # the defect: transitions keep the old stamp
        self.breaker = (
            None
            if settings.has("no-circuit-breaker")
            else CircuitBreaker(settings.breaker_threshold, settings.breaker_cooldown)
        )
        self.bulkhead = Bulkhead(settings.store_max_concurrency, settings.store_queue_timeout)
        # The defect store-no-timeout: no timeouts of the platform's own, so botocore's defaults (60 s each) apply.
        timeouts = (settings.store_connect_timeout, settings.store_read_timeout)
        if settings.has("store-no-timeout"):
            timeouts = (60.0, 60.0)
        self.last_answer = 0.0  # monotonic time of DynamoDB's last answer that was not a failure
        self.client = boto3.client(
            "dynamodb",
            endpoint_url=endpoint_url,
            region_name=settings.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(
                retries={"mode": "standard", "total_max_attempts": attempts},
                connect_timeout=timeouts[0],
                read_timeout=timeouts[1],
                max_pool_connections=64,
            ),
        )

    def _call(self, operation: Callable[..., dict[str, Any]], admit: bool = True, **kwargs: Any) -> dict[str, Any]:
        """One DynamoDB call through the circuit breaker and (unless ``admit`` is false) the bulkhead.

        What counts as a failure for the breaker: a 5xx answer, throttling that outlasted botocore's retries, a
        connection that could not be made, or a call that got no answer in time *while DynamoDB answered no other
        call either*. A call that times out while other calls are being answered met a busy store, not a broken
        one: it is overload (:class:`StoreOverloaded`), like a call refused for want of a slot, and leaves the
        breaker as it is.
        """
        if self.breaker:
            self.breaker.before()
        if admit:
            self.bulkhead.acquire()
        started = time.monotonic()
        try:
            result = operation(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                self.last_answer = time.monotonic()
                if self.breaker:
                    self.breaker.succeeded()
                raise Conflict(str(exc)) from exc
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if status >= 500 or "Throttl" in code or "Throughput" in code or "LimitExceeded" in code:
                if self.breaker:
                    self.breaker.failed()
                raise StoreUnavailable(f"DynamoDB {code or status}: {exc}") from exc
            self.last_answer = time.monotonic()  # a 4xx such as a validation error is still an answer
            raise
        except (ReadTimeoutError, ConnectTimeoutError) as exc:
            if self.last_answer > started:
                raise StoreOverloaded(f"DynamoDB answered other calls but not this one in time ({exc})") from exc
            if self.breaker:
                self.breaker.failed()
            raise StoreUnavailable(f"DynamoDB unreachable: {exc}") from exc
        except BotoCoreError as exc:
            if self.breaker:
                self.breaker.failed()
            raise StoreUnavailable(f"DynamoDB unreachable: {exc}") from exc
        finally:
            if admit:
                self.bulkhead.release()
        self.last_answer = time.monotonic()
        if self.breaker:
            self.breaker.succeeded()
        return result

    def ensure_table(self, deadline_s: float = 10.0) -> None:
        """Create the table, its userId index and TTL, waiting for DynamoDB to answer first."""
        end = time.monotonic() + deadline_s
        while True:
            try:
                self._call(self.client.list_tables)
                break
            except StoreUnavailable:
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)
        try:
            self._call(
                self.client.create_table,
                TableName=self.table,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[
                    {"AttributeName": "sessionId", "AttributeType": "S"},
                    {"AttributeName": "userId", "AttributeType": "S"},
                ],
                KeySchema=[{"AttributeName": "sessionId", "KeyType": "HASH"}],
                GlobalSecondaryIndexes=[
                    {
                        "IndexName": "userId-index",
                        "KeySchema": [{"AttributeName": "userId", "KeyType": "HASH"}],
                        "Projection": {"ProjectionType": "ALL"},
                    }
                ],
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceInUseException":
                raise
        self._call(
            self.client.update_time_to_live,
            TableName=self.table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"},
        )

    def ping(self) -> None:
        """The health check's call: it bypasses the bulkhead (the service runs at most one at a time)."""
        self._call(self.client.describe_table, admit=False, TableName=self.table)

    def put_new(self, record: dict[str, Any]) -> None:
        self._call(
            self.client.put_item,
            TableName=self.table,
            Item=_to_item(record),
            ConditionExpression="attribute_not_exists(sessionId)",
        )

    def get(self, session_id: str) -> dict[str, Any] | None:
        out = self._call(
            self.client.get_item,
            TableName=self.table,
            Key={"sessionId": {"S": session_id}},
            ConsistentRead=True,
        )
        return _from_item(out["Item"]) if "Item" in out else None

    def by_user(self, user_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "userId-index",
            "KeyConditionExpression": "userId = :u",
            "ExpressionAttributeValues": {":u": {"S": user_id}},
        }
        while True:
            out = self._call(self.client.query, **kwargs)
            items.extend(_from_item(i) for i in out.get("Items", []))
            if "LastEvaluatedKey" not in out:
                return items
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def scan(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True}
        while True:
            out = self._call(self.client.scan, **kwargs)
            items.extend(_from_item(i) for i in out.get("Items", []))
            if "LastEvaluatedKey" not in out:
                return items
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def update(self, record: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
        """Apply ``changes`` if the stored version still equals ``record['version']``; return the new record."""
        stamp = record.get("updatedAt", clock.now()) if self.frozen_updated_at else clock.now()
        changes = {**changes, "updatedAt": stamp, "version": int(record["version"]) + 1}
        names = {f"#f{i}": k for i, k in enumerate(changes)}
        values = {f":v{i}": _SER.serialize(_plain_to_ddb(v)) for i, v in enumerate(changes.values())}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"sessionId": {"S": record["sessionId"]}},
            "UpdateExpression": "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(changes))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW",
        }
        if self.blind_writes:
            kwargs["ConditionExpression"] = "attribute_exists(sessionId)"
        else:
            names["#ver"] = "version"
            values[":expected"] = {"N": str(int(record["version"]))}
            kwargs["ConditionExpression"] = "#ver = :expected"
        return _from_item(self._call(self.client.update_item, **kwargs)["Attributes"])

    def transition(
        self,
        session_id: str,
        allowed_from: Iterable[str],
        changes: dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]],
        attempts: int = 8,
    ) -> dict[str, Any] | None:
        """Move a session on only from the given states; re-read and retry when another writer won the race.

        ``changes`` may be a function of the current record (for counters). Returns the new record, or None when
        the session is gone or in a state the transition does not start from.
        """
        allowed = frozenset(allowed_from)
        for attempt in range(attempts):
            current = self.get(session_id)
            if current is None or current.get("status") not in allowed:
                return None
            wanted = changes(current) if callable(changes) else changes
            try:
                return self.update(current, wanted)
            except Conflict:
                time.sleep(random.uniform(0, 0.005 * (attempt + 1)))
        raise Conflict(f"session {session_id}: gave up after {attempts} racing writes")

    def touch(self, session_id: str, last_activity: float) -> None:
        """Record activity without touching state or version (it never conflicts with a transition)."""
        try:
            self._call(
                self.client.update_item,
                TableName=self.table,
                Key={"sessionId": {"S": session_id}},
                UpdateExpression="SET lastActivityAt = :t",
                ConditionExpression="attribute_exists(sessionId) AND (attribute_not_exists(lastActivityAt) "
                "OR lastActivityAt < :t)",
                ExpressionAttributeValues={":t": {"N": repr(last_activity)}},
            )
        except Conflict:
            return

    def delete(self, session_id: str) -> None:
        self._call(self.client.delete_item, TableName=self.table, Key={"sessionId": {"S": session_id}})

    def delete_if_status(self, session_id: str, status: str) -> bool:
        """Delete the record only while it has ``status``; False when it is gone or has moved on."""
        try:
            self._call(
                self.client.delete_item,
                TableName=self.table,
                Key={"sessionId": {"S": session_id}},
                ConditionExpression="#s = :s",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":s": {"S": status}},
            )
        except Conflict:
            return False
        return True
