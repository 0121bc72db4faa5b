"""What the client-partition keywords need of a target, whichever it is: the API client the run's probing clients use
(the library's one client, taking the route that can be cut), and the cut itself, recorded in the fault ledger (its id
is reverted by `Revert Fault`, `Revert All Faults` or the test's fault clean-up)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from ...core.http_client import PlatformApiClient

__all__ = ["ClientRoute"]


class ClientRoute(ABC):
    """The route from this run's clients to the API, and the partition on it."""

    name = "route from this run's clients to the API"

    @abstractmethod
    def client(self) -> PlatformApiClient:
        """The API client the probing clients use: the library's one client (authentication, SigV4, TLS, contract
        mapping), taking the route `cut_off` cuts."""

    @abstractmethod
    def cut_off(self) -> str:
        """Nothing gets through the route any more: requests on it get no answer until the fault is reverted."""

    def close(self) -> None:  # noqa: B027 - most routes start nothing
        """Let go of what the route started (the run ends)."""
