"""The AWS face's FIS on the route to DynamoDB: aws:ecs:task-network-packet-loss and -latency on the API service's
tasks with ``sources`` naming DynamoDB land on the fault proxy's ``dynamodb`` hop (the API tier's DynamoDB calls take
it), held while any targeted API task has it and removed when the experiment ends or is stopped; ``sources`` and
``flowsPercent`` are checked as the FIS actions reference describes them (docs/aws-emulation.md).

Driven by a real boto3 ``fis`` client against the emulator (tests/test_awsface_fis.py's face), with the API tier's
targets as tasks the load balancer knows and a recording fault proxy client.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PlatformLibrary.aws.fis import build_template, ecs_task_target, resolve_action

from testbed.awsface.actions import (
    NoEffect,
    ParameterError,
    ProcessFaultActions,
    Source,
    dynamodb_endpoint_name,
    parse_sources,
)
from testbed.awsface.tasks import Task
from tests.test_awsface_fis import (
    ALARM_ARN,
    CLUSTER,
    REGION,
    ROLE_ARN,
    RUN_ID,
    Face,
    RecordingMesh,
    error_of,
)

API_SERVICE = "api-service"
ENDPOINT = dynamodb_endpoint_name(REGION)  # dynamodb.us-east-1.amazonaws.com


class Balancer:
    """What the API tier tells the face: which task is which target (no black holes needed here)."""

    def __init__(self) -> None:
        self.targets: dict[str, str] = {}

    def target_of_task(self, task_arn: str) -> str | None:
        return self.targets.get(task_arn)

    def blackhole(self, ident: str, on: bool) -> bool:
        return True


@pytest.fixture
def route(tmp_path: Path) -> Iterator[tuple[Face, RecordingMesh, Balancer]]:
    """The FIS face with an API tier: its FIS carries out the actions through an API-aware ProcessFaultActions."""
    made, mesh, balancer = Face(tmp_path), RecordingMesh(), Balancer()
    made.mesh = mesh
    made.emulator.actions = ProcessFaultActions(
        made.registry, lambda: made.mesh, made.limits, lambda task: None, api_tier=balancer, region=REGION
    )
    try:
        yield made, mesh, balancer
    finally:
        made.close()


def api_task(face: Face, balancer: Balancer, ident: str) -> Task:
    task = face.registry.new_task(service=API_SERVICE, family="api", container_name="api", container_port=8080)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    face.procs.append(proc)
    face.registry.spawned(task.arn, None, proc, "", host_port=40000 + len(balancer.targets))
    face.registry.ready(proc.pid)
    balancer.targets[task.arn] = ident
    return task


def every_api_task() -> dict[str, Any]:
    return ecs_task_target(cluster=CLUSTER, service=API_SERVICE, selection_mode="ALL")


def toxics(mesh: RecordingMesh) -> list[tuple[str, str, str, float, dict[str, Any]]]:
    return [(t["proxy"], t["type"], t["stream"], t["toxicity"], t["attributes"]) for t in mesh.toxics.values()]


# ----- sources and flowsPercent, as FIS takes them ------------------------------------------------------------------
def test_sources_take_the_forms_of_the_fis_actions_reference() -> None:
    parsed = parse_sources(f"DYNAMODB,S3,ALL,{ENDPOINT},10.0.0.5,10.0.0.0/16,us-east-1a,use1-az1")
    assert [s.kind for s in parsed] == ["DYNAMODB", "S3", "ALL", "domain", "ipv4", "cidr", "az", "az"]
    assert parse_sources("DynamoDB.US-East-1.amazonaws.com.") == (Source("domain", ENDPOINT),)
    assert Source("cidr", "127.0.0.0/8").covers_loopback() and Source("ALL", "ALL").covers_loopback()
    assert not Source("cidr", "10.0.0.0/8").covers_loopback() and not Source("DYNAMODB", "DYNAMODB").covers_loopback()
    for bad, why in (
        ("DYNAMODB, S3", "without spaces"),
        ("DYNAMODB,,S3", "without spaces"),
        ("", "at least one"),
        ("10.0.0.300", "not an IPv4 address"),
        ("10.0.0.0/33", "not an IPv4 address"),
        ("2001:db8::1", "is not an IPv4 address, an IPv4 CIDR block, a domain name"),
        ("dynamodb", "is not an IPv4 address, an IPv4 CIDR block, a domain name"),
    ):
        with pytest.raises(ParameterError, match=why):
            parse_sources(bad)


def test_a_template_with_sources_or_flows_fis_would_refuse_is_a_validation_error(route) -> None:
    face, _, _ = route

    def create(**parameters: str):
        request = build_template(
            resolve_action("network-packet-loss"),
            every_api_task(),
            run_id=RUN_ID,
            role_arn=ROLE_ARN,
            parameters=parameters,
            duration_seconds=60,
            stop_alarm_arns=[ALARM_ARN],
        )
        return lambda: face.fis.create_experiment_template(**request)

    code, message = error_of(create(sources="DYNAMODB, S3"))
    assert code == "ValidationException" and "without spaces" in message
    code, message = error_of(create(sources="not a source"))
    assert code == "ValidationException" and "sources" in message
    code, message = error_of(create(flowsPercent="101"))
    assert code == "ValidationException" and "flowsPercent must be between 0 and 100" in message
    code, message = error_of(create(lossPercent="-1"))
    assert code == "ValidationException" and "lossPercent" in message
    create(sources=f"DYNAMODB,{ENDPOINT}", flowsPercent="50", lossPercent="100")()  # accepted
    default = face.fis.get_action(id="aws:ecs:task-network-latency")["action"]["parameters"]
    assert {"sources", "flowsPercent"} <= set(default)


# ----- the route to DynamoDB ----------------------------------------------------------------------------------------
def test_packet_loss_to_dynamodb_on_the_api_tasks_black_holes_the_dynamodb_hop_once(route) -> None:
    face, mesh, balancer = route
    api_task(face, balancer, "api-1")
    api_task(face, balancer, "api-2")
    face.task("s1")  # a session's task: not of the API service, not targeted
    template = face.template(
        "network-packet-loss", every_api_task(), duration=60, lossPercent="100", sources="DYNAMODB"
    )
    experiment = face.start(template)
    face.wait_action(experiment)
    # Both API tasks share the one route: one toxic, a black hole on everything the API sends DynamoDB.
    assert toxics(mesh) == [("dynamodb", "timeout", "upstream", 1.0, {"timeout": 0})]
    resolved = face.fis.list_experiment_resolved_targets(experimentId=experiment)["resolvedTargets"]
    assert len(resolved) == 2
    face.run.stop(experiment)
    face.wait_state(experiment, "stopped")
    assert mesh.toxics == {}


def test_latency_to_the_regional_endpoint_slows_the_dynamodb_hop_until_the_action_ends(route) -> None:
    face, mesh, balancer = route
    api_task(face, balancer, "api-1")
    template = face.template(
        "network-latency",
        every_api_task(),
        duration=1,
        delayMilliseconds="300",
        jitterMilliseconds="0",
        sources=ENDPOINT,
        flowsPercent="50",
    )
    experiment = face.start(template)
    face.wait_action(experiment)
    assert toxics(mesh) == [("dynamodb", "latency", "downstream", 0.5, {"latency": 300, "jitter": 0})]
    assert face.wait_state(experiment, "completed", "failed")["state"]["status"] == "completed"
    assert mesh.toxics == {}


def test_a_shared_route_toxic_stays_until_the_last_api_task_lets_go(route) -> None:
    face, mesh, balancer = route
    first, second = api_task(face, balancer, "api-1"), api_task(face, balancer, "api-2")
    actions = face.emulator.actions
    sources = parse_sources("DYNAMODB")
    holds = [actions.network_packet_loss(task, 30, "fis-x-fault", sources, 50) for task in (first, second)]
    assert toxics(mesh) == [("dynamodb", "timeout", "upstream", 0.15, {"timeout": 0})]
    holds[0].revert()
    holds[0].revert()  # a hold lets go once
    assert len(mesh.toxics) == 1
    holds[1].revert()
    assert mesh.toxics == {}


def test_sources_that_name_no_dynamodb_of_the_deployment_leave_its_route_alone(route) -> None:
    face, mesh, balancer = route
    task = api_task(face, balancer, "api-1")
    actions = face.emulator.actions
    for other in ("S3", "dynamodb.eu-west-1.amazonaws.com", "example.com", "10.0.0.0/8"):
        assert isinstance(actions.network_packet_loss(task, 100, "fis-y", parse_sources(other)), NoEffect), other
    assert mesh.toxics == {}
    # A session's container calls no DynamoDB: sources naming it reach nothing there; ALL still reaches its mesh.
    session = face.task("s1")
    assert isinstance(actions.network_latency(session, 200, 0, "fis-z", parse_sources("DYNAMODB")), NoEffect)
    actions.network_latency(session, 200, 0, "fis-z", parse_sources("127.0.0.0/8"))
    assert toxics(mesh) == [("mesh-s1", "latency", "downstream", 1.0, {"latency": 200, "jitter": 0})]


def test_sources_wider_than_the_route_to_dynamodb_fail_the_action_on_an_api_task(route) -> None:
    face, mesh, balancer = route
    api_task(face, balancer, "api-1")
    template = face.template("network-packet-loss", every_api_task(), duration=60, lossPercent="100", sources="ALL")
    failed = face.wait_state(face.start(template), "failed", "completed", "stopped")
    assert failed["state"]["status"] == "failed"
    assert "only on its routes to AWS services" in failed["actions"]["fault"]["state"]["reason"]
    assert mesh.toxics == {}
