"""The AWS face's FIS on the route to CloudWatch: aws:ecs:task-network-packet-loss on the API service's tasks with
``sources`` naming CloudWatch's Regional endpoint (``monitoring.<region>.amazonaws.com``) lands on the fault proxy's
``cloudwatch`` hop (the platform's metrics take it), as DYNAMODB sources land on the ``dynamodb`` hop; sources naming
both land on both (docs/aws-emulation.md).

Driven by a real boto3 ``fis`` client against the emulator, with the API tier's targets as tasks the load balancer
knows and a fault proxy client that records toxics per hop.
"""

from __future__ import annotations

from typing import Any

import pytest

from testbed.awsface.actions import NoEffect, monitoring_endpoint_name, parse_sources
from tests.test_awsface_dynamodb_route import ENDPOINT, api_task, every_api_task, route  # noqa: F401 (fixture)
from tests.test_awsface_fis import REGION, RecordingMesh

MONITORING = monitoring_endpoint_name(REGION)  # monitoring.us-east-1.amazonaws.com


class HopMesh(RecordingMesh):
    """A recording fault proxy whose toxic names are per hop, as the fault proxy's (and Toxiproxy's) are."""

    def add_toxic(self, proxy: str, type: str, stream: str = "downstream", **kwargs: Any) -> dict[str, Any]:
        self.toxics[f"{proxy}/{kwargs['name']}"] = {"proxy": proxy, "type": type, "stream": stream, **kwargs}
        return self.toxics[f"{proxy}/{kwargs['name']}"]

    def remove_toxic(self, proxy: str, name: str) -> None:
        del self.toxics[f"{proxy}/{name}"]


@pytest.fixture
def cloudwatch_route(route):  # noqa: F811 (the fixture imported above)
    face, _, balancer = route
    face.mesh = HopMesh()
    return face, face.mesh, balancer


def hops(mesh: HopMesh) -> list[tuple[str, str, str, float]]:
    return sorted((t["proxy"], t["type"], t["stream"], t["toxicity"]) for t in mesh.toxics.values())


def test_packet_loss_to_the_monitoring_endpoint_black_holes_the_cloudwatch_hop(cloudwatch_route) -> None:
    face, mesh, balancer = cloudwatch_route
    api_task(face, balancer, "api-1")
    api_task(face, balancer, "api-2")
    template = face.template(
        "network-packet-loss", every_api_task(), duration=60, lossPercent="100", sources=MONITORING
    )
    experiment = face.start(template)
    face.wait_action(experiment)
    # Both API tasks share the one route of the platform's metrics: one toxic, a black hole, on the cloudwatch hop.
    assert hops(mesh) == [("cloudwatch", "timeout", "upstream", 1.0)]
    face.run.stop(experiment)
    face.wait_state(experiment, "stopped")
    assert mesh.toxics == {}


def test_sources_naming_dynamodb_and_cloudwatch_fault_both_routes_until_the_last_hold_goes(cloudwatch_route) -> None:
    face, mesh, balancer = cloudwatch_route
    first, second = api_task(face, balancer, "api-1"), api_task(face, balancer, "api-2")
    actions = face.emulator.actions
    sources = parse_sources(f"DYNAMODB,{MONITORING}")
    holds = [actions.network_packet_loss(task, 100, "fis-both", sources, 50) for task in (first, second)]
    assert hops(mesh) == [("cloudwatch", "timeout", "upstream", 0.5), ("dynamodb", "timeout", "upstream", 0.5)]
    holds[0].revert()
    assert len(mesh.toxics) == 2
    holds[1].revert()
    assert mesh.toxics == {}


def test_another_region_s_monitoring_endpoint_or_a_session_task_reaches_no_cloudwatch_hop(cloudwatch_route) -> None:
    face, mesh, balancer = cloudwatch_route
    task = api_task(face, balancer, "api-1")
    actions = face.emulator.actions
    for other in ("monitoring.eu-west-1.amazonaws.com", "logs.us-east-1.amazonaws.com"):
        assert isinstance(actions.network_packet_loss(task, 100, "fis-y", parse_sources(other)), NoEffect), other
    # A session's container publishes no metrics: the endpoint's name reaches nothing there.
    session = face.task("s1")
    assert isinstance(actions.network_packet_loss(session, 100, "fis-z", parse_sources(MONITORING)), NoEffect)
    assert mesh.toxics == {}
    assert ENDPOINT != MONITORING
