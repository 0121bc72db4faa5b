"""The platform's route to ECS on AWS: FIS ``aws:ecs:task-network-packet-loss`` (100 %) on every task of the API's ECS
service, limited to the traffic to ECS's endpoint by the action's ``sources`` parameter.

FIS has no action on the ECS API itself (its API-error actions, ``aws:fis:inject-api-*``, take only the ``ec2`` and
``kinesis`` namespaces). What it has is packet loss inside a task for "egress traffic to specific sources", whose
``sources`` may be "a domain name" (FIS user guide, "AWS FIS Actions reference", ``aws:ecs:task-network-packet-loss``).
So the platform's calls to ECS (RunTask, StopTask, UpdateService) are cut where they leave from: every task of
``${API_ECS_SERVICE}`` (the tasks that call ECS on the sessions' behalf, docs/deployment-contract.md), with ``sources``
``${ECS_FAULT_SOURCES}`` (default ``ecs.<region>.amazonaws.com``, the Regional endpoint; FIS has no keyword for ECS as
it has ``DYNAMODB``). Those calls then get no answer and time out connecting; ECS itself, and the tasks it runs, are
untouched.

A sibling of ``serviceroute.aws``: the same gates (``AwsApiTier.check_action``: ``${CHAOS_SCOPE}`` ``deployment``, the
API service, the FIS role, the stop alarm even for a dry run, FIS let into the API task definition), the deployment held
exclusively (the keyword asks ``FaultInjector.guard_deployment``), and the fault a ledger entry whose revert step stops
its experiment (``FisKeywords.inject_service_fault``); ``${FIS_FAULT_DURATION}`` bounds it when nothing does.
"""

from __future__ import annotations

from ...core.base import LibraryContext
from ..apitier.aws import AwsApiTier
from ..fis import FisKeywords
from ..injector import FaultInjector
from ..serviceroute.aws import PACKET_LOSS, check_sources
from .base import EcsRoute, check_fault_name


def ecs_endpoint_name(region: str) -> str:
    """The domain of ECS's Regional endpoint (AWS General Reference, "Amazon ECS endpoints and quotas")."""
    return f"ecs.{region}.amazonaws.com"


class AwsEcsRoute(EcsRoute):
    name = "API service's route to ECS (FIS packet loss with sources)"

    def __init__(self, ctx: LibraryContext, injector: FaultInjector, fis: FisKeywords):
        self.ctx = ctx
        self.injector = injector
        self.fis = fis
        self.tier = AwsApiTier(ctx, injector, fis)  # the API service: its name, checks and stop alarm

    def sources(self) -> str:
        configured = str(self.ctx.profile.get("ECS_FAULT_SOURCES", "") or "").strip()
        region = str(self.ctx.profile.get("AWS_REGION", "") or "us-east-1")
        return check_sources(
            configured or ecs_endpoint_name(region),
            variable="ECS_FAULT_SOURCES",
            example=f"{ecs_endpoint_name(region)}, or a VPC interface endpoint's addresses",
        )

    def _what(self) -> str:
        return f"inject {PACKET_LOSS} into the API tasks' traffic to ECS ({self.sources()})"

    def check(self, fault: str) -> None:
        """Before a test creates anything: what the API-tier faults need (`AwsApiTier.check_action`)."""
        check_fault_name(fault)
        self.tier.check_action(PACKET_LOSS, self._what())

    def cut_off(self) -> str:
        self.tier.stop_alarm(self._what())
        service = self.tier.service()
        # On Fargate the network actions need useEcsFaultInjectionEndpoints=true (FIS user guide, "Use the AWS FIS
        # aws:ecs:task actions"); the prerequisite check already demands enableFaultInjection in the task definition.
        return self.fis.inject_service_fault(
            PACKET_LOSS,
            str(service["serviceName"]),
            str(service["taskDefinition"]),
            f"ECS cut off from the API tier: FIS {PACKET_LOSS} to {self.sources()} on every task of "
            f"{service['serviceName']}",
            sources=self.sources(),
            useEcsFaultInjectionEndpoints="true",
            lossPercent="100",
        )
