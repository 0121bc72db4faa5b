"""Glue between the library and the ECS backend: clients, names and the safety guard for stopping tasks."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

from robot.api import logger
from robot.api.exceptions import SkipExecution

from ...aws.safety import ChaosGuard, ChaosRefused
from ...aws.session import clients_for
from ..base import Container
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
        min_scan_interval=profile.seconds("ECS_MIN_SCAN_INTERVAL", "500 ms"),
    )
