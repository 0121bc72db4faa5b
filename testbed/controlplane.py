"""The container control plane (the ECS API: RunTask, StopTask, UpdateService), switchable off through a file.

The runtime asks :class:`ControlPlane` before each call a real platform would make to ECS: starting a task (a cold
start, a replacement after a crash, a warm-pool agent; the image pull comes with it), stopping one, changing the
service's desired count (scaling). A fault injector writes a word into the control-plane file
(``<state>/control-plane``, ``CONTROL_PLANE_FILE`` in ``endpoints.json``); while the file holds one, every such call
fails. Two ways, as ECS fails a caller:

- an ECS error code (``ServiceUnavailable``, ``ThrottlingException``): ECS answers, with that error, at once, as during
  an outage of its API (`Make Container Control Plane Unavailable`);
- ``Unreachable``: the platform cannot reach ECS at all (its packets to the endpoint are dropped, as FIS
  ``aws:ecs:task-network-packet-loss`` with ``sources`` naming the ECS endpoint does on AWS): every call fails only
  after the ECS client's connect timeout (``ecs_connect_timeout``), with no ECS error code (botocore's
  ``ConnectTimeoutError``), and the caller's thread waits that long.

Containers already running are not touched either way: ECS going away does not stop tasks. An absent or empty file
means the control plane answers.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

# The ECS API's common errors a caller retries (docs.aws.amazon.com/AmazonECS/latest/APIReference/CommonErrors.html)
ERRORS = {
    "ServiceUnavailable": "The request has failed due to a temporary failure of the server.",
    "ThrottlingException": "Rate exceeded.",
}
DEFAULT_ERROR = "ServiceUnavailable"
# The word that cuts the platform off ECS: no answer at all, the calls time out connecting.
UNREACHABLE = "Unreachable"


def ecs_endpoint_name(region: str) -> str:
    """The domain of ECS's Regional endpoint (AWS General Reference, "Amazon ECS endpoints and quotas")."""
    return f"ecs.{region}.amazonaws.com"


class ControlPlaneUnavailable(RuntimeError):
    """A control-plane call failed because ECS is unavailable (its API answered an error, or could not be reached)."""

    def __init__(self, operation: str, code: str, message: str | None = None) -> None:
        super().__init__(
            message or f"container control plane unavailable: ECS {operation} failed with {code}: {ERRORS[code]}"
        )
        self.operation, self.code = operation, code


class ControlPlaneUnreachable(ControlPlaneUnavailable):
    """A control-plane call got no answer: the connection to the ECS endpoint timed out (no ECS error code)."""

    def __init__(self, operation: str, endpoint: str, timeout: float) -> None:
        super().__init__(
            operation,
            UNREACHABLE,
            f"container control plane unavailable: ECS {operation} failed: Connect timeout on endpoint URL: "
            f'"https://{endpoint}/" (no answer within {timeout:g} s)',
        )


class ControlPlane:
    """Reads the control-plane file (cached by its identity, so a check costs one ``stat``).

    ``connect_timeout`` is how long a call waits before it fails while ECS is unreachable; ``endpoint`` the ECS
    endpoint the platform calls (named in that failure)."""

    def __init__(
        self, path: Path, connect_timeout: float = 1.0, endpoint: str = ecs_endpoint_name("us-east-1")
    ) -> None:
        self.path = path
        self.connect_timeout = connect_timeout
        self.endpoint = endpoint
        self._lock = threading.Lock()
        self._cache: tuple[tuple[int, int, int], str | None] = ((-1, -1, -1), None)

    def error(self) -> str | None:
        """How ECS fails right now: an error code (``ServiceUnavailable`` for any unknown word), ``Unreachable``, or
        ``None`` when it answers."""
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if key != self._cache[0]:
                try:
                    word = self.path.read_text().strip()
                except OSError:
                    word = ""
                code = (word if word in (*ERRORS, UNREACHABLE) else DEFAULT_ERROR) if word else None
                self._cache = (key, code)
            return self._cache[1]

    def available(self) -> bool:
        return self.error() is None

    def check(self, operation: str) -> None:
        """Raise :class:`ControlPlaneUnavailable` for ``operation`` (``RunTask`` ...) while the plane is down; while it
        is unreachable, only after ``connect_timeout`` (:class:`ControlPlaneUnreachable`)."""
        code = self.error()
        if code == UNREACHABLE:
            time.sleep(self.connect_timeout)  # the connection attempt, whose packets get no answer
            raise ControlPlaneUnreachable(operation, self.endpoint, self.connect_timeout)
        if code is not None:
            raise ControlPlaneUnavailable(operation, code)
