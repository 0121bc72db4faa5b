"""The API tier's backends: where the API targets are and how a fault reaches them.

``embedded.EmbeddedApiTier`` serves the embedded platform (target processes behind its load balancer);
``aws.AwsApiTier`` the AWS target (the tasks of the API's ECS service behind an ALB target group, faulted with FIS).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import FAULTS, OUT_OF_ROTATION, ApiTier, check_fault_name

if TYPE_CHECKING:
    from ...core.base import LibraryContext
    from ..fis import FisKeywords
    from ..injector import FaultInjector

__all__ = ["FAULTS", "OUT_OF_ROTATION", "ApiTier", "check_fault_name", "create_api_tier"]


def create_api_tier(target: str, ctx: LibraryContext, injector: FaultInjector, fis: FisKeywords) -> ApiTier:
    """Return the API tier of ``target`` (``embedded`` or ``aws``): the one place the backend is chosen."""
    if target in ("embedded", "local"):
        from .embedded import EmbeddedApiTier

        return EmbeddedApiTier(ctx, injector)
    if target == "aws":
        from .aws import AwsApiTier

        return AwsApiTier(ctx, injector, fis)
    raise ValueError(f"Unknown target {target!r}; expected 'embedded' or 'aws'.")
