"""The container control plane (the ECS API: RunTask, StopTask, UpdateService), switchable off through a file.

The runtime asks :class:`ControlPlane` before each call a real platform would make to ECS: starting a task (a cold
start, a replacement after a crash, a warm-pool agent; the image pull comes with it), stopping one, changing the
service's desired count (scaling). A fault injector writes an ECS error code into the control-plane file
(``<state>/control-plane``, ``CONTROL_PLANE_FILE`` in ``endpoints.json``); while the file holds one, every such call
fails with that error, as ECS answers during an outage of its API. Containers already running are not touched:
an ECS API outage does not stop tasks. An absent or empty file means the control plane answers.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

# The ECS API's common errors a caller retries (docs.aws.amazon.com/AmazonECS/latest/APIReference/CommonErrors.html)
ERRORS = {
    "ServiceUnavailable": "The request has failed due to a temporary failure of the server.",
    "ThrottlingException": "Rate exceeded.",
}
DEFAULT_ERROR = "ServiceUnavailable"


class ControlPlaneUnavailable(RuntimeError):
    """A control-plane call failed because ECS is unavailable (its API answered an error)."""

    def __init__(self, operation: str, code: str) -> None:
        super().__init__(f"container control plane unavailable: ECS {operation} failed with {code}: {ERRORS[code]}")
        self.operation, self.code = operation, code


class ControlPlane:
    """Reads the control-plane file (cached by its identity, so a check costs one ``stat``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._cache: tuple[tuple[int, int, int], str | None] = ((-1, -1, -1), None)

    def error(self) -> str | None:
        """The error ECS answers with right now (``ServiceUnavailable`` for any unknown word), ``None`` when up."""
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
                code = (word if word in ERRORS else DEFAULT_ERROR) if word else None
                self._cache = (key, code)
            return self._cache[1]

    def available(self) -> bool:
        return self.error() is None

    def check(self, operation: str) -> None:
        """Raise :class:`ControlPlaneUnavailable` for ``operation`` (``RunTask`` ...) while the plane is down."""
        code = self.error()
        if code is not None:
            raise ControlPlaneUnavailable(operation, code)
