"""Container backends: where a session's container lives and how to find or kill it.

``local.LocalProcessBackend`` serves the embedded platform (containers are processes);
``ecs.EcsTaskBackend`` serves the AWS target (containers are ECS tasks, read and stopped with boto3).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base import Container, ContainerBackend, ContainerBackendError

__all__ = ["Container", "ContainerBackend", "ContainerBackendError", "create_backend"]


def create_backend(
    target: str,
    instance_id: Callable[[], str],
    ecs_settings: Callable[[], Any] | None = None,
    traces: Callable[[str], list[str]] | None = None,
) -> ContainerBackend:
    """Return the backend for ``target`` (``embedded`` or ``aws``).

    ``ecs_settings`` returns the ``ecs.EcsSettings`` of the AWS target (client, cluster, safety guard); it is
    called on every ECS operation, so profile changes are picked up.
    """
    if target in ("embedded", "local"):
        from .embedded.processes import LocalProcessBackend

        return LocalProcessBackend(instance_id, traces)
    if target == "aws":
        if ecs_settings is None:
            raise ContainerBackendError("The ECS backend of the 'aws' target needs its settings (cluster, client).")
        from .aws.ecs import EcsTaskBackend

        return EcsTaskBackend(ecs_settings)
    raise ContainerBackendError(f"Unknown target {target!r}; expected 'embedded' or 'aws'.")
