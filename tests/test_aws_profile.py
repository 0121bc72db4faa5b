"""The aws profile: its names come from the environment, it is safe by default, and the suites dry-run on it."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PlatformLibrary.aws.safety import ChaosGuard

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "resources" / "profiles" / "aws.py"
IAM_POLICY = ROOT / "docs" / "aws-iam-policy.json"


def load_profile(monkeypatch, **env: str) -> dict:
    for name in list(os.environ):
        if name.startswith(("AWS_", "ECS_", "ALB_", "API_", "TOXIPROXY_", "FIS_", "CHAOS_", "EFS_")) or name in (
            "ENVIRONMENT_NAME",
            "PLATFORM_API_URL",
            "SESSIONS_TABLE",
        ):
            monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("aws_profile_under_test", PROFILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {k: v for k, v in vars(module).items() if k.isupper()}


def test_defaults_are_safe(monkeypatch):
    values = load_profile(monkeypatch)
    assert values["TARGET"] == "aws"
    assert values["CHAOS_ALLOWED"] is False and values["FORCE_CHAOS_IN_PRODUCTION"] is False
    assert values["CHAOS_DRY_RUN"] is False
    assert values["CHAOS_SCOPE"] == "sessions"  # faults on the deployment itself need an opt-in
    assert values["API_ECS_SERVICE"] == "" and values["API_CONTAINER_PORT"] == 0
    assert not ChaosGuard.from_values(values).as_dict()["allowed"]
    assert not any(key in values for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"))


def test_every_name_comes_from_the_environment(monkeypatch):
    env = {
        "AWS_REGION": "eu-west-1",
        "AWS_PROFILE": "sessions-staging",
        "ENVIRONMENT_NAME": "staging",
        "ECS_CLUSTER": "sessions",
        "ECS_SERVICE": "session-service",
        "SESSIONS_TABLE": "sessions",
        "EFS_FILE_SYSTEM_ID": "fs-0123",
        "ALB_URL": "https://alb.example",
        "FIS_ROLE_ARN": "arn:aws:iam::1:role/fis",
        "FIS_STOP_ALARM_ARN": "arn:aws:cloudwatch:eu-west-1:1:alarm:stop",
        "API_ECS_SERVICE": "api-service",
        "API_TARGET_GROUP_ARN": "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/api/0123",
        "CHAOS_SCOPE": "deployment",
        "CHAOS_ALLOWED": "true",
        "CHAOS_DRY_RUN": "yes",
    }
    values = load_profile(monkeypatch, **env, API_CONTAINER_PORT="8080")
    assert values["API_CONTAINER_PORT"] == 8080
    for name, value in env.items():
        if name not in ("CHAOS_ALLOWED", "CHAOS_DRY_RUN"):
            assert values[name] == value, name
    assert values["CHAOS_ALLOWED"] is True and values["CHAOS_DRY_RUN"] is True
    assert values["PLATFORM_API_URL"] == "https://alb.example"
    assert values["FAULT_PROXY_URL"] == ""
    assert ChaosGuard.from_values(values).as_dict()["allowed"]
    assert ChaosGuard.from_values(values).deployment_refusal() is None
    assert "CHAOS_SCOPE" in (ChaosGuard.from_values({**values, "CHAOS_SCOPE": "sessions"}).deployment_refusal() or "")


def test_force_is_never_read_from_the_environment(monkeypatch):
    assert load_profile(monkeypatch, FORCE_CHAOS_IN_PRODUCTION="true")["FORCE_CHAOS_IN_PRODUCTION"] is False


def test_toxiproxy_puts_the_suite_behind_the_hop(monkeypatch):
    values = load_profile(
        monkeypatch, ALB_URL="http://alb.example", TOXIPROXY_URL="http://toxi:8474", TOXIPROXY_LISTEN="127.0.0.1:18080"
    )
    assert values["FAULT_PROXY_URL"] == "http://toxi:8474"
    assert values["PLATFORM_API_URL"] == "http://127.0.0.1:18080"
    explicit = load_profile(
        monkeypatch, PLATFORM_API_URL="http://direct", TOXIPROXY_URL="http://t", TOXIPROXY_LISTEN="x"
    )
    assert explicit["PLATFORM_API_URL"] == "http://direct"


def test_iam_policy_is_least_privilege_json():
    policy = json.loads(IAM_POLICY.read_text())
    assert policy["Version"] == "2012-10-17"
    actions = [a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    assert not any(a == "*" or a.endswith(":*") for a in actions), "no wildcard actions"
    for needed in (
        "fis:CreateExperimentTemplate",
        "fis:StartExperiment",
        "fis:StopExperiment",
        "fis:GetExperiment",
        "fis:ListExperiments",
        "fis:TagResource",
        "ecs:ListTasks",
        "ecs:DescribeTasks",
        "ecs:StopTask",
        "ecs:DescribeServices",
        "dynamodb:GetItem",
        "dynamodb:DescribeTable",
        "elasticfilesystem:DescribeMountTargets",
        "elasticloadbalancing:DescribeTargetHealth",
        "cloudwatch:GetMetricStatistics",
        "cloudwatch:DescribeAlarms",
        "application-autoscaling:DescribeScalingActivities",
        "application-autoscaling:DescribeScalableTargets",
        "iam:PassRole",
    ):
        assert needed in actions, needed
    pass_role = next(s for s in policy["Statement"] if "iam:PassRole" in s["Action"])
    assert pass_role["Resource"] != "*"
    assert pass_role["Condition"]["StringEquals"]["iam:PassedToService"] == "fis.amazonaws.com"
    stops = [s for s in policy["Statement"] if "fis:StopExperiment" in s["Action"]]
    assert all("aws:ResourceTag/suite-run-id" in json.dumps(s.get("Condition", {})) for s in stops)


@pytest.mark.skipif(not (ROOT / "suites").is_dir(), reason="no suites")
def test_suites_dry_run_cleanly_with_the_aws_profile(tmp_path):
    """``robot --dryrun`` of every suite with the aws profile: library import, keyword names and arguments."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "robot",
            "--dryrun",
            "--pythonpath",
            "libraries",
            "--variablefile",
            "resources/profiles/aws.py",
            "--outputdir",
            str(tmp_path),
            "--log",
            "NONE",
            "--report",
            "NONE",
            "--console",
            "dotted",
            "suites",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    assert "[ ERROR ]" not in completed.stdout + completed.stderr, completed.stdout[-4000:] + completed.stderr[-4000:]


def test_every_aws_keyword_is_exercised_by_a_test():
    """Each AWS-facing keyword (AWS services, ECS tasks, FIS, cost) is called by name in tests/test_aws_*.py."""
    from PlatformLibrary.aws.keywords import AwsKeywords
    from PlatformLibrary.faults.fis import FisKeywords
    from PlatformLibrary.report.cost import CostKeywords
    from PlatformLibrary.targets.aws.keywords import EcsKeywords

    components = (AwsKeywords, EcsKeywords, FisKeywords, CostKeywords)
    names = [name for cls in components for name, member in vars(cls).items() if hasattr(member, "robot_name")]
    assert len(names) > 25
    sources = "\n".join(path.read_text() for path in (ROOT / "tests").glob("test_aws_*.py"))
    robot_sources = sources.lower().replace(" ", "_")
    missing = [name for name in names if f'"{name}"' not in sources and name not in robot_sources]
    assert not missing, f"AWS keywords without a test: {missing}"


PLACEMENT_SUITE = """\
*** Settings ***
Library           PlatformLibrary    run_id=placement


*** Test Cases ***
Needs The DynamoDB Hop
    [Tags]    needs-dynamodb-hop
    [Setup]    Fail    the setup must not run
    Fail    the body must not run
    [Teardown]    Fail    the teardown must not run

Runs Everywhere
    Log    ran
"""


def test_a_test_that_needs_the_embedded_platform_is_skipped_on_aws_with_its_reason(tmp_path):
    from robot.api import ExecutionResult

    (tmp_path / "placement.robot").write_text(PLACEMENT_SUITE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    command = [
        sys.executable, "-m", "robot", "--pythonpath", str(ROOT / "libraries"),
        "--variablefile", str(ROOT / "resources" / "profiles" / "aws.py"),
        "--outputdir", str(tmp_path), "--log", "NONE", "--report", "NONE", str(tmp_path / "placement.robot"),
    ]  # fmt: skip
    subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    needs, anywhere = ExecutionResult(str(tmp_path / "output.xml")).suite.tests
    assert needs.status == "SKIP", needs.message
    assert needs.message.startswith("Embedded platform only: this test forges DynamoDB's answers on the platform's")
    assert "FIS reaches that route only as traffic" in needs.message
    assert anywhere.status == "PASS"


def test_where_tests_run_is_documented_and_current():
    """docs/where-tests-run.md is what the tags say; every needs- tag has a reason; README links the table."""
    from PlatformLibrary.targets.placement import main, unknown_needs
    from robot.api import TestSuiteBuilder

    tags = set()

    def walk(suite):
        for test in suite.tests:
            tags.update(test.tags)
        for child in suite.suites:
            walk(child)

    walk(TestSuiteBuilder().build(str(ROOT / "suites")))
    assert unknown_needs(tags) == []
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main([str(ROOT / "suites")])
    assert (ROOT / "docs" / "where-tests-run.md").read_text() == out.getvalue(), (
        "run: python -m PlatformLibrary.targets.placement suites > docs/where-tests-run.md"
    )
    assert "docs/where-tests-run.md" in (ROOT / "README.md").read_text()
    assert "docs/where-tests-run.md" in (ROOT / "docs" / "aws.md").read_text()
    assert "docs/deployment-contract.md" in (ROOT / "README.md").read_text()
    assert "(deployment-contract.md)" in (ROOT / "docs" / "aws.md").read_text()
