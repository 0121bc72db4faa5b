"""The API tier on AWS (faults/apitier/aws.py, aws/apitier.py) against moto: the API's ECS service behind an ALB
target group of type ip, its targets tied to its tasks, the checks before a test creates anything, and the two
faults through FIS (stop-task, task-network-blackhole-port) recorded in the fault ledger.

moto 5.2.5 does not filter ListTasks by ``serviceName`` (every task of the cluster comes back) and its ip targets are
always healthy; the task behind a target is found by the task's ENI address all the same, and the face's tests
(tests/test_awsface_apitier.py) cover unhealthy and draining targets.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import boto3
import pytest
from PlatformLibrary.aws.apitier import container_port_of, target_group_of, task_addresses, task_of_target
from PlatformLibrary.aws.safety import ChaosNotAllowed
from PlatformLibrary.aws.session import AwsError
from PlatformLibrary.faults.ledger import FaultLedger
from robot.api.exceptions import SkipExecution

from tests.test_aws_support import (
    ALARM_ARN,
    ALARM_NAME,
    CLUSTER,
    REGION,
    SSM_AGENT_CONTAINER,
    Deployment,
    make_library,
    mocked_aws,
    use_fake_credentials,
)

API_SERVICE, API_FAMILY = "api-service", "api"


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    use_fake_credentials(monkeypatch)


@pytest.fixture
def aws():
    with api_tier_deployment() as deployment:
        yield deployment


@contextlib.contextmanager
def api_tier_deployment() -> Iterator[Deployment]:
    """A moto deployment with an API tier: the service api-service (2 tasks) behind an ip target group, a stop alarm."""
    with mocked_aws():
        deployment = Deployment()
        deployment.run_task("s-session")  # a session task in the same cluster: not an API target
        ecs, elbv2 = deployment.ecs, boto3.client("elbv2", region_name=REGION)
        ecs.register_task_definition(
            family=API_FAMILY,
            containerDefinitions=[
                {"name": "api", "image": "api:1", "memory": 512, "portMappings": [{"containerPort": 8080}]},
                SSM_AGENT_CONTAINER,
            ],
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            pidMode="task",
            cpu="512",
            memory="1024",
        )
        deployment.enable_fault_injection(API_FAMILY)
        group = elbv2.create_target_group(
            Name="api", Protocol="HTTP", Port=8080, VpcId=deployment.vpc, TargetType="ip"
        )["TargetGroups"][0]["TargetGroupArn"]
        network = {"awsvpcConfiguration": {"subnets": deployment.subnets[:1], "securityGroups": []}}
        ecs.create_service(
            cluster=CLUSTER,
            serviceName=API_SERVICE,
            taskDefinition=API_FAMILY,
            desiredCount=2,
            launchType="FARGATE",
            networkConfiguration=network,
            loadBalancers=[{"targetGroupArn": group, "containerName": "api", "containerPort": 8080}],
        )
        tasks = [
            ecs.run_task(
                cluster=CLUSTER,
                taskDefinition=API_FAMILY,
                launchType="FARGATE",
                group=f"service:{API_SERVICE}",
                networkConfiguration=network,
            )["tasks"][0]["taskArn"]
            for _ in range(2)
        ]
        described = ecs.describe_tasks(cluster=CLUSTER, tasks=tasks)["tasks"]
        addresses = {t["taskArn"]: sorted(task_addresses(t)[0])[0] for t in described}
        elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": ip, "Port": 8080} for ip in addresses.values()])
        boto3.client("cloudwatch", region_name=REGION).put_metric_alarm(
            AlarmName=ALARM_NAME,
            MetricName="HTTPCode_Target_5XX_Count",
            Namespace="AWS/ApplicationELB",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=10,
            ComparisonOperator="GreaterThanThreshold",
        )
        deployment.group, deployment.addresses = group, addresses
        deployment.fis = boto3.client("fis", region_name=REGION)
        yield deployment


def library_for(tmp_path, **values):
    defaults = {"API_ECS_SERVICE": API_SERVICE, "CHAOS_SCOPE": "deployment", "FAULT_LEDGER_DIR": str(tmp_path)}
    return make_library(**{**defaults, **values})


def nothing_created(fis) -> bool:
    return not fis.list_experiment_templates()["experimentTemplates"] and not fis.list_experiments()["experiments"]


def test_targets_are_the_target_group_s_tied_to_the_service_s_tasks(aws, tmp_path):
    library = library_for(tmp_path)  # no API_TARGET_GROUP_ARN: the one the service registers in
    targets = library.keywords["get_load_balancer_targets"]()
    assert sorted(t["id"] for t in targets) == sorted(f"{ip}:8080" for ip in aws.addresses.values())
    assert {t["task"] for t in targets} == set(aws.addresses)
    assert {t["state"] for t in targets} == {"healthy"}
    assert library.keywords["pick_healthy_api_target"]() in {t["id"] for t in targets}


def test_a_target_is_tied_to_its_task_by_address_then_by_host_port():
    def task(arn, ip, port=None):
        binding = [{"hostPort": port, "containerPort": 8080}] if port else []
        return {
            "taskArn": arn,
            "attachments": [{"details": [{"name": "privateIPv4Address", "value": ip}]}],
            "containers": [{"networkBindings": binding}],
        }

    own_addresses = [task("a", "10.0.1.5"), task("b", "10.0.1.6")]
    assert task_of_target("10.0.1.6", 8080, own_addresses) == "b"
    assert task_of_target("10.0.9.9", 8080, own_addresses) is None
    shared = [task("a", "127.0.0.1", 40001), task("b", "127.0.0.1", 40002)]  # the AWS face: one address
    assert task_of_target("127.0.0.1", 40002, shared) == "b"
    assert task_of_target("127.0.0.1", 40003, shared) is None
    service = {"serviceName": "api", "loadBalancers": [{"targetGroupArn": "tg-1", "containerPort": 8081}]}
    assert target_group_of(service) == "tg-1" and target_group_of(service, "tg-2") == "tg-2"
    assert container_port_of(service, {}) == 8081 and container_port_of(service, {}, 9000) == 9000
    with pytest.raises(AwsError, match="API_TARGET_GROUP_ARN"):
        target_group_of({"serviceName": "api", "loadBalancers": []})


def test_checks_before_anything_is_created_skip_or_fail_naming_what_is_missing(aws, tmp_path):
    check = library_for(tmp_path).keywords["api_tier_fault_should_be_possible"]
    check("kill")
    check("hang")
    with pytest.raises(ChaosNotAllowed, match=r"CHAOS_SCOPE\} is 'sessions'"):
        library_for(tmp_path, CHAOS_SCOPE="sessions").keywords["api_tier_fault_should_be_possible"]("kill")
    with pytest.raises(ChaosNotAllowed, match="API_ECS_SERVICE"):
        library_for(tmp_path, API_ECS_SERVICE="").keywords["api_tier_fault_should_be_possible"]("kill")
    with pytest.raises(ChaosNotAllowed, match=r"FIS_STOP_ALARM_ARN.*also in a dry run"):
        dry = library_for(tmp_path, FIS_STOP_ALARM_ARN="", CHAOS_DRY_RUN=True)
        dry.keywords["api_tier_fault_should_be_possible"]("hang")
    with pytest.raises(AwsError, match="not a service of cluster"):
        library_for(tmp_path, API_ECS_SERVICE="nope").keywords["api_tier_fault_should_be_possible"]("kill")
    aws.enable_fault_injection(API_FAMILY, enabled=False)
    check("kill")  # stop-task needs nothing in the task
    with pytest.raises(AwsError, match="FIS cannot run aws:ecs:task-network-blackhole-port in the API tasks"):
        check("hang")
    with pytest.raises(ValueError, match="kill, hang"):
        check("melt")
    assert nothing_created(aws.fis)


def test_a_fault_on_the_deployment_needs_it_held_exclusively(aws, tmp_path):
    library = library_for(tmp_path)
    with pytest.raises(ChaosNotAllowed, match="holds the deployment exclusively"):
        library.keywords["kill_api_target"]()
    assert nothing_created(aws.fis)


def test_kill_stops_the_target_s_task_through_fis_and_records_it(aws, tmp_path):
    library = library_for(tmp_path)
    library.keywords["acquire_platform_access"]("exclusive")
    try:
        killed = library.keywords["kill_api_target"]()
    finally:
        library.keywords["release_platform_access"]()
    task = next(arn for arn, ip in aws.addresses.items() if killed == f"{ip}:8080")
    [template] = aws.fis.list_experiment_templates()["experimentTemplates"]
    template = aws.fis.get_experiment_template(id=template["id"])["experimentTemplate"]
    assert template["actions"]["fault"]["actionId"] == "aws:ecs:stop-task"
    assert template["targets"]["Tasks"]["resourceArns"] == [task]
    assert template["stopConditions"] == [{"source": "aws:cloudwatch:alarm", "value": ALARM_ARN}]
    [entry] = FaultLedger(tmp_path).entries()
    assert entry["kind"] == "fis" and killed in entry["description"]
    assert entry["undo"][0]["do"] == "stop-fis-experiment"


def test_hang_black_holes_the_api_port_until_the_fault_is_reverted(aws, tmp_path):
    library = library_for(tmp_path)
    library.keywords["acquire_platform_access"]("exclusive")
    try:
        fault = library.keywords["hang_api_target"]()
        [template] = aws.fis.list_experiment_templates()["experimentTemplates"]
        action = aws.fis.get_experiment_template(id=template["id"])["experimentTemplate"]["actions"]["fault"]
        assert action["actionId"] == "aws:ecs:task-network-blackhole-port"
        assert {k: action["parameters"][k] for k in ("port", "protocol", "trafficType")} == {
            "port": "8080",
            "protocol": "tcp",
            "trafficType": "ingress",
        }
        [experiment] = aws.fis.list_experiments()["experiments"]
        [entry] = FaultLedger(tmp_path).entries()
        assert entry["id"] == fault and entry["undo"][0]["experiment"] == experiment["id"]
        library.keywords["revert_fault"](fault)
        # moto moves an experiment one state per read, so it may have completed before the stop came.
        state = aws.fis.get_experiment(id=experiment["id"])["experiment"]["state"]["status"]
        assert state in ("stopping", "stopped", "completed")
        assert FaultLedger(tmp_path).entries() == []
    finally:
        library.keywords["release_platform_access"]()


def test_a_dry_run_validates_the_experiment_and_skips(aws, tmp_path):
    library = library_for(tmp_path, CHAOS_DRY_RUN=True)
    library.keywords["acquire_platform_access"]("exclusive")
    try:
        with pytest.raises(SkipExecution, match="Chaos dry run"):
            library.keywords["hang_api_target"]()
    finally:
        library.keywords["release_platform_access"]()
    [experiment] = aws.fis.list_experiments()["experiments"]
    assert experiment["experimentOptions"]["actionsMode"] == "skip-all"
    assert FaultLedger(tmp_path).entries() == []
