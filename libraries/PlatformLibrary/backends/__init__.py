"""Container backends: where a session's container lives and how to find or kill it.

``local.LocalProcessBackend`` serves the embedded platform (containers are processes).
The ECS backend (``backends/ecs.py``, ECS tasks via boto3) arrives with the AWS issue; until then
``create_backend`` refuses the AWS target with a clear message instead of pretending to work.
"""

from __future__ import annotations

from collections.abc import Callable

from .base import Container, ContainerBackend, ContainerBackendError

__all__ = ["Container", "ContainerBackend", "ContainerBackendError", "create_backend"]


def create_backend(target: str, instance_id: Callable[[], str]) -> ContainerBackend:
    """Return the backend for ``target`` (``embedded`` or ``aws``)."""
    if target in ("embedded", "local"):
        from .local import LocalProcessBackend

        return LocalProcessBackend(instance_id)
    if target == "aws":
        raise ContainerBackendError(
            "Container keywords on the 'aws' target need the ECS backend (libraries/PlatformLibrary/backends/"
            "ecs.py), which arrives with the AWS issue. Run these suites with the local profile for now."
        )
    raise ContainerBackendError(f"Unknown target {target!r}; expected 'embedded' or 'aws'.")
