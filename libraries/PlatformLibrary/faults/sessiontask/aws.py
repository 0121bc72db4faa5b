"""The AWS target's session-task faults: FIS actions on the session's ECS task (``aws:ecs:task-cpu-stress``,
``-io-stress``, ``-network-blackhole-port``, ``-network-latency``), kept in the fault ledger by `FisKeywords`. They live
in that task, so a replacement task starts without them."""

from __future__ import annotations

from datetime import timedelta

from ...sessions.api import SessionRef
from ..fis import FisKeywords
from .base import SessionTaskFaults


class FisSessionTaskFaults(SessionTaskFaults):
    name = "FIS actions on the session's ECS task"

    def __init__(self, fis: FisKeywords):
        self.fis = fis

    def stress_cpu(self, session: SessionRef, percent: int) -> str:
        description = f"CPU of the session's task stressed to {percent} %"
        return self.fis.inject_session_fault("task-cpu-stress", session, description, percent=str(percent))

    def stress_io(self, session: SessionRef, percent: int) -> str:
        description = f"IO of the session's task stressed ({percent} %)"
        return self.fis.inject_session_fault("task-io-stress", session, description, percent=str(percent))

    def break_mesh(self, session: SessionRef, mode: str) -> str:
        # FIS cannot reset connections: either mode is a black hole on the app's port, ingress.
        port = self.fis.session_port(session)
        return self.fis.inject_session_fault(
            "task-network-blackhole-port",
            session,
            f"service mesh broken: FIS blackhole of port {port} of the session's task",
            port=str(port),
            protocol="tcp",
            trafficType="ingress",
        )

    def slow_mesh(self, session: SessionRef, latency: timedelta) -> str:
        ms = int(latency.total_seconds() * 1000)
        return self.fis.inject_session_fault(
            "task-network-latency",
            session,
            f"service mesh slowed down by {ms} ms: FIS latency on the session's task",
            delayMilliseconds=str(ms),
            jitterMilliseconds="0",
        )
