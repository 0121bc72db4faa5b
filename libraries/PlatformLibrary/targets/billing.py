"""What a session's containers are billed for: their lifetimes, from the runtime's record or watched by the suite.

ECS keeps a record of every task (``pullStartedAt`` … ``stoppedAt``, stopped tasks too), so on AWS the bill is read
afterwards (``ContainerBackend.billed_tasks``). The embedded platform keeps none: a container is a process, and an
exited process is gone. There a `ContainerWatch` polls the process table while the session lives: each container
the session has is billed from its process's create time (from the OS, not from the platform's word, on the wall
clock: ``ContainerBackend.wall_clock_start``) until the first poll that finds it gone; the exit is at most one poll
interval earlier, so the bill errs long, never short. A container counts until its *process* ends, whatever the
platform says about it: a container that the platform no longer lists as the session's but that still runs is
still billed.
"""

from __future__ import annotations

import threading
import time

from ..aws.cost import BilledTask
from .base import Container, ContainerBackend, ContainerBackendError


class ContainerWatch:
    """Polls one session's containers in a thread of its own until `stop`; `tasks` is what it saw."""

    def __init__(self, backend: ContainerBackend, session_id: str, interval: float) -> None:
        self.backend = backend
        self.session_id = session_id
        self.interval = max(0.01, float(interval))
        self.started_at = time.time()
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[Container, float | None]] = {}  # container id -> (container, first seen gone)
        self._starts: dict[str, float] = {}  # container id -> its start on the wall clock
        self._last_live: list[Container] = []
        self._error: str | None = None
        self._stopped = threading.Event()
        self.poll()  # a container alive now is known before this returns
        self._thread = threading.Thread(target=self._run, name=f"billing-watch-{session_id}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        """One look: new containers of the session, and which of those seen before have ended."""
        try:
            live = self.backend.containers_of(self.session_id)
            with self._lock:
                known = [c for c, end in self._seen.values() if end is None]
            ended = [c for c in known if not self.backend.is_alive(c)]
        except ContainerBackendError as error:  # the platform went away: keep what was seen, say why
            self._error = str(error)
            return
        now = time.time()  # after the checks: the exit came before this moment
        with self._lock:
            for container in live:
                if container.container_id not in self._seen:
                    self._seen[container.container_id] = (container, None)
                    self._starts[container.container_id] = self.backend.wall_clock_start(container)
            for container in ended:
                self._seen[container.container_id] = (container, now)
            self._last_live = live

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    @property
    def error(self) -> str | None:
        """The last error of a poll (the process table could not be read), else ``None``."""
        return self._error

    def tasks(self) -> list[BilledTask]:
        """Every container seen: billed from its process's create time until it was first seen gone (``None``
        while it runs). The image pull that precedes a process is not visible (``pull_unseen``)."""
        with self._lock:
            return [
                BilledTask(container.container_id, self._starts[container.container_id], end, pull_unseen=True)
                for container, end in self._seen.values()
            ]

    def ended(self) -> bool:
        """Every container seen has ended and the last look found none of the session's running."""
        with self._lock:
            return bool(self._seen) and all(end is not None for _, end in self._seen.values()) and not self._last_live
