"""What the ECS route keywords need of a target, whichever it is: check a fault can run, cut the platform's route to
ECS. The fault is recorded in the fault ledger and returns its id (reverted by `Revert Fault`, `Revert All Faults` or
the test's fault clean-up)."""

from __future__ import annotations

from abc import ABC, abstractmethod

__all__ = ["FAULTS", "EcsRoute", "check_fault_name"]

# The faults a test can ask for (`ECS Route Fault Should Be Possible`): ECS unreachable for the platform.
FAULTS = ("outage",)


class EcsRoute(ABC):
    """The platform's route to ECS (the container control plane: RunTask, StopTask, UpdateService), and its cut."""

    name = "route to ECS"

    @abstractmethod
    def check(self, fault: str) -> None:
        """Raises (a skip, or a failure naming what is missing) unless ``fault`` can run here; creates nothing."""

    @abstractmethod
    def cut_off(self) -> str:
        """ECS stops answering the platform: its calls time out connecting until the fault is reverted."""


def check_fault_name(fault: str) -> str:
    wanted = str(fault).strip().lower()
    if wanted not in FAULTS:
        raise ValueError(f"A fault on the route to ECS is one of {', '.join(FAULTS)}, not {fault!r}.")
    return wanted
