"""Faults on one session's container, on both targets: its CPU or disk kept busy, the network between the API and it
broken or slowed down.

One keyword surface; how a fault reaches the container is the backend's (``faults/sessiontask``), chosen in one place
(``create_session_task_faults``): on the embedded platform helper processes in the container's cgroups and toxics on
the fault proxy's mesh hop, on AWS FIS actions on the session's ECS task. They touch only the test's own session.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from robot.api.deco import keyword

from ..core.base import LibraryComponent, LibraryContext
from ..sessions.api import PlatformApiKeywords, SessionRef
from .fis import FisKeywords
from .helpers import ContainerHelpers
from .injector import FaultInjector
from .network import ChaosNetworkKeywords
from .sessiontask import MESH_MODES, SessionTaskFaults, create_session_task_faults


def check_percent(percent: int) -> int:
    if not 1 <= int(percent) <= 100:
        raise ValueError(f"percent must be between 1 and 100, got {percent}.")
    return int(percent)


class SessionTaskFaultKeywords(LibraryComponent):
    """Faults on one session's container (on AWS its task), on both targets."""

    def __init__(
        self,
        ctx: LibraryContext,
        injector: FaultInjector,
        helpers: ContainerHelpers,
        network: ChaosNetworkKeywords,
        api: PlatformApiKeywords,
        fis: FisKeywords,
    ):
        super().__init__(ctx)
        self.injector = injector
        self.helpers = helpers
        self.network = network
        self.api = api
        self.fis = fis
        self._backends: dict[str, SessionTaskFaults] = {}

    @property
    def faults(self) -> SessionTaskFaults:
        """The session-task fault backend of the profile's target (created once per target)."""
        target = self.profile.target
        if target not in self._backends:
            self._backends[target] = create_session_task_faults(
                target, self.injector, self.helpers, self.network, self.api, self.fis
            )
        return self._backends[target]

    @keyword(tags=["chaos", "resources", "cpu"])
    def stress_session_container_cpu(self, session: SessionRef, percent: int = 100) -> str:
        """Keeps the CPU of the session's container busy at ``percent`` % with a process inside it; returns the fault.

        On the embedded platform a helper that burns CPU joins the container's CPU cgroup (limits unchanged); on
        AWS it is the FIS action ``aws:ecs:task-cpu-stress`` on the session's task. Either way the app shares its
        CPU with a busy neighbour, as with a build job in the user's container. `Revert Fault` stops it.

        Example:
        | ${fault} = | Stress Session Container CPU | ${session} | percent=100 |
        """
        return self.faults.stress_cpu(session, check_percent(percent))

    @keyword(tags=["chaos", "resources", "io"])
    def stress_session_container_io(self, session: SessionRef, percent: int = 100) -> str:
        """Keeps the disk of the session's workspace busy with fsynced writes from inside the container; returns
        the fault.

        On the embedded platform a writer process joins the container's cgroup and writes 1 MiB blocks with
        ``fsync`` into a file of its own in the workspace folder (removed when it stops); on AWS it is the FIS
        action ``aws:ecs:task-io-stress`` on the session's task (``percent`` of its disk). `Revert Fault` stops it.

        Example:
        | ${fault} = | Stress Session Container IO | ${session} |
        """
        return self.faults.stress_io(session, check_percent(percent))

    @keyword(tags=["chaos", "network", "mesh"])
    def break_service_mesh_of_session(self, session: SessionRef, mode: Literal["reset", "blackhole"] = "reset") -> str:
        """Breaks the service mesh between the API and one session's container; returns the fault id.

        ``mode`` ``reset``: every connection is reset as soon as data flows (the peer is gone);
        ``blackhole``: requests vanish and answers never come (a partition). The mesh hop keeps its port across
        container restarts, so the fault stays in place for a replacement container too.

        On AWS the session's task is its mesh: the fault is the FIS action ``aws:ecs:task-network-blackhole-port``
        on the app's port (`Inject FIS Fault`), ingress, in either mode (FIS cannot reset connections); it lives in
        that task, so a replacement task starts without it.

        Example:
        | ${fault} = | Break Service Mesh Of Session | ${session} |
        | ${fault} = | Break Service Mesh Of Session | ${session} | mode=blackhole |
        """
        if mode not in MESH_MODES:
            raise ValueError(f"mode must be 'reset' or 'blackhole', got {mode!r}.")
        return self.faults.break_mesh(session, mode)

    @keyword(tags=["chaos", "network", "mesh"])
    def slow_down_service_mesh_of_session(self, session: SessionRef, latency: timedelta) -> str:
        """Adds ``latency`` to every answer on the mesh between the API and the session's container.

        On AWS this is the FIS action ``aws:ecs:task-network-latency`` on the session's task (no jitter).

        Example:
        | ${fault} = | Slow Down Service Mesh Of Session | ${session} | 200 ms |
        """
        return self.faults.slow_mesh(session, latency)
