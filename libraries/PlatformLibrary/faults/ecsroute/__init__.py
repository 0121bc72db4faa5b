"""The platform's route to ECS (its container control plane) under faults: backends that cut it.

``embedded.EmbeddedEcsRoute`` serves the embedded platform (its control-plane file, switched to ``Unreachable``: every
call it makes to its ECS stand-in then fails after the connect timeout); ``aws.AwsEcsRoute`` the AWS target (FIS
packet loss on every task of the API's ECS service, limited by ``sources`` to the traffic to ECS's endpoint). A sibling
of ``faults/serviceroute``: the same API-tier gates and FIS mechanics (``AwsApiTier``,
``FisKeywords.inject_service_fault``), another destination.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import FAULTS, EcsRoute, check_fault_name

if TYPE_CHECKING:
    from ...core.base import LibraryContext
    from ..fis import FisKeywords
    from ..injector import FaultInjector
    from ..resources import ChaosResourceKeywords

__all__ = ["FAULTS", "EcsRoute", "check_fault_name", "create_ecs_route"]


def create_ecs_route(
    target: str, ctx: LibraryContext, injector: FaultInjector, resources: ChaosResourceKeywords, fis: FisKeywords
) -> EcsRoute:
    """Return the ECS route of ``target`` (``embedded`` or ``aws``): the one place the backend is chosen."""
    if target in ("embedded", "local"):
        from .embedded import EmbeddedEcsRoute

        return EmbeddedEcsRoute(injector, resources)
    if target == "aws":
        from .aws import AwsEcsRoute

        return AwsEcsRoute(ctx, injector, fis)
    raise ValueError(f"Unknown target {target!r}; expected 'embedded' or 'aws'.")
