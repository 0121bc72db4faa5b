"""The platform's routes to AWS services under faults: DynamoDB unreachable, slow, or some of its calls lost on the
way; CloudWatch unreachable.

One keyword surface on both targets; how a fault reaches a route is the backend's (``faults/serviceroute``), chosen in
one place (``create_service_route``): on the embedded platform toxics on the fault proxy's hop of that service
(``dynamodb``, ``cloudwatch``), on AWS FIS ``aws:ecs:task-network-packet-loss`` / ``-latency`` on every task of the ECS
service that makes the calls (DynamoDB: ``${API_ECS_SERVICE}``; CloudWatch: ``${METRICS_ECS_SERVICE}``, by default the
API service) with ``sources`` naming the service's endpoint. These faults hit the whole platform (on AWS the
deployment): the injector's deployment guard lets them run on a private platform or with the platform held
exclusively (and on AWS with ``${CHAOS_SCOPE}`` ``deployment``). Forged DynamoDB answers (throttles, 500/503) and faults
on single calls stay with `Inject AWS Fault`, on the embedded platform only: FIS can delay or drop the traffic, not
forge an answer or pick a call.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from robot.api.deco import keyword

from ..core.base import LibraryComponent, LibraryContext
from .fis import FisKeywords
from .injector import FaultInjector
from .network import ChaosNetworkKeywords
from .serviceroute import ServiceRoute, check_fault_name, create_service_route


class ServiceRouteKeywords(LibraryComponent):
    """Faults on the platform's routes to AWS services (DynamoDB, CloudWatch), on both targets."""

    def __init__(self, ctx: LibraryContext, injector: FaultInjector, network: ChaosNetworkKeywords, fis: FisKeywords):
        super().__init__(ctx)
        self.injector = injector
        self.network = network
        self.fis = fis
        self._routes: dict[tuple[str, str], ServiceRoute] = {}

    def route(self, service: str) -> ServiceRoute:
        """The route backend to ``service`` of the profile's target (created once per target and service)."""
        key = (self.profile.target, service)
        if key not in self._routes:
            self._routes[key] = create_service_route(key[0], service, self.ctx, self.injector, self.network, self.fis)
        return self._routes[key]

    def _check(self, service: str, fault: str) -> None:
        route = self.route(service)
        route.check(check_fault_name(fault))
        self.info(f"A fault on the route to {route.spec.title} ({fault}) can run through the {route.name}.")

    # ------------------------------------------------------------------ DynamoDB
    @keyword(tags=["chaos", "dynamodb", "safety"])
    def dynamodb_route_fault_should_be_possible(self, fault: Literal["outage", "slow", "loss"]) -> None:
        """Checks, before a test creates anything, that the fault ``fault`` on the platform's route to DynamoDB
        (``outage``, ``slow`` or ``loss``) can run.

        Skips the test with the reason when the profile does not allow it (chaos refused; on AWS also
        ``${CHAOS_SCOPE}`` not ``deployment``, the deployment's API service not named (``${API_ECS_SERVICE}``), no FIS
        role or stop alarm), and fails naming what is wrong when a named thing is not usable (no such service or
        alarm, FIS's prerequisites missing from the API task definition). Holding the deployment exclusively is
        checked when the fault is injected (take it after this check).
        """
        self._check("dynamodb", fault)

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
        return self.route("dynamodb").cut_off()

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
        return self.route("dynamodb").slow_down(latency)

    @keyword(tags=["chaos", "dynamodb"])
    def lose_dynamodb_connections_of_the_platform(self, percent: int) -> str:
        """``percent`` % of the platform's connections to DynamoDB lose everything they carry, so the calls on them
        time out (and a retry on another connection may get through); returns the fault id.

        Embedded platform: a black hole on that share of the ``dynamodb`` hop's connections (``timeout`` toxic with
        toxicity ``percent`` / 100, rolled once per connection, those open already included). AWS: FIS
        ``aws:ecs:task-network-packet-loss`` with ``lossPercent`` 100 and ``flowsPercent`` ``percent`` (ECS agent
        1.100.0 or later) with ``sources`` ``${DYNAMODB_FAULT_SOURCES}`` on every task of ``${API_ECS_SERVICE}``. A
        client that pools its connections meets the fault only on the connections it uses: with ``n`` of them, none
        is lost with a chance of (1 - ``percent`` / 100) ** ``n``.

        Example:
        | ${fault} = | Lose DynamoDB Connections Of The Platform | 50 |
        """
        self.injector.guard_deployment("Losing the platform's DynamoDB connections")
        return self.route("dynamodb").lose(percent)

    # ------------------------------------------------------------------ CloudWatch
    @keyword(tags=["chaos", "cloudwatch", "safety"])
    def cloudwatch_route_fault_should_be_possible(self, fault: Literal["outage", "slow", "loss"] = "outage") -> None:
        """Checks, before a test creates anything, that the fault ``fault`` on the platform's route to CloudWatch (the
        metrics it publishes) can run: as `DynamoDB Route Fault Should Be Possible`, for the tasks of
        ``${METRICS_ECS_SERVICE}`` (by default the API service) and ``${CLOUDWATCH_FAULT_SOURCES}``.
        """
        self._check("cloudwatch", fault)

    @keyword(tags=["chaos", "cloudwatch"])
    def cut_off_cloudwatch_from_the_platform(self) -> str:
        """CloudWatch stops answering the platform: the metrics it publishes get no answer. Returns the fault id.

        Embedded platform: the ``cloudwatch`` hop of the fault proxy (the route of the metrics it publishes) becomes a
        black hole. AWS: FIS ``aws:ecs:task-network-packet-loss`` with ``lossPercent`` 100 and ``sources``
        ``${CLOUDWATCH_FAULT_SOURCES}`` (default ``monitoring.<region>.amazonaws.com``, CloudWatch's Regional
        endpoint) on every task of ``${METRICS_ECS_SERVICE}`` (default ``${API_ECS_SERVICE}``).

        Example:
        | ${fault} = | Cut Off CloudWatch From The Platform |
        """
        self.injector.guard_deployment("Cutting the platform off CloudWatch")
        return self.route("cloudwatch").cut_off()
