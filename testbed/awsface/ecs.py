"""The ECS JSON 1.1 API over the embedded platform's tasks, for the calls the suite makes.

``X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Operation>`` with a JSON body, answered as ECS answers: the
same field names, epoch-second timestamps, ``failures`` for tasks it does not know, and errors as
``{"__type": ..., "message": ...}`` with HTTP 400 (ECS API reference, "Common Errors"; botocore reads ``__type``).

Operations: ListTasks, DescribeTasks, StopTask, DescribeServices, DescribeTaskDefinition, DescribeClusters,
ListTagsForResource. RunTask is refused with a clear error: the session service starts tasks itself (a task is
created when the platform starts a container), and the suite never calls it.

The cluster has the session service and, with ``services``, others: the API tier's service, whose tasks are the API
targets behind the load balancer (:class:`ServiceSpec`: its task definition family, container, the port its target
group sends to, its desired count and target group). DescribeServices answers their counts from the registry (a
task RUNNING or on its way there) and names the target group in ``loadBalancers``, as ECS does for a service
behind an ALB (ECS API reference, "DescribeServices", "LoadBalancer").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from testbed.awsface.tasks import ACCOUNT_ID, CONTAINER_NAME, Task, TaskRegistry

TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
MAX_RESULTS = 100


class EcsError(Exception):
    """An ECS error answer: its ``__type`` and message."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _invalid(message: str) -> EcsError:
    return EcsError("InvalidParameterException", message)


@dataclass(frozen=True)
class ServiceSpec:
    """Another service of the cluster (the API tier's): what DescribeServices and DescribeTaskDefinition say of it."""

    name: str
    family: str
    container: str
    container_port: int
    desired: Callable[[], int]
    target_group_arn: str = ""


class EcsEmulator:
    """Answers ECS operations from a :class:`TaskRegistry`; ``counts()`` gives the service's task counts."""

    def __init__(
        self,
        registry: TaskRegistry,
        counts: Callable[[], dict[str, int]],
        memory_mib: int = 256,
        stop_timeout: int = 2,
        services: tuple[ServiceSpec, ...] = (),
    ) -> None:
        self.registry = registry
        self.counts = counts
        self.memory_mib = memory_mib
        self.stop_timeout = stop_timeout
        self.services = {spec.name: spec for spec in services}

    def handle(self, target: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Answer one request: ``target`` is the X-Amz-Target header, ``body`` the parsed JSON."""
        operation = target[len(TARGET_PREFIX) :] if target.startswith(TARGET_PREFIX) else ""
        handler = getattr(self, f"op_{operation}", None) if operation else None
        try:
            if handler is None:
                raise EcsError(
                    "UnsupportedFeatureException" if operation else "UnknownOperationException",
                    f"The embedded platform's ECS face does not emulate {operation or target!r}; it serves "
                    "ListTasks, DescribeTasks, StopTask, DescribeServices, DescribeTaskDefinition, DescribeClusters "
                    "and ListTagsForResource (docs/aws-emulation.md).",
                )
            if not isinstance(body, dict):
                raise EcsError("SerializationException", "The request body must be a JSON object.")
            return 200, handler(body)
        except EcsError as error:
            return error.status, {"__type": error.code, "message": error.message}

    # ----- helpers ---------------------------------------------------------------------------------------------
    def _cluster(self, body: dict[str, Any]) -> None:
        given = str(body.get("cluster") or "default")
        if given not in (self.registry.cluster, self.registry.cluster_arn):
            raise EcsError("ClusterNotFoundException", "Cluster not found.")

    def _task(self, reference: Any) -> Task:
        task = self.registry.find(str(reference or ""))
        if task is None:
            raise _invalid("The referenced task was not found.")
        return task

    @staticmethod
    def _family(task: Task) -> str:
        return task.task_definition_arn.rsplit("/", 1)[-1].split(":", 1)[0]

    # ----- operations ------------------------------------------------------------------------------------------
    def op_ListTasks(self, body: dict[str, Any]) -> dict[str, Any]:
        self._cluster(body)
        desired = str(body.get("desiredStatus") or "RUNNING")
        if desired not in ("RUNNING", "PENDING", "STOPPED"):
            raise _invalid(f"desiredStatus must be RUNNING, PENDING or STOPPED, not {desired!r}.")
        limit = int(body.get("maxResults") or MAX_RESULTS)
        if not 1 <= limit <= MAX_RESULTS:
            raise _invalid("maxResults must be between 1 and 100.")
        tasks = [
            t for t in self.registry.tasks() if t.desired_status == ("STOPPED" if desired == "STOPPED" else "RUNNING")
        ]
        if desired == "PENDING":
            tasks = [t for t in tasks if t.last_status in ("PROVISIONING", "PENDING")]
        if body.get("startedBy"):
            tasks = [t for t in tasks if t.started_by == body["startedBy"]]
        if body.get("serviceName"):
            tasks = [t for t in tasks if t.group == f"service:{body['serviceName']}"]
        if body.get("family"):
            tasks = [t for t in tasks if self._family(t) == body["family"]]
        if body.get("launchType") not in (None, "", "FARGATE"):
            tasks = []
        start = int(body.get("nextToken") or 0)
        page = tasks[start : start + limit]
        answer: dict[str, Any] = {"taskArns": [t.arn for t in page]}
        if start + limit < len(tasks):
            answer["nextToken"] = str(start + limit)
        return answer

    def op_DescribeTasks(self, body: dict[str, Any]) -> dict[str, Any]:
        self._cluster(body)
        references = body.get("tasks")
        if not isinstance(references, list) or not references:
            raise _invalid("Tasks cannot be empty.")
        if len(references) > MAX_RESULTS:
            raise _invalid("Tasks can have at most 100 items.")
        with_tags = "TAGS" in (body.get("include") or [])
        tasks, failures = [], []
        for reference in references:
            task = self.registry.find(str(reference))
            if task is None:
                failures.append({"arn": str(reference), "reason": "MISSING"})
            else:
                tasks.append(self.registry.describe(task, with_tags))
        return {"tasks": tasks, "failures": failures}

    def op_StopTask(self, body: dict[str, Any]) -> dict[str, Any]:
        self._cluster(body)
        reason = str(body.get("reason") or "")
        if len(reason) > 1024:
            raise _invalid("reason can be at most 1024 characters.")
        task = self.registry.stop_task(self._task(body.get("task")).arn, reason)
        assert task is not None
        return {"task": self.registry.describe(task)}

    def op_ListTagsForResource(self, body: dict[str, Any]) -> dict[str, Any]:
        task = self._task(body.get("resourceArn"))
        return {"tags": [{"key": k, "value": v} for k, v in task.tags.items()]}

    def op_DescribeClusters(self, body: dict[str, Any]) -> dict[str, Any]:
        registry = self.registry
        clusters, failures = [], []
        for name in body.get("clusters") or ["default"]:
            if name in (registry.cluster, registry.cluster_arn):
                counts = self.counts()
                clusters.append(
                    {
                        "clusterArn": registry.cluster_arn,
                        "clusterName": registry.cluster,
                        "status": "ACTIVE",
                        "runningTasksCount": counts.get("running", 0),
                        "pendingTasksCount": counts.get("pending", 0),
                        "activeServicesCount": 1,
                    }
                )
            else:
                failures.append({"arn": str(name), "reason": "MISSING"})
        return {"clusters": clusters, "failures": failures}

    def op_DescribeServices(self, body: dict[str, Any]) -> dict[str, Any]:
        self._cluster(body)
        registry = self.registry
        services, failures = [], []
        for name in body.get("services") or []:
            spec = self._other_service(str(name))
            if spec is not None:
                services.append(self._describe_other(spec))
                continue
            if name not in (registry.service, registry.service_arn):
                failures.append({"arn": str(name), "reason": "MISSING"})
                continue
            counts = self.counts()
            services.append(
                self._service(
                    registry.service,
                    registry.task_definition_arn,
                    counts.get("desired", 0),
                    counts.get("running", 0),
                    counts.get("pending", 0),
                )
            )
        return {"services": services, "failures": failures}

    def _service_arn(self, name: str) -> str:
        return self.registry.service_arn.rsplit("/", 1)[0] + f"/{name}"

    def _other_service(self, reference: str) -> ServiceSpec | None:
        name = reference.rsplit("/", 1)[-1] if reference.startswith("arn:") else reference
        spec = self.services.get(name)
        if spec is None or reference not in (spec.name, self._service_arn(spec.name)):
            return None
        return spec

    def _describe_other(self, spec: ServiceSpec) -> dict[str, Any]:
        tasks = [t for t in self.registry.service_tasks(spec.name) if t.desired_status == "RUNNING" and t.live]
        running = sum(t.last_status == "RUNNING" for t in tasks)
        pending = sum(t.last_status in ("PROVISIONING", "PENDING") for t in tasks)
        answer = self._service(spec.name, self.registry.definition_arn(spec.family), spec.desired(), running, pending)
        if spec.target_group_arn:
            answer["loadBalancers"] = [
                {
                    "targetGroupArn": spec.target_group_arn,
                    "containerName": spec.container,
                    "containerPort": spec.container_port,
                }
            ]
        return answer

    def _service(self, name: str, definition: str, desired: int, running: int, pending: int) -> dict[str, Any]:
        registry = self.registry
        return {
            "serviceArn": self._service_arn(name),
            "serviceName": name,
            "clusterArn": registry.cluster_arn,
            "status": "ACTIVE",
            "launchType": "FARGATE",
            "taskDefinition": definition,
            "desiredCount": desired,
            "runningCount": running,
            "pendingCount": pending,
            "deployments": [
                {
                    "id": f"ecs-svc/{registry.deployment_id}",
                    "status": "PRIMARY",
                    "taskDefinition": definition,
                    "desiredCount": desired,
                    "runningCount": running,
                    "pendingCount": pending,
                    "rolloutState": "COMPLETED",
                }
            ],
        }

    def op_DescribeTaskDefinition(self, body: dict[str, Any]) -> dict[str, Any]:
        registry = self.registry
        wanted = str(body.get("taskDefinition") or "")
        known = {registry.family: (CONTAINER_NAME, 8080, "session-agent")}
        for spec in self.services.values():
            known[spec.family] = (spec.container, spec.container_port, spec.family)
        for family, (container, port, image) in known.items():
            arn = registry.definition_arn(family)
            if wanted in (arn, f"{family}:1", family):
                return {"taskDefinition": self._definition(arn, family, container, port, image), "tags": []}
        raise EcsError("ClientException", "Unable to describe task definition.")

    def _definition(self, arn: str, family: str, container: str, port: int, image: str) -> dict[str, Any]:
        return {
            "taskDefinitionArn": arn,
            "family": family,
            "revision": 1,
            "status": "ACTIVE",
            "networkMode": "awsvpc",
            "pidMode": "task",
            "requiresCompatibilities": ["FARGATE"],
            "cpu": "1024",
            "memory": str(self.memory_mib),
            "enableFaultInjection": True,
            "containerDefinitions": [
                {
                    "name": container,
                    "image": f"{ACCOUNT_ID}.dkr.ecr.{self.registry.region}.amazonaws.com/{image}:latest",
                    "essential": True,
                    "stopTimeout": self.stop_timeout,
                    "portMappings": [{"containerPort": port, "protocol": "tcp"}],
                },
                {
                    # FIS runs its aws:ecs:task-* actions through an SSM agent container in the task.
                    "name": "amazon-ssm-agent",
                    "image": "public.ecr.aws/amazon-ssm-agent/amazon-ssm-agent:latest",
                    "essential": False,
                    "environment": [{"name": "MANAGED_INSTANCE_ROLE_NAME", "value": "SSMManagedInstanceRole"}],
                },
            ],
        }
