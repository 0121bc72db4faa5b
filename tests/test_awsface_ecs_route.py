"""The AWS face's FIS on the API tier's route to ECS: aws:ecs:task-network-packet-loss (100 %) on the API service's
tasks with ``sources`` naming ECS's Regional endpoint switches the platform's control plane to ``Unreachable`` (every
ECS call of the platform then fails after the connect timeout, with no ECS error code), held while any targeted API
task has it and restored when the experiment ends or is stopped; a partial loss or latency to ECS is not emulated and
fails the action (docs/aws-emulation.md).

Driven by a real boto3 ``fis`` client against the emulator (tests/test_awsface_fis.py's face), with the API tier's
targets as tasks the load balancer knows (tests/test_awsface_dynamodb_route.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.awsface.actions import NoEffect, ProcessFaultActions, parse_sources
from testbed.controlplane import ControlPlane, ControlPlaneUnreachable, ecs_endpoint_name
from tests.test_awsface_dynamodb_route import Balancer, api_task, every_api_task, toxics
from tests.test_awsface_fis import REGION, Face, RecordingMesh

ENDPOINT = ecs_endpoint_name(REGION)  # ecs.us-east-1.amazonaws.com


@pytest.fixture
def route(tmp_path: Path) -> Iterator[tuple[Face, RecordingMesh, Balancer, Path]]:
    """The FIS face with an API tier and the platform's control-plane file."""
    made, mesh, balancer = Face(tmp_path), RecordingMesh(), Balancer()
    plane = tmp_path / "control-plane"
    made.mesh = mesh
    made.emulator.actions = ProcessFaultActions(
        made.registry,
        lambda: made.mesh,
        made.limits,
        lambda task: None,
        api_tier=balancer,
        region=REGION,
        control_plane=plane,
    )
    try:
        yield made, mesh, balancer, plane
    finally:
        made.close()


def test_packet_loss_to_ecs_on_every_api_task_makes_the_control_plane_unreachable_until_stopped(route) -> None:
    face, mesh, balancer, plane = route
    api_task(face, balancer, "api-1")
    api_task(face, balancer, "api-2")
    template = face.template("network-packet-loss", every_api_task(), duration=60, lossPercent="100", sources=ENDPOINT)
    experiment = face.start(template)
    face.wait_action(experiment)
    assert plane.read_text().strip() == "Unreachable"
    assert mesh.toxics == {}, "no hop is faulted: the route to ECS is the control plane's"
    control = ControlPlane(plane, connect_timeout=0.2, endpoint=ENDPOINT)
    began = time.monotonic()
    with pytest.raises(ControlPlaneUnreachable, match=f'Connect timeout on endpoint URL: "https://{ENDPOINT}/"'):
        control.check("RunTask")
    assert time.monotonic() - began >= 0.2, "an unreachable ECS fails a call only after the connect timeout"
    face.run.stop(experiment)
    face.wait_state(experiment, "stopped")
    assert not plane.exists(), "the control-plane file is back as it was: absent"


def test_the_cut_ends_with_the_action_and_restores_what_the_file_held(route) -> None:
    face, _, balancer, plane = route
    plane.write_text("")  # an empty file: the control plane answers
    api_task(face, balancer, "api-1")
    template = face.template("network-packet-loss", every_api_task(), duration=1, lossPercent="100", sources=ENDPOINT)
    experiment = face.start(template)
    face.wait_action(experiment)
    assert plane.read_text().strip() == "Unreachable"
    assert face.wait_state(experiment, "completed", "failed")["state"]["status"] == "completed"
    assert plane.read_text() == ""


def test_the_cut_stays_until_the_last_api_task_lets_go(route) -> None:
    face, _, balancer, plane = route
    first, second = api_task(face, balancer, "api-1"), api_task(face, balancer, "api-2")
    actions = face.emulator.actions
    holds = [actions.network_packet_loss(task, 100, "fis-x-fault", parse_sources(ENDPOINT)) for task in (first, second)]
    holds[0].revert()
    holds[0].revert()  # a hold lets go once
    assert plane.read_text().strip() == "Unreachable"
    holds[1].revert()
    assert not plane.exists()


def test_only_a_whole_cut_of_the_route_to_ecs_is_emulated(route) -> None:
    face, mesh, balancer, plane = route
    task = api_task(face, balancer, "api-1")
    for parameters, why in (
        ({"lossPercent": "50"}, "only as a whole"),
        ({"lossPercent": "100", "flowsPercent": "30"}, "only as a whole"),
        ({"lossPercent": "100", "sources": f"DYNAMODB,{ENDPOINT}"}, "separate actions"),
    ):
        sources = parameters.pop("sources", ENDPOINT)
        template = face.template("network-packet-loss", every_api_task(), duration=60, sources=sources, **parameters)
        failed = face.wait_state(face.start(template), "failed", "completed", "stopped")
        assert failed["state"]["status"] == "failed"
        assert why in failed["actions"]["fault"]["state"]["reason"]
    latency = face.template("network-latency", every_api_task(), duration=60, sources=ENDPOINT)
    failed = face.wait_state(face.start(latency), "failed", "completed", "stopped")
    assert "latency or a partial loss to ECS is not emulated" in failed["actions"]["fault"]["state"]["reason"]
    assert not plane.exists() and mesh.toxics == {}
    # Another region's ECS, or a session's task (whose container calls no ECS), is left alone.
    actions = face.emulator.actions
    other = parse_sources("ecs.eu-west-1.amazonaws.com")
    assert isinstance(actions.network_packet_loss(task, 100, "fis-y", other), NoEffect)
    assert isinstance(actions.network_packet_loss(face.task("s1"), 100, "fis-z", parse_sources(ENDPOINT)), NoEffect)
    assert not plane.exists() and toxics(mesh) == []
