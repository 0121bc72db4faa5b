"""What the session-task fault keywords need of a target, whichever it is: keep the CPU or the disk of one session's
container busy, break or slow down the network between the API and it. Each fault is recorded in the fault ledger and
returns its id (reverted by `Revert Fault`, `Revert All Faults` or the test's fault clean-up)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import timedelta

from ...sessions.api import SessionRef

__all__ = ["MESH_MODES", "SessionTaskFaults"]

MESH_MODES = ("reset", "blackhole")


class SessionTaskFaults(ABC):
    """Faults on one session's container (on AWS its ECS task), carried out the target's way."""

    name = "session task faults"

    @abstractmethod
    def stress_cpu(self, session: SessionRef, percent: int) -> str:
        """A busy neighbour in the container keeps ``percent`` % of its CPU busy; its limits stay as they are."""

    @abstractmethod
    def stress_io(self, session: SessionRef, percent: int) -> str:
        """A writer in the container keeps the disk of its workspace busy."""

    @abstractmethod
    def break_mesh(self, session: SessionRef, mode: str) -> str:
        """The network between the API and the container fails: connections reset (``reset``) or requests vanish
        (``blackhole``), where the target can tell the two apart."""

    @abstractmethod
    def slow_mesh(self, session: SessionRef, latency: timedelta) -> str:
        """Every answer between the API and the container takes ``latency`` longer."""
