"""The route from this run's clients to the API under faults: backends that cut it, and the API client that takes it.

``embedded.LoadBalancerHopRoute`` serves the embedded platform (the fault proxy's ``api`` hop, the load balancer every
client of the platform reaches it through); ``aws.RunnerHopRoute`` the AWS target (a hop of a fault proxy this run
starts on this machine, between its own clients and the API: a partition there touches this run's connections and
nothing of the deployment).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import ClientRoute

if TYPE_CHECKING:
    from ...core.base import LibraryContext
    from ..injector import FaultInjector
    from ..network import ChaosNetworkKeywords

__all__ = ["ClientRoute", "create_client_route"]


def create_client_route(
    target: str, ctx: LibraryContext, injector: FaultInjector, network: ChaosNetworkKeywords
) -> ClientRoute:
    """Return the clients' route of ``target`` (``embedded`` or ``aws``): the one place the backend is chosen."""
    if target in ("embedded", "local"):
        from .embedded import LoadBalancerHopRoute

        return LoadBalancerHopRoute(ctx, network)
    if target == "aws":
        from .aws import RunnerHopRoute

        return RunnerHopRoute(ctx, injector, network)
    raise ValueError(f"Unknown target {target!r}; expected 'embedded' or 'aws'.")
