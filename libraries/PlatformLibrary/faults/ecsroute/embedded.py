"""The embedded platform's route to ECS: its control-plane file (``CONTROL_PLANE_FILE``), which every call the platform
makes to its ECS stand-in asks first (``testbed/controlplane.py``). Cut off, the file says ``Unreachable``: each call
then fails after the platform's ECS connect timeout with no ECS error code, as when the packets to the endpoint are
lost. (`Make Container Control Plane Unavailable` writes an ECS error code into the same file instead: ECS answering,
with an error.) It hits the whole platform: the keyword asks the injector's deployment guard first."""

from __future__ import annotations

from ..injector import FaultInjector
from ..resources import ChaosResourceKeywords
from .base import EcsRoute, check_fault_name

UNREACHABLE = "Unreachable"


class EmbeddedEcsRoute(EcsRoute):
    name = "embedded platform's control-plane file"

    def __init__(self, injector: FaultInjector, resources: ChaosResourceKeywords):
        self.injector = injector
        self.resources = resources  # owns the control-plane file and its revert

    def check(self, fault: str) -> None:
        self.injector.allow(f"inject a fault on the platform's route to ECS ({check_fault_name(fault)})")

    def cut_off(self) -> str:
        what = "container control plane unreachable: ECS calls time out"
        return self.resources.control_plane_outage(UNREACHABLE, what)
