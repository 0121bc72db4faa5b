"""The embedded platform's FIS face (testbed/awsface/fis.py, actions.py) driven by a real boto3 ``fis`` client.

The emulator sits behind a small HTTP server as it does in the platform; tasks are real processes in a real
TaskRegistry, so a fault is checked on the process itself (killed, stopped, CPU used, children gone) and the
network faults on a real fault proxy's mesh hop. Requests are built with the library's own builders
(PlatformLibrary.aws.fis), so these are the calls the suite makes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import psutil
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from PlatformLibrary.aws.fis import FisExperiments, build_template, ecs_task_target, resolve_action

from testbed.awsface.actions import ProcessFaultActions, parse_iso_duration
from testbed.awsface.fis import FisEmulator
from testbed.awsface.tasks import Task, TaskRegistry
from testbed.cgroups import Limits
from testbed.faultproxy.client import ToxiproxyClient

REGION = "us-east-1"
CLUSTER, SERVICE = "testbed", "sessions"
ROLE_ARN = "arn:aws:iam::000000000000:role/fis-experiments"
ALARM = "platform-5xx"
ALARM_ARN = f"arn:aws:cloudwatch:{REGION}:000000000000:alarm:{ALARM}"
RUN_ID = "run-fis-face"
ROOT = Path(__file__).resolve().parents[1]


class RecordingLimits(Limits):
    """Real Limits over an empty folder (no cgroup is touched) that remembers which PID went to which cgroup."""

    def __init__(self, root: Path) -> None:
        super().__init__("fis-test", 0, 1.0, root=root)
        self.applied: list[tuple[str, int]] = []

    def apply(self, name: str, pid: int) -> str:
        self.applied.append((name, pid))
        return super().apply(name, pid)


class Face:
    """Everything a test needs: the registry, tasks, alarms, the emulator and the boto3 client."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.registry = TaskRegistry(CLUSTER, SERVICE, REGION, stop_timeout=0.5)
        self.alarms: dict[str, str] = {ALARM: "OK"}
        self.limits = RecordingLimits(tmp / "cgroup")
        self.mesh: ToxiproxyClient | Any | None = None
        self.workspaces: dict[str, Path] = {}
        self.procs: list[subprocess.Popen[bytes]] = []
        self.actions = ProcessFaultActions(
            self.registry, lambda: self.mesh, self.limits, lambda task: self.workspaces.get(task.session_id or "")
        )
        self.emulator = FisEmulator(self.registry, self.actions, self.alarms.get, REGION)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.emulator))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.fis = self.client()
        self.run = FisExperiments(self.fis, RUN_ID)

    def client(self, **config: Any) -> Any:
        return boto3.client(
            "fis",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1}, **config),
        )

    def task(self, session: str = "s1", program: str = "import time; time.sleep(60)") -> Task:
        """A running task whose container process is ``python -c program``."""
        task = self.registry.new_task(session)
        proc = subprocess.Popen([sys.executable, "-c", program])
        self.procs.append(proc)
        self.registry.spawned(task.arn, session, proc, f"task-{task.task_id[:8]}")
        self.registry.ready(proc.pid)
        return task

    def template(
        self,
        action: str,
        target: dict[str, Any],
        duration: float | None = None,
        alarm: bool = True,
        **parameters: str,
    ) -> str:
        request = build_template(
            resolve_action(action),
            target,
            run_id=RUN_ID,
            role_arn=ROLE_ARN,
            parameters=parameters,
            duration_seconds=duration,
            stop_alarm_arns=[ALARM_ARN] if alarm else [],
        )
        return self.run.create_template(request)["id"]

    def start(self, template_id: str, dry_run: bool = False) -> str:
        return self.run.start(template_id, dry_run, {"suite-run-id": RUN_ID})["id"]

    def wait_state(self, experiment_id: str, *states: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            experiment = self.run.get(experiment_id)
            if experiment["state"]["status"] in states:
                return experiment
            assert time.monotonic() < deadline, f"experiment is {experiment['state']}, expected {states}"
            time.sleep(0.05)

    def wait_action(self, experiment_id: str, status: str = "running", timeout: float = 5.0) -> dict[str, Any]:
        """Until the experiment's action (``fault``) is ``status``; the experiment runs a moment before it."""
        deadline = time.monotonic() + timeout
        while True:
            experiment = self.run.get(experiment_id)
            if experiment["actions"]["fault"]["state"]["status"] == status:
                return experiment
            assert time.monotonic() < deadline, f"action is {experiment['actions']['fault']['state']}, not {status}"
            time.sleep(0.05)

    def close(self) -> None:
        self.emulator.close()
        self.server.shutdown()
        self.server.server_close()
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(5)
        self.registry.close()


def _handler(emulator: FisEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            status, payload, headers = emulator.handle(
                self.command, url.path, parse_qs(url.query), json.loads(raw) if raw else None
            )
            data = json.dumps(payload).encode()
            self.send_response(status)
            for key, value in {**headers, "Content-Type": "application/json"}.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_PATCH = _serve

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@pytest.fixture
def face(tmp_path: Path) -> Iterator[Face]:
    face = Face(tmp_path)
    try:
        yield face
    finally:
        face.close()


@pytest.fixture
def fault_proxy(tmp_path: Path) -> Iterator[ToxiproxyClient]:
    """A real fault proxy (the mesh's Toxiproxy-compatible admin API)."""
    ready = tmp_path / "proxy-ready.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "testbed.faultproxy", "--host", "127.0.0.1", "--port", "0", "--ready-file", str(ready)],
        cwd=ROOT,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not ready.exists() or not ready.read_text().strip():
            assert proc.poll() is None and time.monotonic() < deadline, "fault proxy did not start"
            time.sleep(0.02)
        with ToxiproxyClient(f"http://127.0.0.1:{json.loads(ready.read_text())['admin_port']}") as client:
            yield client
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        proc.wait(5)


def error_of(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]["Code"], raised.value.response["Error"]["Message"]


def stressors(face: Face) -> list[psutil.Process]:
    """The stressor processes the emulator started (they were put into a task's cgroup)."""
    found = []
    for _, pid in face.limits.applied:
        try:
            process = psutil.Process(pid)
            if process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except psutil.NoSuchProcess:
            pass
    return found


def wait_for(check: Callable[[], Any], timeout: float = 3.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return value


# ----- templates ----------------------------------------------------------------------------------------------------
def test_template_validation_errors(face: Face) -> None:
    task = face.task()
    target = ecs_task_target(task_arns=[task.arn])
    good = build_template(
        resolve_action("kill-process"),
        target,
        run_id=RUN_ID,
        role_arn=ROLE_ARN,
        parameters={"processName": "python"},
        stop_alarm_arns=[ALARM_ARN],
    )

    def create(**changes: Any) -> Callable[[], Any]:
        request = json.loads(json.dumps(good))
        for key, value in changes.items():
            if value is None:
                request.pop(key, None)
            else:
                request[key] = value
        return lambda: face.fis.create_experiment_template(**request)

    def with_action(**action: Any) -> dict[str, Any]:
        return {"fault": {**good["actions"]["fault"], **action}}

    code, message = error_of(create(actions=with_action(actionId="aws:ec2:stop-instances")))
    assert code == "ValidationException"
    assert "aws:ec2:stop-instances" in message and "aws:ecs:task-cpu-stress" in message
    code, message = error_of(create(actions=with_action(parameters={"signal": "SIGKILL"})))
    assert (code, "processName" in message) == ("ValidationException", True)
    stress = {"actionId": "aws:ecs:task-cpu-stress", "parameters": {"duration": "PT2X", "percent": "50"}}
    code, message = error_of(create(actions=with_action(**stress)))
    assert (code, "PT2X" in message) == ("ValidationException", True)
    too_much = {"actionId": "aws:ecs:task-cpu-stress", "parameters": {"duration": "PT1M", "percent": "150"}}
    code, message = error_of(create(actions=with_action(**too_much)))
    assert (code, "percent" in message) == ("ValidationException", True)
    code, message = error_of(create(roleArn="arn:aws:iam::000000000000:user/someone"))
    assert (code, "role" in message) == ("ValidationException", True)
    unchecked = face.client(parameter_validation=False)
    request = {k: v for k, v in good.items() if k != "roleArn"}
    code, message = error_of(lambda: unchecked.create_experiment_template(**request))
    assert (code, "roleArn" in message) == ("ValidationException", True)
    missing_alarm = [{"source": "aws:cloudwatch:alarm", "value": ALARM_ARN + "-gone"}]
    code, message = error_of(create(stopConditions=missing_alarm))
    assert (code, "does not exist" in message) == ("ValidationException", True)
    code, _ = error_of(lambda: face.fis.get_experiment_template(id="EXT00000000000000"))
    assert code == "ResourceNotFoundException"

    template = face.fis.create_experiment_template(**good)["experimentTemplate"]
    assert template["id"].startswith("EXT") and len(template["id"]) == 17
    assert template["tags"]["suite-run-id"] == RUN_ID
    assert [t["id"] for t in face.run.templates_of_run()] == [template["id"]]
    face.fis.tag_resource(resourceArn=template["arn"], tags={"owner": "me"})
    face.fis.untag_resource(resourceArn=template["arn"], tagKeys=["test"])
    tags = face.fis.list_tags_for_resource(resourceArn=template["arn"])["tags"]
    assert tags["suite-run-id"] == RUN_ID and tags["owner"] == "me" and "test" not in tags
    assert len(face.fis.list_actions()["actions"]) == 7
    assert face.fis.get_action(id="aws:ecs:task-kill-process")["action"]["parameters"]["processName"]["required"]
    assert face.run.delete_templates_of_run() == [template["id"]]
    assert face.fis.list_experiment_templates()["experimentTemplates"] == []
    assert parse_iso_duration("PT1M30S") == 90 and parse_iso_duration("PT1H") == 3600


# ----- instant actions ----------------------------------------------------------------------------------------------
def test_kill_process_sigkill_stops_the_task(face: Face) -> None:
    task = face.task()
    bystander = face.task("s2")
    template_id = face.template("kill-process", ecs_task_target(task_arns=[task.arn]), processName="python")
    experiment = face.wait_state(face.start(template_id), "completed", "failed")
    assert experiment["state"]["status"] == "completed", experiment["state"]
    action = experiment["actions"]["fault"]
    assert action["state"]["status"] == "completed" and action["startTime"] <= action["endTime"]
    wait_for(lambda: task.last_status == "STOPPED", what="the task to stop")
    described = face.registry.describe(task)
    assert described["containers"][0]["exitCode"] == 137
    assert described["stopCode"] == "EssentialContainerExited"
    assert bystander.last_status == "RUNNING"


def test_kill_process_matches_the_process_title_and_fails_on_no_match(face: Face) -> None:
    title = "import setproctitle, time; setproctitle.setproctitle('testbed-agent instance=i session=s1 task=t'); "
    task = face.task(program=title + "time.sleep(60)")
    time.sleep(0.3)  # let it set its title
    missing = face.template("kill-process", ecs_task_target(task_arns=[task.arn]), processName="nginx")
    failed = face.wait_state(face.start(missing), "completed", "failed")
    assert failed["state"]["status"] == "failed"
    reason = failed["actions"]["fault"]["state"]["reason"]
    assert "nginx" in reason and "testbed-agent" in reason, reason
    assert task.last_status == "RUNNING"
    template_id = face.template(
        "kill-process", ecs_task_target(task_arns=[task.arn]), processName="testbed-agent", signal="SIGTERM"
    )
    assert face.wait_state(face.start(template_id), "completed", "failed")["state"]["status"] == "completed"
    wait_for(lambda: task.last_status == "STOPPED", what="the task to stop")
    assert face.registry.describe(task)["containers"][0]["exitCode"] == 143


def test_stop_task_is_a_user_initiated_stop(face: Face) -> None:
    task = face.task()
    template_id = face.template("stop-task", ecs_task_target(task_arns=[task.arn]))
    experiment_id = face.start(template_id)
    assert face.wait_state(experiment_id, "completed", "failed")["state"]["status"] == "completed"
    wait_for(lambda: task.last_status == "STOPPED", what="the task to stop")
    described = face.registry.describe(task)
    assert described["stopCode"] == "UserInitiated"
    assert described["stoppedReason"] == f"Stopped by AWS FIS experiment {experiment_id}"


# ----- stress -------------------------------------------------------------------------------------------------------
def test_cpu_stress_burns_cpu_in_the_task_cgroup_and_stop_reverts_it(face: Face) -> None:
    task = face.task()
    template_id = face.template("cpu-stress", ecs_task_target(task_arns=[task.arn]), duration=60, percent="90")
    experiment_id = face.start(template_id)
    assert face.wait_action(experiment_id)["state"]["status"] == "running"
    workers = wait_for(lambda: stressors(face), what="the stressor")
    assert [name for name, _ in face.limits.applied] == [task.cgroup]
    workers[0].cpu_percent(None)
    time.sleep(0.5)
    assert workers[0].cpu_percent(None) > 20
    assert face.run.stop(experiment_id)["state"]["status"] in ("stopping", "stopped")
    experiment = face.wait_state(experiment_id, "stopped")
    assert experiment["actions"]["fault"]["state"]["status"] == "stopped"
    assert stressors(face) == []
    assert task.last_status == "RUNNING"


def test_cpu_stress_is_reverted_when_its_duration_is_over(face: Face) -> None:
    task = face.task()
    template_id = face.template("cpu-stress", ecs_task_target(task_arns=[task.arn]), duration=2, percent="50")
    experiment_id = face.start(template_id)
    face.wait_state(experiment_id, "running")
    wait_for(lambda: stressors(face), what="the stressor")
    experiment = face.wait_state(experiment_id, "completed", "failed", timeout=5)
    assert experiment["state"]["status"] == "completed"
    action = experiment["actions"]["fault"]
    assert action["state"]["status"] == "completed"
    assert 1.9 <= (action["endTime"] - action["startTime"]).total_seconds() < 3.5
    assert stressors(face) == []


def test_io_stress_writes_in_the_session_workspace_and_cleans_up(face: Face) -> None:
    workspace = face.tmp / "workspace-s1"
    workspace.mkdir()
    face.workspaces["s1"] = workspace
    task = face.task()
    template_id = face.template("io-stress", ecs_task_target(task_arns=[task.arn]), duration=1, percent="20")
    experiment_id = face.start(template_id)
    face.wait_state(experiment_id, "running")
    folders = wait_for(lambda: [p for p in workspace.glob("fis-io-*") if any(p.iterdir())], what="the io file")
    assert len(folders) == 1
    assert face.wait_state(experiment_id, "completed", "failed")["state"]["status"] == "completed"
    assert list(workspace.iterdir()) == []
    assert stressors(face) == []


# ----- stop conditions ----------------------------------------------------------------------------------------------
def test_an_alarm_going_off_stops_the_experiment_and_reverts(face: Face) -> None:
    task = face.task()
    template_id = face.template("cpu-stress", ecs_task_target(task_arns=[task.arn]), duration=60, percent="30")
    experiment_id = face.start(template_id)
    face.wait_state(experiment_id, "running")
    wait_for(lambda: stressors(face), what="the stressor")
    face.alarms[ALARM] = "ALARM"
    experiment = face.wait_state(experiment_id, "stopped", timeout=3)
    assert "stop condition" in experiment["state"]["reason"] and ALARM in experiment["state"]["reason"]
    assert experiment["actions"]["fault"]["state"]["status"] == "stopped"
    assert stressors(face) == []


def test_an_alarm_already_in_alarm_makes_the_start_fail(face: Face) -> None:
    task = face.task()
    template_id = face.template("kill-process", ecs_task_target(task_arns=[task.arn]), processName="python")
    face.alarms[ALARM] = "ALARM"
    experiment = face.wait_state(face.start(template_id), "completed", "failed", "stopped")
    assert experiment["state"]["status"] == "failed"
    assert "ALARM" in experiment["state"]["reason"]
    assert experiment["actions"]["fault"]["state"]["status"] == "cancelled"
    assert task.last_status == "RUNNING"


# ----- targets and modes --------------------------------------------------------------------------------------------
def test_skip_all_resolves_targets_and_injects_nothing(face: Face) -> None:
    task = face.task()
    template_id = face.template("kill-process", ecs_task_target(task_arns=[task.arn]), processName="python")
    experiment_id = face.start(template_id, dry_run=True)
    experiment = face.wait_state(experiment_id, "completed", "failed")
    assert experiment["state"]["status"] == "completed"
    assert experiment["experimentOptions"]["actionsMode"] == "skip-all"
    assert experiment["actions"]["fault"]["state"]["status"] == "skipped"
    resolved = face.fis.list_experiment_resolved_targets(experimentId=experiment_id)["resolvedTargets"]
    assert [r["targetInformation"]["arn"] for r in resolved] == [task.arn]
    time.sleep(0.1)
    assert task.last_status == "RUNNING" and task.proc is not None and task.proc.poll() is None
    assert [e["id"] for e in face.run.experiments_of_run()] == [experiment_id]


def test_empty_target_resolution_fails_unless_skip(face: Face) -> None:
    gone = face.task()
    assert gone.proc is not None
    gone.proc.kill()
    wait_for(lambda: gone.last_status == "STOPPED", what="the task to stop")
    target = ecs_task_target(task_arns=[gone.arn])
    experiment = face.wait_state(face.start(face.template("stop-task", target)), "completed", "failed")
    assert experiment["state"] == {"status": "failed", "reason": "Target resolution returned empty set"}
    assert experiment["actions"]["fault"]["state"]["status"] == "cancelled"

    request = build_template(resolve_action("stop-task"), target, run_id=RUN_ID, role_arn=ROLE_ARN)
    request["experimentOptions"] = {"emptyTargetResolutionMode": "skip"}
    template_id = face.run.create_template(request)["id"]
    experiment = face.wait_state(face.start(template_id), "completed", "failed")
    assert experiment["state"]["status"] == "completed"
    assert experiment["actions"]["fault"]["state"]["status"] == "skipped"


def test_service_targets_and_selection_modes(face: Face) -> None:
    tasks = [face.task(f"s{i}") for i in range(3)]
    for mode, expected in (("ALL", 3), ("COUNT(2)", 2), ("COUNT(9)", 3), ("PERCENT(50)", 1), ("PERCENT(20)", 0)):
        target = ecs_task_target(cluster=CLUSTER, service=SERVICE, selection_mode=mode)
        request = build_template(
            resolve_action("stop-task"), target, run_id=RUN_ID, role_arn=ROLE_ARN, stop_alarm_arns=[ALARM_ARN]
        )
        request["experimentOptions"] = {"emptyTargetResolutionMode": "skip"}
        experiment_id = face.start(face.run.create_template(request)["id"], dry_run=True)
        face.wait_state(experiment_id, "completed")
        resolved = face.fis.list_experiment_resolved_targets(experimentId=experiment_id)["resolvedTargets"]
        arns = {r["targetInformation"]["arn"] for r in resolved}
        assert len(arns) == expected, mode
        assert arns <= {t.arn for t in tasks}
    other = ecs_task_target(cluster=CLUSTER, service="another-service")
    experiment = face.wait_state(face.start(face.template("stop-task", other)), "completed", "failed")
    assert experiment["state"]["status"] == "failed"
    assert all(t.last_status == "RUNNING" for t in tasks)


def test_close_stops_running_experiments_and_reverts(face: Face) -> None:
    task = face.task()
    template_id = face.template("cpu-stress", ecs_task_target(task_arns=[task.arn]), duration=60, percent="10")
    experiment_id = face.start(template_id)
    face.wait_state(experiment_id, "running")
    wait_for(lambda: stressors(face), what="the stressor")
    face.emulator.close()
    assert stressors(face) == []
    assert face.run.get(experiment_id)["state"]["status"] == "stopped"
    code, _ = error_of(lambda: face.fis.start_experiment(experimentTemplateId=template_id))
    assert code == "ConflictException"


# ----- network ------------------------------------------------------------------------------------------------------
def test_latency_adds_a_toxic_on_the_mesh_hop_and_removes_it(face: Face, fault_proxy: ToxiproxyClient) -> None:
    face.mesh = fault_proxy
    fault_proxy.create_proxy("mesh-s1", "127.0.0.1:0", "127.0.0.1:9")
    task = face.task("s1")
    template_id = face.template(
        "network-latency", ecs_task_target(task_arns=[task.arn]), duration=1, delayMilliseconds="300"
    )
    experiment_id = face.start(template_id)
    face.wait_action(experiment_id)
    (toxic,) = fault_proxy.toxics("mesh-s1")
    assert toxic["name"] == f"fis-{experiment_id}-fault"
    assert (toxic["type"], toxic["stream"], toxic["attributes"]) == (
        "latency",
        "downstream",
        {"latency": 300, "jitter": 10},
    )
    assert face.wait_state(experiment_id, "completed", "failed")["state"]["status"] == "completed"
    assert fault_proxy.toxics("mesh-s1") == []


class RecordingMesh:
    """A mesh client that records toxics (for the toxic each network action maps to)."""

    def __init__(self) -> None:
        self.toxics: dict[str, dict[str, Any]] = {}

    def add_toxic(self, proxy: str, type: str, stream: str = "downstream", **kwargs: Any) -> dict[str, Any]:
        self.toxics[kwargs["name"]] = {"proxy": proxy, "type": type, "stream": stream, **kwargs}
        return self.toxics[kwargs["name"]]

    def remove_toxic(self, proxy: str, name: str) -> None:
        del self.toxics[name]


def test_blackhole_and_packet_loss_toxics_and_no_parallel_network_faults(face: Face) -> None:
    mesh = RecordingMesh()
    face.mesh = mesh
    task = face.task("s1")
    target = ecs_task_target(task_arns=[task.arn])
    template_id = face.template(
        "network-blackhole-port", target, duration=60, port="8080", protocol="tcp", trafficType="egress"
    )
    blackhole = face.start(template_id)
    face.wait_action(blackhole)
    assert [(t["proxy"], t["type"], t["stream"], t["attributes"]) for t in mesh.toxics.values()] == [
        ("mesh-s1", "timeout", "downstream", {"timeout": 0})
    ]
    loss = face.start(face.template("network-packet-loss", target, duration=60, lossPercent="25"))
    failed = face.wait_state(loss, "failed", "completed", "stopped")
    assert failed["state"]["status"] == "failed"
    assert "cannot run in parallel" in failed["actions"]["fault"]["state"]["reason"]
    face.run.stop(blackhole)
    face.wait_state(blackhole, "stopped")
    assert mesh.toxics == {}
    loss = face.start(face.template("network-packet-loss", target, duration=60, lossPercent="25"))
    face.wait_action(loss)
    (toxic,) = mesh.toxics.values()
    assert (toxic["type"], toxic["stream"], toxic["toxicity"]) == ("timeout", "upstream", 0.25)
    face.run.stop(loss)
    face.wait_state(loss, "stopped")
    assert mesh.toxics == {}


def test_a_network_fault_ends_with_the_task_it_targets(face: Face, fault_proxy: ToxiproxyClient) -> None:
    """The fault runs inside its task: when the task stops, a replacement behind the same hop starts clean."""
    face.mesh = fault_proxy
    fault_proxy.create_proxy("mesh-s1", "127.0.0.1:0", "127.0.0.1:9")
    task = face.task("s1")
    template_id = face.template(
        "network-blackhole-port", ecs_task_target(task_arns=[task.arn]), duration=30, port="8080", protocol="tcp"
    )
    experiment_id = face.start(template_id)
    face.wait_action(experiment_id)
    assert len(fault_proxy.toxics("mesh-s1")) == 1
    assert task.proc is not None
    task.proc.kill()
    wait_for(lambda: fault_proxy.toxics("mesh-s1") == [], what="the toxic to go with its task")
    assert face.run.get(experiment_id)["state"]["status"] == "running"  # the action runs until its duration
