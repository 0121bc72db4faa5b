"""Faults on one session's container: a busy CPU or disk, a broken or slow network between the API and it.

``embedded.EmbeddedSessionTaskFaults`` serves the embedded platform (helper processes in the container's cgroups, toxics
on the fault proxy's mesh hop); ``aws.FisSessionTaskFaults`` the AWS target (FIS actions on the session's ECS task).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import MESH_MODES, SessionTaskFaults

if TYPE_CHECKING:
    from ...sessions.api import PlatformApiKeywords
    from ..fis import FisKeywords
    from ..helpers import ContainerHelpers
    from ..injector import FaultInjector
    from ..network import ChaosNetworkKeywords

__all__ = ["MESH_MODES", "SessionTaskFaults", "create_session_task_faults"]


def create_session_task_faults(
    target: str,
    injector: FaultInjector,
    helpers: ContainerHelpers,
    network: ChaosNetworkKeywords,
    api: PlatformApiKeywords,
    fis: FisKeywords,
) -> SessionTaskFaults:
    """Return the session-task faults of ``target`` (``embedded`` or ``aws``): the one place the backend is chosen."""
    if target in ("embedded", "local"):
        from .embedded import EmbeddedSessionTaskFaults

        return EmbeddedSessionTaskFaults(injector, helpers, network, api)
    if target == "aws":
        from .aws import FisSessionTaskFaults

        return FisSessionTaskFaults(fis)
    raise ValueError(f"Unknown target {target!r}; expected 'embedded' or 'aws'.")
