"""The platform's route to CloudWatch under faults (faults/routes.py, faults/serviceroute/): on AWS FIS
aws:ecs:task-network-packet-loss on every task of the service that publishes the platform's metrics (by default the API
service) with ``sources`` naming CloudWatch's Regional endpoint, behind the deployment faults' gates and recorded in
the fault ledger, checked against moto; on the embedded platform a black hole on the fault proxy's ``cloudwatch`` hop.
"""

from __future__ import annotations

import pytest
from PlatformLibrary.aws.safety import ChaosNotAllowed
from PlatformLibrary.aws.session import AwsError
from PlatformLibrary.faults.ledger import FaultLedger
from PlatformLibrary.faults.serviceroute import create_service_route
from PlatformLibrary.faults.serviceroute.embedded import EmbeddedServiceRoute

from tests.test_aws_apitier import API_FAMILY, API_SERVICE, api_tier_deployment, nothing_created
from tests.test_aws_dynamodb_route import AllowAll, RecordingNetwork, holding_the_deployment, the_action
from tests.test_aws_support import ALARM_ARN, CLUSTER, REGION, make_library, use_fake_credentials

MONITORING = f"monitoring.{REGION}.amazonaws.com"


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    use_fake_credentials(monkeypatch)


@pytest.fixture
def deployment():
    with api_tier_deployment() as made:
        yield made


def library_for(tmp_path, **values):
    defaults = {
        "API_ECS_SERVICE": API_SERVICE,
        "METRICS_ECS_SERVICE": API_SERVICE,  # the aws profile's default: the API service publishes the metrics
        "CHAOS_SCOPE": "deployment",
        "FAULT_LEDGER_DIR": str(tmp_path),
    }
    return make_library(**{**defaults, **values})


def test_checks_before_anything_is_created_skip_or_fail_naming_what_is_missing(deployment, tmp_path):
    library_for(tmp_path).keywords["cloudwatch_route_fault_should_be_possible"]()
    with pytest.raises(ChaosNotAllowed, match=r"traffic of the tasks that publish.*CloudWatch.*CHAOS_SCOPE\}"):
        library_for(tmp_path, CHAOS_SCOPE="sessions").keywords["cloudwatch_route_fault_should_be_possible"]()
    with pytest.raises(ChaosNotAllowed, match=r"\$\{METRICS_ECS_SERVICE\}.*default the API service"):
        library_for(tmp_path, METRICS_ECS_SERVICE="").keywords["cloudwatch_route_fault_should_be_possible"]()
    with pytest.raises(AwsError, match="CLOUDWATCH_FAULT_SOURCES"):
        spaced = library_for(tmp_path, CLOUDWATCH_FAULT_SOURCES=f"{MONITORING}, 10.0.0.5")
        spaced.keywords["cloudwatch_route_fault_should_be_possible"]()
    deployment.enable_fault_injection(API_FAMILY, enabled=False)
    with pytest.raises(AwsError, match="FIS cannot run aws:ecs:task-network-packet-loss"):
        library_for(tmp_path).keywords["cloudwatch_route_fault_should_be_possible"]()
    assert nothing_created(deployment.fis)


def test_a_cut_off_needs_the_deployment_held_exclusively(deployment, tmp_path):
    with pytest.raises(ChaosNotAllowed, match="holds the deployment exclusively"):
        library_for(tmp_path).keywords["cut_off_cloudwatch_from_the_platform"]()
    assert nothing_created(deployment.fis)


def test_an_outage_is_packet_loss_to_the_monitoring_endpoint_on_every_publishing_task(deployment, tmp_path):
    library = library_for(tmp_path)
    fault = holding_the_deployment(library, "cut_off_cloudwatch_from_the_platform")
    action, target, template = the_action(deployment.fis)
    assert action["actionId"] == "aws:ecs:task-network-packet-loss"
    assert action["parameters"] == {
        "lossPercent": "100",
        "sources": MONITORING,  # the default: CloudWatch's Regional endpoint of the profile's region
        "useEcsFaultInjectionEndpoints": "true",
        "duration": "PT10M",
    }
    assert target["parameters"] == {"cluster": CLUSTER, "service": API_SERVICE}
    assert target["selectionMode"] == "ALL"
    assert template["stopConditions"] == [{"source": "aws:cloudwatch:alarm", "value": ALARM_ARN}]
    [entry] = FaultLedger(tmp_path).entries()
    assert entry["id"] == fault and "CloudWatch cut off from the tasks that publish" in entry["description"]
    assert entry["undo"][0]["do"] == "stop-fis-experiment"


def test_the_publishing_service_and_the_sources_are_the_profile_s(deployment, tmp_path):
    """Where another service publishes the metrics, its tasks are faulted; a VPC endpoint's address as the sources."""
    network = {"awsvpcConfiguration": {"subnets": deployment.subnets[:1], "securityGroups": []}}
    deployment.ecs.create_service(
        cluster=CLUSTER,
        serviceName="metrics-agent",
        taskDefinition=API_FAMILY,
        desiredCount=1,
        launchType="FARGATE",
        networkConfiguration=network,
    )
    library = library_for(tmp_path, METRICS_ECS_SERVICE="metrics-agent", CLOUDWATCH_FAULT_SOURCES="10.0.5.20")
    library.keywords["cloudwatch_route_fault_should_be_possible"]("outage")
    holding_the_deployment(library, "cut_off_cloudwatch_from_the_platform")
    action, target, _ = the_action(deployment.fis)
    assert target["parameters"] == {"cluster": CLUSTER, "service": "metrics-agent"}
    assert action["parameters"]["sources"] == "10.0.5.20"


def test_the_embedded_route_to_cloudwatch_is_the_cloudwatch_hop():
    network = RecordingNetwork()
    embedded = create_service_route("embedded", "cloudwatch", None, AllowAll(), network, None)
    assert isinstance(embedded, EmbeddedServiceRoute)
    embedded.check("outage")
    embedded.cut_off()
    embedded.lose(40)
    assert network.calls == [
        ("cut_off_fault_proxy_hop", ("cloudwatch",), {}),
        ("add_toxic", ("cloudwatch", "timeout"), {"stream": "upstream", "toxicity": 0.4, "timeout": "0"}),
    ]
