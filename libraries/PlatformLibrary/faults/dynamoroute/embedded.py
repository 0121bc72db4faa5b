"""The embedded platform's route to DynamoDB: the fault proxy's ``dynamodb`` hop, which every DynamoDB call of the
platform (its API, reaper and runtime) takes. The faults are its toxics (`ChaosNetworkKeywords`): a black hole for an
outage, DynamoDB's answers held ``latency`` for a slow store (the HTTP-aware ``aws_fault`` toxic, once per request), a
black hole on a share of the connections for lost calls. They hit the whole platform: the injector lets them run on a
private platform or with the platform held exclusively."""

from __future__ import annotations

from datetime import timedelta

from ...core.base import LibraryContext
from ..injector import FaultInjector
from ..network import ChaosNetworkKeywords
from .base import DynamoDbRoute, check_fault_name, check_percent

HOP = "dynamodb"


class EmbeddedDynamoDbRoute(DynamoDbRoute):
    name = "fault proxy's dynamodb hop"

    def __init__(self, ctx: LibraryContext, injector: FaultInjector, network: ChaosNetworkKeywords):
        self.ctx = ctx
        self.injector = injector
        self.network = network

    def check(self, fault: str) -> None:
        self.injector.allow(f"inject a fault on the platform's route to DynamoDB ({check_fault_name(fault)})")

    def cut_off(self) -> str:
        return self.network.cut_off_fault_proxy_hop(HOP)

    def slow_down(self, latency: timedelta) -> str:
        return self.network.inject_aws_fault("latency", latency=latency, hop=HOP)

    def lose(self, percent: int) -> str:
        share = check_percent(percent) / 100
        return self.network.add_toxic(HOP, "timeout", stream="upstream", toxicity=share, timeout="0")
