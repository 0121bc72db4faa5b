"""Glue between the library and the ECS backend: clients, names, the safety guard, and SIGKILL through FIS."""

from __future__ import annotations

import contextlib
import signal
import time
from typing import TYPE_CHECKING

from robot.api import logger
from robot.api.exceptions import SkipExecution

from ...aws.fis import (
    FIS_ECS_ACTIONS,
    TERMINAL_STATES,
    FisExperiments,
    build_template,
    ecs_task_target,
    fault_injection_problems,
)
from ...aws.safety import ChaosGuard, ChaosRefused, run_tags
from ...aws.session import AwsError, call, clients_for
from ...core.waiting import WaitTimeout, wait_until
from ..base import Container, ContainerBackendError
from .ecs import EcsSettings

if TYPE_CHECKING:
    from ...core.base import LibraryContext


def guard_task_stop(ctx: LibraryContext, container: Container, sig: signal.Signals) -> None:
    """Stopping a task is a fault on a real deployment: the chaos guard applies, and only to our sessions.

    Refuses unless the profile allows chaos (and not in production unless forced), and refuses tasks of
    sessions this run did not create. In a dry run it logs what would be stopped and skips the rest of the
    test, since everything after the stop depends on it.
    """
    what = f"stop ECS task {container.container_id} of session {container.session_id} ({sig.name})"
    guard = ChaosGuard.from_context(ctx)
    guard.check(what)
    if container.session_id not in ctx.tracker.all_ids():
        raise ChaosRefused(
            f"Refused to {what}: session {container.session_id} was not created by this run, and a run only "
            "disrupts its own sessions."
        )
    if guard.dry_run:
        logger.info(f"DRY RUN (CHAOS_DRY_RUN): would {what}.")
        raise SkipExecution(f"Chaos dry run: would {what}; the rest of the test needs the fault, so it is skipped.")


def no_fis_reason(sig: signal.Signals) -> str:
    """Why a deployment without FIS (the profile names no ``FIS_ROLE_ARN``) cannot take ``sig`` at once: a skip."""
    return (
        f"The profile names no FIS role (FIS_ROLE_ARN is empty), so this deployment offers no FIS, and {sig.name} "
        "cannot reach a task's process at once: that is the FIS action aws:ecs:task-kill-process (FIS user guide, "
        "AWS FIS Actions reference). ECS alone stops a task with StopTask, which sends SIGTERM and SIGKILL only after "
        "the stop timeout (ECS API reference, StopTask); the SIGTERM tests run. Set FIS_ROLE_ARN (and "
        "SESSION_PROCESS_NAME) to run this test."
    )


def kill_through_fis(ctx: LibraryContext, container: Container, sig: signal.Signals) -> float:
    """Send ``sig`` to the session's process inside its task at once: FIS ``aws:ecs:task-kill-process``.

    ECS itself has only StopTask (SIGTERM, SIGKILL after the stop timeout); an instant SIGKILL, the crash a test
    wants, is this FIS action on the one task (FIS user guide, "aws:ecs:task-kill-process"). The experiment is
    tagged with the run, waited for until it ends, and its template deleted. Returns the ``time.monotonic()``
    moment the action ended (FIS's ``endTime``), the latest the signal can have landed. The chaos guard has already been
    asked (``before_stop``); the task definition must allow FIS in (SSM agent container, ``pidMode: task``).
    """
    profile = ctx.profile
    if not str(ctx.endpoints.get("FIS_ROLE_ARN", "") or ""):
        raise SkipExecution(no_fis_reason(sig))
    process = profile.text("SESSION_PROCESS_NAME", "")
    if not process:
        raise ContainerBackendError(
            "${SESSION_PROCESS_NAME} is empty: FIS aws:ecs:task-kill-process needs the name of the session's "
            "process in its task (e.g. node or java; env SESSION_PROCESS_NAME). See docs/deployment-contract.md."
        )
    clients = clients_for(ctx)
    ecs = clients.client("ecs")
    cluster = str(ctx.endpoints.get("ECS_CLUSTER", "") or "")
    action = FIS_ECS_ACTIONS["aws:ecs:task-kill-process"]
    tasks = call(ecs, "describe_tasks", "Reading the task to kill", cluster=cluster, tasks=[container.container_id])
    for task in tasks.get("tasks", []):
        definition = call(
            ecs, "describe_task_definition", "Reading its task definition", taskDefinition=task["taskDefinitionArn"]
        )["taskDefinition"]
        problems = fault_injection_problems(definition, action)
        if problems:
            raise ContainerBackendError(
                f"FIS cannot kill a process in task {container.container_id}: " + "; ".join(problems) + "."
            )
    alarm = profile.text("FIS_STOP_ALARM_ARN", "")
    guard = ChaosGuard.from_context(ctx)
    if not alarm and not guard.dry_run:
        raise ChaosRefused(
            "Refused to kill a process through FIS: ${FIS_STOP_ALARM_ARN} is empty, and an experiment that really "
            "injects needs a CloudWatch alarm that stops it."
        )
    run = ctx.run
    fis = FisExperiments(clients.client("fis"), run.run_id)
    request = build_template(
        action,
        ecs_task_target(task_arns=[container.container_id]),
        run_id=run.run_id,
        role_arn=str(ctx.endpoints.get("FIS_ROLE_ARN", "") or ""),
        parameters={"processName": process, "signal": sig.name},
        stop_alarm_arns=[alarm] if alarm else [],
        worker=run.worker,
        test=run.current_test or run.current_suite or "",
    )
    template = fis.create_template(request)
    try:
        experiment = fis.start(template["id"], guard.dry_run, run_tags(run.run_id, run.worker))
        seen: dict = {}

        def ended():
            seen["experiment"] = fis.get(experiment["id"])
            return fis.state_of(seen["experiment"]) in TERMINAL_STATES or None

        try:
            wait_until(
                ended,
                profile.seconds("FIS_START_TIMEOUT", "5 min"),
                0.05,
                lambda: f"FIS experiment {experiment['id']} (kill {process}) did not end",
            )
        except WaitTimeout as timeout:
            fis.stop(experiment["id"])
            raise ContainerBackendError(str(timeout)) from None
        current = seen["experiment"]
        state = fis.state_of(current)
        if state == "completed":
            logger.info(
                f"FIS experiment {experiment['id']} ({action.action_id}) sent {sig.name} to {process} in task "
                f"{container.container_id}: {state}."
            )
            ended = [a.get("endTime") for a in current.get("actions", {}).values() if a.get("endTime")]
            ago = max(0.0, time.time() - max(e.timestamp() for e in ended)) if ended else 0.0
            return time.monotonic() - ago
        raise ContainerBackendError(
            f"FIS experiment {experiment['id']} ({action.action_id}, {sig.name} to {process} in task "
            f"{container.container_id}) ended {state}: {fis.reason_of(current)}"
        )
    finally:
        # A template left here is deleted with the run's others when the run ends (FisKeywords.close).
        with contextlib.suppress(AwsError):
            call(fis.client, "delete_experiment_template", "Deleting the kill template", id=template["id"])


def ecs_backend_settings(ctx: LibraryContext) -> EcsSettings:
    """The ECS backend's settings from the active profile (clients shared with the AWS keywords)."""
    profile, endpoints = ctx.profile, ctx.endpoints
    return EcsSettings(
        client=clients_for(ctx).client("ecs"),
        cluster=str(endpoints.get("ECS_CLUSTER", "") or ""),
        service=str(endpoints.get("ECS_SERVICE", "") or ""),
        task_family=profile.text("ECS_TASK_FAMILY", ""),
        task_id_form=profile.text("ECS_TASK_ID_FORM", "arn").lower(),
        session_tag=profile.text("ECS_SESSION_TAG", "sessionId") or "sessionId",
        stop_reason=f"PlatformLibrary run {ctx.run.run_id}",
        before_stop=lambda container, sig: guard_task_stop(ctx, container, sig),
        instant_kill=lambda container, sig: kill_through_fis(ctx, container, sig),
        min_scan_interval=profile.seconds("ECS_MIN_SCAN_INTERVAL", "500 ms"),
    )
