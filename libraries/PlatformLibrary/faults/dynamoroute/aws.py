"""The platform's route to DynamoDB on AWS: FIS network actions on every task of the API's ECS service, limited to the
traffic to DynamoDB by the actions' ``sources`` parameter.

FIS user guide, "AWS FIS Actions reference", ``aws:ecs:task-network-packet-loss`` and ``aws:ecs:task-network-latency``:
each "adds packet loss [latency and jitter] to the network interface for egress traffic to specific sources"; its
``sources`` are "an IPv4 address, an IPv4 CIDR block, a domain name, an AZ name (us-east-1a), an AZ ID (use1-az1), ALL,
DYNAMODB, and S3. If you specify DYNAMODB or S3, this applies only to the Regional endpoint in the current Region";
``flowsPercent`` is "the percentage of network flows that will be affected by the action". So, on every task of
``${API_ECS_SERVICE}`` (the tasks that call DynamoDB on the sessions' behalf) with ``sources``
``${DYNAMODB_FAULT_SOURCES}`` (default ``DYNAMODB``): an outage is packet loss 100 %, a slow store is latency, lost
calls are packet loss 100 % on a share of the flows. Nothing outside the deployment under test is touched (no subnet,
no route table, no endpoint).

These hit the deployment, not only this run's sessions: like the API-tier faults they need ``${CHAOS_SCOPE}``
``deployment``, the deployment held exclusively (the keyword asks ``FaultInjector.guard_deployment``) and the FIS stop
alarm, even for a dry run; `DynamoDB Route Fault Should Be Possible` checks them before a test creates anything. Each
is a fault ledger entry whose revert step stops its experiment (``FisKeywords.inject_service_fault``);
``${FIS_FAULT_DURATION}`` bounds it when nothing does.
"""

from __future__ import annotations

from datetime import timedelta

from ...aws.session import AwsError
from ...core.base import LibraryContext
from ..apitier.aws import AwsApiTier
from ..fis import FisKeywords
from ..injector import FaultInjector
from .base import DynamoDbRoute, check_fault_name, check_percent

PACKET_LOSS = "aws:ecs:task-network-packet-loss"
LATENCY = "aws:ecs:task-network-latency"
ACTIONS = {"outage": PACKET_LOSS, "slow": LATENCY, "loss": PACKET_LOSS}
# FIS's own name for "the Regional endpoint of DynamoDB in the current Region" (the actions reference, sources).
DEFAULT_SOURCES = "DYNAMODB"


def check_sources(
    text: str,
    variable: str = "DYNAMODB_FAULT_SOURCES",
    example: str = "DYNAMODB, or dynamodb.eu-west-1.amazonaws.com",
) -> str:
    """``sources`` as FIS wants them: comma-separated, without spaces, none empty; FIS itself judges each one.
    ``variable`` names the profile variable they came from, ``example`` shows good ones (the ECS route's differ)."""
    value = str(text).strip()
    items = value.split(",")
    if not value or any(not item or item != item.strip() or " " in item for item in items):
        raise AwsError(
            f"${{{variable}}} {text!r} is not a FIS sources list: the sources separated by commas, "
            f"without spaces (e.g. {example})."
        )
    return value


class AwsDynamoDbRoute(DynamoDbRoute):
    name = "API service's route to DynamoDB (FIS network actions with sources)"

    def __init__(self, ctx: LibraryContext, injector: FaultInjector, fis: FisKeywords):
        self.ctx = ctx
        self.injector = injector
        self.fis = fis
        self.tier = AwsApiTier(ctx, injector, fis)  # the API service: its name, checks and stop alarm

    def sources(self) -> str:
        return check_sources(str(self.ctx.profile.get("DYNAMODB_FAULT_SOURCES", "") or "") or DEFAULT_SOURCES)

    def _what(self, action: str) -> str:
        return f"inject {action} into the API tasks' traffic to DynamoDB ({self.sources()})"

    def check(self, fault: str) -> None:
        """Before a test creates anything: the opt-ins and names the API-tier faults need (`AwsApiTier.check_action`:
        ``${CHAOS_SCOPE}``, the API service, the FIS role, the stop alarm, FIS let into the API task definition)."""
        action = ACTIONS[check_fault_name(fault)]
        self.tier.check_action(action, self._what(action))

    def _inject(self, fault: str, description: str, **parameters: str) -> str:
        action = ACTIONS[fault]
        self.tier.stop_alarm(self._what(action))
        service = self.tier.service()
        # The network actions reach a Fargate task through ECS's fault injection endpoints (ECS developer guide, "Use
        # fault injection with your Amazon ECS and Fargate workloads"), which the prerequisite check already demands
        # (enableFaultInjection: true); the FIS user guide, "Use the AWS FIS aws:ecs:task actions": on Fargate "the
        # action must have the useEcsFaultInjectionEndpoints parameter set to true".
        return self.fis.inject_service_fault(
            action,
            str(service["serviceName"]),
            str(service["taskDefinition"]),
            f"{description}: FIS {action} to {self.sources()} on every task of {service['serviceName']}",
            sources=self.sources(),
            useEcsFaultInjectionEndpoints="true",
            **parameters,
        )

    def cut_off(self) -> str:
        return self._inject("outage", "DynamoDB cut off from the API tier", lossPercent="100")

    def slow_down(self, latency: timedelta) -> str:
        ms = int(latency.total_seconds() * 1000)
        return self._inject(
            "slow", f"DynamoDB {ms} ms slower for the API tier", delayMilliseconds=str(ms), jitterMilliseconds="0"
        )

    def lose(self, percent: int) -> str:
        share = check_percent(percent)
        what = f"{share} % of the API tier's connections to DynamoDB lost"
        return self._inject("loss", what, lossPercent="100", flowsPercent=str(share))
