"""The platform's route to ECS (its container control plane) under a fault: ECS unreachable for the platform.

One keyword surface on both targets; how the fault reaches the route is the backend's (``faults/ecsroute``), chosen in
one place (``create_ecs_route``): on the embedded platform its control-plane file set to ``Unreachable`` (its ECS calls
time out connecting), on AWS FIS ``aws:ecs:task-network-packet-loss`` (100 %) on every task of the API's ECS service
with ``sources`` naming ECS's endpoint. The fault hits the whole platform (on AWS the deployment): the injector's
deployment guard lets it run on a private platform or with the platform held exclusively (and on AWS with
``${CHAOS_SCOPE}`` ``deployment``). ECS answering errors (``ServiceUnavailable``, ``ThrottlingException``) stays with
`Make Container Control Plane Unavailable`, on the embedded platform only: FIS can cut the traffic, not forge ECS's
answers.
"""

from __future__ import annotations

from typing import Literal

from robot.api.deco import keyword

from ..core.base import LibraryComponent, LibraryContext
from .ecsroute import EcsRoute, check_fault_name, create_ecs_route
from .fis import FisKeywords
from .injector import FaultInjector
from .resources import ChaosResourceKeywords


class EcsRouteKeywords(LibraryComponent):
    """A fault on the platform's route to ECS (its container control plane), on both targets."""

    def __init__(
        self, ctx: LibraryContext, injector: FaultInjector, resources: ChaosResourceKeywords, fis: FisKeywords
    ):
        super().__init__(ctx)
        self.injector = injector
        self.resources = resources
        self.fis = fis
        self._routes: dict[str, EcsRoute] = {}

    @property
    def route(self) -> EcsRoute:
        """The ECS route backend of the profile's target (created once per target)."""
        target = self.profile.target
        if target not in self._routes:
            self._routes[target] = create_ecs_route(target, self.ctx, self.injector, self.resources, self.fis)
        return self._routes[target]

    @keyword(tags=["chaos", "control-plane", "safety"])
    def ecs_route_fault_should_be_possible(self, fault: Literal["outage"] = "outage") -> None:
        """Checks, before a test creates anything, that the fault ``fault`` on the platform's route to ECS
        (``outage``) can run.

        Skips the test with the reason when the profile does not allow it (chaos refused; on AWS also
        ``${CHAOS_SCOPE}`` not ``deployment``, the deployment's API service not named (``${API_ECS_SERVICE}``), no FIS
        role or stop alarm), and fails naming what is wrong when a named thing is not usable (no such service or
        alarm, FIS's prerequisites missing from the API task definition, ``${ECS_FAULT_SOURCES}`` not a FIS sources
        list). Holding the deployment exclusively is checked when the fault is injected (take it after this check).
        """
        self.route.check(check_fault_name(fault))
        self.info(f"A fault on the route to ECS ({fault}) can run through the {self.route.name}.")

    @keyword(tags=["chaos", "control-plane"])
    def cut_off_ecs_from_the_platform(self) -> str:
        """ECS stops answering the platform: its calls to the container control plane (RunTask, StopTask,
        UpdateService) get no answer and fail once they time out connecting. Returns the fault id.

        Tasks already running keep running, and ECS itself is untouched: only the platform cannot reach it.
        Embedded platform: its control-plane file says ``Unreachable`` (each call fails after the platform's ECS
        connect timeout, ``ecs_connect_timeout``). AWS: FIS ``aws:ecs:task-network-packet-loss`` with ``lossPercent``
        100 and ``sources`` ``${ECS_FAULT_SOURCES}`` (default ``ecs.<region>.amazonaws.com``) on every task of
        ``${API_ECS_SERVICE}``, reverted by stopping the experiment and bounded by ``${FIS_FAULT_DURATION}``.
        Reverted by `Revert Fault`, `Revert All Faults` or the test's fault clean-up.

        Example:
        | ${fault} = | Cut Off ECS From The Platform |
        | Revert Fault | ${fault} |
        """
        self.injector.guard_deployment("Cutting the platform off ECS")
        return self.route.cut_off()
