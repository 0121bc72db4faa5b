"""The AWS face's API tier: the API targets as the tasks of an ECS service, their health as ELBv2's
DescribeTargetHealth tells it, and FIS aws:ecs:task-network-blackhole-port on an API task, read with real boto3
clients (botocore parses the face's JSON and XML as it parses AWS's).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from testbed.awsface.actions import BlackholedTarget, NoEffect, ProcessFaultActions
from testbed.awsface.ecs import EcsEmulator, ServiceSpec
from testbed.awsface.elbv2 import ElbV2Emulator
from testbed.awsface.server import serve
from testbed.awsface.tasks import TaskRegistry

CLUSTER, SESSIONS, API = "test-cluster", "session-service", "api-service"
GROUP = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/0123456789abcdef"
SLEEPER = "import time\nwhile True: time.sleep(0.05)"


class FakeBalancer:
    """The load balancer's view (``GET /targets``) and its black holes, as the API tier hands them to the face."""

    def __init__(self) -> None:
        self.view: list[dict[str, Any]] | None = []
        self.targets: dict[str, str] = {}  # task ARN -> target id
        self.holes: list[tuple[str, bool]] = []

    def target_of_task(self, task_arn: str) -> str | None:
        return self.targets.get(task_arn)

    def blackhole(self, ident: str, on: bool) -> bool:
        self.holes.append((ident, on))
        return True


class Face:
    def __init__(self) -> None:
        self.registry = TaskRegistry(CLUSTER, SESSIONS, "us-east-1", stop_timeout=0.5)
        self.balancer = FakeBalancer()
        spec = ServiceSpec(API, "api", "api", 8080, lambda: 2, GROUP)
        ecs = EcsEmulator(self.registry, lambda: {"running": 0, "pending": 0, "desired": 0}, services=(spec,))
        self.server = serve(ecs, _NoFis(), ElbV2Emulator(GROUP, lambda: self.balancer.view))
        self.ecs, self.elbv2 = self.client("ecs"), self.client("elbv2")
        self.procs: list[subprocess.Popen[bytes]] = []

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.server.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def api_task(self, port: int, ident: str):
        task = self.registry.new_task(service=API, family="api", container_name="api", container_port=8080)
        proc = subprocess.Popen([sys.executable, "-c", SLEEPER])
        self.procs.append(proc)
        self.registry.spawned(task.arn, None, proc, "", host_port=port)
        self.registry.ready(proc.pid)
        self.balancer.targets[task.arn] = ident
        return task

    def health(self, **params: Any) -> list[tuple[str, int, str, str]]:
        found = self.elbv2.describe_target_health(TargetGroupArn=GROUP, **params)["TargetHealthDescriptions"]
        return [
            (d["Target"]["Id"], d["Target"]["Port"], d["TargetHealth"]["State"], d["TargetHealth"].get("Reason", ""))
            for d in found
        ]


class _NoFis:
    def handle(self, method, path, query, body):
        return 404, {"message": "no FIS here"}, {"x-amzn-ErrorType": "ResourceNotFoundException"}


@pytest.fixture
def face() -> Iterator[Face]:
    made = Face()
    yield made
    for proc in made.procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=5)
    made.server.shutdown()
    made.registry.close()


def test_the_api_targets_are_the_tasks_of_their_own_service(face: Face) -> None:
    first, second = face.api_task(40001, "api-1"), face.api_task(40002, "api-2")
    face.registry.new_task("s-1")  # a session task of the session service, on its way up
    listed = face.ecs.list_tasks(cluster=CLUSTER, serviceName=API)["taskArns"]
    assert sorted(listed) == sorted([first.arn, second.arn])
    [service] = face.ecs.describe_services(cluster=CLUSTER, services=[API])["services"]
    assert (service["desiredCount"], service["runningCount"], service["pendingCount"]) == (2, 2, 0)
    assert service["loadBalancers"] == [{"targetGroupArn": GROUP, "containerName": "api", "containerPort": 8080}]
    assert service["taskDefinition"].endswith(":task-definition/api:1")
    [task] = face.ecs.describe_tasks(cluster=CLUSTER, tasks=[first.arn])["tasks"]
    assert task["group"] == f"service:{API}"
    assert task["attachments"][0]["details"] == [{"name": "privateIPv4Address", "value": "127.0.0.1"}]
    [binding] = task["containers"][0]["networkBindings"]
    assert (binding["containerPort"], binding["hostPort"]) == (8080, 40001)
    assert task["containers"][0]["name"] == "api"
    # One task stops: the service runs one short of its desired count until something replaces it.
    face.ecs.stop_task(cluster=CLUSTER, task=first.arn)
    [service] = face.ecs.describe_services(cluster=CLUSTER, services=[API])["services"]
    assert (service["desiredCount"], service["runningCount"]) == (2, 1)
    missing = face.ecs.describe_services(cluster=CLUSTER, services=["nope"])
    assert missing["failures"] == [{"arn": "nope", "reason": "MISSING"}]


def test_the_api_task_definition_lets_fis_in(face: Face) -> None:
    from PlatformLibrary.aws.fis import FIS_ECS_ACTIONS, fault_injection_problems

    definition = face.ecs.describe_task_definition(taskDefinition="api:1")["taskDefinition"]
    assert definition["containerDefinitions"][0]["portMappings"] == [{"containerPort": 8080, "protocol": "tcp"}]
    for action in ("aws:ecs:stop-task", "aws:ecs:task-network-blackhole-port"):
        assert fault_injection_problems(definition, FIS_ECS_ACTIONS[action]) == [], action


def test_describe_target_health_answers_from_the_load_balancer(face: Face) -> None:
    face.balancer.view = [
        {"id": "api-1", "port": 40001, "state": "healthy", "reason": ""},
        {"id": "api-2", "port": 40002, "state": "unhealthy", "reason": "Target.Timeout"},
        {"id": "api-3", "port": 40003, "state": "draining", "reason": "Target.DeregistrationInProgress"},
        {"id": "api-4", "port": 40004, "state": "initial", "reason": "Elb.RegistrationInProgress"},
    ]
    assert face.health() == [
        ("127.0.0.1", 40001, "healthy", ""),
        ("127.0.0.1", 40002, "unhealthy", "Target.Timeout"),
        ("127.0.0.1", 40003, "draining", "Target.DeregistrationInProgress"),
        ("127.0.0.1", 40004, "initial", "Elb.RegistrationInProgress"),
    ]
    described = face.elbv2.describe_target_health(TargetGroupArn=GROUP)["TargetHealthDescriptions"]
    assert described[1]["TargetHealth"]["Description"] == "Request timed out"
    assert described[1]["HealthCheckPort"] == "40002"
    assert "Description" not in described[0]["TargetHealth"]  # healthy: no reason, no description
    asked = face.health(Targets=[{"Id": "127.0.0.1", "Port": 40002}, {"Id": "127.0.0.1", "Port": 49999}])
    assert asked == [
        ("127.0.0.1", 40002, "unhealthy", "Target.Timeout"),
        ("127.0.0.1", 49999, "unused", "Target.NotRegistered"),
    ]


def test_describe_target_health_errors_are_the_service_model_s(face: Face) -> None:
    with pytest.raises(ClientError) as unknown:
        face.elbv2.describe_target_health(TargetGroupArn=GROUP.replace("0123", "9999"))
    assert unknown.value.response["Error"]["Code"] == "TargetGroupNotFound"
    assert isinstance(unknown.value, face.elbv2.exceptions.TargetGroupNotFoundException)
    face.balancer.view = None  # the load balancer does not answer
    quick = boto3.client(
        "elbv2",
        endpoint_url=face.server.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )
    with pytest.raises(ClientError) as unavailable:
        quick.describe_target_health(TargetGroupArn=GROUP)
    assert unavailable.value.response["Error"]["Code"] == "HealthUnavailable"
    with pytest.raises(ClientError) as other:
        face.elbv2.describe_load_balancers()
    assert other.value.response["Error"]["Code"] == "InvalidAction"


def test_fis_blackhole_port_on_an_api_task_black_holes_its_target_at_the_load_balancer(face: Face) -> None:
    task = face.api_task(40001, "api-1")
    actions = ProcessFaultActions(face.registry, lambda: None, None, lambda t: None, face.balancer, api_port=8080)
    hole = actions.network_blackhole_port(task, 8080, "tcp", "ingress", "fis-x")
    assert isinstance(hole, BlackholedTarget) and face.balancer.holes == [("api-1", True)]
    hole.revert()
    hole.revert()  # reverting twice frees it once
    assert face.balancer.holes == [("api-1", True), ("api-1", False)]
    # Another port, udp or egress: nothing the target serves goes through it, so nothing is held.
    for port, protocol, traffic in ((9090, "tcp", "ingress"), (8080, "udp", "ingress"), (8080, "tcp", "egress")):
        assert isinstance(actions.network_blackhole_port(task, port, protocol, traffic, "fis-y"), NoEffect)
    assert len(face.balancer.holes) == 2
