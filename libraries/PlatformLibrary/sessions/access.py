"""Shared or exclusive use of the platform, so disruptive tests do not run beside others under pabot.

A test that breaks the platform on purpose (cuts DynamoDB, fills every slot) takes the platform
exclusively; ordinary tests take it shared. The lock is an ``flock`` pair (a turnstile, so a waiting
exclusive test is not starved, and the read-write lock itself) in the temp folder, keyed by the
state folder: it coordinates every process on this machine and is released if a process dies. Runners on
several machines against one AWS deployment share a DynamoDB lease instead (``${PLATFORM_LOCK_TABLE}``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Literal

from robot.api.deco import keyword

from ..aws.safety import check_chaos_allowed
from ..aws.session import clients_for
from ..core.base import LibraryComponent, LibraryContext
from ..core.profile import format_seconds

MODES = {"shared": fcntl.LOCK_SH, "exclusive": fcntl.LOCK_EX}


AccessMode = Literal["shared", "exclusive"]  # a choice argument: libdoc lists the values, Robot converts them


def check_acquire(mode: str, held: str | None) -> None:
    """A lock takes ``shared`` or ``exclusive`` once at a time; anything else is a mistake in the caller."""
    if mode not in MODES:
        raise ValueError(f"Platform access mode must be 'shared' or 'exclusive', got {mode!r}.")
    if held is not None:
        raise RuntimeError(f"Platform access is already held ({held}); release it first.")


class PlatformAccessLock:
    """Read-write lock across processes, built on ``flock``."""

    def __init__(self, key: str, directory: Path | None = None):
        digest = hashlib.sha1(key.encode()).hexdigest()[:12]
        self.directory = directory or Path(tempfile.gettempdir()) / "platform-library-locks"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._turnstile_path = self.directory / f"{digest}.turnstile"
        self._lock_path = self.directory / f"{digest}.rw"
        self._fd: int | None = None
        self.mode: str | None = None

    def acquire(self, mode: str, timeout: float, interval: float = 0.05) -> float:
        check_acquire(mode, self.mode)
        started = time.monotonic()
        deadline = started + timeout
        turnstile = os.open(self._turnstile_path, os.O_RDWR | os.O_CREAT, 0o666)
        lock = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            self._flock(turnstile, fcntl.LOCK_EX, deadline, interval, mode)
            try:
                self._flock(lock, MODES[mode], deadline, interval, mode)
            finally:
                fcntl.flock(turnstile, fcntl.LOCK_UN)
        except BaseException:
            os.close(lock)
            raise
        finally:
            os.close(turnstile)
        self._fd, self.mode = lock, mode
        return time.monotonic() - started

    @staticmethod
    def _flock(fd: int, operation: int, deadline: float, interval: float, mode: str) -> None:
        while True:
            try:
                fcntl.flock(fd, operation | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"Could not get {mode} use of the platform before the deadline; another test holds it."
                    ) from None
                time.sleep(interval)

    def release(self) -> bool:
        if self._fd is None:
            return False
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd, self.mode = None, None
        return True


class DynamoDbLease:
    """The same read-write lock across machines, for runners that share one deployment: items in a DynamoDB table.

    Items of ``table`` (string hash key ``lockId``): ``<key>#exclusive`` for the one exclusive holder, and
    ``<key>#shared#<owner>`` for each shared holder, each with ``owner`` and ``expiresAt`` (epoch seconds; a holder
    that died frees the platform when its lease runs out). Both sides write first and check second, with strongly
    consistent reads, so an exclusive holder and a shared one can never both believe they hold it: the exclusive
    taker writes its item (conditionally: none live) and then waits until no live shared item is left; a shared
    taker checks for a live exclusive item, writes its own, and checks again, withdrawing when one appeared. A
    waiting exclusive taker holds back new shared ones, so it is not starved.
    """

    def __init__(self, client, table: str, key: str, owner: str, lease: float):
        self.client, self.table, self.key, self.owner, self.lease = client, table, key, owner, float(lease)
        self._item: str | None = None
        self.mode: str | None = None

    # ---------------------------------------------------------------- items
    def _exclusive_id(self) -> str:
        return f"{self.key}#exclusive"

    def _shared_id(self) -> str:
        return f"{self.key}#shared#{self.owner}"

    def _put(self, lock_id: str, conditional: bool) -> bool:
        item = {
            "lockId": {"S": lock_id},
            "owner": {"S": self.owner},
            "expiresAt": {"N": str(round(time.time() + self.lease, 3))},
        }
        kwargs: dict = {"TableName": self.table, "Item": item}
        if conditional:
            kwargs["ConditionExpression"] = "attribute_not_exists(lockId) OR expiresAt < :now OR #o = :me"
            kwargs["ExpressionAttributeValues"] = {":now": {"N": str(time.time())}, ":me": {"S": self.owner}}
            kwargs["ExpressionAttributeNames"] = {"#o": "owner"}
        try:
            self.client.put_item(**kwargs)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _delete(self, lock_id: str) -> None:
        # When our lease ran out and somebody else holds the item now, it is not ours to delete.
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.delete_item(
                TableName=self.table,
                Key={"lockId": {"S": lock_id}},
                ConditionExpression="#o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":me": {"S": self.owner}},
            )

    def _live_exclusive(self) -> str | None:
        item = self.client.get_item(
            TableName=self.table, Key={"lockId": {"S": self._exclusive_id()}}, ConsistentRead=True
        ).get("Item")
        if item and float(item["expiresAt"]["N"]) > time.time() and item["owner"]["S"] != self.owner:
            return item["owner"]["S"]
        return None

    def _live_shared(self) -> list[str]:
        owners, start = [], None
        while True:
            kwargs: dict = {
                "TableName": self.table,
                "ConsistentRead": True,
                "FilterExpression": "begins_with(lockId, :p) AND expiresAt > :now",
                "ExpressionAttributeValues": {":p": {"S": f"{self.key}#shared#"}, ":now": {"N": str(time.time())}},
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            page = self.client.scan(**kwargs)
            owners += [i["owner"]["S"] for i in page.get("Items", []) if i["owner"]["S"] != self.owner]
            start = page.get("LastEvaluatedKey")
            if not start:
                return owners

    # ---------------------------------------------------------------- lock interface
    def acquire(self, mode: str, timeout: float, interval: float = 0.05) -> float:
        check_acquire(mode, self.mode)
        started = time.monotonic()
        deadline = started + timeout
        holder = ""
        while True:
            if mode == "exclusive":
                if self._put(self._exclusive_id(), conditional=True):
                    self._item = self._exclusive_id()
                    while True:  # holding the intent: wait for the shared holders to leave
                        holders = self._live_shared()
                        if not holders:
                            self.mode = mode
                            return time.monotonic() - started
                        if time.monotonic() >= deadline:
                            self._delete(self._item)
                            self._item = None
                            raise TimeoutError(
                                f"Could not get exclusive use of the deployment before the deadline; shared by "
                                f"{', '.join(holders)} (lock table {self.table})."
                            )
                        time.sleep(interval)
                holder = self._live_exclusive() or "another runner"
            else:
                holder = self._live_exclusive() or ""
                if not holder:
                    self._put(self._shared_id(), conditional=False)
                    holder = self._live_exclusive() or ""
                    if not holder:
                        self._item, self.mode = self._shared_id(), mode
                        return time.monotonic() - started
                    self._delete(self._shared_id())  # an exclusive taker came first: give way
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"Could not get {mode} use of the deployment before the deadline; {holder} holds it "
                    f"(lock table {self.table})."
                )
            time.sleep(interval)

    def release(self) -> bool:
        if self._item is None:
            return False
        try:
            self._delete(self._item)
        finally:
            self._item, self.mode = None, None
        return True


class PlatformAccessKeywords(LibraryComponent):
    """Coordination between parallel tests that share one platform."""

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, ctx: LibraryContext):
        super().__init__(ctx)
        self._lock: PlatformAccessLock | None = None

    def holds_exclusive(self) -> bool:
        """Whether this process holds the platform to itself right now (faults on the whole platform need it)."""
        return self._lock is not None and self._lock.mode == "exclusive"

    @property
    def lock(self) -> PlatformAccessLock | DynamoDbLease:
        """A file lock on this machine; on AWS with ``${PLATFORM_LOCK_TABLE}`` a DynamoDB lease every runner sees."""
        if self._lock is None:
            table = str(self.profile.get("PLATFORM_LOCK_TABLE", "") or "")
            if table and self.ctx.endpoints.local_platform_dir is None:  # a deployment other machines share
                key = f"{self.endpoint('ECS_CLUSTER')}/{self.endpoint('ECS_SERVICE')}"
                owner = f"{socket.gethostname()}:{os.getpid()}:{self.context.run_id}"
                lease = self.profile.seconds("PLATFORM_LOCK_LEASE", "30 min")
                self._lock = DynamoDbLease(clients_for(self.ctx).client("dynamodb"), table, key, owner, lease)
            else:
                self._lock = PlatformAccessLock(self.profile.text("PLATFORM_STATE_DIR", "aws"))
        return self._lock

    @keyword(tags=["coordination"])
    def acquire_platform_access(self, mode: AccessMode = "shared", timeout: timedelta | None = None) -> float:
        """Waits for ``shared`` or ``exclusive`` use of the platform and returns how long that took.

        Tests that disrupt the whole platform take it ``exclusive``; they then run alone, while ordinary
        tests run side by side. Released by `Release Platform Access` or automatically when the test ends.
        The deadline is ``timeout`` or ``${PLATFORM_LOCK_TIMEOUT}``.

        On AWS the platform is a shared deployment that other people use: taking it ``exclusive`` (to fill it, load
        it or reconfigure it) is refused, and the test skipped with the reason, unless the profile allows chaos
        (``CHAOS_ALLOWED``, the production guard). The lock itself is a file on this machine: two runners against
        one deployment do not see each other's locks (docs/aws.md).
        """
        if mode.lower() == "exclusive" and self.ctx.endpoints.local_platform_dir is None:  # a shared deployment
            check_chaos_allowed(
                self.ctx, "take the shared deployment to this test alone (load, fill or reconfigure it)"
            )
        deadline = timeout.total_seconds() if timeout is not None else self.profile.seconds("PLATFORM_LOCK_TIMEOUT")
        try:
            waited = self.lock.acquire(mode.lower(), deadline, self.profile.seconds("POLL_INTERVAL"))
        except TimeoutError as error:
            raise AssertionError(f"{error} (waited {format_seconds(deadline)})") from None
        self.info(f"Got {mode} use of the platform after {format_seconds(waited)}.")
        return waited

    @keyword(tags=["coordination"])
    def release_platform_access(self) -> None:
        """Gives the platform back to other tests; harmless when nothing is held."""
        if self._lock is not None and self._lock.release():
            self.info("Released the platform for other tests.")

    # Listener: a test never keeps the platform after it ends, whatever its teardown did.
    def end_test(self, data, result):
        if self._lock is not None:
            self._lock.release()
