"""The platform's route to DynamoDB under faults: backends that cut it, slow it or lose a share of it.

``embedded.EmbeddedDynamoDbRoute`` serves the embedded platform (the fault proxy's ``dynamodb`` hop, which every
DynamoDB call of the platform takes); ``aws.AwsDynamoDbRoute`` the AWS target (FIS network actions on every task of the
API's ECS service, limited by ``sources`` to the traffic to DynamoDB).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import FAULTS, DynamoDbRoute, check_fault_name

if TYPE_CHECKING:
    from ...core.base import LibraryContext
    from ..fis import FisKeywords
    from ..injector import FaultInjector
    from ..network import ChaosNetworkKeywords

__all__ = ["FAULTS", "DynamoDbRoute", "check_fault_name", "create_dynamodb_route"]


def create_dynamodb_route(
    target: str, ctx: LibraryContext, injector: FaultInjector, network: ChaosNetworkKeywords, fis: FisKeywords
) -> DynamoDbRoute:
    """Return the DynamoDB route of ``target`` (``embedded`` or ``aws``): the one place the backend is chosen."""
    if target in ("embedded", "local"):
        from .embedded import EmbeddedDynamoDbRoute

        return EmbeddedDynamoDbRoute(ctx, injector, network)
    if target == "aws":
        from .aws import AwsDynamoDbRoute

        return AwsDynamoDbRoute(ctx, injector, fis)
    raise ValueError(f"Unknown target {target!r}; expected 'embedded' or 'aws'.")
