"""The ECS container backend and the ECS keywords against moto (MOTO_ECS_NEW_ARN, manual task transitions).

The container keywords the recovery suites use (find, kill, wait for the restart, orphans) run unchanged on
ECS tasks; the API's view of the session is stubbed where a keyword asks it, since there is no API here.
"""

from __future__ import annotations

import re
import signal
from datetime import UTC, datetime, timedelta

import pytest
from moto.moto_api import state_manager
from PlatformLibrary.aws.safety import ChaosRefused
from PlatformLibrary.targets import ContainerBackendError, create_backend
from PlatformLibrary.targets.aws.ecs import (
    EcsSettings,
    EcsTaskBackend,
    billed_seconds,
    cold_start_phases,
    is_live,
    pseudo_pid,
    session_of,
)
from PlatformLibrary.targets.containers import ContainerKeywords
from robot.api.exceptions import SkipExecution

from tests.test_aws_support import (
    CLUSTER,
    SERVICE,
    Deployment,
    make_library,
    mocked_aws,
    use_fake_credentials,
)


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    use_fake_credentials(monkeypatch)


@pytest.fixture
def aws():
    with mocked_aws():
        yield Deployment()


def library_for(*sessions: str, **values):
    library = make_library(**values)
    for session in sessions:
        library.tracker.add("library", session)
    return library


def api_says(monkeypatch, status="RUNNING"):
    """The API's view of every session (there is no platform API in these tests)."""
    monkeypatch.setattr(ContainerKeywords, "_api_view", lambda self, session_id: (status, {"status": status}))


# ------------------------------------------------------------------ pure task functions
def test_session_of_a_task():
    assert session_of({"tags": [{"key": "sessionId", "value": "s-1"}], "startedBy": "ecs-svc/1"}) == "s-1"
    assert session_of({"startedBy": "s-2"}) == "s-2"
    assert session_of({"startedBy": "ecs-svc/123"}) is None
    assert session_of({"startedBy": "events-rule/nightly-report"}) is None  # started by an AWS service
    assert session_of({"startedBy": "AWS Step Functions"}) is None
    assert session_of({}) is None


def test_liveness():
    assert is_live({"desiredStatus": "RUNNING", "lastStatus": "PROVISIONING"})
    assert is_live({"desiredStatus": "RUNNING", "lastStatus": "RUNNING"})
    assert not is_live({"desiredStatus": "STOPPED", "lastStatus": "RUNNING"})
    assert not is_live({"desiredStatus": "RUNNING", "lastStatus": "DEACTIVATING"})


def test_cold_start_phases_and_billing():
    created = datetime(2026, 1, 1, tzinfo=UTC)
    task = {
        "taskArn": "t",
        "createdAt": created,
        "pullStartedAt": created + timedelta(seconds=12),
        "pullStoppedAt": created + timedelta(seconds=40.5),
        "startedAt": created + timedelta(seconds=45),
    }
    assert cold_start_phases(task) == {"provisioning": 12, "imagePull": 28.5, "containerStart": 4.5, "total": 45}
    assert cold_start_phases({"createdAt": created})["imagePull"] is None
    with pytest.raises(ContainerBackendError, match="no createdAt"):
        cold_start_phases({"taskArn": "t"})
    stopped = {**task, "stoppedAt": created + timedelta(seconds=312)}
    assert billed_seconds(stopped) == 300
    assert billed_seconds({**task, "stoppedAt": created + timedelta(seconds=20)}) == 60  # Fargate's minimum
    assert billed_seconds({"createdAt": created}) == 0
    assert billed_seconds(task, now=(created + timedelta(seconds=112)).timestamp()) == 100


def test_pseudo_pid_is_stable_and_distinct():
    assert pseudo_pid("arn:a") == pseudo_pid("arn:a") != pseudo_pid("arn:b")
    assert 0 < pseudo_pid("arn:a") < 2**48


def test_create_backend_selects_ecs_for_aws():
    backend = create_backend("aws", lambda: "x", lambda: EcsSettings(client=None, cluster="c"))
    assert isinstance(backend, EcsTaskBackend)
    with pytest.raises(ContainerBackendError, match="ECS backend"):
        create_backend("aws", lambda: "x")


# ------------------------------------------------------------------ backend against moto
def test_finds_session_tasks_by_tag_or_started_by_and_the_warm_pool(aws):
    tagged = aws.run_task("s-1")
    started_only = aws.run_task("s-2", tag_session=False)
    pool = aws.run_task(started_by="ecs-svc/1234", group=f"service:{SERVICE}")
    aws.run_task(started_by="ecs-svc/9999", group="service:api")  # another service in the cluster: not ours
    backend = make_library().container_keywords.backend
    assert isinstance(backend, EcsTaskBackend) and backend.name == "ECS tasks"
    containers = {c.container_id: c for c in backend.list_containers()}
    assert set(containers) == {tagged, started_only, pool}
    assert containers[tagged].session_id == "s-1" and containers[started_only].session_id == "s-2"
    assert containers[pool].session_id is None
    assert containers[tagged].task_id == tagged and containers[tagged].pid == pseudo_pid(tagged)
    assert [c.container_id for c in backend.containers_of("s-1")] == [tagged]


def test_task_id_form_and_family_filter(aws):
    task = aws.run_task("s-1")
    library = make_library(ECS_TASK_ID_FORM="id")
    assert library.container_keywords.backend.containers_of("s-1")[0].task_id == task.rsplit("/", 1)[-1]
    assert make_library(ECS_TASK_FAMILY="another-family").container_keywords.backend.list_containers() == []


def test_a_task_that_starts_stopping_is_no_longer_live(aws):
    task = aws.run_task("s-1")
    backend = make_library().container_keywords.backend
    container = backend.containers_of("s-1")[0]
    # From here moto moves the task one step along its way out on every DescribeTasks.
    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 1})
    assert backend.task_of(container)["lastStatus"] == "DEACTIVATING"
    assert not backend.is_alive(container)  # read as STOPPING
    assert backend.containers_of("s-1") == []  # read as DEPROVISIONING
    assert backend.describe([task])[0]["lastStatus"] == "STOPPED"


def test_find_kill_and_recover_through_the_container_keywords(aws, monkeypatch):
    old = aws.run_task("s-1")
    library = library_for("s-1")
    api_says(monkeypatch)
    pid = library.keywords["find_session_container"]("s-1")
    assert pid == pseudo_pid(old)
    # StopTask is no SIGKILL: that goes through FIS aws:ecs:task-kill-process, which needs the process's name.
    with pytest.raises(ContainerBackendError, match=r"SESSION_PROCESS_NAME.* is empty: FIS aws:ecs:task-kill-process"):
        library.keywords["kill_session_container"]("s-1", "SIGKILL")
    assert aws.ecs.describe_tasks(cluster=CLUSTER, tasks=[old])["tasks"][0]["lastStatus"] == "RUNNING"
    assert library.keywords["kill_session_container"]("s-1", "SIGTERM") == pid
    stopped = aws.ecs.describe_tasks(cluster=CLUSTER, tasks=[old])["tasks"][0]
    assert stopped["lastStatus"] == "STOPPED"
    assert "SIG" not in stopped["stoppedReason"] and "run1" in stopped["stoppedReason"]  # no signal text planted
    with pytest.raises(AssertionError, match="did not recover"):
        library.keywords["wait_until_container_restarted"]("s-1", timeout=timedelta(milliseconds=50))
    new = aws.run_task("s-1")  # the platform starts a replacement
    seconds = library.keywords["wait_until_container_restarted"]("s-1")
    assert seconds >= 0
    assert library.keywords["session_should_have_exactly_one_container"]("s-1") == pseudo_pid(new)


def test_a_sigkill_on_a_deployment_without_fis_is_skipped_and_stops_nothing(aws, monkeypatch):
    """No FIS_ROLE_ARN: the deployment offers no FIS, so no instant SIGKILL; the test skips, naming what it lacks."""
    task = aws.run_task("s-1")
    library = library_for("s-1", FIS_ROLE_ARN="", SESSION_PROCESS_NAME="python")
    api_says(monkeypatch)
    with pytest.raises(SkipExecution, match=r"FIS_ROLE_ARN is empty.*aws:ecs:task-kill-process.*StopTask"):
        library.keywords["kill_session_container"]("s-1", "SIGKILL")
    assert aws.ecs.describe_tasks(cluster=CLUSTER, tasks=[task])["tasks"][0]["lastStatus"] == "RUNNING"
    assert library.keywords["kill_session_container"]("s-1", "SIGTERM") == pseudo_pid(task)  # StopTask needs no FIS


def test_a_restart_counts_once_the_api_says_running_of_the_new_task(aws, monkeypatch):
    """A platform starts the replacement before it records it: RUNNING of the old task beside the new one is no
    recovery yet (the minimal deployment showed the race: a recovery measured before the platform had one)."""
    old = aws.run_task("s-1")
    library = library_for("s-1")
    view = {"status": "RUNNING", "taskId": old}
    monkeypatch.setattr(ContainerKeywords, "_api_view", lambda self, session_id: (view["status"], dict(view)))
    library.keywords["kill_session_container"]("s-1", "SIGTERM")
    new = aws.run_task("s-1")  # the replacement runs; the record still names the old task
    with pytest.raises(AssertionError, match=rf"did not recover.*\(task {re.escape(new)}\), the session's taskId"):
        library.keywords["wait_until_container_restarted"]("s-1", timeout=timedelta(milliseconds=100))
    view["taskId"] = new
    assert library.keywords["wait_until_container_restarted"]("s-1") >= 0


def test_killing_a_gone_task_fails_clearly(aws):
    aws.run_task("s-1")
    library = library_for("s-1")
    backend = library.container_keywords.backend
    container = backend.containers_of("s-1")[0]
    aws.ecs.stop_task(cluster=CLUSTER, task=container.container_id)
    with pytest.raises(ContainerBackendError, match="no longer running"):
        backend.kill(container, signal.SIGTERM)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"CHAOS_ALLOWED": False}, "does not allow chaos"),
        ({"ENVIRONMENT_NAME": "prd"}, "looks like production"),
    ],
)
def test_stopping_a_task_is_guarded(aws, values, message):
    task = aws.run_task("s-1")
    library = library_for("s-1", **values)
    with pytest.raises(ChaosRefused, match=message):
        library.keywords["kill_session_container"]("s-1")
    assert aws.ecs.describe_tasks(cluster=CLUSTER, tasks=[task])["tasks"][0]["lastStatus"] == "RUNNING"


def test_tasks_of_sessions_this_run_did_not_create_are_never_stopped(aws):
    task = aws.run_task("s-someone-else")
    library = library_for("s-1")
    with pytest.raises(ChaosRefused, match="not created by this run"):
        library.keywords["kill_session_container"]("s-someone-else")
    assert aws.ecs.describe_tasks(cluster=CLUSTER, tasks=[task])["tasks"][0]["lastStatus"] == "RUNNING"


def test_dry_run_stop_skips_the_test_and_stops_nothing(aws):
    task = aws.run_task("s-1")
    library = library_for("s-1", CHAOS_DRY_RUN=True)
    with pytest.raises(SkipExecution, match="would stop ECS task"):
        library.keywords["kill_session_container"]("s-1")
    assert aws.ecs.describe_tasks(cluster=CLUSTER, tasks=[task])["tasks"][0]["lastStatus"] == "RUNNING"


# ------------------------------------------------------------------ ECS keywords
def test_session_task_keywords(aws):
    old = aws.run_task("s-1")
    library = library_for("s-1")
    assert library.keywords["get_session_task"]("s-1")["taskArn"] == old
    library.keywords["kill_session_container"]("s-1", "SIGTERM")  # one vocabulary: on AWS the container is the task
    assert aws.ecs.describe_tasks(cluster=CLUSTER, tasks=[old])["tasks"][0]["lastStatus"] == "STOPPED"
    with pytest.raises(AssertionError, match="exactly one live task but has 0"):
        library.keywords["get_session_task"]("s-1")
    new = aws.run_task("s-1")
    assert library.keywords["get_session_task"]("s-1")["taskArn"] == new


def test_cold_start_phases_from_the_task_timestamps(aws):
    task = aws.run_task("s-1")
    aws.set_timestamps(task, datetime(2026, 1, 1, tzinfo=UTC), pull=8, pulled=30, started=33.5)
    phases = make_library().keywords["get_session_cold_start_phases"]("s-1")
    assert phases == {"provisioning": 8, "imagePull": 22, "containerStart": 3.5, "total": 33.5, "taskArn": task}


def test_cold_start_phases_wait_for_the_start(aws):
    aws.run_task("s-1")  # moto sets no startedAt
    with pytest.raises(AssertionError, match="No task of session s-1 has started"):
        make_library(SESSION_START_TIMEOUT="30 ms").keywords["get_session_cold_start_phases"]("s-1")


def test_generic_orphan_keyword_works_on_ecs(aws, monkeypatch):
    aws.run_task("s-1")
    library = make_library()
    api_says(monkeypatch, "STOPPED")
    with pytest.raises(AssertionError, match=r"Orphaned containers remain: .*of session s-1 \(STOPPED\)"):
        library.keywords["wait_until_no_orphaned_containers"](timedelta(milliseconds=50))


def test_ecs_keywords_refuse_the_embedded_target():
    library = make_library(TARGET="embedded", PROFILE="local")
    with pytest.raises(AssertionError, match="'Get Session Task' works on the AWS target only"):
        library.run_keyword("get_session_task", ("s-1",))


def test_ecs_errors_name_the_cluster(aws):
    backend = make_library(ECS_CLUSTER="no-such-cluster").container_keywords.backend
    with pytest.raises(ContainerBackendError, match="no-such-cluster"):
        backend.list_containers()


def test_scans_are_reused_briefly_to_respect_ecs_rate_limits(aws, monkeypatch):
    aws.run_task("s-1")
    backend = library_for("s-1", ECS_MIN_SCAN_INTERVAL="10 min").container_keywords.backend
    calls = []
    original = backend.task_arns
    monkeypatch.setattr(backend, "task_arns", lambda *a, **k: calls.append(a) or original(*a, **k))
    for _ in range(5):
        assert len(backend.containers_of("s-1")) == 1
    assert len(calls) == 1
    backend.kill(backend.containers_of("s-1")[0], signal.SIGTERM)  # a stop always forgets the last scan
    assert backend.containers_of("s-1") == []
    assert len(calls) == 2


def test_cleanup_confirms_a_deleted_sessions_task_stopped_and_its_record_gone(aws, monkeypatch):
    """The orphan-reaper report: cleanup said 'deleted' while the task still ran. Now the check names it."""
    from PlatformLibrary.core.http_client import ApiResponse

    task = aws.run_task("s-1")
    aws.put_session("s-1")
    library = library_for("s-1")
    monkeypatch.setattr(
        library.ctx.api, "request", lambda method, path, **kw: ApiResponse(method, path, 204, {}, b"", 0.01)
    )
    assert library.keywords["delete_sessions_created_by_this_test"]() == ["s-1"]
    with pytest.raises(AssertionError) as left:
        library.keywords["deleted_sessions_should_leave_nothing_behind"](timedelta(milliseconds=50))
    assert f"session s-1: container still running ({task})" in str(left.value)
    assert "session s-1: record still in the table, status RUNNING" in str(left.value)
    aws.ecs.stop_task(cluster=CLUSTER, task=task)
    aws.put_session("s-1", status="STOPPED")
    assert library.keywords["deleted_sessions_should_leave_nothing_behind"](timedelta(seconds=5)) >= 0


def test_a_stopped_task_stays_tied_to_its_session_after_ecs_drops_its_tags(aws, monkeypatch):
    """ECS deletes a task's tags when it stops (moto keeps them): a tag-only platform's stopped task is not lost."""
    task = aws.run_task("s-1", started_by="ecs-svc/1")  # tied by its tag only
    backend = library_for("s-1").container_keywords.backend
    assert [t["taskArn"] for t in backend.session_tasks("s-1")] == [task]
    aws.ecs.stop_task(cluster=CLUSTER, task=task)
    original = backend._call

    def as_ecs_does(operation, **params):
        answer = original(operation, **params)
        for described in answer.get("tasks", []) if operation == "describe_tasks" else []:
            if described.get("lastStatus") == "STOPPED":
                described.pop("tags", None)
        return answer

    monkeypatch.setattr(backend, "_call", as_ecs_does)
    assert [t["taskArn"] for t in backend.session_tasks("s-1", include_stopped=True)] == [task]


def test_the_session_tag_is_the_deployments_choice(aws):
    task = aws.run_task(started_by="ecs-svc/1", group=f"service:{SERVICE}")
    aws.ecs.tag_resource(resourceArn=task, tags=[{"key": "workspace-session", "value": "s-7"}])
    assert make_library().container_keywords.backend.containers_of("s-7") == []  # the default tag: not found
    backend = make_library(ECS_SESSION_TAG="workspace-session").container_keywords.backend
    assert [c.container_id for c in backend.containers_of("s-7")] == [task]
