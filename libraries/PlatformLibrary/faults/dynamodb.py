"""The platform's route to DynamoDB under faults: DynamoDB unreachable, slow, or some of its calls lost on the way.

One keyword surface on both targets; how a fault reaches the route is the backend's (``faults/dynamoroute``), chosen in
one place (``create_dynamodb_route``): on the embedded platform toxics on the fault proxy's ``dynamodb`` hop, on AWS FIS
``aws:ecs:task-network-packet-loss`` / ``-latency`` on every task of the API's ECS service with ``sources`` naming
DynamoDB. These faults hit the whole platform (on AWS the deployment): the injector's deployment guard lets them run
on a private platform or with the platform held exclusively (and on AWS with ``${CHAOS_SCOPE}`` ``deployment``).
Forged DynamoDB answers (throttles, 500/503) and faults on single calls stay with `Inject AWS Fault`, on the embedded
platform only: FIS can delay or drop the traffic, not forge an answer or pick a call.
"""

from __future__ import annotations

from datetime import timedelta

from robot.api.deco import keyword

from ..core.base import LibraryComponent, LibraryContext
from .dynamoroute import DynamoDbRoute, check_fault_name, create_dynamodb_route
from .fis import FisKeywords
from .injector import FaultInjector
from .network import ChaosNetworkKeywords


class DynamoDbRouteKeywords(LibraryComponent):
    """Faults on the platform's route to DynamoDB, on both targets."""

    def __init__(self, ctx: LibraryContext, injector: FaultInjector, network: ChaosNetworkKeywords, fis: FisKeywords):
        super().__init__(ctx)
        self.injector = injector
        self.network = network
        self.fis = fis
        self._routes: dict[str, DynamoDbRoute] = {}

    @property
    def route(self) -> DynamoDbRoute:
        """The DynamoDB route backend of the profile's target (created once per target)."""
        target = self.profile.target
        if target not in self._routes:
            self._routes[target] = create_dynamodb_route(target, self.ctx, self.injector, self.network, self.fis)
        return self._routes[target]

    @keyword(tags=["chaos", "dynamodb", "safety"])
    def dynamodb_route_fault_should_be_possible(self, fault: str) -> None:
        """Checks, before a test creates anything, that the fault ``fault`` on the platform's route to DynamoDB
        (``outage``, ``slow`` or ``loss``) can run.

        Skips the test with the reason when the profile does not allow it (chaos refused; on AWS also
        ``${CHAOS_SCOPE}`` not ``deployment``, the deployment's API service not named (``${API_ECS_SERVICE}``), no FIS
        role or stop alarm), and fails naming what is wrong when a named thing is not usable (no such service or
        alarm, FIS's prerequisites missing from the API task definition). Holding the deployment exclusively is
        checked when the fault is injected (take it after this check).
        """
        self.route.check(check_fault_name(fault))
        self.info(f"A fault on the route to DynamoDB ({fault}) can run through the {self.route.name}.")

    @keyword(tags=["chaos", "dynamodb"])
    def cut_off_dynamodb_from_the_platform(self) -> str:
        """DynamoDB stops answering the platform: its calls get no answer until they time out. Returns the fault id.

        Embedded platform: the ``dynamodb`` hop of the fault proxy becomes a black hole (a ``timeout`` toxic).
        AWS: FIS ``aws:ecs:task-network-packet-loss`` with ``lossPercent`` 100 and ``sources``
        ``${DYNAMODB_FAULT_SOURCES}`` (default ``DYNAMODB``, the Regional endpoint) on every task of
        ``${API_ECS_SERVICE}``, reverted by stopping the experiment and bounded by ``${FIS_FAULT_DURATION}``.
        Reverted by `Revert Fault`, `Revert All Faults` or the test's fault clean-up.

        Example:
        | ${fault} = | Cut Off DynamoDB From The Platform |
        | Revert Fault | ${fault} |
        """
        self.injector.guard_deployment("Cutting the platform off DynamoDB")
        return self.route.cut_off()

    @keyword(tags=["chaos", "dynamodb"])
    def slow_down_dynamodb_for_the_platform(self, latency: timedelta) -> str:
        """Every DynamoDB call of the platform takes ``latency`` longer; returns the fault id.

        Embedded platform: each request on the ``dynamodb`` hop is held ``latency`` (the ``aws_fault`` toxic's
        ``latency``). AWS: FIS ``aws:ecs:task-network-latency`` (``delayMilliseconds``, no jitter) with ``sources``
        ``${DYNAMODB_FAULT_SOURCES}`` on every task of ``${API_ECS_SERVICE}``: the requests the API sends DynamoDB leave
        ``latency`` late.

        Example:
        | ${fault} = | Slow Down DynamoDB For The Platform | 300 ms |
        """
        self.injector.guard_deployment("Slowing down the platform's DynamoDB calls")
        return self.route.slow_down(latency)

    @keyword(tags=["chaos", "dynamodb"])
    def lose_dynamodb_connections_of_the_platform(self, percent: int) -> str:
        """``percent`` % of the platform's connections to DynamoDB lose everything they carry, so the calls on them
        time out (and a retry on another connection may get through); returns the fault id.

        Embedded platform: a black hole on that share of the ``dynamodb`` hop's connections (``timeout`` toxic with
        toxicity ``percent`` / 100). AWS: FIS ``aws:ecs:task-network-packet-loss`` with ``lossPercent`` 100 and
        ``flowsPercent`` ``percent`` (ECS agent 1.100.0 or later) with ``sources`` ``${DYNAMODB_FAULT_SOURCES}`` on
        every task of ``${API_ECS_SERVICE}``.

        Example:
        | ${fault} = | Lose DynamoDB Connections Of The Platform | 30 |
        """
        self.injector.guard_deployment("Losing the platform's DynamoDB connections")
        return self.route.lose(percent)
