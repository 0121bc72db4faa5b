"""The embedded platform's route to an AWS service: the fault proxy's hop every call of the platform to it takes
(``dynamodb``: its API, reaper and runtime; ``cloudwatch``: the metrics it publishes). The faults are the hop's toxics
(`ChaosNetworkKeywords`): a black hole for an outage, the answers held ``latency`` for a slow service (the HTTP-aware
``aws_fault`` toxic, once per request), a black hole on a share of the connections for lost calls. They hit the whole
platform: the route keywords ask the injector's deployment guard first, which lets them run on a private platform or
with the platform held exclusively."""

from __future__ import annotations

from datetime import timedelta

from ...core.base import LibraryContext
from ..injector import FaultInjector
from ..network import ChaosNetworkKeywords
from .base import RouteSpec, ServiceRoute, check_fault_name, check_percent


class EmbeddedServiceRoute(ServiceRoute):
    def __init__(self, ctx: LibraryContext, injector: FaultInjector, network: ChaosNetworkKeywords, spec: RouteSpec):
        super().__init__(spec)
        self.ctx = ctx
        self.injector = injector
        self.network = network
        self.name = f"fault proxy's {spec.hop} hop"

    def check(self, fault: str) -> None:
        self.injector.allow(f"inject a fault on the platform's route to {self.spec.title} ({check_fault_name(fault)})")

    def cut_off(self) -> str:
        return self.network.cut_off_fault_proxy_hop(self.spec.hop)

    def slow_down(self, latency: timedelta) -> str:
        return self.network.inject_aws_fault("latency", latency=latency, hop=self.spec.hop)

    def lose(self, percent: int) -> str:
        share = check_percent(percent) / 100
        return self.network.add_toxic(self.spec.hop, "timeout", stream="upstream", toxicity=share, timeout="0")
