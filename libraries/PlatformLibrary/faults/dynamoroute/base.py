"""What the DynamoDB route keywords need of a target, whichever it is: check a fault can run, cut the platform's route
to DynamoDB, slow it down, lose a share of its connections. Each fault is recorded in the fault ledger and returns its
id (reverted by `Revert Fault`, `Revert All Faults` or the test's fault clean-up)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import timedelta

__all__ = ["FAULTS", "DynamoDbRoute", "check_fault_name"]

# The faults a test can ask for (`DynamoDB Route Fault Should Be Possible`): DynamoDB unreachable, slow, or some calls
# lost on the way.
FAULTS = ("outage", "slow", "loss")


class DynamoDbRoute(ABC):
    """The platform's route to DynamoDB, and the faults on it."""

    name = "route to DynamoDB"

    @abstractmethod
    def check(self, fault: str) -> None:
        """Raises (a skip, or a failure naming what is missing) unless ``fault`` can run here; creates nothing."""

    @abstractmethod
    def cut_off(self) -> str:
        """DynamoDB stops answering the platform: its calls get no answer at all until the fault is reverted."""

    @abstractmethod
    def slow_down(self, latency: timedelta) -> str:
        """Every DynamoDB call of the platform takes ``latency`` longer."""

    @abstractmethod
    def lose(self, percent: int) -> str:
        """``percent`` % of the platform's connections to DynamoDB lose everything they carry (those calls time out)."""


def check_fault_name(fault: str) -> str:
    wanted = str(fault).strip().lower()
    if wanted not in FAULTS:
        raise ValueError(f"A fault on the route to DynamoDB is one of {', '.join(FAULTS)}, not {fault!r}.")
    return wanted


def check_percent(percent: int) -> int:
    value = int(percent)
    if not 1 <= value <= 100:
        raise ValueError(f"The share of lost DynamoDB connections is a percentage from 1 to 100, not {percent!r}.")
    return value
