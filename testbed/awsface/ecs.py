"""The ECS JSON 1.1 API over the embedded platform's tasks, for the calls the suite makes.

``X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Operation>`` with a JSON body, answered as ECS answers: the
same field names, epoch-second timestamps, ``failures`` for tasks it does not know, and errors as
``{"__type": ..., "message": ...}`` with HTTP 400 (ECS API reference, "Common Errors"; botocore reads ``__type``).

Operations: ListTasks, DescribeTasks, StopTask, DescribeServices, DescribeTaskDefinition, DescribeClusters,
ListTagsForResource. RunTask is refused with a clear error: the session service starts tasks itself (a task is
created when the platform starts a container), and the suite never calls it.
"""

from __future__ import annotations

from collections.abc import Callable
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


class EcsEmulator:
    """Answers ECS operations from a :class:`TaskRegistry`; ``counts()`` gives the service's task counts."""

    def __init__(
        self,
        registry: TaskRegistry,
        counts: Callable[[], dict[str, int]],
        memory_mib: int = 256,
        stop_timeout: int = 2,
    ) -> None:
        self.registry = registry
        self.counts = counts
        self.memory_mib = memory_mib
        self.stop_timeout = stop_timeout

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
            if name not in (registry.service, registry.service_arn):
                failures.append({"arn": str(name), "reason": "MISSING"})
                continue
            counts = self.counts()
            services.append(
                {
                    "serviceArn": registry.service_arn,
                    "serviceName": registry.service,
                    "clusterArn": registry.cluster_arn,
                    "status": "ACTIVE",
                    "launchType": "FARGATE",
                    "taskDefinition": registry.task_definition_arn,
                    "desiredCount": counts.get("desired", 0),
                    "runningCount": counts.get("running", 0),
                    "pendingCount": counts.get("pending", 0),
                    "deployments": [
                        {
                            "id": f"ecs-svc/{registry.deployment_id}",
                            "status": "PRIMARY",
                            "taskDefinition": registry.task_definition_arn,
                            "desiredCount": counts.get("desired", 0),
                            "runningCount": counts.get("running", 0),
                            "pendingCount": counts.get("pending", 0),
                            "rolloutState": "COMPLETED",
                        }
                    ],
                }
            )
        return {"services": services, "failures": failures}

    def op_DescribeTaskDefinition(self, body: dict[str, Any]) -> dict[str, Any]:
        registry = self.registry
        wanted = str(body.get("taskDefinition") or "")
        family = registry.task_definition_arn.rsplit("/", 1)[-1]
        if wanted not in (registry.task_definition_arn, family, family.split(":", 1)[0]):
            raise EcsError("ClientException", "Unable to describe task definition.")
        return {
            "taskDefinition": {
                "taskDefinitionArn": registry.task_definition_arn,
                "family": registry.family,
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
                        "name": CONTAINER_NAME,
                        "image": f"{ACCOUNT_ID}.dkr.ecr.{registry.region}.amazonaws.com/session-agent:latest",
                        "essential": True,
                        "stopTimeout": self.stop_timeout,
                        "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
                    },
                    {
                        # FIS runs its aws:ecs:task-* actions through an SSM agent container in the task.
                        "name": "amazon-ssm-agent",
                        "image": "public.ecr.aws/amazon-ssm-agent/amazon-ssm-agent:latest",
                        "essential": False,
                        "environment": [{"name": "MANAGED_INSTANCE_ROLE_NAME", "value": "SSMManagedInstanceRole"}],
                    },
                ],
            },
            "tags": [],
        }
