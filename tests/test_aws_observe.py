"""EFS, ALB target health, CloudWatch utilisation, Application Auto Scaling and the caller identity, on moto.

moto 5.2.5 has no DescribeScalingActivities, so the scaling-activity keywords run against botocore's Stubber,
which checks every request and response against the real Application Auto Scaling service model.
CloudWatch is read on both targets: on AWS (mock_aws) and on the embedded target through a moto server, the
way the embedded platform publishes its metrics.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber
from moto.server import ThreadedMotoServer
from PlatformLibrary.aws.session import AwsError, clients_for
from robot.api.exceptions import SkipExecution

from tests.test_aws_support import (
    CLUSTER,
    FAMILY,
    REGION,
    SERVICE,
    Deployment,
    make_library,
    mocked_aws,
    use_fake_credentials,
)


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    use_fake_credentials(monkeypatch)


@pytest.fixture
def aws():
    with mocked_aws():
        yield Deployment()


# ------------------------------------------------------------------ EFS
def test_efs_mount_targets(aws):
    efs = boto3.client("efs", region_name=REGION)
    fs = efs.create_file_system(CreationToken="workspaces")["FileSystemId"]
    for subnet in aws.subnets:
        efs.create_mount_target(FileSystemId=fs, SubnetId=subnet)
    library = make_library(EFS_FILE_SYSTEM_ID=fs)
    targets = library.keywords["efs_mount_targets_should_be_available"]()
    assert len(targets) == 2 and {t["state"] for t in targets} == {"available"}
    assert {t["availabilityZone"] for t in targets} == {f"{REGION}a", f"{REGION}b"}

    from moto.efs.models import efs_backends

    from tests.test_aws_support import ACCOUNT

    mount = next(iter(efs_backends[ACCOUNT][REGION].mount_targets_by_id.values()))
    mount.life_cycle_state = "deleting"
    with pytest.raises(AssertionError, match=f"{mount.mount_target_id} in .* is deleting"):
        library.keywords["efs_mount_targets_should_be_available"]()


def test_efs_without_mount_targets_or_id(aws):
    fs = boto3.client("efs", region_name=REGION).create_file_system(CreationToken="empty")["FileSystemId"]
    with pytest.raises(AssertionError, match="has no mount targets"):
        make_library(EFS_FILE_SYSTEM_ID=fs).keywords["efs_mount_targets_should_be_available"]()
    with pytest.raises(AwsError, match="EFS_FILE_SYSTEM_ID"):
        make_library(EFS_FILE_SYSTEM_ID="").keywords["get_efs_mount_targets"]()
    with pytest.raises(AwsError, match="FileSystemNotFound"):
        make_library(EFS_FILE_SYSTEM_ID="fs-00000000").keywords["get_efs_mount_targets"]()


# ------------------------------------------------------------------ ELBv2
def alb(aws):
    elbv2 = boto3.client("elbv2", region_name=REGION)
    lb = elbv2.create_load_balancer(Name="sessions-alb", Subnets=aws.subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    tg = elbv2.create_target_group(Name="api", Protocol="HTTP", Port=8080, VpcId=aws.vpc, TargetType="ip")
    tg_arn = tg["TargetGroups"][0]["TargetGroupArn"]
    elbv2.create_listener(
        LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}]
    )
    return elbv2, lb, tg_arn


def test_alb_target_health_by_target_group_or_alb(aws):
    elbv2, lb, tg = alb(aws)
    elbv2.register_targets(TargetGroupArn=tg, Targets=[{"Id": "10.0.0.5", "Port": 8080}])
    by_group = make_library(ALB_TARGET_GROUP_ARN=tg).keywords["get_alb_target_health"]()
    assert by_group == [
        {"targetGroup": tg, "id": "10.0.0.5", "port": 8080, "state": "healthy", "reason": "", "description": ""}
    ]
    library = make_library(ALB_ARN=lb)
    assert library.keywords["get_alb_target_health"]() == by_group
    assert library.keywords["wait_until_alb_targets_are_healthy"](minimum=1) >= 0
    with pytest.raises(AssertionError, match="Fewer than 2 healthy ALB target"):
        library.keywords["wait_until_alb_targets_are_healthy"](minimum=2, timeout=timedelta(milliseconds=30))


def test_alb_needs_a_target_group_or_the_alb(aws):
    with pytest.raises(AwsError, match="ALB_TARGET_GROUP_ARN"):
        make_library().keywords["get_alb_target_health"]()


# ------------------------------------------------------------------ CloudWatch
def put_utilisation(cloudwatch, values, metric="CPUUtilization", cluster=CLUSTER, service=SERVICE):
    dims = [{"Name": "ClusterName", "Value": cluster}, {"Name": "ServiceName", "Value": service}]
    for value in values:
        cloudwatch.put_metric_data(
            Namespace="AWS/ECS", MetricData=[{"MetricName": metric, "Dimensions": dims, "Value": value}]
        )


def test_service_utilisation_on_aws(aws):
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    put_utilisation(cloudwatch, [20, 40, 60])
    put_utilisation(cloudwatch, [99], service="another-service")
    library = make_library()
    result = library.keywords["get_service_utilisation"]("CPUUtilization", statistic="Maximum")
    assert result["count"] == 1 and result["maximum"] == 60 and result["latest"] == 60
    assert library.keywords["service_utilisation_should_be_below"]("CPUUtilization", 70) == 60
    with pytest.raises(AssertionError, match="reached 60 %, allowed is below 50 %"):
        library.keywords["service_utilisation_should_be_below"]("CPUUtilization", 50)
    with pytest.raises(AssertionError, match="No MemoryUtilization datapoints"):
        library.keywords["service_utilisation_should_be_below"]("MemoryUtilization", 50)
    with pytest.raises(ValueError, match="must be one of"):
        library.keywords["get_service_utilisation"]("DiskUtilization")


PLATFORM_METRIC = {
    "PLATFORM_METRIC_NAMESPACE": "SessionPlatform",
    "PLATFORM_METRIC_NAME": "LiveSessions",
    "PLATFORM_METRIC_DIMENSIONS": f"ServiceName={SERVICE}",
}


def put_live_sessions(cloudwatch, value, service=SERVICE):
    cloudwatch.put_metric_data(
        Namespace="SessionPlatform",
        MetricData=[
            {"MetricName": "LiveSessions", "Dimensions": [{"Name": "ServiceName", "Value": service}], "Value": value}
        ],
    )


def test_the_platform_metric_is_the_profile_s_or_the_test_skips(aws):
    """The contract promises no metric of the platform's own: without one named, a test that needs it skips."""
    metric = make_library(**PLATFORM_METRIC).keywords["platform_metric_should_be_named"]()
    assert metric == {
        "namespace": "SessionPlatform",
        "name": "LiveSessions",
        "dimensions": [{"Name": "ServiceName", "Value": SERVICE}],
    }
    with pytest.raises(SkipExecution, match=r"names no metric.*AWS/ECS metrics are ECS's own"):
        make_library().keywords["platform_metric_should_be_named"]()
    with pytest.raises(AwsError, match="not Name=Value"):
        bad = make_library(**{**PLATFORM_METRIC, "PLATFORM_METRIC_DIMENSIONS": "ServiceName"})
        bad.keywords["platform_metric_should_be_named"]()


def test_wait_until_platform_metric_is_published(aws):
    """Only a sample the platform publishes after the wait began counts: its metrics flowing again, e.g. after
    CloudWatch was unreachable; samples of another service or metric do not."""
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    put_live_sessions(cloudwatch, 3)  # before the wait: does not count
    library = make_library(**PLATFORM_METRIC, POLL_INTERVAL="50 ms")
    wait = library.keywords["wait_until_platform_metric_is_published"]
    put_utilisation(cloudwatch, [10])  # another metric
    put_live_sessions(cloudwatch, 1, service="another-service")
    with pytest.raises(AssertionError, match="published no SessionPlatform LiveSessions sample since"):
        wait(timeout=timedelta(milliseconds=300))
    later = threading.Timer(0.5, put_live_sessions, args=(cloudwatch, 4))
    later.start()
    try:
        assert 0.4 <= wait(timeout=timedelta(seconds=10)) < 10
    finally:
        later.cancel()


@pytest.fixture
def moto_server():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_service_utilisation_on_the_embedded_target(tmp_path, moto_server):
    """The same keyword reads what the embedded platform publishes to its moto server."""
    (tmp_path / "endpoints.json").write_text(
        json.dumps(
            {
                "CLOUDWATCH_ENDPOINT_URL": moto_server,
                "AWS_REGION": REGION,
                "ECS_CLUSTER": "testbed-cluster",
                "ECS_SERVICE": "session-service",
            }
        )
    )
    cloudwatch = boto3.client(
        "cloudwatch",
        endpoint_url=moto_server,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    put_utilisation(cloudwatch, [12.5, 17.5], metric="MemoryUtilization", cluster="testbed-cluster")
    library = make_library(TARGET="embedded", PROFILE="local", PLATFORM_STATE_DIR=str(tmp_path))
    result = library.keywords["get_service_utilisation"]("MemoryUtilization")
    assert result["average"] == 15 and result["cluster"] == "testbed-cluster"
    assert clients_for(library).settings.endpoint_for("cloudwatch") == moto_server


# ------------------------------------------------------------------ Application Auto Scaling
def test_service_capacity(aws):
    aws.ecs.create_service(cluster=CLUSTER, serviceName=SERVICE, taskDefinition=FAMILY, desiredCount=3)
    library = make_library()
    capacity = library.keywords["get_service_capacity"]()
    assert capacity["desired"] == 3 and capacity["autoScaled"] is False and capacity["max"] is None
    boto3.client("application-autoscaling", region_name=REGION).register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=f"service/{CLUSTER}/{SERVICE}",
        ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=2,
        MaxCapacity=24,
    )
    capacity = library.keywords["get_service_capacity"]()
    assert (capacity["min"], capacity["max"], capacity["autoScaled"]) == (2, 24, True)


def test_service_capacity_of_a_missing_service(aws):
    with pytest.raises(AwsError, match="not found in cluster"):
        make_library().keywords["get_service_capacity"]()


def stubbed_autoscaling(library, pages):
    """A real Application Auto Scaling client whose answers come from ``pages`` (checked against the model)."""
    client = boto3.client("application-autoscaling", region_name=REGION)
    stubber = Stubber(client)
    expected = {
        "ServiceNamespace": "ecs",
        "ResourceId": f"service/{CLUSTER}/{SERVICE}",
        "ScalableDimension": "ecs:service:DesiredCount",
    }
    for page in pages:
        stubber.add_response("describe_scaling_activities", {"ScalingActivities": page}, expected)
    stubber.activate()
    clients_for(library)._clients["application-autoscaling"] = client
    return stubber


def activity(activity_id, start, end, desired, status="Successful"):
    item = {
        "ActivityId": activity_id,
        "ServiceNamespace": "ecs",
        "ResourceId": f"service/{CLUSTER}/{SERVICE}",
        "ScalableDimension": "ecs:service:DesiredCount",
        "Description": f"Setting desired count to {desired}.",
        "Cause": "monitor alarm CPU-high in state ALARM triggered policy scale-out",
        "StartTime": start,
        "StatusCode": status,
    }
    if end is not None:
        item["EndTime"] = end
    return item


def test_scaling_activities_since_a_moment():
    library = make_library()
    t0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    stubber = stubbed_autoscaling(
        library,
        [[activity("old", t0 - timedelta(minutes=5), t0 - timedelta(minutes=4), 2), activity("new", t0, None, 6)]],
    )
    activities = library.keywords["get_scaling_activities"](t0.timestamp())
    assert [(a["id"], a["desiredCount"], a["endTime"]) for a in activities] == [("new", 6, None)]
    stubber.assert_no_pending_responses()


def test_wait_until_scaling_activity_succeeds_measures_the_response_time():
    library = make_library()
    trigger = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    in_progress = activity("a1", trigger + timedelta(seconds=70), None, 6, status="InProgress")
    done = activity("a1", trigger + timedelta(seconds=70), trigger + timedelta(seconds=130), 6)
    small = activity("a0", trigger + timedelta(seconds=10), trigger + timedelta(seconds=20), 3)
    stubber = stubbed_autoscaling(library, [[small], [small, in_progress], [small, done]])
    result = library.keywords["wait_until_scaling_activity_succeeds"](trigger.timestamp(), minimum_desired=6)
    assert result["activity"]["id"] == "a1"
    assert (result["decisionSeconds"], result["responseSeconds"]) == (70, 130)
    stubber.assert_no_pending_responses()


def test_wait_until_scaling_activity_succeeds_times_out_naming_what_it_saw():
    library = make_library()
    trigger = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    failed = activity("a1", trigger + timedelta(seconds=5), trigger + timedelta(seconds=6), 8, status="Failed")
    stubbed_autoscaling(library, [[failed]] * 50)
    with pytest.raises(AssertionError, match=r"Setting desired count to 8\. Failed"):
        library.keywords["wait_until_scaling_activity_succeeds"](
            trigger.timestamp(), timeout=timedelta(milliseconds=20)
        )


# ------------------------------------------------------------------ identity
def test_caller_identity_has_no_keys(aws):
    identity = make_library().keywords["get_aws_caller_identity"]()
    assert set(identity) == {"Account", "Arn"}
