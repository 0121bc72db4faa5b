"""FIS keywords against moto's FIS (moto 5.2.5 implements templates, experiments, tags and manual state moves).

Covered: templates for all seven aws:ecs task actions with run-id tags and CloudWatch-alarm stop conditions,
start, poll, stop, stop-by-run (never someone else's), dry run (actionsMode=skip-all), the listener that stops
a test's experiments, and that every refused chaos run leaves no template and no experiment.
"""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import boto3
import pytest
from moto.fis.models import fis_backends
from PlatformLibrary.aws.fis import FIS_ECS_ACTIONS, build_template, ecs_task_target, iso_duration, resolve_action
from PlatformLibrary.aws.safety import ChaosRefused
from PlatformLibrary.aws.session import AwsError
from PlatformLibrary.core.base import TargetError
from robot.api.exceptions import SkipExecution

from tests.test_aws_support import (
    ACCOUNT,
    ALARM_ARN,
    ALARM_NAME,
    CLUSTER,
    FAMILY,
    REGION,
    ROLE_ARN,
    RUN_ID,
    SERVICE,
    Deployment,
    component,
    make_library,
    mocked_aws,
    use_fake_credentials,
)

SESSION = "s-fis-1"


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    use_fake_credentials(monkeypatch)


@pytest.fixture
def aws():
    with mocked_aws():
        deployment = Deployment()
        deployment.task = deployment.run_task(SESSION)
        cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        cloudwatch.put_metric_alarm(
            AlarmName=ALARM_NAME,
            MetricName="HTTPCode_Target_5XX_Count",
            Namespace="AWS/ApplicationELB",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=10,
            ComparisonOperator="GreaterThanThreshold",
        )
        deployment.cloudwatch = cloudwatch
        deployment.fis = boto3.client("fis", region_name=REGION)
        yield deployment


def library_for(**values):
    library = make_library(**values)
    library.tracker.add("library", SESSION)
    return library


def nothing_created(fis) -> bool:
    return not fis.list_experiment_templates()["experimentTemplates"] and not fis.list_experiments()["experiments"]


# ------------------------------------------------------------------ building requests
def test_action_names_and_durations():
    assert resolve_action("cpu-stress").action_id == "aws:ecs:task-cpu-stress"
    assert resolve_action("task-network-latency").action_id == "aws:ecs:task-network-latency"
    assert resolve_action("aws:ecs:stop-task").takes_duration is False
    with pytest.raises(ValueError, match="Unknown FIS action 'aws:ec2:stop-instances'"):
        resolve_action("aws:ec2:stop-instances")
    assert [iso_duration(s) for s in (60, 90, 7200, 0.2)] == ["PT1M", "PT90S", "PT2H", "PT1S"]
    with pytest.raises(ValueError):
        iso_duration(0)


def test_targets():
    assert ecs_task_target(task_arns=["arn:1"]) == {
        "resourceType": "aws:ecs:task",
        "selectionMode": "ALL",
        "resourceArns": ["arn:1"],
    }
    service = ecs_task_target(cluster="c", service="s", selection_mode="PERCENT(25)")
    assert service["parameters"] == {"cluster": "c", "service": "s"} and service["selectionMode"] == "PERCENT(25)"
    with pytest.raises(ValueError):
        ecs_task_target()


@pytest.mark.parametrize(
    ("action", "parameters"),
    [
        ("aws:ecs:stop-task", {}),
        ("aws:ecs:task-kill-process", {"processName": "node"}),
        ("aws:ecs:task-cpu-stress", {"percent": "90"}),
        ("aws:ecs:task-io-stress", {"workers": "2"}),
        ("aws:ecs:task-network-blackhole-port", {"port": "443", "protocol": "tcp"}),
        ("aws:ecs:task-network-latency", {"delayMilliseconds": "300", "useEcsFaultInjectionEndpoints": True}),
        ("aws:ecs:task-network-packet-loss", {"lossPercent": "20"}),
    ],
)
def test_every_ecs_task_action_creates_a_tagged_template(aws, action, parameters):
    library = library_for()
    template_id = library.keywords["create_fis_experiment_template"](
        action, SESSION, duration=__import__("datetime").timedelta(minutes=2), **parameters
    )
    template = aws.fis.get_experiment_template(id=template_id)["experimentTemplate"]
    fault = template["actions"]["fault"]
    assert fault["actionId"] == action
    spec = FIS_ECS_ACTIONS[action]
    assert ("duration" in fault["parameters"]) is spec.takes_duration
    if spec.takes_duration:
        assert fault["parameters"]["duration"] == "PT2M"
    for key, value in parameters.items():
        assert fault["parameters"][key] == ("true" if value is True else value)
    for key, value in spec.defaults.items():
        assert fault["parameters"][key] == value
    assert template["targets"]["Tasks"]["resourceArns"] == [aws.task]
    assert template["stopConditions"] == [{"source": "aws:cloudwatch:alarm", "value": ALARM_ARN}]
    assert template["roleArn"] == ROLE_ARN
    assert template["tags"]["suite-run-id"] == RUN_ID
    assert template["tags"]["created-by"] == "PlatformLibrary"


def test_required_parameters_are_checked_before_any_call(aws):
    library = library_for()
    with pytest.raises(ValueError, match="needs parameter"):
        library.keywords["create_fis_experiment_template"]("task-kill-process", SESSION)
    with pytest.raises(ValueError, match="needs a duration"):
        library.keywords["create_fis_experiment_template"]("task-cpu-stress", SESSION)
    assert nothing_created(aws.fis)


def test_service_wide_target_picks_tasks_of_the_service(aws):
    library = library_for()
    template_id = library.keywords["create_fis_experiment_template"]("aws:ecs:stop-task", selection="COUNT(2)")
    target = aws.fis.get_experiment_template(id=template_id)["experimentTemplate"]["targets"]["Tasks"]
    assert target["parameters"] == {"cluster": CLUSTER, "service": SERVICE}
    assert target["selectionMode"] == "COUNT(2)"


def test_build_template_without_alarm_uses_no_stop_condition():
    request = build_template(
        resolve_action("stop-task"), ecs_task_target(task_arns=["a"]), run_id="r", role_arn=ROLE_ARN
    )
    assert request["stopConditions"] == [{"source": "none"}]
    with pytest.raises(AwsError, match="FIS_ROLE_ARN"):
        build_template(resolve_action("stop-task"), ecs_task_target(task_arns=["a"]), run_id="r", role_arn="")


# ------------------------------------------------------------------ running experiments
def test_inject_waits_until_running_and_the_experiment_ends(aws):
    library = library_for()
    experiment_id = library.keywords["inject_fis_fault"](
        "task-cpu-stress", SESSION, duration=__import__("datetime").timedelta(minutes=1), percent="80"
    )
    experiment = library.keywords["get_fis_experiment"](experiment_id)
    assert experiment["state"]["status"] in ("running", "completed")
    assert experiment["tags"]["suite-run-id"] == RUN_ID
    assert experiment["experimentOptions"]["actionsMode"] == "run-all"
    assert library.keywords["wait_until_fis_experiment_ends"](experiment_id, expected="completed") == "completed"


def test_wait_fails_when_the_experiment_ends_otherwise(aws):
    library = library_for()
    template = library.keywords["create_fis_experiment_template"]("stop-task", SESSION)
    experiment_id = library.keywords["start_fis_experiment"](template)
    assert library.keywords["stop_fis_experiment"](experiment_id) == "stopping"
    with pytest.raises(AssertionError, match=f"FIS experiment {experiment_id} ended stopped, expected completed"):
        library.keywords["wait_until_fis_experiment_ends"](experiment_id, expected="completed")


def test_inject_fails_with_the_reason_when_fis_fails_the_experiment(aws, monkeypatch):
    library = library_for()
    aws_keywords = component(library, "inject_fis_fault")
    original = aws_keywords._fis.__class__.start

    def start_and_fail(self, template_id, dry_run, tags):
        experiment = original(self, template_id, dry_run, tags)
        fis_backends[ACCOUNT][REGION].experiments[experiment["id"]].status = "failed"
        return experiment

    monkeypatch.setattr(aws_keywords._fis.__class__, "start", start_and_fail)
    with pytest.raises(AssertionError, match=r"\(stop-task\) failed instead of injecting"):
        library.keywords["inject_fis_fault"]("stop-task", SESSION)


def test_state_keyword_follows_moto_transitions(aws):
    library = library_for()
    experiment_id = library.keywords["start_fis_experiment"](
        library.keywords["create_fis_experiment_template"]("stop-task", SESSION)
    )
    states = [library.keywords["get_fis_experiment_state"](experiment_id) for _ in range(4)]
    assert states == ["initiating", "running", "completed", "completed"]


# ------------------------------------------------------------------ stopping: only what this run started
def foreign_experiment(fis, tags):
    template = fis.create_experiment_template(
        description="someone else's",
        stopConditions=[{"source": "none"}],
        targets={
            "Tasks": {
                "resourceType": "aws:ecs:task",
                "resourceArns": [f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{CLUSTER}/0123456789abcdef"],
                "selectionMode": "ALL",
            }
        },
        actions={"a": {"actionId": "aws:ecs:stop-task", "targets": {"Tasks": "Tasks"}}},
        roleArn=ROLE_ARN,
        tags=tags,
    )["experimentTemplate"]
    return fis.start_experiment(experimentTemplateId=template["id"], tags=tags)["experiment"]["id"]


def test_stop_by_run_touches_only_experiments_tagged_with_the_run(aws):
    library = library_for()
    ours = library.keywords["start_fis_experiment"](
        library.keywords["create_fis_experiment_template"]("stop-task", SESSION)
    )
    other_run = foreign_experiment(aws.fis, {"suite-run-id": "another-run"})
    untagged = foreign_experiment(aws.fis, {"owner": "someone"})
    assert library.keywords["stop_experiments_started_by_this_run"]() == [ours]
    assert aws.fis.get_experiment(id=ours)["experiment"]["state"]["status"] in ("stopping", "stopped")
    for other in (other_run, untagged):
        assert aws.fis.get_experiment(id=other)["experiment"]["state"]["status"] not in ("stopping", "stopped")
    assert library.keywords["stop_experiments_started_by_this_run"]() == []


def test_this_worker_only(aws):
    library = library_for()
    ours = library.keywords["start_fis_experiment"](
        library.keywords["create_fis_experiment_template"]("stop-task", SESSION)
    )
    other_worker = foreign_experiment(aws.fis, {"suite-run-id": RUN_ID, "suite-worker": "w9"})
    assert library.keywords["stop_experiments_started_by_this_run"](this_worker_only=True) == [ours]
    assert sorted(library.keywords["stop_experiments_started_by_this_run"]()) == [other_worker]


def test_stopping_a_foreign_experiment_is_refused(aws):
    library = library_for()
    other = foreign_experiment(aws.fis, {"suite-run-id": "another-run"})
    with pytest.raises(AwsError, match="not tagged suite-run-id=run1"):
        library.keywords["stop_fis_experiment"](other)
    assert aws.fis.get_experiment(id=other)["experiment"]["state"]["status"] != "stopping"


def test_templates_of_the_run_are_deleted(aws):
    library = library_for()
    ours = library.keywords["create_fis_experiment_template"]("stop-task", SESSION)
    foreign_experiment(aws.fis, {"suite-run-id": "another-run"})
    assert library.keywords["delete_experiment_templates_created_by_this_run"]() == [ours]
    assert len(aws.fis.list_experiment_templates()["experimentTemplates"]) == 1


def test_listener_stops_a_tests_experiments_and_close_deletes_templates(aws):
    library = library_for()
    keywords = component(library, "start_fis_experiment")
    library.context.current_test = "Suite.Chaos Test"
    experiment_id = library.keywords["start_fis_experiment"](
        library.keywords["create_fis_experiment_template"]("stop-task", SESSION)
    )
    keywords.end_test(None, SimpleNamespace(full_name="Suite.Other Test"))
    assert aws.fis.get_experiment(id=experiment_id)["experiment"]["state"]["status"] not in ("stopping", "stopped")
    keywords.end_test(None, SimpleNamespace(full_name="Suite.Chaos Test"))
    assert aws.fis.get_experiment(id=experiment_id)["experiment"]["state"]["status"] in ("stopping", "stopped")
    keywords.close()
    assert aws.fis.list_experiment_templates()["experimentTemplates"] == []


def test_listener_does_nothing_on_the_embedded_target():
    library = make_library(TARGET="embedded", PROFILE="local")
    keywords = component(library, "start_fis_experiment")
    keywords.end_test(None, SimpleNamespace(full_name="Suite.Test"))
    keywords.end_suite(None, SimpleNamespace(full_name="Suite"))
    keywords.close()
    assert library.keywords["stop_experiments_started_by_this_run"]() == []


# ------------------------------------------------------------------ dry run
def test_dry_run_validates_with_skip_all_and_skips_the_test(aws):
    library = library_for(CHAOS_DRY_RUN=True, FIS_STOP_ALARM_ARN="")
    with pytest.raises(SkipExecution, match="Chaos dry run"):
        library.keywords["inject_fis_fault"](
            "task-network-packet-loss", SESSION, duration=__import__("datetime").timedelta(minutes=1)
        )
    experiments = aws.fis.list_experiments()["experiments"]
    assert len(experiments) == 1
    assert experiments[0]["experimentOptions"]["actionsMode"] == "skip-all"
    assert experiments[0]["tags"]["suite-run-id"] == RUN_ID
    template = aws.fis.list_experiment_templates()["experimentTemplates"][0]
    stop = aws.fis.get_experiment_template(id=template["id"])["experimentTemplate"]["stopConditions"]
    assert stop == [{"source": "none"}]


def test_dry_run_reports_what_fis_rejected(aws, monkeypatch):
    library = library_for(CHAOS_DRY_RUN=True)
    aws_keywords = component(library, "start_fis_experiment")
    original = aws_keywords._fis.__class__.start

    def start_and_fail(self, template_id, dry_run, tags):
        experiment = original(self, template_id, dry_run, tags)
        fis_backends[ACCOUNT][REGION].experiments[experiment["id"]].status = "failed"
        return experiment

    monkeypatch.setattr(aws_keywords._fis.__class__, "start", start_and_fail)
    with pytest.raises(AwsError, match=r"Dry run of FIS experiment .* failed"):
        library.keywords["start_fis_experiment"](
            library.keywords["create_fis_experiment_template"]("stop-task", SESSION)
        )


# ------------------------------------------------------------------ refused chaos creates nothing
@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"CHAOS_ALLOWED": False}, "does not allow chaos"),
        ({"CHAOS_ALLOWED": "false", "CHAOS_DRY_RUN": True}, "does not allow chaos"),
        ({"ENVIRONMENT_NAME": "prod"}, "looks like production"),
        ({"ENVIRONMENT_NAME": "staging", "ECS_CLUSTER": "sessions-production"}, "looks like production"),
        ({"ENVIRONMENT_NAME": ""}, "ENVIRONMENT_NAME"),
        ({"FIS_STOP_ALARM_ARN": ""}, "FIS_STOP_ALARM_ARN"),
    ],
)
def test_refused_chaos_leaves_no_experiment(aws, values, message):
    library = library_for(**values)
    with pytest.raises(ChaosRefused, match=message):
        library.keywords["inject_fis_fault"]("stop-task", SESSION)
    with pytest.raises(ChaosRefused, match=message):
        library.run_keyword("create_fis_experiment_template", ("stop-task",))
    assert nothing_created(aws.fis)


def test_forced_production_run_goes_ahead(aws):
    library = library_for(ENVIRONMENT_NAME="prod", FORCE_CHAOS_IN_PRODUCTION="true")
    assert library.keywords["inject_fis_fault"]("stop-task", SESSION)


def test_stop_alarm_already_firing_refuses(aws):
    aws.cloudwatch.set_alarm_state(AlarmName=ALARM_NAME, StateValue="ALARM", StateReason="5xx burst")
    library = library_for()
    with pytest.raises(ChaosRefused, match="already in ALARM"):
        library.keywords["inject_fis_fault"]("stop-task", SESSION)
    assert nothing_created(aws.fis)


def test_missing_stop_alarm_fails(aws):
    library = library_for(FIS_STOP_ALARM_ARN=f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:nope")
    with pytest.raises(AwsError, match="does not exist"):
        library.keywords["inject_fis_fault"]("stop-task", SESSION)
    assert nothing_created(aws.fis)


def test_sessions_of_other_runs_are_never_targeted(aws):
    library = make_library()  # the session was not created by this library
    with pytest.raises(ChaosRefused, match="not created by this run"):
        library.keywords["inject_fis_fault"]("stop-task", SESSION)
    assert nothing_created(aws.fis)


def test_starting_a_foreign_template_is_refused(aws):
    library = library_for()
    template = aws.fis.create_experiment_template(
        description="x",
        stopConditions=[{"source": "none"}],
        actions={"a": {"actionId": "aws:ecs:stop-task"}},
        roleArn=ROLE_ARN,
    )["experimentTemplate"]
    with pytest.raises(ChaosRefused, match="not tagged with this run"):
        library.keywords["start_fis_experiment"](template["id"])
    assert aws.fis.list_experiments()["experiments"] == []


def test_fis_keywords_refuse_the_embedded_target():
    library = make_library(TARGET="embedded", PROFILE="local")
    with pytest.raises(TargetError, match="works on the AWS target only"):
        library.run_keyword("create_fis_experiment_template", ("stop-task",))


def test_fault_injection_prerequisites_name_what_the_task_definition_lacks():
    from PlatformLibrary.aws.fis import fault_injection_problems

    bare = {"family": "app", "revision": 3, "requiresCompatibilities": ["FARGATE"], "networkMode": "bridge",
            "containerDefinitions": [{"name": "app"}]}  # fmt: skip
    assert fault_injection_problems(bare, resolve_action("stop-task")) == []
    kill = " ".join(fault_injection_problems(bare, resolve_action("task-kill-process")))
    assert (
        "app:3 has no SSM agent container" in kill and "pidMode 'task'" in kill and "enableFaultInjection" not in kill
    )
    network = " ".join(fault_injection_problems(bare, resolve_action("task-network-latency")))
    assert "enableFaultInjection: true" in network and "network mode 'bridge'" in network
    agent = {"name": "ssm", "environment": [{"name": "MANAGED_INSTANCE_ROLE_NAME"}]}
    ready = {**bare, "pidMode": "task", "networkMode": "awsvpc", "enableFaultInjection": True}
    ready["containerDefinitions"] = [agent]
    assert fault_injection_problems(ready, resolve_action("task-network-latency")) == []


def test_a_task_definition_without_fault_injection_is_refused_before_anything_is_created(aws):
    """The Fargate prerequisites are checked before a run touches FIS: a clear error, no template, no experiment."""
    aws.enable_fault_injection(FAMILY, enabled=False)
    library = library_for()
    with pytest.raises(AwsError, match=r"FIS cannot run aws:ecs:task-network-latency .* enableFaultInjection: true"):
        library.keywords["inject_fis_fault"]("task-network-latency", SESSION, duration=timedelta(minutes=1))
    assert nothing_created(aws.fis)
