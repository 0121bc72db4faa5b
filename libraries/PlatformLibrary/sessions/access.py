"""Shared or exclusive use of the platform, so disruptive tests do not run beside others under pabot.

A test that breaks the platform on purpose (cuts DynamoDB, fills every slot) takes the platform
exclusively; ordinary tests take it shared. The lock is an ``flock`` pair (a turnstile, so a waiting
exclusive test is not starved, and the read-write lock itself) in the temp folder, keyed by the
state folder: it coordinates every process on this machine and is released if a process dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from robot.api.deco import keyword

from ..aws.safety import check_chaos_allowed
from ..core.base import LibraryComponent, LibraryContext
from ..core.profile import format_seconds

MODES = {"shared": fcntl.LOCK_SH, "exclusive": fcntl.LOCK_EX}


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
        if mode not in MODES:
            raise ValueError(f"Platform access mode must be 'shared' or 'exclusive', got {mode!r}.")
        if self._fd is not None:
            raise RuntimeError(f"Platform access is already held ({self.mode}); release it first.")
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
    def lock(self) -> PlatformAccessLock:
        if self._lock is None:
            self._lock = PlatformAccessLock(self.profile.text("PLATFORM_STATE_DIR", "aws"))
        return self._lock

    @keyword(tags=["coordination"])
    def acquire_platform_access(self, mode: str = "shared", timeout: timedelta | None = None) -> float:
        """Waits for ``shared`` or ``exclusive`` use of the platform and returns how long that took.

        Tests that disrupt the whole platform take it ``exclusive``; they then run alone, while ordinary
        tests run side by side. Released by `Release Platform Access` or automatically when the test ends.
        The deadline is ``timeout`` or ``${PLATFORM_LOCK_TIMEOUT}``.

        On AWS the platform is a shared deployment that other people use: taking it ``exclusive`` (to fill it, load
        it or reconfigure it) is refused, and the test skipped with the reason, unless the profile allows chaos
        (``CHAOS_ALLOWED``, the production guard). The lock itself is a file on this machine: two runners against
        one deployment do not see each other's locks (docs/aws.md).
        """
        if mode.lower() == "exclusive" and not self.profile.is_embedded:
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
