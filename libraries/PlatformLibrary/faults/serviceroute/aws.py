"""The platform's route to an AWS service on AWS: FIS network actions on every task of the ECS service that makes the
platform's calls to it, limited to the traffic to that service by the actions' ``sources`` parameter.

FIS user guide, "AWS FIS Actions reference", ``aws:ecs:task-network-packet-loss`` and ``aws:ecs:task-network-latency``:
each "adds packet loss [latency and jitter] to the network interface for egress traffic to specific sources"; its
``sources`` are "an IPv4 address, an IPv4 CIDR block, a domain name, an AZ name (us-east-1a), an AZ ID (use1-az1), ALL,
DYNAMODB, and S3. If you specify DYNAMODB or S3, this applies only to the Regional endpoint in the current Region";
``flowsPercent`` is "the percentage of network flows that will be affected by the action". So, on every task of the
calling service (DynamoDB: ``${API_ECS_SERVICE}``, the tasks that call DynamoDB on the sessions' behalf; CloudWatch:
``${METRICS_ECS_SERVICE}``, by default the API service, the tasks that publish the platform's metrics) with the route's
``sources`` (``${DYNAMODB_FAULT_SOURCES}``, default ``DYNAMODB``; ``${CLOUDWATCH_FAULT_SOURCES}``, default
``monitoring.<region>.amazonaws.com``): an outage is packet loss 100 %, a slow service is latency, lost calls are
packet loss 100 % on a share of the flows. Nothing outside the deployment under test is touched (no subnet, no route
table, no endpoint).

These hit the deployment, not only this run's sessions: like the API-tier faults they need ``${CHAOS_SCOPE}``
``deployment``, the deployment held exclusively (the keyword asks ``FaultInjector.guard_deployment``) and the FIS stop
alarm, even for a dry run; the route's `... Route Fault Should Be Possible` checks them before a test creates anything.
Each is a fault ledger entry whose revert step stops its experiment (``FisKeywords.inject_service_fault``);
``${FIS_FAULT_DURATION}`` bounds it when nothing does.
"""

from __future__ import annotations

from datetime import timedelta

from ...aws.session import AwsError
from ...core.base import LibraryContext
from ..apitier.aws import AwsApiTier
from ..fis import FisKeywords
from ..injector import FaultInjector
from .base import RouteSpec, ServiceRoute, check_fault_name, check_percent

PACKET_LOSS = "aws:ecs:task-network-packet-loss"
LATENCY = "aws:ecs:task-network-latency"
ACTIONS = {"outage": PACKET_LOSS, "slow": LATENCY, "loss": PACKET_LOSS}


def check_sources(
    text: str,
    variable: str = "DYNAMODB_FAULT_SOURCES",
    example: str = "DYNAMODB, or dynamodb.eu-west-1.amazonaws.com, or monitoring.eu-west-1.amazonaws.com",
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


class AwsServiceRoute(ServiceRoute):
    def __init__(self, ctx: LibraryContext, injector: FaultInjector, fis: FisKeywords, spec: RouteSpec):
        super().__init__(spec)
        self.ctx = ctx
        self.injector = injector
        self.fis = fis
        # The calling ECS service: its name, checks and stop alarm (the API tier's, named by the route's key).
        self.tier = AwsApiTier(ctx, injector, fis, service_key=spec.callers_key)
        self.name = f"route of {spec.callers} to {spec.title} (FIS network actions with sources)"

    def sources(self) -> str:
        configured = str(self.ctx.profile.get(self.spec.sources_key, "") or "")
        region = str(self.ctx.profile.get("AWS_REGION", "") or "us-east-1")
        return check_sources(configured or self.spec.default_sources(region), self.spec.sources_key)

    def _what(self, action: str) -> str:
        return f"inject {action} into the traffic of {self.spec.callers} to {self.spec.title} ({self.sources()})"

    def check(self, fault: str) -> None:
        """Before a test creates anything: the opt-ins and names the API-tier faults need (`AwsApiTier.check_action`:
        ``${CHAOS_SCOPE}``, the calling service, the FIS role, the stop alarm, FIS let into its task definition)."""
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
        return self._inject("outage", f"{self.spec.title} cut off from {self.spec.callers}", lossPercent="100")

    def slow_down(self, latency: timedelta) -> str:
        ms = int(latency.total_seconds() * 1000)
        what = f"{self.spec.title} {ms} ms slower for {self.spec.callers}"
        return self._inject("slow", what, delayMilliseconds=str(ms), jitterMilliseconds="0")

    def lose(self, percent: int) -> str:
        share = check_percent(percent)
        what = f"{share} % of the connections of {self.spec.callers} to {self.spec.title} lost"
        return self._inject("loss", what, lossPercent="100", flowsPercent=str(share))
