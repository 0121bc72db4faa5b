"""Keywords about session containers: find, kill, watch them restart, and hunt orphans."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import requests
from robot.api import SkipExecution, logger
from robot.api.deco import keyword

from ..core.base import LibraryComponent, LibraryContext
from ..core.profile import format_seconds
from ..core.waiting import WaitTimeout, wait_until
from ..sessions.api import GONE_STATUSES, TERMINAL_STATUSES, PlatformApiKeywords, SessionRef
from . import Container, ContainerBackend, ContainerBackendError, create_backend
from .aws.settings import ecs_backend_settings


def _restarts(session: dict | None) -> str:
    if not session:
        return ""
    return f" (restartCount {session.get('restartCount')}, lastFailureReason {session.get('lastFailureReason')!r})"


def parse_signal(value: str | int) -> signal.Signals:
    """``SIGKILL``, ``KILL``, ``kill`` or ``9`` -> ``signal.SIGKILL``; anything else is a clear error."""
    text = str(value).strip().upper()
    try:
        if text.isdigit():
            return signal.Signals(int(text))
        return signal.Signals[text if text.startswith("SIG") else f"SIG{text}"]
    except (KeyError, ValueError):
        raise ValueError(f"Unknown signal {value!r}; use a name like SIGKILL or SIGTERM, or a number.") from None


class ContainerKeywords(LibraryComponent):
    """Session containers behind the backend seam (processes on the embedded platform, ECS tasks on AWS)."""

    def __init__(self, ctx: LibraryContext, api: PlatformApiKeywords, traces: Callable[[str], list[str]] | None = None):
        super().__init__(ctx)
        self.api = api
        self._traces = traces  # what else a session holds on the embedded platform (its mesh hop): faults/toxiproxy
        self._backend: ContainerBackend | None = None
        self._kills: dict[str, tuple[Container, float, signal.Signals | None]] = {}
        self._observation_windows: dict[str, float] = {}

    @property
    def backend(self) -> ContainerBackend:
        if self._backend is None:
            self._backend = create_backend(
                self.profile.target,
                lambda: self.endpoint("PLATFORM_INSTANCE"),
                lambda: ecs_backend_settings(self.ctx),
                self._traces,
            )
        return self._backend

    def _containers(self, session_id: str) -> list[Container]:
        return self.backend.containers_of(session_id)

    @staticmethod
    def _pids(containers: list[Container]) -> str:
        return ", ".join(str(c.pid) for c in containers) or "none"

    def _single(self, session: SessionRef, timeout: float) -> Container:
        session_id = self.session_id_of(session)
        seen: dict[str, list[Container]] = {"containers": []}

        def probe():
            seen["containers"] = self._containers(session_id)
            return seen["containers"][0] if len(seen["containers"]) == 1 else None

        def fail_fast():
            if len(seen["containers"]) > 1:
                found = seen["containers"]
                return f"Session {session_id} has {len(found)} containers: pids {self._pids(found)}"
            return None

        waited = wait_until(
            probe,
            timeout,
            self.profile.seconds("POLL_INTERVAL"),
            lambda: f"No container found for session {session_id} ({self.backend.name})",
            fail_fast,
        )
        return waited.value

    @keyword(tags=["containers"])
    def find_session_container(self, session: SessionRef, timeout: timedelta | None = None) -> int:
        """Returns the pid of the session's container, waiting for it to appear.

        The deadline is ``timeout`` or ``${CONTAINER_APPEAR_TIMEOUT}``. Fails when the session has more
        than one container: that is a defect, not something to pick from.

        Example:
        | ${pid} = | Find Session Container | ${session} |
        """
        timeout_s = timeout.total_seconds() if timeout is not None else self.profile.seconds("CONTAINER_APPEAR_TIMEOUT")
        container = self._single(session, timeout_s)
        self.info(
            f"Session {self.session_id_of(session)} runs in container pid {container.pid} (task {container.task_id})."
        )
        return container.pid

    @keyword(tags=["containers", "faults"])
    def kill_session_container(self, session: SessionRef, signal: str = "SIGKILL") -> int:
        """Sends ``signal`` (``SIGKILL`` or ``SIGTERM``, name or number) to the session's container.

        Returns the pid that was signalled and remembers the moment, so `Wait Until Container Restarted`
        measures recovery from the kill itself.

        Example:
        | ${old_pid} = | Kill Session Container | ${session} |
        | ${old_pid} = | Kill Session Container | ${session} | signal=SIGTERM |
        """
        sig = parse_signal(signal)
        session_id = self.session_id_of(session)
        container = self._single(session_id, self.profile.seconds("CONTAINER_APPEAR_TIMEOUT"))
        landed = self.backend.kill(container, sig)
        self._kills[session_id] = (container, landed or time.monotonic(), sig)
        self.info(f"Sent {sig.name} to container pid {container.pid} of session {session_id}.")
        return container.pid

    def _catch_starting(self, attempts: int, timeout: timedelta | None) -> tuple[dict, Container]:
        """Create sessions until one is ``STARTING``/``PENDING`` with its container in the process table.

        Skips the test (never fails it) when every attempt's session went ``RUNNING`` before it could be seen
        starting: a deployment whose starts are all that fast (warm) cannot give the test its condition, which is
        no platform failure. A session without a container in time, or ending anywhere but ``RUNNING``, fails.
        """
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts}.")
        per_attempt = timeout.total_seconds() if timeout is not None else self.profile.seconds("SESSION_START_TIMEOUT")
        api = self.api
        missed = []
        too_fast: list[tuple[float, str]] = []  # (seconds from the create's answer to RUNNING, start type)
        for attempt in range(1, attempts + 1):
            session = api.create_session()
            session_id = session["sessionId"]
            answered = time.monotonic()
            deadline = answered + per_attempt
            while time.monotonic() < deadline:
                containers = self._containers(session_id)
                if containers and all(c.running for c in containers):
                    current = api.get_session(session_id)
                    if current["status"] in ("PENDING", "STARTING"):
                        if len(containers) > 1:
                            raise AssertionError(
                                f"Session {session_id} has {len(containers)} containers while starting: "
                                f"pids {self._pids(containers)}."
                            )
                        self.info(
                            f"Attempt {attempt}: session {session_id} is {current['status']} with container "
                            f"pid {containers[0].pid}."
                        )
                        return current, containers[0]
                    start_type = str(current.get("startType") or "?")
                    if current["status"] == "RUNNING":
                        too_fast.append((time.monotonic() - answered, start_type))
                    missed.append(
                        f"{session_id} was already {current['status']} ({start_type} start) when its container appeared"
                    )
                    break
                time.sleep(0.005)
            else:
                missed.append(f"{session_id} showed no container within {format_seconds(per_attempt)}")
            self.info(f"Attempt {attempt} missed the starting window: {missed[-1]}.")
        if len(too_fast) == attempts:
            kinds = ", ".join(sorted({kind for _, kind in too_fast}))
            raise SkipExecution(
                f"No session could be caught while STARTING in {attempts} attempts: every start went RUNNING within "
                f"{format_seconds(max(s for s, _ in too_fast))} of its create's answer without being seen STARTING "
                f"(start types: {kinds}). The deployment gives no starting window to test (the contract offers no "
                "way to drain its warm pool), which is not a platform failure:\n" + "\n".join(f"- {m}" for m in missed)
            )
        raise AssertionError(
            f"No session could be caught while STARTING in {attempts} attempts:\n"
            + "\n".join(f"- {m}" for m in missed)
            + "\nThe platform's start delay may be too short for this test."
        )

    @keyword(tags=["containers", "sessions"])
    def create_session_and_catch_it_starting(self, attempts: int = 5, timeout: timedelta | None = None) -> dict:
        """Creates sessions until one is ``STARTING`` with its container already running, and returns it.

        A warm start (an agent from the warm pool) has no starting window, so a session that reaches
        ``RUNNING`` before its container could be seen is kept (the test's cleanup removes it) and another
        is created, up to ``attempts``; every warm start also drains the pool, so a cold start follows.
        ``timeout`` (default ``${SESSION_START_TIMEOUT}``) bounds each attempt. When every attempt went
        ``RUNNING`` before it could be seen starting (all starts warm), the test is skipped with the figures: a
        condition the test could not create is not a platform failure. Any other miss fails.

        Example:
        | ${session} = | Create Session And Catch It Starting |
        | Delete Session | ${session} |
        """
        session, _ = self._catch_starting(attempts, timeout)
        return session

    @keyword(tags=["containers", "faults"])
    def kill_container_of_starting_session(
        self, signal: str = "SIGKILL", attempts: int = 5, timeout: timedelta | None = None
    ) -> tuple[dict, int]:
        """Like `Create Session And Catch It Starting`, then kills the container at once, while ``STARTING``.

        Returns the session object as the API showed it just before the kill, and the killed pid (also
        remembered for `Wait Until Container Restarted`).

        Example:
        | ${session} | ${pid} = | Kill Container Of Starting Session | SIGKILL |
        | ${seconds} = | Wait Until Container Restarted | ${session} |
        """
        sig = parse_signal(signal)
        session, container = self._catch_starting(attempts, timeout)
        landed = self.backend.kill(container, sig)
        self._kills[session["sessionId"]] = (container, landed or time.monotonic(), sig)
        self.info(
            f"Sent {sig.name} to container pid {container.pid} of session {session['sessionId']} while it "
            f"was {session['status']}."
        )
        return session, container.pid

    @keyword(tags=["containers", "wait"])
    def wait_until_container_restarted(
        self, session: SessionRef, old_pid: int | None = None, timeout: timedelta | None = None
    ) -> float:
        """Waits until the session runs again in a new container and returns the recovery time in seconds.

        Recovered means: the old container is gone, exactly one container with a different pid serves
        the session, and the API reports the session ``RUNNING`` in it (its ``taskId`` is that container's task,
        where the API names one: a platform starts a replacement before it records it, so a ``RUNNING`` of the old
        task may still be read beside the new one). ``old_pid`` defaults to the container
        the last `Kill Session Container` hit; recovery time counts from that kill. The deadline is
        ``timeout`` or ``${RECOVERY_TIMEOUT}`` (longer than the SLA, so an overshoot is measured, not cut off).

        Example:
        | ${seconds} = | Wait Until Container Restarted | ${session} |
        | Duration Should Be Below | ${seconds} | ${SLA_RECOVERY_MAX} | name=recovery time |
        """
        session_id = self.session_id_of(session)
        killed = self._kills.get(session_id)
        if old_pid is None:
            if killed is None:
                raise ValueError(f"Give old_pid: no container of session {session_id} was killed by this library.")
            old_pid = killed[0].pid
        started = killed[1] if killed and killed[0].pid == old_pid else time.monotonic()
        old_container = killed[0] if killed and killed[0].pid == old_pid else None
        old_task = old_container.task_id if old_container is not None else None
        seen: dict[str, Any] = {"containers": [], "status": None, "session": None, "not_running_at": started}

        def probe():
            # The containers first, then the API: a platform starts the replacement before it records it, so an
            # answer read before the listing may still be the old task's RUNNING beside the new task.
            containers = self._containers(session_id)
            seen["status"], seen["session"] = self._api_view(session_id)
            seen["api_at"] = time.monotonic()
            task = str((seen["session"] or {}).get("taskId") or "")
            if seen["status"] != "RUNNING" or (old_task and task == old_task):
                seen["not_running_at"] = seen["api_at"]
            seen["containers"] = containers
            if old_container is not None and self.backend.is_alive(old_container):
                seen["note"] = f"old container pid {old_pid} is still alive"
                return None
            if any(c.pid == old_pid for c in containers):
                seen["note"] = f"old container pid {old_pid} still serves the session"
                return None
            if len(containers) != 1:
                seen["note"] = f"{len(containers)} containers (pids {self._pids(containers)})"
            elif seen["status"] != "RUNNING" or (task and task != containers[0].task_id):
                # RUNNING counts once the API says it of the new container's task (where it names a taskId)
                seen["note"] = f"new container pid {containers[0].pid} (task {containers[0].task_id})"
                if task:
                    seen["note"] += f", the session's taskId {task}"
            else:
                return containers[0]
            seen["note"] += f", session status {seen['status']}" + _restarts(seen["session"])
            return None

        def fail_fast():
            if len(seen["containers"]) > 1:
                return (
                    f"Session {session_id} has {len(seen['containers'])} containers: {self._pids(seen['containers'])}"
                )
            if seen["status"] in TERMINAL_STATUSES or seen["status"] == "GONE":
                return f"Session {session_id} became {seen['status']} instead of recovering" + _restarts(
                    seen["session"]
                )
            return None

        deadline = timeout.total_seconds() if timeout is not None else self.profile.seconds("RECOVERY_TIMEOUT")
        remaining = max(0.0, deadline - (time.monotonic() - started))
        waited = wait_until(
            probe,
            remaining,
            self.profile.seconds("POLL_INTERVAL"),
            lambda: (
                f"Session {session_id} did not recover from the loss of pid {old_pid}: "
                f"{seen.get('note', 'no container')}"
            ),
            fail_fast,
        )
        # Recovered as of the API answer that said RUNNING (the process-table check after it takes its own time);
        # it became RUNNING after the last answer that did not say so: that span is the observation window.
        recovery = seen["api_at"] - started
        self._observation_windows[session_id] = seen["api_at"] - seen["not_running_at"]
        self.info(
            f"Session {session_id} recovered in {format_seconds(recovery)} (seen RUNNING within "
            f"{format_seconds(self._observation_windows[session_id])} of the last answer that was not): "
            f"pid {old_pid} -> {waited.value.pid}."
        )
        return recovery

    def recovery_observation_window(self, session_id: str) -> float:
        """Seconds between the last API answer that did not say RUNNING and the first that did, in the last
        `Wait Until Container Restarted` of ``session_id``: how late the suite may have seen the recovery."""
        return self._observation_windows.get(session_id, 0.0)

    def note_kill(self, session_id: str, container: Container, at: float, sig: signal.Signals | None) -> None:
        """Remembers that ``container`` of the session died at ``at`` (monotonic) from outside this component
        (e.g. the OOM killer under memory pressure): `Wait Until Container Restarted` counts recovery from there."""
        self._kills[session_id] = (container, at, sig)

    def api_status(self, session_id: str) -> str | None:
        """The session's status as the API tells it (``GONE`` for 404/410, ``None`` without an answer)."""
        return self._api_view(session_id)[0]

    def _api_view(self, session_id: str) -> tuple[str | None, dict | None]:
        """The session's status as the API tells it (``GONE`` for 404/410, ``None`` without an answer)."""
        try:
            response = self.ctx.api.request("GET", self.ctx.api.session_path(session_id))
        except requests.RequestException:
            return None, None
        if response.status in GONE_STATUSES:
            return "GONE", None
        if response.status != 200 or not isinstance(response.body, dict):
            return None, None
        return response.body.get("status"), response.body

    @keyword(tags=["containers", "assertion"])
    def session_should_have_exactly_one_container(self, session: SessionRef) -> int:
        """Fails unless exactly one container serves the session right now; returns its pid."""
        session_id = self.session_id_of(session)
        containers = self._containers(session_id)
        if len(containers) != 1:
            raise AssertionError(
                f"Session {session_id} should have exactly one container but has {len(containers)}: "
                f"pids {self._pids(containers)}."
            )
        return containers[0].pid

    @keyword(tags=["containers", "assertion"])
    def session_should_have_at_most_one_container(self, session: SessionRef) -> None:
        """Fails when two or more containers serve the session at the same moment."""
        session_id = self.session_id_of(session)
        containers = self._containers(session_id)
        if len(containers) > 1:
            raise AssertionError(
                f"Session {session_id} has {len(containers)} containers: pids {self._pids(containers)}."
            )

    @keyword(tags=["containers", "wait"])
    def wait_until_session_has_no_container(
        self, session: SessionRef, timeout: timedelta | None = None, fail_on_timeout: bool = True
    ) -> float | None:
        """Waits until no container serves the session and returns the seconds it took.

        The deadline is ``timeout`` or ``${ORPHAN_GRACE_TIMEOUT}``. With ``fail_on_timeout=False`` the
        keyword returns ``None`` at the deadline instead of failing: for steps that give the platform time
        to react but go on either way, leaving the verdict to a later assertion.
        """
        session_id = self.session_id_of(session)
        deadline = timeout.total_seconds() if timeout is not None else self.profile.seconds("ORPHAN_GRACE_TIMEOUT")
        try:
            waited = wait_until(
                lambda: True if not self._containers(session_id) else None,
                deadline,
                self.profile.seconds("POLL_INTERVAL"),
                lambda: f"Session {session_id} still has containers: pids {self._pids(self._containers(session_id))}",
            )
        except WaitTimeout as error:
            if fail_on_timeout:
                raise
            self.info(str(error))
            return None
        self.info(f"Session {session_id} has no container (after {format_seconds(waited.seconds)}).")
        return waited.seconds

    @keyword(tags=["containers", "wait"])
    def wait_until_session_settles_with_matching_containers(
        self, session: SessionRef, timeout: timedelta | None = None
    ) -> str:
        """Waits until the session has settled and its containers match its status; returns the status.

        Settled and matching: ``RUNNING`` with exactly one container, or ``STOPPED``, ``FAILED`` or gone
        (``GONE``) with none. A session still on its way (``STARTING``, ``RESTARTING`` ...) or whose record and
        containers disagree (``RUNNING`` without a container, ``FAILED`` with one) is waited for: the platform may
        reconcile it, e.g. in a reaper pass. Such a disagreement is logged as a warning with how long it lasted.
        Two containers at once fail at once. The deadline is ``timeout`` or ``${SESSION_SETTLE_TIMEOUT}``.

        Example:
        | ${status} = | Wait Until Session Settles With Matching Containers | ${session} |
        """
        session_id = self.session_id_of(session)
        seen: dict[str, Any] = {"containers": [], "status": None, "mismatch_since": None, "mismatch": None}
        started = time.monotonic()

        def probe():
            status, current = self._api_view(session_id)
            containers = self._containers(session_id)
            seen.update(status=status, containers=containers, session=current)
            settled = status in ("RUNNING", "GONE", *TERMINAL_STATUSES)
            matching = len(containers) == (1 if status == "RUNNING" else 0)
            if settled and matching:
                return status
            if settled and seen["mismatch_since"] is None:
                seen["mismatch_since"] = time.monotonic()
                seen["mismatch"] = f"{status} with {len(containers)} container(s)"
            return None

        def fail_fast():
            if len(seen["containers"]) > 1:
                return (
                    f"Session {session_id} has {len(seen['containers'])} containers: {self._pids(seen['containers'])}"
                )
            return None

        deadline = timeout.total_seconds() if timeout is not None else self.profile.seconds("SESSION_SETTLE_TIMEOUT")
        waited = wait_until(
            probe,
            deadline,
            self.profile.seconds("POLL_INTERVAL"),
            lambda: (
                f"Session {session_id} did not settle with matching containers: status {seen['status']}, "
                f"containers {self._pids(seen['containers'])}" + _restarts(seen.get("session"))
            ),
            fail_fast,
        )
        if seen["mismatch_since"] is not None:
            logger.warn(
                f"Session {session_id} was {seen['mismatch']} for "
                f"{format_seconds(time.monotonic() - seen['mismatch_since'])} before it settled as {waited.value}."
            )
        self.info(
            f"Session {session_id} settled as {waited.value} with matching containers after "
            f"{format_seconds(time.monotonic() - started)}."
        )
        return waited.value

    # ------------------------------------------------------------------ orphans
    def orphans(self) -> list[dict]:
        """Containers of sessions the API does not know as live (warm-pool containers are not orphans)."""
        orphans = []
        for container in self.backend.list_containers():
            if container.session_id is None:
                continue  # warm pool: waiting for a session, not orphaned
            status = self.api_status(container.session_id)
            if status is None:
                raise ContainerBackendError(
                    f"Cannot tell whether session {container.session_id} (container pid {container.pid}) is live: "
                    "the API gave no usable answer."
                )
            if status == "GONE" or status in TERMINAL_STATUSES:
                orphans.append(
                    {
                        "pid": container.pid,
                        "sessionId": container.session_id,
                        "taskId": container.task_id,
                        "sessionStatus": "not found" if status == "GONE" else status,
                    }
                )
        return orphans

    @keyword(tags=["containers", "orphans", "wait"])
    def wait_until_no_orphaned_containers(self, timeout: timedelta | None = None) -> float:
        """Waits until no orphaned container is left and returns the seconds it took.

        The deadline is ``timeout`` or ``${ORPHAN_GRACE_TIMEOUT}``, which allows for containers that are
        still shutting down; at the deadline it fails listing the orphans.
        """
        deadline = timeout.total_seconds() if timeout is not None else self.profile.seconds("ORPHAN_GRACE_TIMEOUT")
        last: dict[str, list] = {"orphans": []}

        def probe():
            last["orphans"] = self.orphans()
            return True if not last["orphans"] else None

        waited = wait_until(
            probe,
            deadline,
            self.profile.seconds("POLL_INTERVAL"),
            lambda: (
                "Orphaned containers remain: "
                + "; ".join(
                    f"pid {o['pid']} of session {o['sessionId']} ({o['sessionStatus']})" for o in last["orphans"]
                )
            ),
        )
        self.info(f"No orphaned containers (checked for {format_seconds(waited.seconds)}).")
        return waited.seconds
