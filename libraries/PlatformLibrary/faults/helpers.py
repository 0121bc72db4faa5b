"""Helper processes that press on one container of the embedded platform from inside its cgroups.

The memory hog, the CPU burner and the disk writer (``targets/embedded/faults.py``) join the container's cgroups,
so the kernel charges their use to the container, as it would a build job in the user's container. This module finds
a session's container and its cgroups and keeps each helper in the fault ledger: its last undo step kills it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.base import LibraryContext
from ..targets.base import Container, ContainerBackend
from ..targets.embedded import faults as local_faults
from .injector import FaultInjector
from .ledger import ChaosError


class ContainerHelpers:
    """A session's container, its cgroups, and helper faults recorded in the fault ledger."""

    def __init__(self, ctx: LibraryContext, injector: FaultInjector, backend: Callable[[], ContainerBackend]):
        self.ctx = ctx
        self.injector = injector
        self._backend = backend  # the container backend of the profile's target, asked on every call

    def container_of(self, session_id: str) -> Container:
        containers = self._backend().containers_of(session_id)
        if len(containers) != 1:
            raise ChaosError(f"Session {session_id} should have exactly one container but has {len(containers)}.")
        return containers[0]

    def limits_mode(self) -> str:
        """The platform's container limits (``CONTAINER_LIMITS``); fails unless they are cgroups.

        Memory pressure, CPU throttling and a CPU burner act through the container's cgroup; with ``rlimit`` there is
        none, and the resource tests must say so instead of pretending.
        """
        mode = str(self.ctx.endpoints.get("CONTAINER_LIMITS"))
        if mode not in ("cgroup-v1", "cgroup-v2"):
            raise ChaosError(
                f"Containers are limited with {mode!r} here, not with cgroups: memory pressure and CPU throttling "
                "need the platform to run as root with a writable /sys/fs/cgroup."
            )
        return mode

    def cgroup_of(self, session_id: str) -> tuple[Container, local_faults.ContainerCgroup]:
        container = self.container_of(session_id)
        instance = str(self.ctx.endpoints.get("PLATFORM_INSTANCE"))
        return container, local_faults.container_cgroup(self.limits_mode(), instance, container.pid)

    def helper_fault(
        self,
        kind: str,
        fault_kind: str,
        description: str,
        undo: list[Any],
        container: Container,
        join: list[Path],
        apply: Callable[[], Any] | None = None,
        **options: Any,
    ) -> str:
        """Record a fault whose last undo step is killing a helper, ``apply`` what comes first (a cgroup write),
        start the helper (``kind``: burn, io) and mark the fault active; a failure undoes what was applied.
        ``undo`` holds steps, or callables that make a step from the helper's marker. Returns the fault id."""
        marker = f"{kind}-{self.ctx.run.run_id}-{int(time.time() * 1000) % 10**9}"
        helper_step = {"do": "kill-helper", "marker": marker, "pid": None}
        steps = [*(s(marker) if callable(s) else s for s in undo), helper_step]
        entry = self.injector.record(fault_kind, description, steps)
        try:
            if apply is not None:
                apply()
            pid, start_time, _ = local_faults.start_helper(
                kind, marker, join, container.pid, self.ctx.profile.seconds("RECOVERY_TIMEOUT"), **options
            )
            helper_step.update(pid=pid, startTime=start_time)
            self.injector.ledger.update(entry["id"], undo=steps)
        except Exception:
            self.injector.undo_now(entry)
            raise
        return self.injector.activate(entry)
