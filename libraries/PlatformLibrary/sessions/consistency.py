"""Cross-checks: the API, the DynamoDB record and the process table must tell the same story."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from robot.api.deco import keyword

from ..core.base import LibraryComponent, LibraryContext
from ..core.profile import format_seconds
from ..core.waiting import wait_until
from ..targets.containers import ContainerKeywords
from .api import ApiError, PlatformApiKeywords, SessionRef
from .store import SessionStoreKeywords
from .workspace import WorkspaceKeywords

# Fields that must be equal in the API's session object and the DynamoDB record.
SHARED_FIELDS = ("status", "restartCount", "taskId", "workspace", "userId", "clientId", "lastFailureReason")


class ConsistencyKeywords(LibraryComponent):
    """One keyword that compares every view of a session."""

    def __init__(
        self,
        ctx: LibraryContext,
        api: PlatformApiKeywords,
        workspace: WorkspaceKeywords,
        records: SessionStoreKeywords,
        containers: ContainerKeywords,
    ):
        super().__init__(ctx)
        self.api = api
        self.workspace = workspace
        self.records = records
        self.containers = containers

    def _disagreements(self, session_id: str) -> tuple[list[str], dict]:
        api_view = self.api.get_session(session_id)
        record = self.records.get_session_record(session_id)
        containers = self.containers.backend.containers_of(session_id)
        problems = []
        for name in SHARED_FIELDS:
            if name not in api_view and name not in record:
                continue
            if api_view.get(name) != record.get(name):
                problems.append(f"{name}: API says {api_view.get(name)!r}, DynamoDB says {record.get(name)!r}")
        status = api_view.get("status")
        pids = [c.pid for c in containers]
        if status == "RUNNING":
            if len(containers) != 1:
                problems.append(f"status RUNNING but {len(containers)} container(s) in the process table: {pids}")
            elif containers[0].task_id != api_view.get("taskId"):
                problems.append(
                    f"container pid {pids[0]} runs task {containers[0].task_id!r}, "
                    f"the session says taskId {api_view.get('taskId')!r}"
                )
        elif status in ("STOPPED", "FAILED") and containers:
            problems.append(f"status {status} but container(s) still run: {pids}")
        elif len(containers) > 1:
            problems.append(f"status {status} with {len(containers)} containers: {pids}")
        if status == "RUNNING" and self.ctx.endpoints.local_platform_dir is not None and record.get("workspace"):
            problems += self._workspace_disagreements(session_id, Path(str(record["workspace"])))
        summary = {"api": api_view, "record": record, "pids": pids}
        return problems, summary

    def _workspace_disagreements(self, session_id: str, root: Path) -> list[str]:
        try:
            files = self.workspace.list_workspace_files(session_id)
        except ApiError as error:
            return [f"workspace: the API cannot list the files of a RUNNING session: {error}"]
        listed = {f["path"]: f["size"] for f in files}
        on_disk = {}
        if root.is_dir():
            for path in root.rglob("*"):
                if path.is_file() and not path.name.endswith(".tmp"):
                    on_disk[path.relative_to(root).as_posix()] = path.stat().st_size
        if listed != on_disk:
            return [f"workspace: the API lists {listed}, the volume at {root} holds {on_disk}"]
        return []

    @keyword(tags=["consistency", "assertion"])
    def session_views_should_agree(self, session: SessionRef, timeout: timedelta = timedelta(0)) -> dict:
        """Fails unless the API, the DynamoDB record and the process table agree on the session.

        Compared: ``status``, ``restartCount``, ``taskId``, ``workspace``, ``userId``, ``clientId`` and
        ``lastFailureReason`` between API and record; a ``RUNNING`` session has exactly one container whose
        task is the session's ``taskId``; a ``STOPPED`` or ``FAILED`` one has none; never two at once.
        On the embedded platform the API's file list must match the workspace volume.

        Views read a moment apart can straddle a transition; give ``timeout`` to retry until they agree.
        Returns ``{"api", "record", "pids"}``.

        Example:
        | Session Views Should Agree | ${session} |
        | Session Views Should Agree | ${session} | timeout=2 s |
        """
        session_id = self.session_id_of(session)
        deadline = time.monotonic() + timeout.total_seconds()
        started = time.monotonic()
        while True:
            problems, summary = self._disagreements(session_id)
            if not problems:
                self.info(
                    f"API, DynamoDB and process table agree on session {session_id}: "
                    f"{summary['api'].get('status')}, restartCount {summary['api'].get('restartCount')}, "
                    f"pids {summary['pids']} (after {format_seconds(time.monotonic() - started)})."
                )
                return summary
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"Views of session {session_id} disagree:\n" + "\n".join(f"- {p}" for p in problems)
                )
            time.sleep(self.profile.seconds("POLL_INTERVAL"))

    @keyword(tags=["consistency", "assertion"])
    def recovery_time_should_agree_with_platform_record(
        self, session: SessionRef, measured: float, tolerance: timedelta | None = None
    ) -> float:
        """Fails unless the recovery time the suite measured agrees with the platform's own record.

        The platform records ``lastRecoveryMs`` on the session: from detecting the crash to the replacement
        answering ready. The suite measures from the kill until an API answer says ``RUNNING`` again, so its
        figure is longer by the platform's detection (``tolerance``, default ``${RECOVERY_TIME_TOLERANCE}``) and
        by how late the suite saw it: the span between its last answer that did not say RUNNING and the first
        that did, measured by `Wait Until Container Restarted`. The bound is derived from both, so a busy machine
        that slows the suite's polling widens it by exactly what was measured; a platform record off by more
        fails. The platform's figure may not exceed the suite's by more than ``tolerance`` either. Returns the
        difference (suite minus platform) in seconds.

        Example:
        | ${seconds} = | Wait Until Container Restarted | ${session} |
        | Recovery Time Should Agree With Platform Record | ${session} | ${seconds} |
        """
        session_id = self.session_id_of(session)
        detection = (
            tolerance.total_seconds() if tolerance is not None else self.profile.seconds("RECOVERY_TIME_TOLERANCE")
        )
        observation = self.containers.recovery_observation_window(session_id)
        recorded_ms = self.api.get_session(session_id).get("lastRecoveryMs")
        if recorded_ms is None:
            raise AssertionError(f"Session {session_id} has no lastRecoveryMs: the platform recorded no recovery.")
        recorded = float(recorded_ms) / 1000
        difference = float(measured) - recorded
        allowed_above = detection + observation
        verdict = (
            f"the suite measured {format_seconds(float(measured))} (seen within {format_seconds(observation)}), "
            f"the platform recorded {format_seconds(recorded)}; the suite's figure may exceed the platform's by "
            f"up to {format_seconds(allowed_above)} (detection {format_seconds(detection)} + observation "
            f"{format_seconds(observation)}) and fall short of it by up to {format_seconds(detection)}"
        )
        self.info(f"Recovery of {session_id}: {verdict}; difference {difference * 1000:+.0f} ms.")
        if difference > allowed_above or difference < -detection:
            raise AssertionError(
                f"The platform's recovery record (lastRecoveryMs) of {session_id} is wrong: {verdict}, "
                f"but the difference is {difference * 1000:+.0f} ms."
            )
        return difference

    @keyword(tags=["cleanup", "orphans", "assertion"])
    def deleted_sessions_should_leave_nothing_behind(self, timeout: timedelta | None = None) -> float:
        """Waits until every session this test's cleanup deleted has no live container and no live record.

        On AWS a live container is a task ECS does not report STOPPED (DescribeTasks): a Fargate task billed until
        someone notices. A live record is one still in the table with a status other than ``STOPPED``/``FAILED``.
        Fails at the deadline (``timeout`` or ``${ORPHAN_GRACE_TIMEOUT}``) naming each leftover; returns the
        seconds it took. The cleanup keywords of the resource files call it after `Delete Sessions Created By This
        Test`.
        """
        deleted = self.api.deleted_in(self.context.scope)
        if not deleted:
            return 0.0
        seen: dict[str, list[str]] = {"left": []}

        def leftovers() -> list[str]:
            left = []
            for session_id in deleted:
                live = self.containers.backend.containers_of(session_id)
                if live:
                    names = ", ".join(str(c.container_id) for c in live)
                    left.append(f"session {session_id}: container still running ({names})")
                record = self.records.store.get(session_id)
                if record is not None and record.get("status") not in ("STOPPED", "FAILED"):
                    left.append(f"session {session_id}: record still in the table, status {record.get('status')}")
                left += [f"session {session_id}: {trace}" for trace in self.containers.backend.traces_of(session_id)]
            return left

        def probe():
            seen["left"] = leftovers()
            return True if not seen["left"] else None

        deadline = timeout.total_seconds() if timeout is not None else self.profile.seconds("ORPHAN_GRACE_TIMEOUT")
        waited = wait_until(
            probe,
            deadline,
            self.profile.seconds("POLL_INTERVAL"),
            lambda: "Deleted sessions left things behind: " + "; ".join(seen["left"]),
        )
        self.info(f"{len(deleted)} deleted session(s) left nothing behind ({format_seconds(waited.seconds)}).")
        return waited.seconds
