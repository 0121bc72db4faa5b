"""What the API-tier keywords need of a target, whichever it is: read the targets, check a fault can run, kill one,
make one hang. ``EmbeddedApiTier`` does it to processes, ``AwsApiTier`` through ECS, ELBv2 and FIS."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from ...aws.apitier import OUT_OF_ROTATION
from ..ledger import ChaosError

__all__ = ["FAULTS", "OUT_OF_ROTATION", "ApiTier", "check_fault_name"]

# The faults a test can ask for (`API Tier Fault Should Be Possible`): a target dies, a target hangs.
FAULTS = ("kill", "hang")


class ApiTier(ABC):
    """The API targets behind the load balancer, and the faults on them.

    A target is a dict with at least ``id``, ``port``, ``state`` (``initial``, ``healthy``, ``unhealthy``,
    ``draining`` ...) and ``reason``; each backend adds what identifies the target to it (a ``pid``, a ``task``).
    """

    name = "API tier"

    @abstractmethod
    def targets(self) -> list[dict[str, Any]]:
        """Every registered target with its health."""

    @abstractmethod
    def can_fault(self, target: dict[str, Any]) -> bool:
        """Whether a fault can reach ``target`` (it has a process, or a running task)."""

    @abstractmethod
    def check(self, fault: str) -> None:
        """Raises (a skip, or a failure naming what is missing) unless ``fault`` can run here; creates nothing."""

    @abstractmethod
    def kill(self, target: dict[str, Any]) -> None:
        """The target dies (recorded in the fault ledger first); the platform must replace it."""

    @abstractmethod
    def hang(self, target: dict[str, Any]) -> str:
        """The target stops answering; returns the fault's id (reverted by `Revert Fault`)."""

    def pick(self, name: str) -> dict[str, Any]:
        """``any healthy``: a healthy target a fault can reach; otherwise the target whose id is ``name``."""
        targets = self.targets()
        if name == "any healthy":
            found = next((t for t in targets if t["state"] == "healthy" and self.can_fault(t)), None)
        else:
            found = next((t for t in targets if t["id"] == name), None)
        if found is None:
            known = ", ".join(f"{t['id']} ({t['state']})" for t in targets) or "none"
            raise ChaosError(f"No API target '{name}' behind the load balancer; registered: {known}.")
        return found


def check_fault_name(fault: str) -> str:
    wanted = str(fault).strip().lower()
    if wanted not in FAULTS:
        raise ValueError(f"An API-tier fault is one of {', '.join(FAULTS)}, not {fault!r}.")
    return wanted
