"""The deployment's API tier on AWS: its ECS service, the service's tasks, and which ALB target each task is.

Plain functions over boto3 clients (the API tier backend in ``faults/apitier/aws.py`` wraps them). The API tier is an
ECS service (``${API_ECS_SERVICE}``) in the deployment's cluster whose tasks an ALB target group
(``${API_TARGET_GROUP_ARN}``, or the one the service names in ``loadBalancers``) routes to. On Fargate the target group
is of target type ``ip``: a target's ``Id`` is its task's private address (the ``privateIPv4Address`` of the task's
ENI attachment) and its ``Port`` the container port the service registers (ECS developer guide, "Use a load balancer
to distribute Amazon ECS service traffic"). A target is tied to its task by that address; where several tasks share
one address (bridge networking, or the embedded platform's AWS face, where every task is 127.0.0.1) by the host port
of the task's ``networkBindings`` as well.
"""

from __future__ import annotations

from typing import Any

from .fis import essential_container_port
from .observe import target_health
from .session import AwsError, call, paginate

DESCRIBE_BATCH = 100
# Target states in which the ALB sends a target no new request (ELB API reference, "TargetHealth").
OUT_OF_ROTATION = ("unhealthy", "draining", "unused", "unhealthy.draining", "unavailable")


def describe_service(ecs: Any, cluster: str, service: str) -> dict:
    """The service as DescribeServices returns it; fails naming it when the cluster has no such service."""
    answer = call(ecs, "describe_services", f"Reading the API service {service}", cluster=cluster, services=[service])
    found = [s for s in answer.get("services", []) if s.get("status") != "INACTIVE"]
    if not found:
        raise AwsError(
            f"The API service {service} (${{API_ECS_SERVICE}}) is not a service of cluster {cluster}: "
            f"{answer.get('failures') or 'inactive'}."
        )
    return found[0]


def service_tasks(ecs: Any, cluster: str, service: str) -> list[dict]:
    """The tasks ECS wants running for ``service`` (ListTasks by ``serviceName``, then DescribeTasks)."""
    arns = paginate(
        ecs,
        "list_tasks",
        "taskArns",
        f"Listing the tasks of the API service {service}",
        cluster=cluster,
        serviceName=service,
        desiredStatus="RUNNING",
    )
    tasks: list[dict] = []
    for start in range(0, len(arns), DESCRIBE_BATCH):
        answer = call(
            ecs, "describe_tasks", "Reading the API tasks", cluster=cluster, tasks=arns[start : start + DESCRIBE_BATCH]
        )
        tasks.extend(answer.get("tasks", []))
    return tasks


def target_group_of(service: dict, configured: str = "") -> str:
    """``configured`` (``${API_TARGET_GROUP_ARN}``), else the one target group the service registers its tasks in."""
    if configured:
        return configured
    groups = [lb["targetGroupArn"] for lb in service.get("loadBalancers") or [] if lb.get("targetGroupArn")]
    if len(groups) != 1:
        raise AwsError(
            f"The API service {service.get('serviceName')} registers its tasks in {len(groups)} target group(s) "
            f"{groups}; set ${{API_TARGET_GROUP_ARN}} to the one of the ALB in front of the API."
        )
    return groups[0]


def container_port_of(service: dict, definition: dict, configured: int = 0) -> int:
    """The API container's port: ``configured`` (``${API_CONTAINER_PORT}``), else the container port the service
    registers with its load balancer, else the first port mapping of the task definition's essential container."""
    if configured:
        return int(configured)
    for balancer in service.get("loadBalancers") or []:
        if balancer.get("containerPort"):
            return int(balancer["containerPort"])
    port = essential_container_port(definition)
    if port is not None:
        return port
    raise AwsError(
        f"Neither the API service nor its task definition {definition.get('family')} names the API's container port; "
        "set ${API_CONTAINER_PORT}."
    )


def task_addresses(task: dict) -> tuple[set[str], set[int]]:
    """A task's private addresses (ENI attachment, container network interfaces) and its bound host ports."""
    addresses = {
        str(detail.get("value"))
        for attachment in task.get("attachments") or []
        for detail in attachment.get("details") or []
        if detail.get("name") == "privateIPv4Address" and detail.get("value")
    }
    ports: set[int] = set()
    for container in task.get("containers") or []:
        interfaces = container.get("networkInterfaces") or []
        addresses |= {str(i["privateIpv4Address"]) for i in interfaces if i.get("privateIpv4Address")}
        ports |= {int(b["hostPort"]) for b in container.get("networkBindings") or [] if b.get("hostPort")}
    return addresses, ports


def task_of_target(target_id: str, port: int, tasks: list[dict]) -> str | None:
    """The ARN of the task behind the target (``Id``, ``Port``), or None when no running task of the service has it."""
    at_address = [t for t in tasks if target_id in task_addresses(t)[0]]
    if len(at_address) > 1:
        at_address = [t for t in at_address if int(port) in task_addresses(t)[1]]
    return str(at_address[0]["taskArn"]) if len(at_address) == 1 else None


def api_targets(elbv2: Any, target_group: str, tasks: list[dict]) -> list[dict]:
    """Every target of the group with its health and its task: ``id`` (``<address>:<port>``), ``address``,
    ``port``, ``state``, ``reason``, ``description``, ``task`` (ARN, None when no running task has it)."""
    found = []
    for target in target_health(elbv2, [target_group]):
        address, port = str(target["id"]), int(target["port"] or 0)
        found.append(
            {
                "id": f"{address}:{port}",
                "address": address,
                "port": port,
                "state": target["state"],
                "reason": target["reason"],
                "description": target["description"],
                "task": task_of_target(address, port, tasks),
            }
        )
    return found
