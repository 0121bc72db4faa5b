"""Helpers for the AWS keyword tests (no tests here): a library on an AWS profile, moto-made deployments.

Everything runs in-process against moto (``mock_aws``); ECS tasks use ``MOTO_ECS_NEW_ARN`` and moto's manual
state transitions, which the fixtures pin so that a task only moves when a test says so.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_api import state_manager

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "libraries"))

from PlatformLibrary import PlatformLibrary
from PlatformLibrary.core.endpoints import Endpoints
from PlatformLibrary.core.profile import Profile

REGION = "us-east-1"
ACCOUNT = DEFAULT_ACCOUNT_ID
CLUSTER = "sessions-staging"
SERVICE = "session-service"
TABLE = "sessions-staging"
FAMILY = "session-container"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/fis-experiments"
ALARM_NAME = "platform-5xx"
ALARM_ARN = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{ALARM_NAME}"
RUN_ID = "run1"

AWS_VALUES: dict[str, Any] = {
    "PROFILE": "aws",
    "TARGET": "aws",
    "AWS_REGION": REGION,
    "AWS_PROFILE": "",
    "ENVIRONMENT_NAME": "staging",
    "ECS_CLUSTER": CLUSTER,
    "ECS_SERVICE": SERVICE,
    "SESSIONS_TABLE": TABLE,
    "FIS_ROLE_ARN": ROLE_ARN,
    "FIS_STOP_ALARM_ARN": ALARM_ARN,
    "CHAOS_ALLOWED": True,
    "CHAOS_DRY_RUN": False,
    "FORCE_CHAOS_IN_PRODUCTION": False,
    "POLL_INTERVAL": "5 ms",
    "ECS_MIN_SCAN_INTERVAL": "0 s",
    "FIS_START_TIMEOUT": "2 s",
    "FIS_EXPERIMENT_TIMEOUT": "2 s",
    "RECOVERY_TIMEOUT": "2 s",
    "SESSION_START_TIMEOUT": "2 s",
    "CONTAINER_APPEAR_TIMEOUT": "1 s",
    "HTTP_TIMEOUT": "5 s",
    "PLATFORM_STATE_DIR": "/nonexistent",
}


def use_fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials through the default chain (environment), and nothing else that could reach AWS."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.setenv("MOTO_ECS_NEW_ARN", "true")


@contextmanager
def mocked_aws(task_moves_after: int = 10_000, experiment_moves_after: int = 1) -> Iterator[None]:
    """``mock_aws`` with ECS tasks pinned (manual transitions) and FIS experiments moving one state per read."""
    with mock_aws():
        state_manager.set_transition("ecs::task", {"progression": "manual", "times": task_moves_after})
        state_manager.set_transition("fis::experiment", {"progression": "manual", "times": experiment_moves_after})
        try:
            yield
        finally:
            state_manager.unset_transition("ecs::task")
            state_manager.unset_transition("fis::experiment")


def make_library(**values: Any) -> PlatformLibrary:
    """A library on an AWS profile (``values`` override ``AWS_VALUES``), outside Robot Framework."""
    library = PlatformLibrary(run_id=RUN_ID)
    library.profile = Profile(variables={**AWS_VALUES, **values})
    library.endpoints = Endpoints(library.profile)
    return library


def component(library: PlatformLibrary, keyword_name: str) -> Any:
    """The component object that implements ``keyword_name`` (e.g. the AwsKeywords instance)."""
    return library.keywords[keyword_name].__self__


# The SSM agent container FIS's aws:ecs:task actions run through (FIS user guide, "Use the AWS FIS aws:ecs:task
# actions"); its environment names the managed-instance role.
SSM_AGENT_CONTAINER = {
    "name": "amazon-ssm-agent",
    "image": "public.ecr.aws/amazon-ssm-agent/amazon-ssm-agent:latest",
    "memory": 128,
    "essential": False,
    "environment": [{"name": "MANAGED_INSTANCE_ROLE_NAME", "value": "SSMManagedInstanceRole"}],
}


class Deployment:
    """A small session platform deployment made with moto: cluster, task definition, subnet, table."""

    def __init__(self) -> None:
        self.ecs = boto3.client("ecs", region_name=REGION)
        self.ec2 = boto3.client("ec2", region_name=REGION)
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        self.ecs.create_cluster(clusterName=CLUSTER)
        self.ecs.register_task_definition(
            family=FAMILY,
            containerDefinitions=[{"name": "app", "image": "session-app:1", "memory": 2048}, SSM_AGENT_CONTAINER],
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            pidMode="task",  # what FIS's aws:ecs:task actions need on Fargate (docs/deployment-contract.md)
            cpu="1024",
            memory="2048",
        )
        self.enable_fault_injection(FAMILY)
        self.vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.ec2.modify_vpc_attribute(VpcId=self.vpc, EnableDnsHostnames={"Value": True})
        self.subnets = [
            self.ec2.create_subnet(VpcId=self.vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{zone}")[
                "Subnet"
            ]["SubnetId"]
            for i, zone in enumerate("ab")
        ]
        self.dynamodb.create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": "sessionId", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "sessionId", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )

    def run_task(
        self,
        session_id: str | None = None,
        started_by: str | None = None,
        group: str | None = None,
        tag_session: bool = True,
    ) -> str:
        """Start a Fargate task the way the platform does (``startedBy`` and tag ``sessionId``)."""
        kwargs: dict[str, Any] = {
            "cluster": CLUSTER,
            "taskDefinition": FAMILY,
            "launchType": "FARGATE",
            "networkConfiguration": {"awsvpcConfiguration": {"subnets": self.subnets[:1], "securityGroups": []}},
        }
        if started_by or session_id:
            kwargs["startedBy"] = started_by or session_id
        if group:
            kwargs["group"] = group
        if session_id and tag_session:
            kwargs["tags"] = [{"key": "sessionId", "value": session_id}]
        return self.ecs.run_task(**kwargs)["tasks"][0]["taskArn"]

    def enable_fault_injection(self, family: str, revision: int = 1, enabled: bool = True) -> None:
        """``enableFaultInjection: true`` on a task definition: moto drops the parameter, so set it on its model."""
        from moto.ecs.models import ecs_backends

        ecs_backends[ACCOUNT][REGION].task_definitions[family][revision].enable_fault_injection = enabled

    def model(self, task_arn: str) -> Any:
        """moto's own task object, to set what moto does not record (start timestamps, stop time)."""
        from moto.ecs.models import ecs_backends

        return ecs_backends[ACCOUNT][REGION].tasks[CLUSTER][task_arn]

    def set_timestamps(self, task_arn: str, created: datetime, pull: float, pulled: float, started: float) -> None:
        """ECS's start timestamps (moto sets none): pull starts ``pull`` s after creation, and so on."""
        task = self.model(task_arn)
        task.created_at = created
        task.pull_started_at = created + timedelta(seconds=pull)
        task.pull_stopped_at = created + timedelta(seconds=pulled)
        task.started_at = created + timedelta(seconds=started)

    def put_session(self, session_id: str, status: str = "RUNNING", expires_in: float = 3600) -> None:
        expires = int(datetime.now(UTC).timestamp() + expires_in)
        self.dynamodb.put_item(
            TableName=TABLE,
            Item={
                "sessionId": {"S": session_id},
                "status": {"S": status},
                "expiresAt": {"N": str(expires)},
            },
        )
