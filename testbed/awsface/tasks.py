"""ECS tasks of the embedded platform: what ECS would report about each container process.

The runtime tells the registry when it creates a task (before the image pull), when the process exists, when it is
ready, when a warm-pool task is given a session, and when the platform stops one. Everything else is read from the
process itself: a task is ``STOPPED`` when its process has exited, with the exit code the process returned, so a
task's state follows its process, not a timer. ``StopTask`` behaves as ECS does: ``desiredStatus`` becomes
``STOPPED`` at once, the process gets SIGTERM, and SIGKILL when it is still alive after the stop timeout.

References (docs/aws-emulation.md lists them with what is simplified):
- Task lifecycle: ECS developer guide, "Amazon ECS task lifecycle" (PROVISIONING, PENDING, ACTIVATING, RUNNING,
  DEACTIVATING, STOPPING, DEPROVISIONING, STOPPED) and "Stopped tasks errors" (stopCode ``EssentialContainerExited``,
  ``UserInitiated``, ``ServiceSchedulerInitiated``; ``OutOfMemoryError: Container killed due to memory usage``).
- StopTask: ECS API reference, "StopTask" (SIGTERM, then SIGKILL after the container's ``stopTimeout``, 30 s by
  default on Fargate, at most 120 s).
- Exit codes: a process killed by signal N exits ``128 + N`` in the container (137 for SIGKILL).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ACCOUNT_ID = "123456789012"  # moto's account, so ARNs of both agree
SESSION_TAG = "sessionId"
CONTAINER_NAME = "session"
# ECS keeps a stopped task describable for at least an hour; the registry keeps this many (oldest go first).
STOPPED_KEPT = 2000
OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"
ESSENTIAL_EXITED = "Essential container in task exited"
LOOPBACK = "127.0.0.1"


@dataclass
class Task:
    """One ECS task: the ECS fields the suite reads, and the process behind it."""

    arn: str
    cluster_arn: str
    task_definition_arn: str
    group: str
    started_by: str
    created_at: float
    tags: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    cgroup: str = ""
    pull_started_at: float | None = None
    pull_stopped_at: float | None = None
    started_at: float | None = None
    stopping_at: float | None = None
    stopped_at: float | None = None
    desired_status: str = "RUNNING"
    stopped_reason: str = ""
    stop_code: str = ""
    exit_code: int | None = None
    container_reason: str = ""
    healthy: bool = False  # the app answered ready (ECS: the container's health check passed)
    version: int = 1
    container_name: str = CONTAINER_NAME
    # The port the task's app listens on, for tasks a load balancer reaches (the API service's): every task of the
    # embedded platform shares 127.0.0.1, so DescribeTasks tells them apart by this port (networkBindings).
    host_port: int | None = None
    container_port: int | None = None  # the port its task definition maps (networkBindings' containerPort)

    @property
    def task_id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def session_id(self) -> str | None:
        return self.tags.get(SESSION_TAG)

    @property
    def last_status(self) -> str:
        if self.stopped_at is not None:
            return "STOPPED"
        if self.desired_status == "STOPPED":
            return "STOPPING" if self.proc is not None else "DEPROVISIONING"
        if self.started_at is not None:
            return "RUNNING"
        if self.pull_started_at is not None:
            return "PENDING"
        return "PROVISIONING"

    @property
    def live(self) -> bool:
        return self.stopped_at is None


def ecs_exit_code(returncode: int | None) -> int | None:
    """A process's return code as its container reports it: killed by signal N is ``128 + N``."""
    if returncode is None:
        return None
    return 128 - returncode if returncode < 0 else returncode


class TaskRegistry:
    """The tasks of one cluster, kept in step with the runtime's processes."""

    def __init__(
        self,
        cluster: str,
        service: str,
        region: str,
        family: str = "session",
        stop_timeout: float = 2.0,
        oom_killed: Callable[[str], bool] = lambda cgroup: False,
    ) -> None:
        self.cluster = cluster
        self.service = service
        self.region = region
        self.family = family
        self.stop_timeout = stop_timeout
        self._oom_killed = oom_killed
        self.cluster_arn = f"arn:aws:ecs:{region}:{ACCOUNT_ID}:cluster/{cluster}"
        self.service_arn = f"arn:aws:ecs:{region}:{ACCOUNT_ID}:service/{cluster}/{service}"
        self.task_definition_arn = f"arn:aws:ecs:{region}:{ACCOUNT_ID}:task-definition/{family}:1"
        self.deployment_id = uuid.uuid4().hex[:12]
        self._lock = threading.RLock()
        self._tasks: dict[str, Task] = {}  # arn -> task, in creation order
        self._stopped = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="ecs-tasks", daemon=True)
        self._watcher.start()

    # ----- what the runtime reports ----------------------------------------------------------------------------
    def definition_arn(self, family: str) -> str:
        return f"arn:aws:ecs:{self.region}:{ACCOUNT_ID}:task-definition/{family}:1"

    def new_task(
        self,
        session_id: str | None = None,
        service: str | None = None,
        family: str | None = None,
        container_name: str = CONTAINER_NAME,
        container_port: int | None = None,
    ) -> Task:
        """A task the service scheduler creates (before its image pull): PROVISIONING.

        ``service`` and ``family`` name another service of the cluster and its task definition (the API service);
        by default the task is the session service's.
        """
        now = time.time()
        arn = f"arn:aws:ecs:{self.region}:{ACCOUNT_ID}:task/{self.cluster}/{uuid.uuid4().hex}"
        task = Task(
            arn=arn,
            cluster_arn=self.cluster_arn,
            task_definition_arn=self.definition_arn(family) if family else self.task_definition_arn,
            group=f"service:{service or self.service}",
            started_by=f"ecs-svc/{self.deployment_id}",
            created_at=now,
            pull_started_at=now,
            tags={SESSION_TAG: session_id} if session_id else {},
            container_name=container_name,
            container_port=container_port,
        )
        with self._lock:
            self._tasks[arn] = task
            self._trim()
        return task

    def spawned(
        self,
        task_arn: str | None,
        session_id: str | None,
        proc: subprocess.Popen[bytes],
        cgroup: str,
        host_port: int | None = None,
    ) -> Task:
        """The task's process exists (image pulled, container started: RUNNING, as ECS says once the container
        runs; the app's own start-up shows in the health status). A task already holding a process gets a twin."""
        with self._lock:
            task = self._tasks.get(task_arn or "")
            if task is None or task.proc is not None:
                task = self.new_task(session_id)
            task.proc, task.cgroup, task.host_port = proc, cgroup, host_port
            task.pull_stopped_at = task.started_at = time.time()
            task.version += 1
            return task

    def ready(self, pid: int) -> None:
        """The app in the task answered ready: its health check passes."""
        with self._lock:
            task = self.by_pid(pid)
            if task is not None and not task.healthy and task.live:
                task.healthy = True
                task.version += 1

    def assign(self, pid: int, session_id: str) -> str | None:
        """A warm-pool task was given a session: it gets the session tag; returns its ARN."""
        with self._lock:
            task = self.by_pid(pid)
            if task is None:
                return None
            task.tags[SESSION_TAG] = session_id
            task.version += 1
            return task.arn

    def platform_stops(self, pid: int, reason: str) -> None:
        """The platform stops a task itself (delete, idle, expiry, reaper): the StopTask it would call."""
        with self._lock:
            task = self.by_pid(pid)
            if task is not None and task.desired_status != "STOPPED":
                self._mark_stopping(task, reason, "UserInitiated")

    def forget_unstarted(self, task_arn: str, reason: str) -> None:
        """A task that never got a process (the session was deleted during its image pull) is stopped."""
        with self._lock:
            task = self._tasks.get(task_arn)
            if task is not None and task.proc is None and task.live:
                self._mark_stopping(task, reason, "ServiceSchedulerInitiated")
                task.stopped_at = time.time()

    # ----- the ECS API -----------------------------------------------------------------------------------------
    def find(self, reference: str) -> Task | None:
        """A task by ARN or by its short id."""
        with self._lock:
            if reference in self._tasks:
                return self._tasks[reference]
            for task in self._tasks.values():
                if task.task_id == reference:
                    return task
            return None

    def by_pid(self, pid: int) -> Task | None:
        with self._lock:
            for task in reversed(self._tasks.values()):
                if task.pid == pid and task.live:
                    return task
            return None

    def tasks(self) -> list[Task]:
        with self._lock:
            return list(self._tasks.values())

    def service_tasks(self, service: str) -> list[Task]:
        """The tasks of ``service`` (its ``group``), stopped ones included."""
        with self._lock:
            return [t for t in self._tasks.values() if t.group == f"service:{service}"]

    def stop_task(self, reference: str, reason: str = "") -> Task | None:
        """ECS StopTask: desiredStatus STOPPED now, SIGTERM now, SIGKILL after the stop timeout."""
        with self._lock:
            task = self.find(reference)
            if task is None:
                return None
            if task.desired_status != "STOPPED":
                self._mark_stopping(task, reason or "Task stopped by user", "UserInitiated")
                proc = task.proc
                if proc is not None and proc.poll() is None:
                    with contextlib.suppress(OSError):
                        proc.send_signal(signal.SIGTERM)
                    timer = threading.Timer(self.stop_timeout, self._kill_if_alive, args=(proc,))
                    timer.daemon = True
                    timer.start()
                elif proc is None:
                    task.stopped_at = time.time()
            return task

    def _mark_stopping(self, task: Task, reason: str, code: str) -> None:
        task.desired_status = "STOPPED"
        task.stopping_at = task.stopping_at or time.time()
        task.stopped_reason = task.stopped_reason or reason[:255]
        task.stop_code = task.stop_code or code
        task.version += 1

    @staticmethod
    def _kill_if_alive(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.kill()

    # ----- the process decides --------------------------------------------------------------------------------
    def _watch(self) -> None:
        while not self._stopped.wait(0.02):
            self.observe()

    def exited(self, pid: int, oom: bool) -> None:
        """The runtime saw the process exit (and read its cgroup's OOM count before removing the cgroup)."""
        with self._lock:
            task = self.by_pid(pid)
            if task is not None:
                self._stamp_exit(task, oom)

    def observe(self) -> None:
        """Stamp every task whose process has exited as STOPPED, with its exit code and why."""
        with self._lock:
            for task in self._tasks.values():
                if task.stopped_at is None and task.proc is not None and task.proc.poll() is not None:
                    self._stamp_exit(task, bool(task.cgroup) and self._oom_killed(task.cgroup))

    def _stamp_exit(self, task: Task, oom: bool) -> None:
        code = task.proc.poll() if task.proc is not None else None
        if task.stopped_at is not None or code is None:
            return
        task.stopped_at = time.time()
        task.exit_code = ecs_exit_code(code)
        if oom:
            task.container_reason = OOM_REASON
        if task.desired_status != "STOPPED":  # nobody asked it to stop: the essential container exited
            task.desired_status = "STOPPED"
            task.stopping_at = task.stopped_at
            task.stop_code = "EssentialContainerExited"
            task.stopped_reason = ESSENTIAL_EXITED
        else:  # a stop someone asked for: ECS deletes the task's tags
            task.tags.clear()
        task.version += 1

    def _trim(self) -> None:
        stopped = [arn for arn, t in self._tasks.items() if t.stopped_at is not None]
        for arn in stopped[: max(0, len(stopped) - STOPPED_KEPT)]:
            del self._tasks[arn]

    def close(self) -> None:
        self._stopped.set()

    # ----- ECS JSON ----------------------------------------------------------------------------------------------
    def describe(self, task: Task, with_tags: bool = True) -> dict[str, Any]:
        """The task as DescribeTasks returns it (timestamps in epoch seconds, as the JSON protocol sends them)."""
        with self._lock:
            container: dict[str, Any] = {
                "containerArn": f"arn:aws:ecs:{self.region}:{ACCOUNT_ID}:container/{self.cluster}/"
                f"{task.task_id}/{uuid.uuid5(uuid.NAMESPACE_URL, task.arn)}",
                "taskArn": task.arn,
                "name": task.container_name,
                "lastStatus": task.last_status if task.last_status in ("PENDING", "RUNNING", "STOPPED") else "RUNNING",
                "healthStatus": "HEALTHY" if task.healthy and task.live else "UNKNOWN",
            }
            if task.pid is not None:
                container["runtimeId"] = f"{task.task_id}-{task.pid}"
            if task.exit_code is not None:
                container["exitCode"] = task.exit_code
            if task.container_reason:
                container["reason"] = task.container_reason
            attachments: list[dict[str, Any]] = []
            if task.host_port is not None:
                # awsvpc: the task's ENI and its private address (the address an ip target group registers); here
                # every task shares 127.0.0.1 and its port is the one its app listens on.
                attachment = str(uuid.uuid5(uuid.NAMESPACE_DNS, task.arn))
                container["networkBindings"] = [
                    {
                        "bindIP": LOOPBACK,
                        "containerPort": task.container_port or task.host_port,
                        "hostPort": task.host_port,
                        "protocol": "tcp",
                    }
                ]
                container["networkInterfaces"] = [{"attachmentId": attachment, "privateIpv4Address": LOOPBACK}]
                attachments.append(
                    {
                        "id": attachment,
                        "type": "ElasticNetworkInterface",
                        "status": "DELETED" if task.stopped_at is not None else "ATTACHED",
                        "details": [{"name": "privateIPv4Address", "value": LOOPBACK}],
                    }
                )
            answer: dict[str, Any] = {
                "taskArn": task.arn,
                "clusterArn": task.cluster_arn,
                "taskDefinitionArn": task.task_definition_arn,
                "group": task.group,
                "startedBy": task.started_by,
                "lastStatus": task.last_status,
                "desiredStatus": task.desired_status,
                "launchType": "FARGATE",
                "healthStatus": "HEALTHY" if task.healthy and task.live else "UNKNOWN",
                "platformVersion": "1.4.0",
                "cpu": "1024",
                "memory": "256",
                "availabilityZone": f"{self.region}a",
                "connectivity": "CONNECTED",
                "enableExecuteCommand": False,
                "version": task.version,
                "containers": [container],
                "createdAt": task.created_at,
            }
            if attachments:
                answer["attachments"] = attachments
            for key, value in (
                ("pullStartedAt", task.pull_started_at),
                ("pullStoppedAt", task.pull_stopped_at),
                ("startedAt", task.started_at),
                ("stoppingAt", task.stopping_at),
                ("stoppedAt", task.stopped_at),
                ("executionStoppedAt", task.stopped_at),
            ):
                if value is not None:
                    answer[key] = value
            if task.stopped_reason:
                answer["stoppedReason"] = task.stopped_reason
            if task.stop_code:
                answer["stopCode"] = task.stop_code
            if with_tags:
                answer["tags"] = [{"key": k, "value": v} for k, v in task.tags.items()]
            return answer
