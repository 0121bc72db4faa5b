"""The platform's route to ECS under a fault (faults/ecs.py, faults/ecsroute/): on AWS FIS
aws:ecs:task-network-packet-loss (100 %) on every task of the API service with ``sources`` naming ECS's Regional
endpoint, behind the API-tier faults' gates and recorded in the fault ledger, checked against moto; on the embedded
platform its control-plane file switched to ``Unreachable``; the backend chosen in one place.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PlatformLibrary.aws.safety import ChaosNotAllowed
from PlatformLibrary.aws.session import AwsError
from PlatformLibrary.faults.ecsroute import create_ecs_route
from PlatformLibrary.faults.ecsroute.aws import AwsEcsRoute
from PlatformLibrary.faults.ecsroute.embedded import EmbeddedEcsRoute
from PlatformLibrary.faults.ledger import FaultLedger
from robot.api.exceptions import SkipExecution

from tests.test_aws_apitier import API_FAMILY, API_SERVICE, api_tier_deployment, nothing_created
from tests.test_aws_dynamodb_route import holding_the_deployment, library_for, the_action
from tests.test_aws_support import ALARM_ARN, CLUSTER, make_library, use_fake_credentials


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    use_fake_credentials(monkeypatch)


@pytest.fixture
def deployment():
    with api_tier_deployment() as made:
        yield made


def test_checks_before_anything_is_created_skip_or_fail_naming_what_is_missing(deployment, tmp_path):
    library_for(tmp_path).keywords["ecs_route_fault_should_be_possible"]("outage")
    with pytest.raises(ChaosNotAllowed, match=r"traffic to ECS.*CHAOS_SCOPE\} is 'sessions'"):
        library_for(tmp_path, CHAOS_SCOPE="sessions").keywords["ecs_route_fault_should_be_possible"]("outage")
    with pytest.raises(ChaosNotAllowed, match="API_ECS_SERVICE"):
        library_for(tmp_path, API_ECS_SERVICE="").keywords["ecs_route_fault_should_be_possible"]("outage")
    with pytest.raises(ChaosNotAllowed, match=r"FIS_STOP_ALARM_ARN.*also in a dry run"):
        dry = library_for(tmp_path, FIS_STOP_ALARM_ARN="", CHAOS_DRY_RUN=True)
        dry.keywords["ecs_route_fault_should_be_possible"]("outage")
    spaced = library_for(tmp_path, ECS_FAULT_SOURCES="ecs.us-east-1.amazonaws.com, 10.0.0.0/16")
    with pytest.raises(AwsError, match=r"ECS_FAULT_SOURCES.*e\.g\. ecs\.us-east-1\.amazonaws\.com"):
        spaced.keywords["ecs_route_fault_should_be_possible"]("outage")
    deployment.enable_fault_injection(API_FAMILY, enabled=False)
    with pytest.raises(AwsError, match="FIS cannot run aws:ecs:task-network-packet-loss in the API tasks"):
        library_for(tmp_path).keywords["ecs_route_fault_should_be_possible"]("outage")
    with pytest.raises(ValueError, match="route to ECS is one of outage"):
        library_for(tmp_path).keywords["ecs_route_fault_should_be_possible"]("slow")
    assert nothing_created(deployment.fis)


def test_the_cut_needs_the_deployment_held_exclusively(deployment, tmp_path):
    with pytest.raises(ChaosNotAllowed, match="holds the deployment exclusively"):
        library_for(tmp_path).keywords["cut_off_ecs_from_the_platform"]()
    assert nothing_created(deployment.fis)


def test_the_cut_is_packet_loss_to_the_regional_ecs_endpoint_on_every_api_task_until_reverted(deployment, tmp_path):
    library = library_for(tmp_path, AWS_REGION="us-east-1")
    library.keywords["acquire_platform_access"]("exclusive")
    try:
        fault = library.keywords["cut_off_ecs_from_the_platform"]()
        action, target, template = the_action(deployment.fis)
        assert action["actionId"] == "aws:ecs:task-network-packet-loss"
        assert action["parameters"] == {
            "lossPercent": "100",
            "sources": "ecs.us-east-1.amazonaws.com",
            "useEcsFaultInjectionEndpoints": "true",
            "duration": "PT10M",
        }
        assert target["parameters"] == {"cluster": CLUSTER, "service": API_SERVICE}
        assert target["selectionMode"] == "ALL"
        assert template["stopConditions"] == [{"source": "aws:cloudwatch:alarm", "value": ALARM_ARN}]
        [experiment] = deployment.fis.list_experiments()["experiments"]
        [entry] = FaultLedger(tmp_path).entries()
        assert entry["id"] == fault and entry["kind"] == "fis" and "ECS cut off" in entry["description"]
        assert entry["undo"] == [{**entry["undo"][0], "do": "stop-fis-experiment", "experiment": experiment["id"]}]
        library.keywords["revert_fault"](fault)
        state = deployment.fis.get_experiment(id=experiment["id"])["experiment"]["state"]["status"]
        assert state in ("stopping", "stopped", "completed")  # moto moves one state per read
        assert FaultLedger(tmp_path).entries() == []
    finally:
        library.keywords["release_platform_access"]()


def test_the_default_sources_follow_the_region(tmp_path):
    route = AwsEcsRoute(library_for(tmp_path, AWS_REGION="eu-west-1", ECS_FAULT_SOURCES="").ctx, None, None)
    assert route.sources() == "ecs.eu-west-1.amazonaws.com"


def test_configured_sources_name_a_vpc_endpoint(deployment, tmp_path):
    library = library_for(tmp_path, ECS_FAULT_SOURCES="10.0.12.0/24,10.0.13.0/24")
    holding_the_deployment(library, "cut_off_ecs_from_the_platform")
    action, _, _ = the_action(deployment.fis)
    assert action["parameters"]["sources"] == "10.0.12.0/24,10.0.13.0/24"


def test_a_dry_run_validates_the_experiment_and_skips(deployment, tmp_path):
    library = library_for(tmp_path, CHAOS_DRY_RUN=True)
    with pytest.raises(SkipExecution, match="Chaos dry run"):
        holding_the_deployment(library, "cut_off_ecs_from_the_platform")
    [experiment] = deployment.fis.list_experiments()["experiments"]
    assert experiment["experimentOptions"]["actionsMode"] == "skip-all"
    assert FaultLedger(tmp_path).entries() == []


class RecordingResources:
    """The control-plane file's owner (ChaosResourceKeywords), recorded."""

    def __init__(self) -> None:
        self.outages: list[tuple[str, str]] = []

    def control_plane_outage(self, word: str, description: str) -> str:
        self.outages.append((word, description))
        return "fault-1"


class AllowAll:
    def allow(self, what: str) -> None:
        self.allowed = what


def test_the_backend_is_chosen_in_one_place_and_the_embedded_one_makes_its_control_plane_unreachable():
    resources, injector = RecordingResources(), AllowAll()
    embedded = create_ecs_route("embedded", None, injector, resources, None)
    assert isinstance(embedded, EmbeddedEcsRoute)
    assert isinstance(create_ecs_route("aws", make_library().ctx, None, None, None), AwsEcsRoute)
    with pytest.raises(ValueError, match="Unknown target"):
        create_ecs_route("gcp", None, None, None, None)
    embedded.check("outage")
    assert "route to ECS (outage)" in injector.allowed
    assert embedded.cut_off() == "fault-1"
    assert resources.outages == [("Unreachable", "container control plane unreachable: ECS calls time out")]


def test_the_embedded_cut_writes_the_control_plane_file_and_its_revert_restores_it(tmp_path):
    """Through the library on a platform of this machine: the file says Unreachable, Revert Fault puts it back."""
    state = tmp_path / "platform"
    state.mkdir()
    plane = state / "control-plane"
    (state / "endpoints.json").write_text(f'{{"CONTROL_PLANE_FILE": "{plane}", "PLATFORM_API_URL": "http://x"}}')
    library = make_library(
        TARGET="embedded", PROFILE="local", PLATFORM_STATE_DIR=str(state), FAULT_LEDGER_DIR=str(tmp_path)
    )
    library.keywords["acquire_platform_access"]("exclusive")
    try:
        fault = library.keywords["cut_off_ecs_from_the_platform"]()
        assert plane.read_text().strip() == "Unreachable"
        [entry] = FaultLedger(tmp_path).entries()
        assert entry["kind"] == "control-plane-outage" and "unreachable" in entry["description"]
        library.keywords["revert_fault"](fault)
        assert not Path(plane).exists()
    finally:
        library.keywords["release_platform_access"]()
