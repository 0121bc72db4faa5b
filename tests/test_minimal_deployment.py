"""The minimal deployment's own behaviour: up, a session RUNNING on an ECS task, a stopped task restarted, down.

The recovery suites judge it against the contract (``./run.sh suite --profile aws-minimal suites/recovery``); these
tests only show that it starts, keeps a task RUNNING on moto (whose ECS tasks would otherwise move towards STOPPED),
restarts a session whose task stops, and that ``down`` leaves no process behind.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import boto3
import psutil
import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]


def run(command: str, state: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "minimal_deployment", command, "--state", str(state), "--start-delay", "0.2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )


def wait_for(probe, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {probe.__doc__}")


def services_of(state: Path) -> list[psutil.Process]:
    """Processes serving this state folder."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = process.info["cmdline"] or []
        if "minimal_deployment" in cmdline and str(state) in cmdline and process.info["status"] != "zombie":
            found.append(process)
    return found


@pytest.fixture
def deployment(tmp_path):
    state = tmp_path / "minimal"
    started = run("up", state)
    assert started.returncode == 0, started.stderr
    endpoints = json.loads(started.stdout)
    yield state, endpoints
    run("down", state)


def test_up_serves_sessions_on_running_tasks_restarts_a_stopped_task_and_down_stops_it(deployment):
    state, endpoints = deployment
    api = endpoints["PLATFORM_API_URL"]
    assert api.startswith("http://127.0.0.1:") and endpoints["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert [p.pid for p in services_of(state)] == [int((state / "pid").read_text())] == [endpoints["PID"]]
    assert requests.get(api + "/health", timeout=5).json() == {"status": "ok"}

    created = requests.post(api + "/sessions", json={"userId": "u1", "clientId": "c1"}, timeout=5)
    assert created.status_code == 201, created.text
    session_id = created.json()["sessionId"]

    def running():
        """the session RUNNING"""
        session = requests.get(f"{api}/sessions/{session_id}", timeout=5).json()
        return session if session["status"] == "RUNNING" else None

    first = wait_for(running)
    assert first["restartCount"] == 0 and first["startType"] == "cold" and first["startDurationMs"] > 0
    ecs = boto3.client(
        "ecs",
        endpoint_url=endpoints["AWS_ENDPOINT_URL"],
        region_name=endpoints["AWS_REGION"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    cluster = endpoints["ECS_CLUSTER"]
    for _ in range(5):  # moto's state manager keeps the task RUNNING however often it is described
        task = ecs.describe_tasks(cluster=cluster, tasks=[first["taskId"]], include=["TAGS"])["tasks"][0]
        assert task["lastStatus"] == "RUNNING"
    assert task["startedBy"] == session_id and {"key": "sessionId", "value": session_id} in task["tags"]

    ecs.stop_task(cluster=cluster, task=first["taskId"], reason="stopped by the test")

    def restarted():
        """a new task RUNNING for the session"""
        session = running()
        return session if session and session["taskId"] != first["taskId"] else None

    second = wait_for(restarted)
    assert second["restartCount"] == 1 and "stopped by the test" in second["lastFailureReason"]
    assert second["lastRecoveryMs"] > 0
    record = boto3.client(
        "dynamodb",
        endpoint_url=endpoints["AWS_ENDPOINT_URL"],
        region_name=endpoints["AWS_REGION"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).get_item(TableName=endpoints["SESSIONS_TABLE"], Key={"sessionId": {"S": session_id}})["Item"]
    assert record["restartCount"] == {"N": "1"} and record["taskId"] == {"S": second["taskId"]}

    stopped = run("down", state)
    assert stopped.returncode == 0, stopped.stderr
    assert services_of(state) == [] and not (state / "pid").exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(api + "/health", timeout=2)


def test_up_refuses_a_second_instance_and_down_without_one_is_harmless(deployment, tmp_path):
    state, _ = deployment
    again = run("up", state)
    assert again.returncode == 1 and "already runs" in again.stderr
    assert len(services_of(state)) == 1
    nothing = run("down", tmp_path / "never-started")
    assert nothing.returncode == 0 and "nothing to stop" in nothing.stdout
