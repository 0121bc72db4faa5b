"""The platform's route to DynamoDB under faults (faults/routes.py, faults/serviceroute/): on AWS FIS
aws:ecs:task-network-packet-loss / -latency on every task of the API service with ``sources`` naming DynamoDB, behind
the API-tier faults' gates and recorded in the fault ledger, checked against moto; on the embedded platform toxics on
the fault proxy's ``dynamodb`` hop; the backend chosen in one place.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from PlatformLibrary.aws.safety import ChaosNotAllowed
from PlatformLibrary.aws.session import AwsError
from PlatformLibrary.faults.ledger import FaultLedger
from PlatformLibrary.faults.serviceroute import create_service_route
from PlatformLibrary.faults.serviceroute.aws import AwsServiceRoute, check_sources
from PlatformLibrary.faults.serviceroute.embedded import EmbeddedServiceRoute
from robot.api.exceptions import SkipExecution

from tests.test_aws_apitier import API_FAMILY, API_SERVICE, api_tier_deployment, nothing_created
from tests.test_aws_support import ALARM_ARN, CLUSTER, make_library, use_fake_credentials


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    use_fake_credentials(monkeypatch)


@pytest.fixture
def deployment():
    with api_tier_deployment() as made:
        yield made


def library_for(tmp_path, **values):
    defaults = {"API_ECS_SERVICE": API_SERVICE, "CHAOS_SCOPE": "deployment", "FAULT_LEDGER_DIR": str(tmp_path)}
    return make_library(**{**defaults, **values})


def the_action(fis) -> tuple[dict, dict]:
    """The one template's action and target."""
    [template] = fis.list_experiment_templates()["experimentTemplates"]
    template = fis.get_experiment_template(id=template["id"])["experimentTemplate"]
    return template["actions"]["fault"], template["targets"]["Tasks"], template


def holding_the_deployment(library, keyword: str, *args: Any) -> str:
    library.keywords["acquire_platform_access"]("exclusive")
    try:
        return library.keywords[keyword](*args)
    finally:
        library.keywords["release_platform_access"]()


def test_checks_before_anything_is_created_skip_or_fail_naming_what_is_missing(deployment, tmp_path):
    check = library_for(tmp_path).keywords["dynamodb_route_fault_should_be_possible"]
    for fault in ("outage", "slow", "loss"):
        check(fault)
    with pytest.raises(ChaosNotAllowed, match=r"routes to DynamoDB, CloudWatch or ECS.*CHAOS_SCOPE\} is 'sessions'"):
        library_for(tmp_path, CHAOS_SCOPE="sessions").keywords["dynamodb_route_fault_should_be_possible"]("outage")
    with pytest.raises(ChaosNotAllowed, match="API_ECS_SERVICE"):
        library_for(tmp_path, API_ECS_SERVICE="").keywords["dynamodb_route_fault_should_be_possible"]("outage")
    with pytest.raises(ChaosNotAllowed, match=r"FIS_STOP_ALARM_ARN.*also in a dry run"):
        dry = library_for(tmp_path, FIS_STOP_ALARM_ARN="", CHAOS_DRY_RUN=True)
        dry.keywords["dynamodb_route_fault_should_be_possible"]("slow")
    spaced = library_for(tmp_path, DYNAMODB_FAULT_SOURCES="DYNAMODB, S3")
    with pytest.raises(AwsError, match="DYNAMODB_FAULT_SOURCES"):
        spaced.keywords["dynamodb_route_fault_should_be_possible"]("outage")
    deployment.enable_fault_injection(API_FAMILY, enabled=False)
    with pytest.raises(AwsError, match="FIS cannot run aws:ecs:task-network-packet-loss in the API tasks"):
        check("outage")
    with pytest.raises(ValueError, match="outage, slow, loss"):
        check("melt")
    assert nothing_created(deployment.fis)


def test_a_fault_on_the_route_needs_the_deployment_held_exclusively(deployment, tmp_path):
    with pytest.raises(ChaosNotAllowed, match="holds the deployment exclusively"):
        library_for(tmp_path).keywords["cut_off_dynamodb_from_the_platform"]()
    assert nothing_created(deployment.fis)


def test_an_outage_is_packet_loss_to_dynamodb_on_every_api_task_until_reverted(deployment, tmp_path):
    library = library_for(tmp_path)
    library.keywords["acquire_platform_access"]("exclusive")
    try:
        fault = library.keywords["cut_off_dynamodb_from_the_platform"]()
        action, target, template = the_action(deployment.fis)
        assert action["actionId"] == "aws:ecs:task-network-packet-loss"
        assert action["parameters"] == {
            "lossPercent": "100",
            "sources": "DYNAMODB",
            "useEcsFaultInjectionEndpoints": "true",
            "duration": "PT10M",
        }
        assert target["parameters"] == {"cluster": CLUSTER, "service": API_SERVICE}
        assert target["selectionMode"] == "ALL"
        assert template["stopConditions"] == [{"source": "aws:cloudwatch:alarm", "value": ALARM_ARN}]
        [experiment] = deployment.fis.list_experiments()["experiments"]
        [entry] = FaultLedger(tmp_path).entries()
        assert entry["id"] == fault and entry["kind"] == "fis" and "DynamoDB cut off" in entry["description"]
        assert entry["undo"] == [{**entry["undo"][0], "do": "stop-fis-experiment", "experiment": experiment["id"]}]
        library.keywords["revert_fault"](fault)
        state = deployment.fis.get_experiment(id=experiment["id"])["experiment"]["state"]["status"]
        assert state in ("stopping", "stopped", "completed")  # moto moves one state per read
        assert FaultLedger(tmp_path).entries() == []
    finally:
        library.keywords["release_platform_access"]()


def test_a_slow_store_is_latency_to_the_configured_sources(deployment, tmp_path):
    library = library_for(tmp_path, DYNAMODB_FAULT_SOURCES="dynamodb.us-east-1.amazonaws.com")
    holding_the_deployment(library, "slow_down_dynamodb_for_the_platform", timedelta(milliseconds=300))
    action, _, _ = the_action(deployment.fis)
    assert action["actionId"] == "aws:ecs:task-network-latency"
    parameters = action["parameters"]
    assert (parameters["delayMilliseconds"], parameters["jitterMilliseconds"]) == ("300", "0")
    assert parameters["sources"] == "dynamodb.us-east-1.amazonaws.com"


def test_lost_calls_are_packet_loss_on_a_share_of_the_flows(deployment, tmp_path):
    library = library_for(tmp_path)
    holding_the_deployment(library, "lose_dynamodb_connections_of_the_platform", 30)
    action, _, _ = the_action(deployment.fis)
    assert (action["parameters"]["lossPercent"], action["parameters"]["flowsPercent"]) == ("100", "30")
    with pytest.raises(ValueError, match="1 to 100"):
        holding_the_deployment(library, "lose_dynamodb_connections_of_the_platform", 0)


def test_a_dry_run_validates_the_experiment_and_skips(deployment, tmp_path):
    library = library_for(tmp_path, CHAOS_DRY_RUN=True)
    with pytest.raises(SkipExecution, match="Chaos dry run"):
        holding_the_deployment(library, "cut_off_dynamodb_from_the_platform")
    [experiment] = deployment.fis.list_experiments()["experiments"]
    assert experiment["experimentOptions"]["actionsMode"] == "skip-all"
    assert FaultLedger(tmp_path).entries() == []


def test_sources_are_a_fis_list():
    assert check_sources("DYNAMODB") == "DYNAMODB"
    assert check_sources(" DYNAMODB,10.0.0.0/16\n") == "DYNAMODB,10.0.0.0/16"  # as read from the environment
    for bad in ("", "DYNAMODB, S3", "DYNAMODB,,S3", "DYNAMODB ,S3"):
        with pytest.raises(AwsError, match="without spaces"):
            check_sources(bad)


class RecordingNetwork:
    """The embedded backend's fault-proxy keywords, recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: self.calls.append((name, args, kwargs)) or f"fault-{len(self.calls)}"


class AllowAll:
    def allow(self, what: str) -> None:
        self.allowed = what


def test_the_backend_is_chosen_in_one_place_and_the_embedded_one_uses_the_dynamodb_hop():
    network = RecordingNetwork()
    embedded = create_service_route("embedded", "dynamodb", None, AllowAll(), network, None)
    assert isinstance(embedded, EmbeddedServiceRoute)
    assert isinstance(create_service_route("aws", "dynamodb", None, None, None, None), AwsServiceRoute)
    with pytest.raises(ValueError, match="Unknown target"):
        create_service_route("gcp", "dynamodb", None, None, None, None)
    with pytest.raises(ValueError, match="dynamodb, cloudwatch"):
        create_service_route("embedded", "sqs", None, None, None, None)
    embedded.check("outage")
    embedded.cut_off()
    embedded.slow_down(timedelta(milliseconds=300))
    embedded.lose(25)
    assert network.calls == [
        ("cut_off_fault_proxy_hop", ("dynamodb",), {}),
        ("inject_aws_fault", ("latency",), {"latency": timedelta(milliseconds=300), "hop": "dynamodb"}),
        ("add_toxic", ("dynamodb", "timeout"), {"stream": "upstream", "toxicity": 0.25, "timeout": "0"}),
    ]
