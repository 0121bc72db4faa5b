"""Containers on AWS: the ECS (Fargate) tasks of the session service, found and stopped with boto3.

A task serves a session when it carries the tag ``sessionId=<id>`` or was started with ``startedBy=<id>``
(the platform does both); tasks of ``${ECS_SERVICE}`` without a session are the warm pool. Tasks of other
services in the cluster are not containers of the platform.

ECS has no process ids, so ``Container.pid`` is a stable number derived from the task ARN: the container
keywords compare and report it like a pid. ``Container.task_id`` is the task ARN (``${ECS_TASK_ID_FORM}``
``id`` makes it the short task id), which the platform's ``taskId`` must match.

A task counts as live while ECS wants it running (``desiredStatus`` ``RUNNING``) and it has not begun to
stop; SIGTERM is ``StopTask`` (ECS sends SIGTERM, then SIGKILL after the container's stop timeout). Any other
signal (the SIGKILL crash tests want) goes to the task's process at once through the FIS action
``aws:ecs:task-kill-process`` (``EcsSettings.instant_kill``).
"""

from __future__ import annotations

import hashlib
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ...aws.cost import fargate_billed_seconds
from ...core.billing import BilledTask
from ..base import Container, ContainerBackend, ContainerBackendError

SESSION_TAG = "sessionId"
SERVICE_STARTED_BY = "ecs-svc/"
# lastStatus values of a task on its way out (or gone).
STOPPING_STATUSES = ("DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED", "DELETED")
DESCRIBE_BATCH = 100


@dataclass(frozen=True)
class EcsSettings:
    """What the backend needs, read from the profile each time (the keywords re-read it on every call)."""

    client: Any
    cluster: str
    service: str = ""
    task_family: str = ""
    task_id_form: str = "arn"
    session_tag: str = "sessionId"  # the tag that ties a task to its session (ECS_SESSION_TAG)
    stop_reason: str = "Stopped by PlatformLibrary"
    before_stop: Callable[[Container, signal.Signals], None] | None = None
    # Any other signal than SIGTERM, at once inside the task (FIS aws:ecs:task-kill-process); None: refused.
    instant_kill: Callable[[Container, signal.Signals], float | None] | None = None
    # A scan of the cluster younger than this is reused: callers that poll in tight loops would otherwise hit
    # ECS's API rate limits (ListTasks/DescribeTasks). A stop always invalidates it.
    min_scan_interval: float = 0.5


def _epoch(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


def pseudo_pid(task_arn: str) -> int:
    """A stable positive integer for a task (48 bits of the SHA-1 of its ARN); ECS has no pids."""
    return int(hashlib.sha1(task_arn.encode()).hexdigest()[:12], 16)


def task_tags(task: dict) -> dict[str, str]:
    return {str(t.get("key")): str(t.get("value", "")) for t in task.get("tags") or [] if t.get("key") is not None}


def session_of(task: dict, tag: str = SESSION_TAG) -> str | None:
    """The session a task serves: its ``tag`` (default ``sessionId``), else a ``startedBy`` not the service's."""
    tagged = task_tags(task).get(tag)
    if tagged:
        return tagged
    started_by = str(task.get("startedBy") or "")
    if started_by and not started_by.startswith(SERVICE_STARTED_BY) and not _started_by_aws(started_by):
        return started_by
    return None


def _started_by_aws(started_by: str) -> bool:
    """``startedBy`` of a task an AWS service started (``events-rule/…``, ``ecs-svc/…``, Step Functions): no session."""
    return "/" in started_by or any(c.isspace() for c in started_by)


def is_live(task: dict) -> bool:
    """ECS still wants the task running and it has not begun to stop."""
    return task.get("desiredStatus") == "RUNNING" and task.get("lastStatus") not in STOPPING_STATUSES


def cold_start_phases(task: dict) -> dict[str, float | None]:
    """Split a task's start into phases (seconds) from its ECS timestamps.

    ``provisioning``: ``createdAt`` -> ``pullStartedAt`` (placement, ENI); ``imagePull``: ``pullStartedAt`` ->
    ``pullStoppedAt``; ``containerStart``: ``pullStoppedAt`` -> ``startedAt``; ``total``: ``createdAt`` ->
    ``startedAt``. A phase whose timestamps ECS has not set (yet) is ``None``.
    """
    stamps = {k: _epoch(task.get(k)) for k in ("createdAt", "pullStartedAt", "pullStoppedAt", "startedAt")}
    if stamps["createdAt"] is None:
        raise ContainerBackendError(
            f"Task {task.get('taskArn')} has no createdAt; ECS did not say when it was created."
        )

    def span(start: str, end: str) -> float | None:
        if stamps[start] is None or stamps[end] is None:
            return None
        return round(stamps[end] - stamps[start], 3)

    return {
        "provisioning": span("createdAt", "pullStartedAt"),
        "imagePull": span("pullStartedAt", "pullStoppedAt"),
        "containerStart": span("pullStoppedAt", "startedAt"),
        "total": span("createdAt", "startedAt"),
    }


def billed_seconds(task: dict, now: float | None = None, minimum: float = 60.0) -> float:
    """Fargate bills from the image pull start to the task's end, at least ``minimum`` seconds per task.

    A task still running counts until ``now``; one that never started pulling costs nothing.
    """
    start = _epoch(task.get("pullStartedAt")) or _epoch(task.get("startedAt"))
    if start is None:
        return 0.0
    end = _epoch(task.get("stoppedAt")) or _epoch(task.get("executionStoppedAt")) or (now or time.time())
    return float(fargate_billed_seconds(start, max(start, end), minimum))


def billed_task(task: dict) -> BilledTask | None:
    """A task's billed span as ECS records it: from ``pullStartedAt`` (else ``startedAt``) to ``stoppedAt`` (else
    ``executionStoppedAt``; ``None`` while it runs). ``None`` for a task that never started pulling: not billed."""
    start = _epoch(task.get("pullStartedAt")) or _epoch(task.get("startedAt"))
    if start is None:
        return None
    end = _epoch(task.get("stoppedAt")) or _epoch(task.get("executionStoppedAt"))
    return BilledTask(str(task.get("taskArn")), start, end)


class EcsTaskBackend(ContainerBackend):
    """Session containers as ECS tasks of ``${ECS_CLUSTER}``."""

    name = "ECS tasks"

    def __init__(self, settings: Callable[[], EcsSettings]):
        self._settings = settings
        self._scan: tuple[float, list[dict]] | None = None
        # ECS deletes a task's tags when it stops: the session of a task seen live is remembered, so a stopped
        # task stays tied to its session (tests of a tag-only platform would otherwise lose track of it).
        self._seen_sessions: dict[str, str] = {}

    @property
    def settings(self) -> EcsSettings:
        settings = self._settings()
        if not settings.cluster:
            raise ContainerBackendError("${ECS_CLUSTER} is empty: the ECS backend does not know which cluster to read.")
        return settings

    # ------------------------------------------------------------------ ECS calls
    def _call(self, operation: str, **params: Any) -> dict:
        settings = self.settings
        try:
            return getattr(settings.client, operation)(cluster=settings.cluster, **params)
        except (BotoCoreError, ClientError) as error:
            message = error.response.get("Error", {}).get("Message") if isinstance(error, ClientError) else error
            raise ContainerBackendError(f"ECS {operation} on cluster {settings.cluster} failed: {message}") from None

    def task_arns(self, desired_status: str = "RUNNING", **filters: Any) -> list[str]:
        settings = self.settings
        arns: list[str] = []
        try:
            paginator = settings.client.get_paginator("list_tasks")
            for page in paginator.paginate(cluster=settings.cluster, desiredStatus=desired_status, **filters):
                arns.extend(page.get("taskArns", []))
        except (BotoCoreError, ClientError) as error:
            message = error.response.get("Error", {}).get("Message") if isinstance(error, ClientError) else error
            raise ContainerBackendError(f"ECS ListTasks on cluster {settings.cluster} failed: {message}") from None
        return arns

    def describe(self, arns: Iterable[str]) -> list[dict]:
        """The tasks (with tags) for ``arns``; unknown ones are left out."""
        arns = list(dict.fromkeys(arns))
        tasks: list[dict] = []
        for start in range(0, len(arns), DESCRIBE_BATCH):
            answer = self._call("describe_tasks", tasks=arns[start : start + DESCRIBE_BATCH], include=["TAGS"])
            tasks.extend(answer.get("tasks", []))
        tag = self.settings.session_tag
        for task in tasks:
            arn = str(task.get("taskArn"))
            session = session_of(task, tag)
            if session is not None:
                self._seen_sessions[arn] = session
            elif arn in self._seen_sessions:  # its tags went with the stop: put the session back
                task.setdefault("tags", []).append({"key": tag, "value": self._seen_sessions[arn]})
        return tasks

    def tasks(self, include_stopped: bool = False) -> list[dict]:
        """Every task of the platform in the cluster (only ``desiredStatus`` RUNNING unless ``include_stopped``)."""
        if not include_stopped and self._scan is not None:
            taken, tasks = self._scan
            if time.monotonic() - taken < self.settings.min_scan_interval:
                return list(tasks)
        arns = self.task_arns("RUNNING")
        if include_stopped:
            arns += self.task_arns("STOPPED")
        tasks = [t for t in self.describe(arns) if self._belongs(t)]
        if not include_stopped:
            self._scan = (time.monotonic(), tasks)
        return list(tasks)

    def _belongs(self, task: dict) -> bool:
        settings = self.settings
        if settings.task_family:
            family = str(task.get("taskDefinitionArn", "")).rsplit("/", 1)[-1].split(":", 1)[0]
            if family != settings.task_family:
                return False
        if session_of(task, self.settings.session_tag) is not None:
            return True
        return bool(settings.service) and task.get("group") == f"service:{settings.service}"

    def container(self, task: dict) -> Container:
        arn = str(task["taskArn"])
        task_id = arn.rsplit("/", 1)[-1] if self.settings.task_id_form == "id" else arn
        family = str(task.get("taskDefinitionArn", "")).rsplit("/", 1)[-1]
        return Container(
            container_id=arn,
            session_id=session_of(task, self.settings.session_tag),
            task_id=task_id,
            pid=pseudo_pid(arn),
            started_at=_epoch(task.get("startedAt")) or _epoch(task.get("createdAt")) or 0.0,
            description=f"{task.get('lastStatus')} task {arn} ({family}, {task.get('group', '')})",
            running=task.get("lastStatus") == "RUNNING",
        )

    # ------------------------------------------------------------------ ContainerBackend
    def list_containers(self) -> list[Container]:
        return [self.container(t) for t in self.tasks() if is_live(t)]

    def task_of(self, container: Container) -> dict | None:
        found = self.describe([container.container_id])
        return found[0] if found else None

    def is_alive(self, container: Container) -> bool:
        task = self.task_of(container)
        return task is not None and is_live(task)

    def kill(self, container: Container, sig: signal.Signals) -> float | None:
        settings = self.settings
        if settings.before_stop is not None:
            settings.before_stop(container, sig)  # the safety guard: may refuse, or skip in a dry run
        task = self.task_of(container)
        if task is None or not is_live(task):
            status = "unknown to ECS" if task is None else f"{task.get('lastStatus')}/{task.get('desiredStatus')}"
            raise ContainerBackendError(
                f"Task {container.container_id} of session {container.session_id} is no longer running ({status})."
            )
        if sig != signal.SIGTERM and settings.instant_kill is not None:
            self._scan = None
            landed = settings.instant_kill(container, sig)
            self._scan = None
            return landed
        if sig != signal.SIGTERM:
            raise ContainerBackendError(
                f"ECS cannot send {sig.name} to task {container.container_id} now: StopTask sends SIGTERM, and "
                "SIGKILL only after the container's stop timeout. An instant SIGKILL inside the task is the FIS "
                "action aws:ecs:task-kill-process (keyword Inject FIS Fault, action task-kill-process)."
            )
        reason = settings.stop_reason[:255]  # never the signal: a test checks what the platform records, not this
        self._scan = None
        self._call("stop_task", task=container.container_id, reason=reason)
        self._scan = None
        return None

    # ------------------------------------------------------------------ beyond the interface
    def session_tasks(self, session_id: str, include_stopped: bool = True) -> list[dict]:
        """Every task that served ``session_id`` (stopped ones too: ECS keeps them for about an hour)."""
        tag = self.settings.session_tag
        return [t for t in self.tasks(include_stopped=include_stopped) if session_of(t, tag) == session_id]

    def billed_tasks(self, session_id: str) -> list[BilledTask]:
        """What Fargate bills of the session: each of its tasks, running or stopped, from ``pullStartedAt`` to
        ``stoppedAt`` as ECS records them."""
        spans = (billed_task(t) for t in self.session_tasks(session_id, include_stopped=True))
        return [s for s in spans if s is not None]
