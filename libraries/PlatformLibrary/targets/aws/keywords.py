"""ECS keywords of the AWS target: a session's task, its cold-start phases, its usage.

The container keywords (``targets.containers``) work on both targets; these read what only ECS knows
(task ARNs, ``lastStatus``, timestamps, billed time).
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from robot.api.deco import keyword

from ...aws.cost import architecture_of, load_pricing, price_set_for, profile_pricing_file, task_size
from ...aws.observe import epoch
from ...aws.session import AwsComponent, AwsError, call
from ...core.base import LibraryContext
from ...core.waiting import wait_until
from ...sessions.api import SessionRef
from ...sessions.store import SessionStoreKeywords
from ..containers import ContainerKeywords
from .ecs import EcsTaskBackend, billed_seconds, cold_start_phases, is_live


class EcsKeywords(AwsComponent):
    """AWS-only keywords about the ECS tasks that serve sessions."""

    def __init__(self, ctx: LibraryContext, containers: ContainerKeywords, records: SessionStoreKeywords):
        super().__init__(ctx)
        self.containers = containers
        self.records = records
        self._lock = threading.Lock()

    def backend_of_tasks(self) -> EcsTaskBackend:
        """The ECS task backend; fails on a target whose containers are not ECS tasks."""
        backend = self.containers.backend
        if not isinstance(backend, EcsTaskBackend):
            raise AwsError(f"The container backend is {backend.name}, not ECS tasks.")
        return backend

    @property
    def _ecs(self) -> EcsTaskBackend:
        return self.backend_of_tasks()

    # ------------------------------------------------------------------ ECS
    def _session_tasks(self, session: SessionRef, include_stopped: bool = True) -> list[dict]:
        tasks = self._ecs.session_tasks(self.session_id_of(session), include_stopped=include_stopped)
        return sorted(tasks, key=lambda t: epoch(t.get("createdAt")) or 0.0)  # oldest first

    @keyword(tags=["aws-only", "ecs"])
    def get_session_task(self, session: SessionRef) -> dict:
        """Returns the live ECS task of the session (``taskArn``, ``lastStatus``, ``startedBy``, ``tags``,
        timestamps ...); fails unless exactly one task serves it."""
        session_id = self.session_id_of(session)
        live = [t for t in self._ecs.session_tasks(session_id, include_stopped=False) if is_live(t)]
        if len(live) != 1:
            raise AssertionError(
                f"Session {session_id} should have exactly one live task but has {len(live)}: "
                f"{[t['taskArn'] for t in live]}"
            )
        return live[0]

    @keyword(tags=["aws-only", "ecs", "metrics"])
    def get_session_cold_start_phases(self, session: SessionRef, timeout: timedelta | None = None) -> dict:
        """Splits the start of the session's newest task into phases, in seconds, from its ECS timestamps.

        ``provisioning`` (``createdAt`` -> ``pullStartedAt``), ``imagePull`` (-> ``pullStoppedAt``),
        ``containerStart`` (-> ``startedAt``) and ``total`` (``createdAt`` -> ``startedAt``), plus ``taskArn``.
        Waits until the task has ``startedAt`` (deadline ``timeout`` or ``${SESSION_START_TIMEOUT}``).

        Example:
        | ${phases} = | Get Session Cold Start Phases | ${SESSION} |
        | Record Metric | cold_start_image_pull | ${phases}[imagePull] |
        """
        session_id = self.session_id_of(session)

        def probe():
            tasks = self._session_tasks(session_id)
            return tasks[-1] if tasks and tasks[-1].get("startedAt") is not None else None

        waited = wait_until(
            probe,
            self._timeout(timeout, "SESSION_START_TIMEOUT", "3 min"),
            self._poll(),
            lambda: f"No task of session {session_id} has started (no startedAt)",
        )
        phases: dict[str, Any] = cold_start_phases(waited.value)
        phases["taskArn"] = waited.value["taskArn"]
        self.info(f"Cold start phases of session {session_id}: {phases}")
        return phases

    @keyword(tags=["aws-only", "ecs", "cost"])
    def get_session_task_usage(self, session: SessionRef) -> dict:
        """Returns what the session's tasks used: ``taskSeconds`` (Fargate-billed: image pull start to stop, per
        second rounded up, at least a minute per task; a running task counts until now), ``vcpu``, ``memoryGb``,
        ``architecture`` and ``tasks`` (how many)."""
        session_id = self.session_id_of(session)
        tasks = self._ecs.session_tasks(session_id, include_stopped=True)
        if not tasks:
            raise AssertionError(f"Session {session_id} has no ECS task (stopped tasks are kept about an hour).")
        minimum = billing_minimum(load_pricing(profile_pricing_file(self.profile)))
        definitions: dict[str, dict] = {}
        seconds = vcpu_seconds = gb_seconds = 0.0
        architecture = "linux_x86"
        for task in tasks:
            arn = task["taskDefinitionArn"]
            if arn not in definitions:
                definitions[arn] = call(
                    self._client("ecs"), "describe_task_definition", f"Reading {arn}", taskDefinition=arn
                )["taskDefinition"]
            vcpu, gb = task_size(task, definitions[arn])
            architecture = architecture_of(definitions[arn])
            billed = billed_seconds(task, minimum=minimum)
            seconds += billed
            vcpu_seconds += billed * vcpu
            gb_seconds += billed * gb
        usage = {
            "sessionId": session_id,
            "tasks": len(tasks),
            "taskSeconds": round(seconds, 3),
            "vcpu": round(vcpu_seconds / seconds, 4) if seconds else 0.0,
            "memoryGb": round(gb_seconds / seconds, 4) if seconds else 0.0,
            "architecture": architecture,
        }
        self.info(f"Usage of session {session_id}: {usage}")
        return usage


def billing_minimum(pricing: dict) -> float:
    """Fargate's per-task billing minimum (seconds) in the price set valid today."""
    return float(price_set_for(pricing).get("fargate", {}).get("minimumSecondsPerTask", 60))
