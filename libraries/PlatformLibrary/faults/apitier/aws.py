"""The API tier on AWS: the tasks of the API's ECS service behind an ALB target group, faulted through FIS.

The deployment names its API tier with the optional names of the deployment contract: ``${API_ECS_SERVICE}`` (the
service, in ``${ECS_CLUSTER}``), ``${API_TARGET_GROUP_ARN}`` (else the target group the service registers in) and
``${API_CONTAINER_PORT}`` (else the service's load balancer port). A target dies by FIS ``aws:ecs:stop-task`` on its
task (ECS deregisters it from the target group, drains it and stops it; the service starts a replacement) and hangs
by FIS ``aws:ecs:task-network-blackhole-port`` on the API container's port, ingress: the ALB's health checks and
requests get no answer, so it must take the target out of rotation. Both are faults on the deployment, not on this
run's sessions: besides the chaos guard they need ``${CHAOS_SCOPE}`` ``deployment``, the deployment held
exclusively (``FaultInjector.guard_deployment``) and the FIS stop alarm, even for a dry run. Each is a fault ledger
entry whose revert step stops its experiment (``FisKeywords.inject_task_fault``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ...aws.apitier import api_targets, container_port_of, describe_service, service_tasks, target_group_of
from ...aws.safety import ChaosGuard, ChaosNotAllowed
from ...aws.session import AwsError, call, clients_for
from ...core.base import LibraryContext
from ..fis import FisKeywords
from ..injector import FaultInjector
from ..ledger import ChaosError
from .base import ApiTier, check_fault_name

ACTIONS = {"kill": "aws:ecs:stop-task", "hang": "aws:ecs:task-network-blackhole-port"}


class AwsApiTier(ApiTier):
    name = "ECS service behind an ALB target group"

    def __init__(
        self, ctx: LibraryContext, injector: FaultInjector, fis: FisKeywords, service_key: str = "API_ECS_SERVICE"
    ):
        self.ctx = ctx
        self.injector = injector
        self.fis = fis
        # The profile variable naming the ECS service whose tasks are faulted: the API tier's, unless a route to an
        # AWS service is made from other tasks (METRICS_ECS_SERVICE: the tasks that publish the platform's metrics).
        self.service_key = service_key

    # ------------------------------------------------------------------ names
    def _value(self, key: str) -> str:
        return str(self.ctx.endpoints.get(key, "") or "")

    def _service_name(self) -> str:
        service = self._value(self.service_key)
        if not service and self.service_key != "API_ECS_SERVICE":
            raise ChaosNotAllowed(
                f"The deployment names no ECS service for this fault: ${{{self.service_key}}} (env {self.service_key}, "
                "default the API service) is empty. Name the ECS service whose tasks make the calls "
                "(docs/deployment-contract.md)."
            )
        if not service:
            raise ChaosNotAllowed(
                "The deployment names no API service: ${API_ECS_SERVICE} (env API_ECS_SERVICE) is empty, so the API "
                "tier's targets cannot be found or faulted. Name the ECS service that runs the API behind the ALB "
                '(docs/deployment-contract.md, "The API tier").'
            )
        return service

    def _clients(self) -> tuple[Any, Any]:
        clients = clients_for(self.ctx)
        return clients.client("ecs"), clients.client("elbv2")

    def service(self) -> dict:
        """The API service as DescribeServices returns it (fails naming it when the cluster has none such)."""
        ecs, _ = self._clients()
        return describe_service(ecs, self._cluster(), self._service_name())

    def _cluster(self) -> str:
        cluster = self._value("ECS_CLUSTER")
        if not cluster:
            raise AwsError("Profile variable ${ECS_CLUSTER} is empty; the API service runs in the deployment cluster.")
        return cluster

    def _port(self, service: dict) -> int:
        configured = int(self.ctx.profile.get("API_CONTAINER_PORT", 0) or 0)
        if configured:
            return configured
        ecs, _ = self._clients()
        definition = call(
            ecs, "describe_task_definition", "Reading the API task definition", taskDefinition=service["taskDefinition"]
        )["taskDefinition"]
        return container_port_of(service, definition)

    # ------------------------------------------------------------------ reading
    def targets(self) -> list[dict[str, Any]]:
        ecs, elbv2 = self._clients()
        service = self.service()
        group = target_group_of(service, self._value("API_TARGET_GROUP_ARN"))
        return api_targets(elbv2, group, service_tasks(ecs, self._cluster(), service["serviceName"]))

    def can_fault(self, target: dict[str, Any]) -> bool:
        return bool(target.get("task"))

    # ------------------------------------------------------------------ checks
    def stop_alarm(self, what: str) -> str:
        """``${FIS_STOP_ALARM_ARN}``; skips naming ``what`` when it is empty (a fault on the deployment needs it, dry
        run or not)."""
        alarm = self._value("FIS_STOP_ALARM_ARN")
        if not alarm:
            raise ChaosNotAllowed(
                f"Refused to {what}: it hits the whole deployment, and ${{FIS_STOP_ALARM_ARN}} is empty. A fault on "
                "the deployment runs only with a CloudWatch alarm that stops its FIS experiment, also in a dry run."
            )
        return alarm

    def check(self, fault: str) -> None:
        """Before a test creates anything: the profile's opt-ins (skip), the deployment's names (skip when not
        named, fail when named but not usable), the stop alarm, and FIS's prerequisites in the API task definition."""
        action = ACTIONS[check_fault_name(fault)]
        service = self.check_action(action, f"inject {action} into the API tier")
        target_group_of(service, self._value("API_TARGET_GROUP_ARN"))
        if fault == "hang":
            self._port(service)

    def check_action(self, action: str, what: str) -> dict:
        """What every FIS fault on the API service's tasks needs, asked before anything is created; returns the
        service (DescribeServices). Skips (`ChaosNotAllowed`) naming ``what`` when the profile does not opt in
        (``${CHAOS_SCOPE}``, chaos refused) or a name is missing (the API service, the FIS role, the stop alarm);
        fails when a named thing is not usable (no such service or alarm, an alarm in ALARM, FIS's prerequisites
        missing from the API task definition)."""
        ChaosGuard.from_context(self.ctx).check_deployment(what)
        self._service_name()
        if not self._value("FIS_ROLE_ARN"):
            raise ChaosNotAllowed(f"Refused to {what}: ${{FIS_ROLE_ARN}} is empty; FIS needs the role it acts with.")
        self.fis.check_stop_alarm(self.stop_alarm(what))
        service = self.service()
        problems = self.fis.task_definition_problems(action, [service["taskDefinition"]])
        if problems:
            raise AwsError(
                f"FIS cannot run {action} in the API tasks: " + "; ".join(problems) + ". See "
                "docs/deployment-contract.md (The API tier)."
            )
        return service

    # ------------------------------------------------------------------ faults
    def _task_of(self, target: dict[str, Any], what: str) -> str:
        if not target.get("task"):
            raise ChaosError(
                f"Cannot {what} API target {target['id']}: no running task of {self._service_name()} has its address."
            )
        return str(target["task"])

    def kill(self, target: dict[str, Any]) -> None:
        task = self._task_of(target, "kill")
        self.stop_alarm("stop an API task")
        service = self.service()
        self.fis.inject_task_fault(
            ACTIONS["kill"],
            task,
            service["taskDefinition"],
            f"FIS stop-task on API target {target['id']} (task {task})",
            whose=f"the API tasks ({service['serviceName']})",
        )

    def hang(self, target: dict[str, Any]) -> str:
        task = self._task_of(target, "hang")
        self.stop_alarm("black-hole an API task's port")
        service = self.service()
        port = self._port(service)
        return self.fis.inject_task_fault(
            ACTIONS["hang"],
            task,
            service["taskDefinition"],
            f"FIS blackhole of ingress port {port} on API target {target['id']} (task {task})",
            whose=f"the API tasks ({service['serviceName']})",
            duration=timedelta(seconds=self.ctx.profile.seconds("FIS_FAULT_DURATION", "10 min")),
            port=str(port),
            protocol="tcp",
            trafficType="ingress",
        )
