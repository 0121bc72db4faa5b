"""The platform's route to an AWS service (DynamoDB, CloudWatch) under faults: backends that cut it, slow it or lose a
share of it.

``embedded.EmbeddedServiceRoute`` serves the embedded platform (the fault proxy's hop every call of the platform to the
service takes: ``dynamodb``, ``cloudwatch``); ``aws.AwsServiceRoute`` the AWS target (FIS network actions on every task
of the ECS service that makes the calls, limited by ``sources`` to the traffic to the service). ``base.ROUTES``
describes each route once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import FAULTS, ROUTES, RouteSpec, ServiceRoute, check_fault_name, route_spec

if TYPE_CHECKING:
    from ...core.base import LibraryContext
    from ..fis import FisKeywords
    from ..injector import FaultInjector
    from ..network import ChaosNetworkKeywords

__all__ = ["FAULTS", "ROUTES", "RouteSpec", "ServiceRoute", "check_fault_name", "create_service_route"]


def create_service_route(
    target: str,
    service: str,
    ctx: LibraryContext,
    injector: FaultInjector,
    network: ChaosNetworkKeywords,
    fis: FisKeywords,
) -> ServiceRoute:
    """Return the route to ``service`` (``dynamodb``, ``cloudwatch``) of ``target`` (``embedded`` or ``aws``): the one
    place the backend is chosen."""
    spec = route_spec(service)
    if target in ("embedded", "local"):
        from .embedded import EmbeddedServiceRoute

        return EmbeddedServiceRoute(ctx, injector, network, spec)
    if target == "aws":
        from .aws import AwsServiceRoute

        return AwsServiceRoute(ctx, injector, fis, spec)
    raise ValueError(f"Unknown target {target!r}; expected 'embedded' or 'aws'.")
