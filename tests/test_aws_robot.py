"""The AWS keywords inside a real Robot Framework run against a moto server (AWS_ENDPOINT_URL).

Checks what only a run shows: argument conversion, the listener that stops a test's FIS experiment when the
test ends, a dry run marking the test SKIP, and guard refusals failing the test with nothing created.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import requests
from moto.moto_api import state_manager
from moto.server import ThreadedMotoServer

from tests.test_aws_support import (
    ALARM_ARN,
    ALARM_NAME,
    CLUSTER,
    FAMILY,
    REGION,
    ROLE_ARN,
    SERVICE,
    SSM_AGENT_CONTAINER,
)

ROOT = Path(__file__).resolve().parents[1]

SUITE = """\
*** Settings ***
Library           PlatformLibrary    run_id=robotrun


*** Test Cases ***
Experiment Is Left Running
    ${experiment} =    Inject FIS Fault    task-cpu-stress    duration=2 min    selection=PERCENT(50)    percent=75
    VAR    ${EXPERIMENT}    ${experiment}    scope=SUITE

The Listener Stopped It When The Test Ended
    Wait Until FIS Experiment Ends    ${EXPERIMENT}    expected=stopped    timeout=5 s
    ${stopped} =    Stop Experiments Started By This Run
    Should Be Empty    ${stopped}
"""


@pytest.fixture
def moto_endpoint(monkeypatch):
    monkeypatch.setenv("MOTO_ECS_NEW_ARN", "true")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # ECS tasks stay put; an experiment moves one state every second read (pending, initiating, running), so it
    # is still running when the test that started it ends, and the listener's stop is what ends it.
    for model, times in (("ecs::task", 10000), ("fis::experiment", 2)):
        requests.post(
            f"{url}/moto-api/state-manager/set-transition",
            json={"model_name": model, "transition": {"progression": "manual", "times": times}},
            timeout=5,
        ).raise_for_status()
    yield url
    requests.post(f"{url}/moto-api/reset", timeout=5)
    server.stop()
    for model in ("ecs::task", "fis::experiment"):  # the server ran in this process: leave moto's defaults
        state_manager.unset_transition(model)


def client(service: str, url: str):
    return boto3.client(
        service, endpoint_url=url, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def deploy(url: str) -> None:
    ecs = client("ecs", url)
    ecs.create_cluster(clusterName=CLUSTER)
    ecs.register_task_definition(
        family=FAMILY,
        containerDefinitions=[{"name": "app", "image": "x", "memory": 512}, SSM_AGENT_CONTAINER],
        cpu="256",
        memory="512",
    )
    client("cloudwatch", url).put_metric_alarm(
        AlarmName=ALARM_NAME,
        MetricName="m",
        Namespace="n",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )


def run_robot(tmp_path: Path, url: str, *variables: str) -> subprocess.CompletedProcess:
    suite = tmp_path / "fis.robot"
    suite.write_text(SUITE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        AWS_REGION=REGION,
        ENVIRONMENT_NAME="staging",
        ECS_CLUSTER=CLUSTER,
        ECS_SERVICE=SERVICE,
        FIS_ROLE_ARN=ROLE_ARN,
        FIS_STOP_ALARM_ARN=ALARM_ARN,
        CHAOS_ALLOWED="true",
    )
    command = [
        sys.executable,
        "-m",
        "robot",
        "--pythonpath",
        str(ROOT / "libraries"),
        "--variablefile",
        str(ROOT / "resources" / "profiles" / "aws.py"),
        "--variable",
        "POLL_INTERVAL:10 ms",
        *[arg for variable in variables for arg in ("--variable", variable)],
        "--outputdir",
        str(tmp_path),
        "--report",
        "NONE",
        "--console",
        "verbose",
        str(suite),
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=180, check=False)


def test_listener_stops_the_experiment_a_test_left_running(tmp_path, moto_endpoint):
    deploy(moto_endpoint)
    completed = run_robot(tmp_path, moto_endpoint)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    experiments = client("fis", moto_endpoint).list_experiments()["experiments"]
    assert len(experiments) == 1 and experiments[0]["tags"]["suite-run-id"] == "robotrun"
    assert client("fis", moto_endpoint).list_experiment_templates()["experimentTemplates"] == []  # deleted at close


def test_dry_run_marks_the_test_skipped(tmp_path, moto_endpoint):
    deploy(moto_endpoint)
    completed = run_robot(tmp_path, moto_endpoint, "CHAOS_DRY_RUN:true")
    assert "Chaos dry run: FIS experiment" in completed.stdout
    assert "SKIP" in completed.stdout
    experiments = client("fis", moto_endpoint).list_experiments()["experiments"]
    assert [e["experimentOptions"]["actionsMode"] for e in experiments] == ["skip-all"]


@pytest.mark.parametrize(
    ("variable", "message"),
    [("CHAOS_ALLOWED:false", "does not allow chaos"), ("ENVIRONMENT_NAME:eu-prod", "looks like production")],
)
def test_refused_run_skips_and_creates_nothing(tmp_path, moto_endpoint, variable, message):
    """A fault the profile does not allow is a skip with the reason, never a failure (and never an injection)."""
    from robot.api import ExecutionResult

    deploy(moto_endpoint)
    run_robot(tmp_path, moto_endpoint, variable)
    first = ExecutionResult(str(tmp_path / "output.xml")).suite.tests[0]
    assert first.name == "Experiment Is Left Running"
    assert first.status == "SKIP", (first.status, first.message)
    assert message in first.message
    fis = client("fis", moto_endpoint)
    assert fis.list_experiments()["experiments"] == [] and fis.list_experiment_templates()["experimentTemplates"] == []


PLANTED = {
    "AWS_ACCESS_KEY_ID": "AKIAPLANTEDKEY123456",
    "AWS_SECRET_ACCESS_KEY": "plantedSecretAccessKey/0123456789abcdefghij",
    "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEPLANTEDSESSIONTOKEN0123456789abcdefghijklmnop",
}

SECRETS_SUITE = """\
*** Settings ***
Library           PlatformLibrary    run_id=robotrun


*** Test Cases ***
AWS Calls At TRACE Level
    Get AWS Caller Identity
    Run Keyword And Ignore Error    Get Service Capacity
    Run Keyword And Expect Error    *    Get EFS Mount Targets
"""


def test_no_credential_reaches_output_xml_or_log_html_at_trace(tmp_path, moto_endpoint):
    """Plants an access key, secret key and session token, runs AWS keywords at TRACE (botocore's DEBUG lines
    recorded) and greps every file Robot wrote: none of the three may appear, while botocore's lines do."""
    deploy(moto_endpoint)
    suite = tmp_path / "secrets.robot"
    suite.write_text(SECRETS_SUITE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        PLANTED,
        AWS_ENDPOINT_URL=moto_endpoint,
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        AWS_REGION=REGION,
        ECS_CLUSTER=CLUSTER,
        ECS_SERVICE=SERVICE,
        EFS_FILE_SYSTEM_ID="fs-00000000",
    )
    command = [
        sys.executable, "-m", "robot", "--pythonpath", str(ROOT / "libraries"),
        "--variablefile", str(ROOT / "resources" / "profiles" / "aws.py"),
        "--loglevel", "TRACE", "--outputdir", str(tmp_path), "--report", "report.html", str(suite),
    ]  # fmt: skip
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    written = {path.name: path.read_text(errors="replace") for path in tmp_path.iterdir() if path.is_file()}
    assert {"output.xml", "log.html", "report.html"} <= set(written)
    assert "botocore" in written["output.xml"], "botocore's DEBUG lines were not recorded: the test proves nothing"
    for name, text in {**written, "console": completed.stdout + completed.stderr}.items():
        for variable, secret in PLANTED.items():
            assert secret not in text, f"{variable} appears in {name}"
    assert "&lt;redacted&gt;" in written["output.xml"], "nothing was redacted: were the credentials used at all?"
