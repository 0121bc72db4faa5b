"""The seam between container keywords and the place containers run (processes here, ECS tasks on AWS)."""

from __future__ import annotations

import signal
from abc import ABC, abstractmethod
from dataclasses import dataclass

from ..core.billing import BilledTask


class ContainerBackendError(RuntimeError):
    ROBOT_SUPPRESS_NAME = True


@dataclass(frozen=True)
class Container:
    """One container of the platform instance.

    ``session_id`` is ``None`` for warm-pool containers not yet assigned to a session.
    ``pid`` is the process id on the embedded platform (``None`` where there is no such thing).
    ``running`` is false while the container's process does not exist yet (an ECS task still PROVISIONING or
    PENDING, pulling its image): it counts as the session's container, but nothing in it can be signalled yet.
    """

    container_id: str
    session_id: str | None
    task_id: str | None
    pid: int | None
    started_at: float
    description: str = ""
    running: bool = True


class ContainerBackend(ABC):
    """What the container keywords need from a runtime. Implementations must be read-only except ``kill``."""

    name = "abstract"

    @abstractmethod
    def list_containers(self) -> list[Container]:
        """Every live container of this platform instance, warm-pool ones included."""

    @abstractmethod
    def kill(self, container: Container, sig: signal.Signals) -> float | None:
        """Send ``sig`` to ``container``; raise ``ContainerBackendError`` when it is not the same container.

        Returns the ``time.monotonic()`` moment the signal landed when the backend learns it after the fact (a FIS
        experiment reports when its action ended), else ``None``: the moment of the call counts.
        """

    @abstractmethod
    def is_alive(self, container: Container) -> bool:
        """Whether this exact container (not a successor with a reused id) still runs."""

    def containers_of(self, session_id: str) -> list[Container]:
        """The live containers assigned to ``session_id``."""
        return [c for c in self.list_containers() if c.session_id == session_id]

    def wall_clock_start(self, container: Container) -> float:
        """When ``container`` started, on this machine's wall clock (epoch seconds, as ``time.time()``)."""
        return container.started_at

    def billed_tasks(self, session_id: str) -> list[BilledTask] | None:
        """Every container that served ``session_id``, ended ones too, with when its billing started and ended, where
        the runtime keeps that record (ECS does: stopped tasks stay describable for about an hour); ``None`` where it
        keeps none (a process that has exited is gone): the caller must watch the session (``targets.billing``)."""
        return None

    def traces_of(self, session_id: str) -> list[str]:
        """What else of ``session_id`` the runtime still holds besides containers (a network hop ...), described;
        a deleted session must leave none. Empty where the backend knows of nothing else."""
        return []
