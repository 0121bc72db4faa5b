"""The embedded platform's ECS face answers as ECS does, and the library's ECS backend reads it unchanged.

Each task here is a real child process: its state must follow the process (a task is STOPPED when its process has
exited, with the exit code ECS reports), and StopTask must send SIGTERM, then SIGKILL after the stop timeout.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError

from testbed.awsface.ecs import EcsEmulator
from testbed.awsface.server import serve
from testbed.awsface.tasks import TaskRegistry
from tests.platform_helpers import wait_for

CLUSTER, SERVICE = "test-cluster", "session-service"
SLEEPER = "import time\nwhile True: time.sleep(0.05)"
# Ignores SIGTERM, so only the SIGKILL after the stop timeout ends it.
STUBBORN = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True: time.sleep(0.05)"


class _NoFis:
    def handle(self, method, path, query, body):
        return 404, {"message": "no FIS here"}, {"x-amzn-ErrorType": "ResourceNotFoundException"}


@pytest.fixture
def face() -> Iterator[tuple[TaskRegistry, object, list[subprocess.Popen[bytes]]]]:
    registry = TaskRegistry(CLUSTER, SERVICE, "us-east-1", stop_timeout=0.5)
    server = serve(EcsEmulator(registry, lambda: {"running": 1, "pending": 0, "desired": 1}), _NoFis())
    client = boto3.client(
        "ecs",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    procs: list[subprocess.Popen[bytes]] = []
    yield registry, client, procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=5)
    server.shutdown()
    registry.close()


def _running_task(registry: TaskRegistry, procs: list, session: str | None, code: str = SLEEPER):
    task = registry.new_task(session)
    proc = subprocess.Popen([sys.executable, "-c", code])
    procs.append(proc)
    registry.spawned(task.arn, session, proc, "")
    registry.ready(proc.pid)
    return task, proc


def _describe(client, arn: str) -> dict:
    return client.describe_tasks(cluster=CLUSTER, tasks=[arn], include=["TAGS"])["tasks"][0]


def test_a_task_follows_its_process_and_a_kill_is_an_essential_container_exit(face):
    registry, client, procs = face
    task, proc = _running_task(registry, procs, "s-1")
    described = _describe(client, task.arn)
    assert (described["lastStatus"], described["desiredStatus"]) == ("RUNNING", "RUNNING")
    assert {"key": "sessionId", "value": "s-1"} in described["tags"]
    assert described["group"] == f"service:{SERVICE}"
    assert client.list_tasks(cluster=CLUSTER)["taskArns"] == [task.arn]
    proc.send_signal(signal.SIGKILL)
    stopped = wait_for(lambda: (t := _describe(client, task.arn))["lastStatus"] == "STOPPED" and t)
    assert stopped["desiredStatus"] == "STOPPED"
    assert stopped["stopCode"] == "EssentialContainerExited"
    assert stopped["containers"][0]["exitCode"] == 137
    assert stopped["stoppedAt"] >= stopped["startedAt"]
    assert {"key": "sessionId", "value": "s-1"} in stopped["tags"]  # a crash keeps the tags
    assert client.list_tasks(cluster=CLUSTER)["taskArns"] == []
    assert client.list_tasks(cluster=CLUSTER, desiredStatus="STOPPED")["taskArns"] == [task.arn]


def test_stop_task_sends_sigterm_then_sigkill_after_the_stop_timeout_and_drops_the_tags(face):
    registry, client, procs = face
    polite, _ = _running_task(registry, procs, "s-polite")
    stubborn, stubborn_proc = _running_task(registry, procs, "s-stubborn", STUBBORN)
    time.sleep(0.3)  # let the stubborn child install its SIGTERM handler
    answer = client.stop_task(cluster=CLUSTER, task=polite.arn, reason="chaos test")["task"]
    assert answer["desiredStatus"] == "STOPPED"
    assert answer["stoppedReason"] == "chaos test"
    done = wait_for(lambda: (t := _describe(client, polite.arn))["lastStatus"] == "STOPPED" and t)
    assert done["containers"][0]["exitCode"] == 143  # SIGTERM
    assert done["stopCode"] == "UserInitiated"
    assert done["tags"] == []  # ECS deletes a stopped task's tags
    began = time.monotonic()
    client.stop_task(cluster=CLUSTER, task=stubborn.arn)
    assert _describe(client, stubborn.arn)["lastStatus"] == "STOPPING"
    wait_for(lambda: _describe(client, stubborn.arn)["lastStatus"] == "STOPPED")
    assert time.monotonic() - began >= 0.45  # it lived until the stop timeout
    assert stubborn_proc.returncode == -signal.SIGKILL
    assert _describe(client, stubborn.arn)["containers"][0]["exitCode"] == 137


def test_errors_are_answered_as_ecs_answers_them(face):
    _, client, _ = face
    with pytest.raises(ClientError) as unknown_cluster:
        client.list_tasks(cluster="nope")
    assert unknown_cluster.value.response["Error"]["Code"] == "ClusterNotFoundException"
    with pytest.raises(ClientError) as unknown_task:
        client.stop_task(cluster=CLUSTER, task="arn:aws:ecs:us-east-1:123456789012:task/test-cluster/0000")
    assert unknown_task.value.response["Error"]["Code"] == "InvalidParameterException"
    missing = client.describe_tasks(cluster=CLUSTER, tasks=["0000"])
    assert missing["failures"] == [{"arn": "0000", "reason": "MISSING"}]
    with pytest.raises(ClientError) as run_task:
        client.run_task(cluster=CLUSTER, taskDefinition="session")
    assert "does not emulate" in run_task.value.response["Error"]["Message"]


def test_the_task_definition_lets_fis_in(face):
    from PlatformLibrary.aws.fis import FIS_ECS_ACTIONS, fault_injection_problems

    _registry, client, _ = face
    service = client.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
    definition = client.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    for action in FIS_ECS_ACTIONS.values():
        assert fault_injection_problems(definition, action) == [], action.action_id


def test_the_library_ecs_backend_reads_the_face_unchanged(face):
    from PlatformLibrary.targets.aws.ecs import EcsSettings, EcsTaskBackend

    registry, client, procs = face
    task, _proc = _running_task(registry, procs, "s-lib")
    _running_task(registry, procs, None)  # a warm-pool task: the service's, no session
    backend = EcsTaskBackend(lambda: EcsSettings(client=client, cluster=CLUSTER, service=SERVICE, min_scan_interval=0))
    [container] = backend.containers_of("s-lib")
    assert container.task_id == task.arn
    assert backend.is_alive(container)
    backend.kill(container, signal.SIGTERM)
    wait_for(lambda: not backend.is_alive(container))
    # Its tags went with the stop; the backend still ties the stopped task to its session.
    assert [t["taskArn"] for t in backend.session_tasks("s-lib")] == [task.arn]
