"""The embedded platform's session-task faults: helper processes in the container's cgroups (CPU burner, disk writer,
``faults/helpers.py``) and toxics on the fault proxy's ``mesh-<sessionId>`` hop, the API's route to the container."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from ...sessions.api import PlatformApiKeywords, SessionRef
from ...targets.embedded import faults as local_faults
from ..helpers import ContainerHelpers
from ..injector import FaultInjector
from ..ledger import ChaosError
from ..network import ChaosNetworkKeywords
from .base import SessionTaskFaults

IO_STRESS_MAX_BYTES = 64 * 1024 * 1024  # the writer's file never grows past this


class EmbeddedSessionTaskFaults(SessionTaskFaults):
    name = "helper processes in the container's cgroups and the fault proxy's mesh hop"

    def __init__(
        self,
        injector: FaultInjector,
        helpers: ContainerHelpers,
        network: ChaosNetworkKeywords,
        api: PlatformApiKeywords,
    ):
        self.injector = injector
        self.helpers = helpers
        self.network = network
        self.api = api

    def stress_cpu(self, session: SessionRef, percent: int) -> str:
        session_id = self.injector.guard_session(session)
        container, group = self.helpers.cgroup_of(session_id)
        description = f"CPU of session {session_id} kept busy by a helper"
        join = [group.cpu_dir / "cgroup.procs"]
        return self.helpers.helper_fault("burn", "cpu-stress", description, [], container, join)

    def stress_io(self, session: SessionRef, percent: int) -> str:
        session_id = self.injector.guard_session(session)
        container = self.helpers.container_of(session_id)
        workspace = str(self.api.get_session(session_id).get("workspace") or "")
        if not workspace or not Path(workspace).is_dir():
            raise ChaosError(f"Session {session_id} has no workspace folder to write in: {workspace!r}.")
        # Undone last step first: the writer is killed, then its file removed (SIGKILL leaves it behind).
        remove_file = {"do": "restore-file", "path": "", "previous": None}

        def file_of(marker: str) -> dict:
            return {**remove_file, "path": str(local_faults.io_stress_file(workspace, marker))}

        description = f"disk of session {session_id} kept busy by a writer"
        return self.helpers.helper_fault(
            "io", "io-stress", description, [file_of], container, [], folder=workspace, max_bytes=IO_STRESS_MAX_BYTES
        )

    def break_mesh(self, session: SessionRef, mode: str) -> str:
        hop = self.network.mesh_hop_of(session)
        toxic = "reset_peer" if mode == "reset" else "timeout"
        body = {"type": toxic, "stream": "upstream", "attributes": {"timeout": 0}}
        return self.network.add_hop_toxic(hop, body, f"service mesh broken ({mode})")

    def slow_mesh(self, session: SessionRef, latency: timedelta) -> str:
        hop = self.network.mesh_hop_of(session)
        ms = int(latency.total_seconds() * 1000)
        body = {"type": "latency", "stream": "downstream", "attributes": {"latency": ms}}
        return self.network.add_hop_toxic(hop, body, f"service mesh slowed down by {ms} ms")
